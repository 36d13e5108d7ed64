"""Grafana: dashboards as code, database roles per company, and the sync that provisions them."""
