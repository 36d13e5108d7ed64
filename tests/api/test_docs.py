"""The docs work on a closed network: every asset from this server, none from a CDN."""

from __future__ import annotations

import re

import httpx
import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_reference_only_this_server_and_every_asset_loads(
    http: httpx.Client, page: str
) -> None:
    html = http.get(page).text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?'([^']+)'""", html)
    referenced = {a or b for a, b in urls}
    assert referenced, html
    assert not [u for u in referenced if "//" in u], referenced  # no http(s)://, no //cdn
    for url in referenced:
        response = http.get(url)
        assert response.status_code == 200, url
        assert response.content, url
    assert any(url.endswith(".js") for url in referenced)


def test_the_root_says_what_this_is_and_where_to_go(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert "Living Design Lab tracker" in response.text
    for link in ('href="docs"', 'href="health"', 'href="openapi.json"'):
        assert link in response.text
