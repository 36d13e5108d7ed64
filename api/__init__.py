"""The FastAPI application: wires the domain routers, auth and the one error shape together."""
