"""Webhook endpoints: create (returns the ``whsec_`` secret once), retrieve, update, delete, list."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from ..errors import invalid_request, no_such
from ..ids import new_id, new_secret
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import on_start, route
from ..store import Obj


def get_endpoint(sb: Any, endpoint_id: str) -> Obj:
    endpoint = sb.store.get(endpoint_id, "webhook_endpoint")
    if endpoint is None:
        raise no_such("webhook endpoint", endpoint_id)
    return endpoint


def _url(p: Params, required: bool) -> str | None:
    url = p.str("url", required=required)
    if url is not None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise invalid_request(f"Invalid URL: {url}. URLs must begin with http:// or https://", param="url",
                                  code="url_invalid")
    return url


def _events(p: Params, required: bool) -> list[str] | None:
    if "enabled_events" not in p and not required:
        return None
    events = p.str_list("enabled_events", required=required)
    if not events:
        raise invalid_request("Missing required param: enabled_events.", param="enabled_events",
                              code="parameter_missing")
    return events


def create_endpoint(sb: Any, url: str, enabled_events: list[str], secret: str | None = None,
                    description: str | None = None, metadata: dict[str, str] | None = None,
                    api_version: str | None = None) -> Obj:
    endpoint: Obj = {
        "id": new_id("we", 24),
        "object": "webhook_endpoint",
        "api_version": api_version,
        "application": None,
        "created": sb.clock.now_int(),
        "description": description,
        "enabled_events": enabled_events,
        "livemode": False,
        "metadata": metadata or {},
        "status": "enabled",
        "url": url,
    }
    sb.store.add(endpoint)
    sb.webhooks.set_secrets(endpoint["id"], [secret or new_secret("whsec")])
    return endpoint


@route("POST", "/v1/webhook_endpoints", params=(
    "url", "enabled_events", "description", "metadata", "api_version", "connect"))
def create(sb: Any, p: Params) -> Obj:
    url = _url(p, True)
    events = _events(p, True)
    assert url is not None and events is not None
    endpoint = create_endpoint(sb, url, events, description=p.optional_str("description"),
                               metadata=merge_metadata({}, p.raw("metadata")),
                               api_version=p.optional_str("api_version"))
    return {**endpoint, "secret": sb.webhooks.secrets_of(endpoint["id"])[0]}


@route("GET", "/v1/webhook_endpoints/{endpoint_id}")
def retrieve(sb: Any, p: Params, endpoint_id: str) -> Obj:
    return get_endpoint(sb, endpoint_id)


@route("POST", "/v1/webhook_endpoints/{endpoint_id}", params=(
    "url", "enabled_events", "description", "metadata", "disabled"))
def update(sb: Any, p: Params, endpoint_id: str) -> Obj:
    endpoint = get_endpoint(sb, endpoint_id)
    url = _url(p, False)
    events = _events(p, False)
    if url is not None:
        endpoint["url"] = url
    if events is not None:
        endpoint["enabled_events"] = events
    if "description" in p:
        endpoint["description"] = p.optional_str("description")
    if "metadata" in p:
        endpoint["metadata"] = merge_metadata(endpoint["metadata"], p.raw("metadata"))
    if "disabled" in p:
        endpoint["status"] = "disabled" if p.bool("disabled") else "enabled"
    sb.store.save(endpoint)
    return endpoint


@route("DELETE", "/v1/webhook_endpoints/{endpoint_id}")
def delete(sb: Any, p: Params, endpoint_id: str) -> Obj:
    get_endpoint(sb, endpoint_id)
    sb.store.delete(endpoint_id)
    sb.webhooks.forget_endpoint(endpoint_id)  # queued deliveries and retries find no endpoint and stop
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


@route("GET", "/v1/webhook_endpoints", params=LIST_PARAMS)
def list_(sb: Any, p: Params) -> Obj:
    return paginate(sb.store, sb.store.collection("webhook_endpoint"), p, "/v1/webhook_endpoints")


@on_start
def install_default_endpoint(sb: Any) -> None:
    """``--webhook-url`` / ``STRIPE_SANDBOX_WEBHOOK_URL``: an endpoint for every event, wired at start-up."""
    url = sb.config.webhook_url
    if not url:
        return
    for endpoint_id in sb.store.collection("webhook_endpoint").ids:
        endpoint = sb.store.objects[endpoint_id]
        if endpoint["url"] == url and endpoint["metadata"].get("sandbox_default") == "true":
            if sb.config.webhook_secret:
                sb.webhooks.set_secrets(endpoint_id, [sb.config.webhook_secret])
            return
    create_endpoint(sb, url, ["*"], sb.config.webhook_secret, description="default endpoint (command line)",
                    metadata={"sandbox_default": "true"})
