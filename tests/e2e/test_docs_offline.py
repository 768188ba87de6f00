"""The API reference at /docs renders in a browser that may reach nothing but Tally: Swagger UI's script and
styles come from Tally itself (the fastapi-offline package), not from a CDN."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.served_tally import ServedTally

pytestmark = pytest.mark.e2e


def test_docs_render_with_every_request_outside_tally_blocked(browser: Any, served_tally: ServedTally) -> None:
    origin = urlsplit(served_tally.url)
    blocked: list[str] = []
    refused: list[str] = []

    def only_tally(route: Any) -> None:
        target = urlsplit(route.request.url)
        if (target.scheme, target.netloc) == (origin.scheme, origin.netloc) or target.scheme in ("data", "blob"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context = browser.new_context()
    try:
        context.route("**/*", only_tally)
        page = context.new_page()
        page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
        page.goto(f"{served_tally.url}/docs")
        page.locator(".swagger-ui .info .title").filter(has_text="Tally").wait_for(timeout=30_000)
        page.locator(".opblock-summary-path", has_text="/v1/checkout").first.wait_for(timeout=30_000)
        assert page.locator(".opblock").count() > 10
    finally:
        context.close()
    assert blocked == [], f"/docs asked for something outside Tally: {blocked}"
    assert refused == [], f"the browser refused something (CSP?): {refused}"
