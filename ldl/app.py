"""The one composition root: the ASGI application, the HTTP API with the web app mounted in it.

Layers point down: this entry point knows both faces (api/, web/); neither knows the other.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import WEB_APP
from api.app import create_app as create_api
from infra.settings import Settings, load_settings
from web import create_web_app


def create_app(settings: Settings) -> FastAPI:
    app = create_api(settings)
    app.mount(WEB_APP, create_web_app(app.state))  # the web app for people, with its static files
    return app


def app_from_environment() -> FastAPI:
    """The app for `ldl api --workers N` (uvicorn's factory): settings from the LDL_* variables."""
    return create_app(load_settings())
