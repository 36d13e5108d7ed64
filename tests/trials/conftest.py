from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.trials.lab import Lab, build_lab


@pytest.fixture
def lab(conn: psycopg.Connection, http: httpx.Client) -> Lab:
    return build_lab(conn, http)
