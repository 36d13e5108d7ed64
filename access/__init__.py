"""Who may do what: API keys, roles, and the append-only audit log."""
