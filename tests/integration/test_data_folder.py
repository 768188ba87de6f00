"""What `tally serve` keeps in its data folder in sandbox mode: the sandbox's port (a checkout URL handed out before a
restart, even after a `kill -9`, opens after it; a new port only when another program holds the old one) and the
operator's API key (generated once, shown by `tally admin-key`, accepted by /admin, /metrics and the admin API;
never generated with a real Stripe key)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import httpx

from tally.config import Settings
from tally.data_folder import API_KEY_FILE, operator_api_key
from tests.served_tally import TALLY, env_for, served


def _checkout_url(url: str) -> str:
    token = httpx.post(f"{url}/dev/login", json={"user_id": "restart", "email": "r@example.com"}).json()["token"]
    started = httpx.post(f"{url}/v1/checkout", json={"pack_id": "starter"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert started.status_code == 200, started.text
    return str(started.json()["checkout_url"])


def test_a_checkout_url_survives_a_kill_9_and_a_restart(tmp_path: Path) -> None:
    with served(tmp_path) as first:
        checkout_url = _checkout_url(first.url)
        first.process.kill()
        first.process.wait(timeout=30)
    with served(tmp_path) as second:
        assert second.sandbox.url == first.sandbox.url
        page = httpx.get(checkout_url, timeout=30)
        assert page.status_code == 200 and "Pay" in page.text


def test_the_sandbox_moves_to_a_new_port_only_when_its_port_is_taken(tmp_path: Path) -> None:
    with served(tmp_path) as first:
        kept = int(first.sandbox.url.rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", kept))
        squatter.listen()
        with served(tmp_path) as second:
            moved = int(second.sandbox.url.rsplit(":", 1)[1])
            assert moved != kept
            assert (tmp_path / "data" / "sandbox.port").read_text().strip() == str(moved)


def test_sandbox_mode_generates_an_operator_key_that_opens_admin_metrics_and_the_admin_api(tmp_path: Path) -> None:
    with served(tmp_path) as tally:
        shown = subprocess.run([str(TALLY), "admin-key"], cwd=tmp_path, env=env_for(tmp_path), capture_output=True,
                               text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        key = shown.stdout.strip()
        assert key == (tmp_path / "data" / API_KEY_FILE).read_text().strip()
        assert oct((tmp_path / "data" / API_KEY_FILE).stat().st_mode & 0o777) == "0o600"
        operator = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{tally.url}/metrics", timeout=30).status_code == 401
        assert httpx.get(f"{tally.url}/metrics", headers=operator, timeout=30).status_code == 200
        assert httpx.get(f"{tally.url}/v1/admin/events", timeout=30).status_code == 401
        assert httpx.get(f"{tally.url}/v1/admin/events", headers=operator, timeout=30).status_code == 200
        assert httpx.get(f"{tally.url}/admin", timeout=30).status_code == 303  # to the sign-in page
        dashboard = httpx.get(f"{tally.url}/admin", headers=operator, timeout=30)
        assert dashboard.status_code == 200 and "Failed events" in dashboard.text


def test_with_a_real_stripe_key_no_operator_key_is_generated(tmp_path: Path) -> None:
    settings = Settings(STRIPE_SECRET_KEY="sk_test_real_account", TALLY_DATA_DIR=str(tmp_path))
    assert operator_api_key(settings) is None
    env = {**env_for(tmp_path), "STRIPE_SECRET_KEY": "sk_test_real_account"}
    shown = subprocess.run([str(TALLY), "admin-key"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 1 and "set TALLY_API_KEY" in shown.stderr
    assert not os.path.exists(tmp_path / "data" / API_KEY_FILE)
