"""The eight production checks of ``tally doctor``, each a small function returning pass/fail, the reason, and
the fix. They run inside the Tally being checked (``/admin/health.json``), with its own Stripe client, webhook
secrets and database, so they see exactly what it is configured with.

What each one looks at (only what Stripe's API and the running service expose; nothing is assumed):
1. webhook: an endpoint for this service's URL, enabled, with the events Tally handles; then a real delivery:
   a throw-away Checkout Session is created and expired, and its ``checkout.session.expired`` event must reach
   the inbox, which only happens if the endpoint's signing secret verifies here.
2. idempotency: Stripe records the Idempotency-Key of the request behind each event; the recent API-caused
   events must all carry one. The running service's OpenAPI must require ``idempotency_key`` on credit spends.
3. portal: an active default customer portal configuration with payment method update and invoice history.
4. tax: Stripe Tax active, or at least one active tax rate.
5. dunning: Tally's reminder schedule and an email transport, and no past-due subscription that Stripe has
   stopped retrying (Smart Retries themselves are a Dashboard setting with no API).
6. pci: no operation in the running service's OpenAPI and no field on its pages takes card data.
7. keys: a secret (``sk_``/``rk_``) key that Stripe accepts, of the mode its objects report, no placeholder,
   a ``whsec_`` webhook secret.
8. monitoring: a worker alive, periodic reconciliation on, no failed or stuck webhook events, and no event
   Stripe is still failing to deliver.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from .. import stripe_gateway
from ..config import Settings
from ..db import Database
from ..runtime import WEBHOOK_PATH
from ..stripe_gateway import StripeError, StripeGateway

WEBHOOK_PATHS = (WEBHOOK_PATH, "/api/stripe/webhook", "/api/payment/webhook")
# The events Tally must receive for money to be right (its handlers also take others, which are optional).
REQUIRED_EVENTS = (
    "checkout.session.completed", "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed", "checkout.session.expired", "payment_intent.succeeded",
    "payment_intent.payment_failed", "charge.refunded", "customer.subscription.created",
    "customer.subscription.updated", "customer.subscription.deleted", "invoice.paid", "invoice.payment_failed",
    "charge.dispute.created", "charge.dispute.closed")
PROBE_WAIT_SECONDS = 20.0
PLACEHOLDER = re.compile(r"x{4,}|your|placeholder|change.?me|example|replace|\.\.\.|<|>|\*{3,}", re.IGNORECASE)
CARD_FIELD = re.compile(r"^(card.?num(ber)?|pan|cvc2?|cvv2?|csc|exp(iry|iration)?.?(month|year|date)?|"
                        r"number|card)$", re.IGNORECASE)


@dataclass
class Finding:
    id: str
    title: str
    passed: bool
    reason: str
    fix: str = ""
    scored: bool = True

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    settings: Settings
    stripe: StripeGateway
    webhook_secrets: list[str]
    db: Database
    http: httpx.AsyncClient  # pointed at the service being checked
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.settings.public_url.rstrip("/")

    @property
    def stripe_key(self) -> str | None:
        return self.settings.stripe_secret_key

    async def openapi(self) -> dict[str, Any] | None:
        if "openapi" not in self.cache:
            try:
                response = await self.http.get("/openapi.json")
                self.cache["openapi"] = response.json() if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                self.cache["openapi"] = None
        return self.cache["openapi"]


Check = Callable[[Context], Awaitable[Finding]]


def _stripe_problem(exc: Exception) -> str:
    if isinstance(exc, stripe_gateway.AuthenticationError):
        return "Stripe refused the secret key (401)"
    if isinstance(exc, stripe_gateway.PermissionError):
        return "the key lacks permission for this (403; a restricted key without it?)"
    if isinstance(exc, stripe_gateway.APIConnectionError):
        return "Stripe could not be reached"
    return f"Stripe answered {type(exc).__name__}: {getattr(exc, 'user_message', None) or exc}"


KEY_FIX = "Set STRIPE_SECRET_KEY to the secret key (sk_test_… or sk_live_…) from Dashboard → Developers → API keys."


# -- 1. webhook endpoint --------------------------------------------------------------------------
async def webhook_endpoints(ctx: Context) -> list[dict[str, Any]]:
    if "endpoints" not in ctx.cache:
        ctx.cache["endpoints"] = await ctx.stripe.list_webhook_endpoints()
    return ctx.cache["endpoints"]


def our_urls(ctx: Context) -> list[str]:
    return [ctx.base_url + path for path in WEBHOOK_PATHS]


async def delivery_probe(ctx: Context) -> tuple[bool, str]:
    """Make Stripe send a real event to the endpoint and wait for it in the inbox: (arrived, what happened)."""
    if "probe" in ctx.cache:
        return ctx.cache["probe"]
    # Each doctor run makes its own probe session, and expires the one it just made: no keys of Tally's.
    checkout = await ctx.stripe.create_checkout_session({
        "mode": "payment", "success_url": ctx.base_url + "/", "metadata": {"tally_doctor": "delivery probe"},
        "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 100,
                                                      "product_data": {"name": "tally doctor probe"}}}]},
        idempotency_key=None)
    await ctx.stripe.expire_checkout_session(checkout["id"], idempotency_key=None)
    events = await ctx.stripe.list_events({"type": "checkout.session.expired", "limit": 20})
    event = next((e for e in events if ((e.get("data") or {}).get("object") or {}).get("id") == checkout["id"]), None)
    if event is None:
        result = (False, f"Stripe recorded no checkout.session.expired event for probe {checkout['id']}")
    else:
        deadline = time.monotonic() + PROBE_WAIT_SECONDS
        arrived = False
        while not arrived and time.monotonic() < deadline:
            async with ctx.db.transaction() as session:
                arrived = bool(await session.scalar(text("SELECT 1 FROM webhook_events WHERE id = :id"),
                                                    {"id": event["id"]}))
            if not arrived:
                await asyncio.sleep(0.2)
        pending = (await ctx.stripe.retrieve_event(event["id"])).get("pending_webhooks")
        result = (arrived, f"probe event {event['id']} " + (
            "reached the inbox" if arrived else
            f"did not reach the inbox within {PROBE_WAIT_SECONDS:.0f} s (Stripe: {pending} delivery still failing)"))
    ctx.cache["probe"] = result
    return result


async def check_webhook(ctx: Context) -> Finding:
    title = "Webhook endpoint: this URL, the needed events, a secret that verifies"
    try:
        endpoints = await webhook_endpoints(ctx)
    except StripeError as exc:
        return Finding("webhook", title, False, f"Could not list webhook endpoints: {_stripe_problem(exc)}.", KEY_FIX)
    endpoint = _our_enabled_endpoint(ctx, title, endpoints)
    if isinstance(endpoint, Finding):
        return endpoint
    events = set(endpoint.get("enabled_events") or [])
    missing = [] if "*" in events else [e for e in REQUIRED_EVENTS if e not in events]
    if missing:
        return _missing_events(title, endpoint, events, missing)
    if not ctx.webhook_secrets:
        return Finding("webhook", title, False, "STRIPE_WEBHOOK_SECRET is not set: Tally refuses every webhook.",
                       f"Set STRIPE_WEBHOOK_SECRET to the signing secret of {endpoint['id']} and restart.")
    try:
        arrived, what = await delivery_probe(ctx)
    except StripeError as exc:
        return Finding("webhook", title, False, f"Could not send a probe event: {_stripe_problem(exc)}.", KEY_FIX)
    if not arrived:
        return await _probe_not_arrived(ctx, title, endpoint, what)
    listed = "all events" if "*" in events else f"{len(events)} events incl. the {len(REQUIRED_EVENTS)} needed"
    return Finding("webhook", title, True, f"Endpoint {endpoint['id']} → {endpoint['url']}, enabled, {listed}; "
                   f"{what}, so its signing secret verifies.")


def _our_enabled_endpoint(ctx: Context, title: str, endpoints: list[dict[str, Any]]) -> dict[str, Any] | Finding:
    """The enabled endpoint for this service's URL that sends the most of the needed events, or why none is."""
    urls = our_urls(ctx)
    ours = [e for e in endpoints if e.get("url", "").rstrip("/") in urls]
    if not ours:
        elsewhere = ", ".join(sorted({e.get("url", "") for e in endpoints})) or "none at all"
        return Finding("webhook", title, False, f"No webhook endpoint points at {urls[0]} (endpoints in this "
                       f"account: {elsewhere}). Stripe cannot tell Tally about payments.",
                       f"Create one: Dashboard → Developers → Webhooks → Add endpoint, URL {urls[0]}, events "
                       f"{', '.join(REQUIRED_EVENTS)}; then set STRIPE_WEBHOOK_SECRET to its whsec_ signing secret "
                       "and restart Tally.")
    enabled = [e for e in ours if e.get("status") == "enabled"]
    if not enabled:
        return Finding("webhook", title, False, f"The endpoint {ours[0]['id']} for {ours[0]['url']} is disabled "
                       "(Stripe disables endpoints that keep failing).",
                       f"Enable it: Dashboard → Developers → Webhooks → {ours[0]['id']} → Enable; then run "
                       "`tally sync` to fetch what was missed.")
    return max(enabled, key=_needed_events_sent)


def _needed_events_sent(endpoint: dict[str, Any]) -> int:
    """How many of the needed events the endpoint sends; one that sends every event ranks above all."""
    events = endpoint.get("enabled_events") or []
    return len(set(REQUIRED_EVENTS) & set(events)) + (100 if "*" in events else 0)


def _missing_events(title: str, endpoint: dict[str, Any], events: set[str], missing: list[str]) -> Finding:
    return Finding("webhook", title, False, f"Endpoint {endpoint['id']} ({endpoint['url']}) does not send "
                   f"{', '.join(missing)}: those payments and changes would never reach Tally.",
                   f"Add the missing events: Dashboard → Developers → Webhooks → {endpoint['id']} → "
                   f"Select events, or `stripe webhook_endpoints update {endpoint['id']} "
                   + " ".join(f"-d 'enabled_events[]={e}'" for e in sorted(events | set(missing))) + "`.")


async def _probe_not_arrived(ctx: Context, title: str, endpoint: dict[str, Any], what: str) -> Finding:
    """Why the probe event did not reach the inbox: a secret that does not verify, or a URL that does not answer."""
    reachable = await _receiver_answers(ctx, endpoint["url"])
    cause = ("the signature did not verify: STRIPE_WEBHOOK_SECRET is not this endpoint's signing secret"
             if reachable else f"{endpoint['url']} does not answer from here")
    return Finding("webhook", title, False, f"Endpoint {endpoint['id']} is registered, but {what}; {cause}.",
                   f"Copy the signing secret of {endpoint['id']} (Dashboard → Developers → Webhooks → "
                   "Signing secret → Reveal) into STRIPE_WEBHOOK_SECRET and restart Tally (while rolling a "
                   "secret, give both, comma-separated); then run `tally sync`." if reachable else
                   "Make the URL reachable from Stripe (public DNS, HTTPS, firewall), or fix "
                   "TALLY_PUBLIC_URL.")


async def _receiver_answers(ctx: Context, url: str) -> bool:
    """The receiver is there if an unsigned POST is refused for its signature (400), not 404/405/5xx."""
    try:
        response = await ctx.http.post(url, content=b"{}", headers={"Content-Type": "application/json"})
    except httpx.HTTPError:
        return False
    return response.status_code == 400


# -- 2. idempotency -------------------------------------------------------------------------------
def _spend_requires_key(openapi: dict[str, Any] | None) -> bool | None:
    if not openapi:
        return None
    op = (openapi.get("paths", {}).get("/v1/credits/spend") or {}).get("post")
    if op is None:
        return None
    ref = (((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}).get("schema", {})
    name = str(ref.get("$ref", "")).rsplit("/", 1)[-1]
    schema = openapi.get("components", {}).get("schemas", {}).get(name, ref)
    return "idempotency_key" in (schema.get("required") or [])


async def check_idempotency(ctx: Context) -> Finding:
    title = "Idempotency keys on mutating calls"
    try:
        events = await ctx.stripe.list_events({"limit": 100})
    except StripeError as exc:
        return Finding("idempotency", title, False, f"Could not list events: {_stripe_problem(exc)}.", KEY_FIX)
    caused = [e for e in events if (e.get("request") or {}).get("id")]
    keyless = [e for e in caused if not e["request"].get("idempotency_key")]
    ours = [e for e in caused if (e["request"].get("idempotency_key") or "").startswith("tally:")]
    spend = _spend_requires_key(await ctx.openapi())
    if keyless:
        sample = ", ".join(f"{e['id']} ({e.get('type')})" for e in keyless[:3])
        return Finding("idempotency", title, False, f"{len(keyless)} of the last {len(caused)} API requests "
                       f"that changed something in Stripe had no Idempotency-Key: {sample}. Tally always "
                       "sends one, so another client of this account does not.",
                       "Send an Idempotency-Key on every POST (the official Stripe SDKs do by themselves; raw "
                       "HTTP calls and some old libraries do not), derived from your own record id so that a "
                       "retry after a crash is the same request.")
    if spend is False:
        return Finding("idempotency", title, False, "POST /v1/credits/spend does not require idempotency_key "
                       "in this service's OpenAPI: a retried spend could debit twice.",
                       "Upgrade Tally; the spend route must require idempotency_key.")
    seen = (f"Stripe's last {len(caused)} API-request events all carried an Idempotency-Key, {len(ours)} of "
            "them Tally's own record-derived keys (tally:<record>:<id>:<action>)" if caused else
            "no API-request events yet")
    return Finding("idempotency", title, True, f"{seen}; Tally's Stripe gateway derives keys from its record "
                   "ids for every create, and the SDK adds one to every other POST"
                   + ("; POST /v1/credits/spend requires idempotency_key (OpenAPI)." if spend else "."))


# -- 3. customer portal ---------------------------------------------------------------------------
async def check_portal(ctx: Context) -> Finding:
    title = "Customer portal configured"
    fix = ("Dashboard → Settings → Billing → Customer portal: turn on payment method update, invoice history "
           "and cancellation, then Save.")
    try:
        configs = await ctx.stripe.list_portal_configurations()
    except StripeError as exc:
        return Finding("portal", title, False, f"Could not list portal configurations: {_stripe_problem(exc)}.",
                       KEY_FIX)
    default = next((c for c in configs if c.get("is_default")), configs[0] if configs else None)
    if default is None:
        return Finding("portal", title, False, "No active customer portal configuration: 'Manage billing' "
                       "would fail for every subscriber.", fix)
    features = default.get("features") or {}
    on = [name for name, value in features.items() if isinstance(value, dict) and value.get("enabled")]
    missing = [name for name in ("payment_method_update", "invoice_history") if name not in on]
    if missing:
        return Finding("portal", title, False, f"Portal configuration {default['id']} has "
                       f"{' and '.join(missing)} off: subscribers could not fix a failing card or see invoices.",
                       fix)
    return Finding("portal", title, True, f"Configuration {default['id']} (default) with {', '.join(sorted(on))}.")


# -- 4. tax ---------------------------------------------------------------------------------------
async def check_tax(ctx: Context) -> Finding:
    title = "Tax collection configured (Stripe Tax or tax rates)"
    fix = ("Turn on Stripe Tax (Dashboard → Tax: head office address and your registrations) or create tax "
           "rates (Dashboard → Product catalog → Tax rates).")
    try:
        settings = await ctx.stripe.retrieve_tax_settings()
        rates = await ctx.stripe.list_tax_rates({"active": True, "limit": 100})
    except StripeError as exc:
        return Finding("tax", title, False, f"Could not read tax settings: {_stripe_problem(exc)}.", KEY_FIX)
    if settings.get("status") == "active":
        country = (((settings.get("head_office") or {}).get("address")) or {}).get("country")
        return Finding("tax", title, True, f"Stripe Tax is active (head office {country})"
                       + (f"; {len(rates)} active tax rates too." if rates else "."))
    if rates:
        names = ", ".join(f"{r.get('display_name')} {r.get('percentage')}%" for r in rates[:5])
        return Finding("tax", title, True, f"{len(rates)} active tax rates: {names}.")
    missing = ", ".join((settings.get("status_details") or {}).get("pending", {}).get("missing_fields") or [])
    return Finding("tax", title, False, "Stripe Tax is not active" + (f" (missing: {missing})" if missing else "")
                   + " and there is no active tax rate: no tax is collected.", fix)


# -- 5. retries and dunning -----------------------------------------------------------------------
async def check_dunning(ctx: Context) -> Finding:
    title = "Failed-payment retries and dunning"
    settings = ctx.settings
    if not settings.dunning_days:
        return Finding("dunning", title, False, "TALLY_DUNNING_DAYS is empty: no reminder is sent when a renewal "
                       "fails.", "Set TALLY_DUNNING_DAYS, e.g. 0,3,5,7 (days after the failed payment).")
    if not settings.smtp_url and not settings.sandbox_mode:
        return Finding("dunning", title, False, "TALLY_SMTP_URL is not set: dunning emails are only written to "
                       "the /outbox page, so no customer hears about a failed payment.",
                       "Set TALLY_SMTP_URL (smtp://user:pass@host:25, smtps://…:465 or smtp+starttls://…:587).")
    try:
        past_due = await ctx.stripe.list_subscriptions({"status": "past_due", "limit": 20,
                                                        "expand": ["data.latest_invoice"]})
    except StripeError as exc:
        return Finding("dunning", title, False, f"Could not list subscriptions: {_stripe_problem(exc)}.", KEY_FIX)
    stopped = [s["id"] for s in past_due if isinstance(s.get("latest_invoice"), dict)
               and s["latest_invoice"].get("status") == "open"
               and s["latest_invoice"].get("next_payment_attempt") is None]
    if stopped:
        return Finding("dunning", title, False, f"Past-due subscriptions with no retry scheduled: "
                       f"{', '.join(stopped[:5])}. Stripe is not retrying failed renewals.",
                       "Dashboard → Settings → Billing → Subscriptions and emails → Manage failed payments: "
                       "turn on Smart Retries (e.g. 8 tries within 2 weeks), then mark the subscription "
                       "past_due → canceled or unpaid at the end.")
    transport = "SMTP" if settings.smtp_url else "the /outbox page (sandbox mode)"
    return Finding("dunning", title, True, f"Reminders on days {','.join(map(str, settings.dunning_days))} after a "
                   f"failed renewal, sent by {transport}; no past-due subscription without a retry scheduled "
                   f"({len(past_due)} past due). Stripe's Smart Retries schedule itself has no API: check it "
                   "once in Dashboard → Settings → Billing.")


# -- 6. PCI scope ---------------------------------------------------------------------------------
def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["$ref"]).rsplit("/", 1)[-1]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _card_fields(openapi: dict[str, Any]) -> list[str]:
    """Request fields (bodies, nested schemas, parameters) named like card data; responses are not input."""
    schemas = openapi.get("components", {}).get("schemas", {})
    found: list[str] = []
    todo: list[str] = []
    for path, ops in openapi.get("paths", {}).items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            todo += _refs(op.get("requestBody"))
            for param in op.get("parameters") or []:
                if CARD_FIELD.match(str(param.get("name", ""))):
                    found.append(f"{method.upper()} {path} ?{param['name']}")
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        for prop, spec in (schemas[name].get("properties") or {}).items():
            if CARD_FIELD.match(prop):
                found.append(f"{name}.{prop}")
            todo += _refs(spec)
    return found


async def check_pci(ctx: Context) -> Finding:
    title = "PCI scope: hosted Checkout / Elements only, no card data on the server"
    openapi = await ctx.openapi()
    if openapi is None:
        return Finding("pci", title, False, f"Could not read {ctx.base_url}/openapi.json to see what the service "
                       "accepts.", "Make sure the service answers at TALLY_PUBLIC_URL.")
    card = _card_fields(openapi)
    pages_with_cards = []
    for path in ("/pricing", "/account", "/signin"):
        try:
            body = (await ctx.http.get(path)).text
        except httpx.HTTPError:
            continue
        if re.search(r'autocomplete="cc-(number|csc|exp)', body) or re.search(r'name="card', body, re.I):
            pages_with_cards.append(path)
    operations = sum(len(ops) for ops in openapi.get("paths", {}).values())
    if card or pages_with_cards:
        return Finding("pci", title, False, "Card data could reach this server: "
                       + ", ".join(card + [f"a card field on {p}" for p in pages_with_cards]) + ".",
                       "Take cards only on Stripe's hosted Checkout or in Stripe.js Elements and send Tally "
                       "the pm_… id; remove any card field from your own forms and APIs.")
    return Finding("pci", title, True, f"None of the {operations} operations in this service's OpenAPI and no "
                   "field on its pages takes a card number, expiry or CVC; cards are typed on Stripe's hosted "
                   "Checkout or into Stripe.js Elements, which hand Tally pm_… ids only (SAQ A scope).")


# -- 7. keys --------------------------------------------------------------------------------------
async def check_keys(ctx: Context) -> Finding:
    title = "Live and test keys consistent"
    key = ctx.stripe_key
    if key is None:
        return Finding("keys", title, True, "No Stripe key: the offline sandbox, test mode only (no real money).")
    prefix = "_".join(key.split("_")[:2])
    secrets_ = ctx.webhook_secrets
    if problem := (_secret_key_problem(title, key, prefix) or _webhook_secret_problem(title, secrets_)
                   or await _mode_problem(ctx, title)):
        return problem
    live = ctx.settings.live_mode
    return Finding("keys", title, True, f"{prefix}… key accepted by Stripe, {'live' if live else 'test'} mode on "
                   f"both sides; {len(secrets_)} whsec_ webhook secret(s); test-mode events are refused by a "
                   f"live Tally and the reverse.")


def _secret_key_problem(title: str, key: str, prefix: str) -> Finding | None:
    """What is wrong with the key as written: a publishable key, no secret key at all, or a placeholder."""
    if key.startswith("pk_"):
        return Finding("keys", title, False, f"STRIPE_SECRET_KEY holds a publishable key ({prefix}…): it can "
                       "neither create a Checkout Session nor read events.",
                       KEY_FIX + " The pk_ key belongs in your frontend (Stripe.js) only.")
    if not key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        return Finding("keys", title, False, "STRIPE_SECRET_KEY is not a Stripe secret key (sk_test_/sk_live_, or "
                       "a restricted rk_ key).", KEY_FIX)
    if PLACEHOLDER.search(key) or len(key) < 24:
        return Finding("keys", title, False, f"STRIPE_SECRET_KEY looks like a placeholder ({prefix}… copied from "
                       "an example).", KEY_FIX)
    return None


def _webhook_secret_problem(title: str, secrets_: list[str]) -> Finding | None:
    if any(not s.startswith("whsec_") or PLACEHOLDER.search(s) for s in secrets_):
        return Finding("keys", title, False, "STRIPE_WEBHOOK_SECRET is not a whsec_ signing secret (or is a "
                       "placeholder).", "Copy the endpoint's signing secret (whsec_…) from Dashboard → "
                       "Developers → Webhooks.")
    return None


async def _mode_problem(ctx: Context, title: str) -> Finding | None:
    """Whether Stripe accepts the key, and whether its mode is the one Stripe's objects and events report."""
    settings = ctx.settings
    live = settings.live_mode
    if live and settings.stripe_api_base:
        return Finding("keys", title, False, f"A live key is sent to STRIPE_API_BASE={settings.stripe_api_base}.",
                       "Unset STRIPE_API_BASE in production.")
    try:
        endpoints = await webhook_endpoints(ctx)
    except StripeError as exc:
        return Finding("keys", title, False, f"{_stripe_problem(exc)}: the key is revoked, mistyped or of "
                       "another account.", KEY_FIX)
    modes = {bool(e.get("livemode")) for e in endpoints}
    if modes and modes != {live}:
        return Finding("keys", title, False, f"The key says {'live' if live else 'test'} mode but Stripe answers "
                       f"with {'live' if not live else 'test'}-mode objects.", KEY_FIX)
    probe = ctx.cache.get("probe")
    if live and probe is not None and not probe[0]:
        return Finding("keys", title, False, "A live key, but the live endpoint's events do not verify with "
                       "STRIPE_WEBHOOK_SECRET: most likely a test-mode (or `stripe listen`) webhook secret.",
                       "Use the signing secret of the live-mode endpoint (Dashboard in live mode → Developers → "
                       "Webhooks).")
    return None


# -- 8. monitoring --------------------------------------------------------------------------------
MONITOR_SQL = text("""
    SELECT (SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - interval '1 minute'),
           (SELECT count(*) FROM webhook_events WHERE status = 'failed'),
           (SELECT count(*) FROM webhook_events WHERE status = 'pending'
                                                AND received_at < now() - interval '10 minutes'),
           (SELECT array_agg(id) FROM (SELECT id FROM webhook_events WHERE status = 'failed'
                                       ORDER BY received_at DESC LIMIT 3) f)""")


async def check_monitoring(ctx: Context) -> Finding:
    title = "Failure and webhook monitoring on"
    async with ctx.db.transaction() as session:
        workers, failed, stuck, failed_ids = (await session.execute(MONITOR_SQL)).one()
    if not workers:
        return Finding("monitoring", title, False, "No worker has reported in the last minute: webhooks are "
                       "stored but nobody processes them, retries wait, and reconciliation does not run.",
                       "Run `tally worker` (or `tally serve`, which runs one) against the same database.")
    if failed:
        return Finding("monitoring", title, False, f"{failed} webhook events failed after every retry "
                       f"(e.g. {', '.join(failed_ids or [])}).",
                       "See GET /v1/admin/events?status=failed for each error; fix the cause, then "
                       "`tally events replay <evt_…>`.")
    if stuck:
        return Finding("monitoring", title, False, f"{stuck} webhook events have waited over 10 minutes.",
                       "Check the worker's logs; it may be overloaded or stuck on the database.")
    if not 0 < ctx.settings.sync_every_minutes < 60:
        return Finding("monitoring", title, False, "Periodic reconciliation is off (TALLY_SYNC_EVERY_MINUTES=0): "
                       "an event Stripe fails to deliver is never fetched.",
                       "Set TALLY_SYNC_EVERY_MINUTES=5 (or run `tally sync` from cron).")
    try:
        recent = await ctx.stripe.list_events({
            "limit": 100, "created": {"lt": int(time.time()) - 600, "gt": int(time.time()) - 86400}})
    except StripeError as exc:
        return Finding("monitoring", title, False, f"Could not list events: {_stripe_problem(exc)}.", KEY_FIX)
    undelivered = [e["id"] for e in recent if (e.get("pending_webhooks") or 0) > 0]
    if undelivered:
        return Finding("monitoring", title, False, f"Stripe still fails to deliver {len(undelivered)} events older "
                       f"than 10 minutes (e.g. {', '.join(undelivered[:3])}).",
                       "Fix the webhook endpoint (see the webhook check); `tally sync` fetches them meanwhile.")
    return Finding("monitoring", title, True, f"{workers} worker(s) alive; no failed or stuck webhook events; "
                   f"reconciliation every {ctx.settings.sync_every_minutes} min; Stripe reports every event of "
                   "the last day delivered. Failures are logged as JSON lines and listed at "
                   "/v1/admin/events?status=failed.")


CHECKS: list[Check] = [check_webhook, check_idempotency, check_portal, check_tax, check_dunning, check_pci,
                       check_keys, check_monitoring]
