"""The HTTP face of this domain: thin handlers that parse, authorise, call the service, return."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
