"""Schemathesis against Tally's own OpenAPI schema: every ``/v1``, operator and compatibility route, called
over HTTP on a real Tally (its own sandbox Stripe and database) with valid auth, answers no 5xx and nothing
the schema does not declare (status, content type, body), and rejects schema-invalid input with a 4xx.

Schema-valid input may still be refused with a 400 (an unknown pack id, a currency the catalog does not
sell, a URL that is not http(s)): those depend on the catalog and on the running server, not on the
schema's shape, so the "valid data is accepted" check is left out.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck

from tally.app import create_app
from tally.config import Settings
from tally.runtime import Runtime
from tally.stripe_gateway import SANDBOX_KEY
from tests.tally_harness import TallyServer

USER = "fuzz-user"
EXCLUDED_CHECKS = [schemathesis.checks.positive_data_acceptance]


def _openapi() -> dict[str, Any]:
    """The schema of an app that is built but never started (no connection is made), at import time:
    schemathesis parametrizes tests at collection. ``test_served_schema_is_the_tested_one`` makes sure
    the running server serves the same schema."""
    settings = Settings(TALLY_DATABASE_URL="postgresql+psycopg://unused@127.0.0.1:1/unused",
                        TALLY_API_KEY="unused", TALLY_JWT_SECRET="unused-" * 8)
    runtime = Runtime(settings, settings.database_url or "", SANDBOX_KEY, "http://127.0.0.1:1", ["whsec_unused"])
    return create_app(runtime.services(run_worker=False)).openapi()


SCHEMA = _openapi()
schema = schemathesis.openapi.from_dict(SCHEMA)


def _auth(tally: TallyServer, path: str) -> dict[str, str]:
    if path.startswith(("/v1/admin", "/admin")):
        return {"Authorization": f"Bearer {tally.api_key}"}
    if path.startswith("/api/"):  # a backend acting for its user, as drop-in servers do
        return {"Authorization": f"Bearer {tally.api_key}", "Tally-User-Id": USER}
    return {"Authorization": f"Bearer {tally.token(USER)}"}


def test_served_schema_is_the_tested_one(badinput_tally: TallyServer) -> None:
    with badinput_tally.client() as client:
        served = client.get("/openapi.json").json()
    assert sorted(served["paths"]) == sorted(SCHEMA["paths"])
    assert served == SCHEMA


def test_schema_declares_tally_errors_not_fastapi_422() -> None:
    for path, operations in SCHEMA["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], f"{method.upper()} {path}"
    assert "HTTPValidationError" not in SCHEMA["components"]["schemas"]


@schema.parametrize()
@hypothesis.settings(max_examples=100, derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case, badinput_tally: TallyServer) -> None:
    case.call_and_validate(base_url=badinput_tally.url, headers=_auth(badinput_tally, case.path),
                           excluded_checks=EXCLUDED_CHECKS)
