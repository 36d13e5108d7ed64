"""The web app for people: coordinators run their lab, companies follow their trials, evaluators read.

Server-rendered (Jinja2) with htmx as progressive enhancement; every page works without
JavaScript. It calls the same services as the HTTP API (trials/, evidence/, devices/, access/)
with the same pydantic models, so there is one set of rules. `ldl/app.py` mounts it under /app.
"""

from __future__ import annotations

from web.app import create_web_app

__all__ = ["create_web_app"]
