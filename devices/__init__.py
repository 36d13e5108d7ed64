"""Devices, gateways, deployments, broker credentials and ACLs, device health."""
