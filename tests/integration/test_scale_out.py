"""Scale-out on the zero-set-up defaults: `tally serve --no-worker` plus a separate `tally worker` on the same data
folder. The worker finds the embedded PostgreSQL and the sandbox `tally serve` started (no settings at all), and
it, not the API process, credits a purchase."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.purchase_flow import VISA
from tests.served_tally import TALLY, env_for, postgres_of, served
from tests.waiting import poll


def test_a_worker_beside_tally_serve_uses_its_database_and_sandbox(tmp_path: Path) -> None:
    with served(tmp_path, "--no-worker") as tally:
        token = httpx.post(f"{tally.url}/dev/login", json={"user_id": "scale-out", "email": "so@example.com"}
                           ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        started = httpx.post(f"{tally.url}/v1/checkout", json={"pack_id": "starter"}, headers=auth, timeout=30)
        assert started.status_code == 200, started.text
        order = started.json()
        paid = httpx.post(f"{tally.sandbox.url}/c/pay/{order['session_id']}", timeout=30, data={
            "email": "so@example.com", "cardNumber": VISA, "cardExpiry": "12 / 34", "country": "US", "cardCvc": "123",
            "billingName": "Ada Lovelace"})
        assert paid.status_code in (200, 303)
        # The payment's event is stored (seen through the admin API, with the key kept in the data folder) and,
        # with no worker anywhere, stays pending: nothing credits it.
        operator = {"Authorization": f"Bearer {(tmp_path / 'data' / 'api_key').read_text().strip()}"}
        poll(lambda: _pending_checkouts(tally.url, operator), timeout=60, every=0.2,
             what="the payment's webhook event in the inbox")
        assert httpx.get(f"{tally.url}/v1/credits", headers=auth).json()["balance"] == 0

        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen([str(TALLY), "worker"], cwd=tmp_path, env=env_for(tmp_path), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while httpx.get(f"{tally.url}/v1/credits", headers=auth).json()["balance"] != 500:
                if worker.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the worker did not credit the purchase:\n" + (tmp_path / "worker.log").read_text())
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            log.close()
        assert worker.returncode == 0, (tmp_path / "worker.log").read_text()
    # The worker handed its hold on the embedded PostgreSQL back, so `tally serve` stopped it on its way out.
    poll(lambda: not postgres_of(tmp_path / "data"), timeout=30, every=0.2, what="the embedded PostgreSQL to stop")


def test_a_worker_without_a_running_sandbox_says_what_to_do(tmp_path: Path, database_url: str) -> None:
    done = subprocess.run([str(TALLY), "worker"], cwd=tmp_path, env={**env_for(tmp_path),
                          "TALLY_DATABASE_URL": database_url}, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    said = " ".join((done.stdout + done.stderr).split())
    assert "start `tally serve` first" in said and "STRIPE_API_BASE" in said


def _pending_checkouts(url: str, operator: dict[str, str]) -> bool:
    events = httpx.get(f"{url}/v1/admin/events", params={"status": "pending"}, headers=operator, timeout=30).json()
    return any(e["type"] == "checkout.session.completed" for e in events["data"])
