"""Security headers: every page the app serves (enumerated from its routes, so new pages are covered) and the
API's JSON; HSTS only when the public URL is https."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from tally.config import Settings
from tally.security.audit import build_app
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


def page_paths(tally: Any) -> list[str]:
    """Every GET route but the API docs (HTML ones are checked as pages, JSON ones for the common headers)."""
    paths = []
    for context in iter_route_contexts(tally.app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and "GET" in (route.methods or set()) \
                and not context.path.startswith(("/docs", "/redoc", "/openapi")):
            paths.append(re.sub(r"\{[^}]+\}", "x", context.path))
    return paths


def csp_directives(value: str) -> dict[str, str]:
    return {part.strip().split(" ", 1)[0]: part.strip() for part in value.split(";") if part.strip()}


def test_every_page_has_the_security_headers(tally: Any) -> None:
    paths = page_paths(tally)
    assert {"/pricing", "/account", "/signin"} <= set(paths)
    with httpx.Client(base_url=tally.url, timeout=30) as browser:
        browser.get("/signin/token", params={"token": tally.token("user-headers")})  # a session cookie
        for path in paths:
            response = browser.get(path)
            headers = response.headers
            assert headers["X-Content-Type-Options"] == "nosniff", path
            assert headers["X-Frame-Options"] == "DENY", path
            assert headers["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin"), path
            if headers.get("content-type", "").startswith("text/html"):
                csp = csp_directives(headers["Content-Security-Policy"])
                assert csp["frame-ancestors"] == "frame-ancestors 'none'", path
                script = csp.get("script-src", csp["default-src"])
                assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, path
            assert "Strict-Transport-Security" not in headers  # http://127.0.0.1: no HSTS


def test_pages_carry_no_inline_script(tally: Any) -> None:
    """What lets the pages' CSP forbid inline scripts: none of them has one (or an inline handler)."""
    with httpx.Client(base_url=tally.url, timeout=30) as browser:
        browser.get("/signin/token", params={"token": tally.token("user-inline")})
        for path in page_paths(tally):
            text = browser.get(path).text
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
            assert not re.search(r"\son[a-z]+\s*=", text), path
            assert "javascript:" not in text, path


def test_json_answers_are_not_sniffed_or_framed(tally: Any) -> None:
    for path in ("/v1/catalog", "/v1/credits", "/healthz", "/no-such-route"):
        headers = httpx.get(tally.url + path, timeout=30).headers
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


async def get(settings: Settings, path: str) -> httpx.Response:
    """A request to the app ``tally serve`` would build from ``settings`` (no server, no lifespan)."""
    transport = httpx.ASGITransport(app=build_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://tally.test") as client:
        return await client.get(path)


async def test_hsts_when_the_public_url_is_https() -> None:
    response = await get(Settings(TALLY_PUBLIC_URL="https://billing.example.com"), "/healthz")
    hsts = response.headers["Strict-Transport-Security"]
    assert int(hsts.split("=")[1].split(";")[0]) >= 31536000
    plain = await get(Settings(TALLY_PUBLIC_URL="http://127.0.0.1:8000"), "/healthz")
    assert "Strict-Transport-Security" not in plain.headers


async def test_the_api_docs_load_nothing_from_elsewhere() -> None:
    """Swagger UI's assets come from Tally itself (fastapi-offline); its inline bootstrap script is allowed,
    nothing from another origin is (tests/e2e/test_docs_offline.py renders it in a browser)."""
    docs = await get(Settings(), "/docs")
    assert docs.status_code == 200 and docs.headers["X-Frame-Options"] == "DENY"
    policy = docs.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "http" not in policy
    assert "cdn" not in docs.text and "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    bundle = await get(Settings(), "/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and bundle.headers["X-Content-Type-Options"] == "nosniff"
