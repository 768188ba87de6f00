"""What a frontend developer meets: this service's own routes, called the way a browser app calls them, with
each 404/405/401/CORS problem said in plain words with its fix. Run from wherever the doctor runs (the CLI
probes the URL it was given; /admin/health probes TALLY_PUBLIC_URL)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .checks import Finding


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    what: str
    needs_auth: bool = True


ROUTES = (
    Route("POST", "/v1/checkout", "Tally's own checkout"),
    Route("POST", "/api/payment/create-checkout-session", "the Vue/React \"buy coins\" guide's checkout"),
    Route("POST", "/api/stripe/create-checkout-session", "the Next.js guide's checkout"),
    Route("POST", "/api/stripe/create-payment-intent", "Stripe Elements' PaymentIntent"),
    Route("GET", "/api/payment/status/cs_test_doctor", "the success page's status poll"),
    Route("POST", "/v1/webhooks/stripe", "the webhook receiver", needs_auth=False),
)
COMPAT_PREFIXES = ("/api/payment/", "/api/stripe/", "/api/business/")


def parse_route(text: str) -> Route:
    """``"POST /api/create-checkout-session"`` → a Route (``tally doctor --route``)."""
    method, _, path = text.strip().partition(" ")
    if not path.startswith("/") or method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise ValueError(f"a route is 'METHOD /path', not {text!r}")
    return Route(method.upper(), path.strip(), "your frontend's call")


async def probe_route(http: httpx.AsyncClient, route: Route) -> Finding:
    title = f"{route.method} {route.path} ({route.what})"
    try:
        response = await http.request(route.method, route.path, json={} if route.method != "GET" else None)
    except httpx.HTTPError as exc:
        return Finding("route", title, False, f"No answer: {exc!r}.", "Is Tally running at this URL?", scored=False)
    return _missing_route(route, title, response) or _answer_to_probe(route, title, response.status_code)


def _missing_route(route: Route, title: str, response: httpx.Response) -> Finding | None:
    """A 404 or 405: the frontend calls a path or method this service does not serve."""
    status = response.status_code
    if status == 404:
        compat = route.path.startswith(COMPAT_PREFIXES)
        return Finding("route", title, False, "404 Not Found: this service has no such path"
                       + (" (the compatibility routes are off)." if compat else "."),
                       "Set TALLY_COMPAT_ROUTES=true (the default) and restart, or call Tally's own route "
                       "(POST /v1/checkout, GET /v1/orders/{id})." if compat else
                       "Check the path and the base URL your frontend uses (TALLY_PUBLIC_URL).", scored=False)
    if status == 405:
        allowed = response.headers.get("allow", "another method")
        return Finding("route", title, False, f"405 Method Not Allowed: {route.path} answers {allowed} only, and "
                       f"your frontend sends {route.method}.",
                       f"Send {allowed} to {route.path}, or point the {route.method} at the route meant for it "
                       "(checkouts are POST /v1/checkout or POST /api/payment/create-checkout-session).",
                       scored=False)
    return None


def _answer_to_probe(route: Route, title: str, status: int) -> Finding:
    """What the route answered the probe's request without a token (or signature), against what it should."""
    if route.needs_auth and status in (200, 201):
        return Finding("route", title, False, f"{status} without any token: this route does not ask who is "
                       "calling.", "Put it behind authentication.", scored=False)
    if route.needs_auth and status in (400, 422):
        return Finding("route", title, True, f"The route is there ({status} for the probe's empty body). Send "
                       "the documented JSON with 'Authorization: Bearer <the user's JWT>'.", scored=False)
    if route.needs_auth and status != 401:
        return Finding("route", title, False, f"{status} without a token, where 401 was expected.",
                       "Check what sits in front of Tally (proxy rewriting the path?).", scored=False)
    if not route.needs_auth and status not in (400, 503):
        return Finding("route", title, False, f"{status} for an unsigned body (400 expected).",
                       "Check what sits in front of Tally.", scored=False)
    if status == 503:
        return Finding("route", title, False, "503: no webhook signing secret is configured.",
                       "Set STRIPE_WEBHOOK_SECRET.", scored=False)
    note = ("401 without a token: send 'Authorization: Bearer <the user's JWT>' (or the API key plus "
            "Tally-User-Id from a server)." if route.needs_auth else "400 for an unsigned body: the signature "
            "check is on.")
    return Finding("route", title, True, f"The route is there. {note}", scored=False)


async def probe_cors(http: httpx.AsyncClient, origin: str, configured: list[str]) -> Finding:
    title = f"CORS for a browser app at {origin}"
    response = await http.options("/v1/checkout", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    allowed = response.headers.get("access-control-allow-origin")
    if response.status_code == 200 and allowed in (origin, "*"):
        return Finding("cors", title, True, "The preflight passes: a page there may call Tally with a bearer "
                       "token.", scored=False)
    return Finding("cors", title, False, f"The browser's preflight is refused ({response.status_code}, no "
                   f"Access-Control-Allow-Origin for {origin}): fetch() fails with a CORS error before any "
                   "request reaches Tally.",
                   f"Add the origin: TALLY_CORS_ORIGINS={','.join([*configured, origin])} and restart "
                   "(scheme, host and port exactly as the browser shows them).", scored=False)


async def run_probes(http: httpx.AsyncClient, *, routes: tuple[Route, ...] | list[Route] = ROUTES,
                     origins: list[str] | None = None, configured_origins: list[str] | None = None) -> list[Finding]:
    findings = [await probe_route(http, route) for route in routes]
    configured = configured_origins or []
    for origin in origins if origins is not None else configured:
        findings.append(await probe_cors(http, origin, configured))
    if origins is None and not configured:
        findings.append(Finding("cors", "CORS", True, "No TALLY_CORS_ORIGINS: only pages served from Tally's own "
                                "origin may call it from a browser (a frontend elsewhere, e.g. "
                                "http://localhost:5173, needs TALLY_CORS_ORIGINS).", scored=False))
    return findings
