

def test_health_and_dev_login(tally) -> None:  # type: ignore[no-untyped-def]
    with tally.client() as client:
        assert client.get("/healthz").json() == {"status": "ok", "mode": "sandbox"}
        token = client.post("/dev/login", json={"user_id": "u-1", "email": "u1@example.com"})
        assert token.status_code == 200 and token.json()["token"].count(".") == 2


def test_bad_json_and_oversized_bodies_get_clear_errors(tally) -> None:  # type: ignore[no-untyped-def]
    with tally.client() as client:
        bad = client.post("/dev/login", content=b"{nope", headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request"
        huge = client.post("/dev/login", content=b"x" * (tally.settings.max_body_bytes + 1),
                           headers={"Content-Type": "application/json"})
        assert huge.status_code == 413 and huge.json()["error"]["type"] == "payload_too_large"
