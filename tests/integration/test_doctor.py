"""``tally doctor`` and ``/admin/health`` against a real Tally and its sandbox: a well-configured one scores 8/8,
and each misconfiguration, made for real, is named with its fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tally.cli import app as cli
from tally.runtime import WEBHOOK_PATH
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, sdk
from tests.tally_harness import TallyServer, fresh_database

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


def configure_tax(server: TallyServer) -> None:
    sdk(server).v1.tax.settings.update(params={"head_office": {"address": {"country": "US", "state": "CA"}}})


@pytest.fixture(scope="module")
def tally() -> Iterator[TallyServer]:
    with fresh_database() as url, TallyServer(url) as server:
        configure_tax(server)
        yield server


def doctor(server: TallyServer, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, dict[str, Any]]:
    """``tally doctor --url <server> --json`` from a shell that has the server's API key."""
    monkeypatch.setenv("TALLY_API_KEY", server.api_key)
    for name in ("STRIPE_SECRET_KEY", "TALLY_CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["doctor", "--url", server.url, "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def check(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["id"] == check_id)


def failing(report: dict[str, Any]) -> set[str]:
    return {c["id"] for c in report["checks"] if not c["passed"]}


def test_a_well_configured_sandbox_scores_8_of_8(tally: TallyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    code, report = doctor(tally, monkeypatch)
    assert (report["score"], report["total"]) == (8, 8), [c for c in report["checks"] if not c["passed"]]
    assert code == 0 and report["healthy"]
    assert "reached the inbox" in check(report, "webhook")["reason"]
    assert "SAQ A" in check(report, "pci")["reason"]
    routes = {f["title"]: f for f in report["frontend"]}
    compat = routes["POST /api/payment/create-checkout-session (the Vue/React \"buy coins\" guide's checkout)"]
    assert compat["passed"], compat
    assert all(f["passed"] for f in report["frontend"]), report["frontend"]


def test_the_health_page_and_its_json_need_an_admin(tally: TallyServer) -> None:
    with httpx.Client(base_url=tally.url, timeout=60) as anonymous:
        assert anonymous.get("/admin/health.json").status_code == 401
    with tally.client("someone") as user:
        assert user.get("/admin/health.json").status_code == 403
    with tally.admin_client() as admin:
        page = admin.get("/admin/health", params={"go_live": True})
        assert page.status_code == 200 and "Production health: 8/8" in page.text
        assert "Go-live checklist" in page.text and "Live secret key" in page.text
        data = admin.get("/admin/health.json", params={"frontend": False}).json()
        assert data["score"] == 8 and data["frontend"] == []


def test_missing_events_and_a_route_answering_405(tally: TallyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    client = sdk(tally)
    (endpoint,) = [e for e in client.v1.webhook_endpoints.list().data if e.url == tally.url + WEBHOOK_PATH]
    client.v1.webhook_endpoints.update(endpoint.id, params={"enabled_events": [
        "checkout.session.completed", "payment_intent.succeeded"]})
    try:
        code, report = doctor(tally, monkeypatch, "--route", "POST /checkout/success")
    finally:
        client.v1.webhook_endpoints.update(endpoint.id, params={"enabled_events": ["*"]})
    webhook = check(report, "webhook")
    assert not webhook["passed"] and "invoice.paid" in webhook["reason"] and "charge.refunded" in webhook["reason"]
    assert "checkout.session.completed," not in webhook["reason"].split("send")[1]
    assert "enabled_events[]=invoice.paid" in webhook["fix"]
    assert report["score"] == 7 and code == 0  # 7/8 is still above the exit threshold
    (bad,) = [f for f in report["frontend"] if f["title"].startswith("POST /checkout/success")]
    assert not bad["passed"] and "405 Method Not Allowed" in bad["reason"] and "GET" in bad["reason"]
    assert "Send GET to /checkout/success" in bad["fix"]


def test_no_webhook_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh_database() as url, TallyServer(url) as server:
        configure_tax(server)
        client = sdk(server)
        for endpoint in client.v1.webhook_endpoints.list().data:
            client.v1.webhook_endpoints.delete(endpoint.id)
        code, report = doctor(server, monkeypatch)
    assert failing(report) == {"webhook"} and report["score"] == 7
    webhook = check(report, "webhook")
    assert f"No webhook endpoint points at {server.url}{WEBHOOK_PATH}" in webhook["reason"]
    assert "Add endpoint" in webhook["fix"] and "STRIPE_WEBHOOK_SECRET" in webhook["fix"]


def test_wrong_webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh_database() as url:
        server = TallyServer(url)
        server.webhook_secret = "whsec_not_the_endpoints_secret_" + "0" * 16  # the sandbox keeps the real one
        # The probe's event never verifies here, so the doctor waits out its whole delivery window: 5 s instead
        # of 20 keeps the suite quick (the server runs in this process, so the patch reaches its checks).
        monkeypatch.setattr("tally.doctor.checks.PROBE_WAIT_SECONDS", 5.0)
        with server:
            configure_tax(server)
            code, report = doctor(server, monkeypatch)
    webhook = check(report, "webhook")
    assert not webhook["passed"]
    assert "did not reach the inbox" in webhook["reason"]
    assert "STRIPE_WEBHOOK_SECRET is not this endpoint's signing secret" in webhook["reason"]
    assert "Signing secret → Reveal" in webhook["fix"]


def test_a_publishable_key_where_the_secret_key_belongs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tally started with STRIPE_SECRET_KEY=pk_test_…: the harness hands its Runtime the sandbox key, so the
    key is swapped there for this one start (there is no other way to make the harness use another key)."""
    pk = "pk_test_51HlJ0aKb3ZsVjYhRk2ljzQdoctorTestKey000"
    with fresh_database() as url:
        server = TallyServer(url, STRIPE_SECRET_KEY=pk)
        monkeypatch.setattr("tests.tally_harness.SANDBOX_KEY", pk)
        with server:
            monkeypatch.undo()
            code, report = doctor(server, monkeypatch)
    keys = check(report, "keys")
    assert not keys["passed"] and "publishable key (pk_test…)" in keys["reason"]
    assert "sk_test_" in keys["fix"] and "frontend" in keys["fix"]
    assert "Stripe refused the secret key (401)" in check(report, "webhook")["reason"]
    assert report["score"] < 5 and code == 1


def test_compat_routes_off_are_named_with_their_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh_database() as url, TallyServer(url, TALLY_COMPAT_ROUTES="false") as server:
        configure_tax(server)
        code, report = doctor(server, monkeypatch, "--origin", "http://localhost:5173")
    bad = {f["title"].split(" (")[0]: f for f in report["frontend"] if not f["passed"]}
    compat = bad["POST /api/payment/create-checkout-session"]
    assert compat["reason"].startswith("404") and "compatibility routes are off" in compat["reason"]
    assert "TALLY_COMPAT_ROUTES=true" in compat["fix"]
    cors = bad["CORS for a browser app at http://localhost:5173"]
    assert "CORS error" in cors["reason"] and "TALLY_CORS_ORIGINS=http://localhost:5173" in cors["fix"]


def test_nothing_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_API_KEY", "k" * 32)
    result = CliRunner().invoke(cli, ["doctor", "--url", "http://127.0.0.1:9", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and report["score"] == 0
    assert "not answering at http://127.0.0.1:9" in report["checks"][0]["reason"]


def test_doctor_against_tally_serve_on_the_embedded_defaults(tmp_path: Any) -> None:
    """What a developer sees right after `scripts/serve`: `tally doctor` with no settings at all, in the same
    folder, scores 8/8 (tax included: `tally serve` gives the sandbox's Stripe Tax a head office, TALLY_TAX
    being automatic by default there); --go-live adds the checklist, on which a sandbox cannot pass (no live
    key)."""
    import subprocess

    from tests.served_tally import TALLY, env_for, served

    with served(tmp_path) as tally:
        def run(*args: str) -> tuple[int, dict[str, Any]]:
            done = subprocess.run([str(TALLY), "doctor", "--json", *args], cwd=tmp_path, env=env_for(tmp_path),
                                  capture_output=True, text=True, timeout=180)
            return done.returncode, json.loads(done.stdout)

        code, report = run("--url", tally.url)
        assert (report["score"], report["total"]) == (8, 8), [c for c in report["checks"] if not c["passed"]]
        assert code == 0 and failing(report) == set()
        assert "Stripe Tax is active (head office DE)" in check(report, "tax")["reason"]
        assert "reached the inbox" in check(report, "webhook")["reason"]
        _, live = run("--url", tally.url, "--go-live")
        assert live["go_live"] and not all(item["passed"] for item in live["go_live"])
