"""Shared plumbing: settings, database connections, migrations and the error base."""
