"""The verification API over real HTTP (uvicorn on loopback), checked against the
OpenAPI document it serves."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import make_event, reset
from tests.mail import code_in, secrets_in, token_in
from workers.store import apikeys


def verify(api, key, code, email="ada@example.com", purpose="signup"):
    body = {"purpose": purpose, "email": email, "code": code}
    return api.call("POST", "/v1/codes/verify", key, json=body)


def test_openapi_document_is_served_and_valid(api):
    from openapi_spec_validator import validate

    validate(api.spec)
    assert set(api.spec["paths"]) == {
        "/v1/codes/verify", "/v1/tokens/consume", "/v1/tokens/peek",
        "/v1/challenges/{challenge_id}/revoke", "/v1/users/{user_id}/revoke", "/healthz",
        "/readyz", "/v1/emails", "/v1/emails/{email_id}", "/v1/events/{event_id}",
        "/v1/providers/ses/notifications",
    }  # fmt: skip
    # Every call documents an outage and a crash, in the one error shape; every
    # call of an app, a missing key and a malformed parameter (SNS signs instead).
    for path, operations in api.spec["paths"].items():
        if path.startswith("/v1/"):
            for operation in operations.values():
                assert {"500", "503"} <= set(operation["responses"]), path
                if not path.startswith("/v1/providers/"):
                    assert {"401", "422"} <= set(operation["responses"]), path
    error = api.spec["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    assert {"unavailable", "internal", "not_found", "method_not_allowed"} <= set(error)


def test_every_call_needs_a_live_key_of_the_app(mailroom, api, key):
    body = {"purpose": "signup", "email": "ada@example.com", "code": "123456"}
    for bad in (None, "mrk_not-a-key", key[:-1]):
        response = api.call("POST", "/v1/codes/verify", bad, json=body)
        assert (response.status_code, response.json()) == (401, {"error": "unauthorized"})
        assert response.headers["www-authenticate"] == "Bearer"
    with mailroom.rt.engine.begin() as conn:
        [row] = apikeys.list_keys(conn)
        assert row.key_hash != key and key not in str(row._asdict())
        apikeys.revoke(conn, row.id, mailroom.rt.clock())
    assert api.call("POST", "/v1/codes/verify", key, json=body).status_code == 401


def test_verify_code_over_http(mailroom, smtp_sink, api, key):
    mailroom.publish(make_event(data={"email": "ada@example.com", "user_id": "u1"}))
    code = code_in(smtp_sink.wait_for(1)[0])
    wrong = verify(api, key, "000000" if code != "000000" else "111111")
    assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid"})
    right = verify(api, key, code, email="ada@EXAMPLE.com")
    assert right.status_code == 200
    body = right.json()
    assert (body["purpose"], body["user_id"], body["email"]) == ("signup", "u1", "ada@example.com")
    again = verify(api, key, code)
    assert (again.status_code, again.json()) == (400, {"error": "invalid"})


def test_locked_and_rate_limited_over_http(mailroom, smtp_sink, api, key):
    mailroom.publish(make_event())
    smtp_sink.wait_for(1)
    answers = [verify(api, key, "99999999x").json()["error"] for _ in range(10)]
    assert answers == ["invalid"] * 5 + ["locked"] * 5
    limited = verify(api, key, "123456")
    assert (limited.status_code, limited.json()) == (429, {"error": "rate_limited"})


def test_an_app_cannot_verify_another_apps_codes(mailroom, smtp_sink, api):
    with mailroom.rt.engine.begin() as conn:
        other = apikeys.create(conn, "billing", mailroom.rt.clock())[1]
    mailroom.publish(make_event())
    code, token = secrets_in(smtp_sink.wait_for(1)[0])
    assert verify(api, other, code).json() == {"error": "invalid"}
    body = {"purpose": "signup", "token": token}
    assert api.call("POST", "/v1/tokens/peek", other, json=body).json() == {"error": "invalid"}


def test_peek_never_consumes_and_consume_works_once(mailroom, smtp_sink, api, key):
    mailroom.publish(make_event())
    token = token_in(smtp_sink.wait_for(1)[0])
    body = {"purpose": "signup", "token": token}
    for _ in range(3):
        peeked = api.call("POST", "/v1/tokens/peek", key, json=body)
        assert peeked.status_code == 200 and peeked.json()["expires_at"]
    consumed = api.call("POST", "/v1/tokens/consume", key, json=body)
    assert consumed.status_code == 200 and consumed.json()["expires_at"] is None
    for path in ("/v1/tokens/consume", "/v1/tokens/peek"):
        response = api.call("POST", path, key, json=body)
        assert (response.status_code, response.json()) == (400, {"error": "invalid"})


def test_fifty_concurrent_consumes_of_one_token_succeed_once(mailroom, smtp_sink, api, key):
    mailroom.publish(reset())
    body = {"purpose": "password_reset", "token": token_in(smtp_sink.wait_for(1)[0])}
    barrier = threading.Barrier(50)

    def consume(_):
        barrier.wait()
        return httpx.post(f"{api.url}/v1/tokens/consume", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {key}"})  # fmt: skip

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(consume, range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 49
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid"}


def test_malformed_requests_are_422_bad_request(api, key):
    response = api.call("POST", "/v1/codes/verify", key, json={"purpose": "invite", "email": "a"})
    assert response.status_code == 422
    assert response.json()["error"] == "bad_request"
    assert response.json()["detail"].startswith("purpose: ")
    extra = {"purpose": "signup", "token": "x" * 43, "admin": True}
    assert api.call("POST", "/v1/tokens/consume", key, json=extra).status_code == 422


def test_revoke_a_challenge_and_all_of_a_users(mailroom, smtp_sink, api, key):
    mailroom.publish(
        make_event("login.code_requested", {"email": "ada@example.com", "user_id": "u1"})
    )
    mailroom.publish(reset())
    smtp_sink.wait_for(2)
    login, _ = sorted(mailroom.challenges(), key=lambda c: c.purpose)
    path = f"/v1/challenges/{login.id}/revoke"
    template = "/v1/challenges/{challenge_id}/revoke"
    assert api.call("POST", path, key, template).json() == {"revoked": 1}
    assert api.call("POST", path, key, template).json() == {"revoked": 0}
    users = "/v1/users/{user_id}/revoke"
    revoked = api.call(
        "POST", "/v1/users/u1/revoke", key, users, json={"purpose": "password_reset"}
    )
    assert revoked.json() == {"revoked": 1}
    assert api.call("POST", "/v1/users/u1/revoke", key, users).json() == {"revoked": 0}
    token = token_in(next(m for m in smtp_sink.messages if "Reset" in m["Subject"]))
    body = {"purpose": "password_reset", "token": token}
    assert api.call("POST", "/v1/tokens/consume", key, json=body).json() == {"error": "invalid"}


def test_health_and_readiness(api):
    assert api.call("GET", "/healthz", None).json() == {"status": "ok"}
    ready = api.call("GET", "/readyz", None)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"redis": "ok", "database": "ok"}}


def test_the_readme_has_a_curl_example_for_every_call(api):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### HTTP", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r'"\$MAILROOM_URL(/v1/[^"]+)"', section))
    templates = {
        re.sub(r"\{[a-z_]+\}", "X", path) for path in api.spec["paths"] if path.startswith("/v1/")
    }
    placeholder = r"/(CHALLENGE_ID|u_123|EMAIL_ID|EVENT_ID)(?=/|$)"
    assert {re.sub(placeholder, "/X", path) for path in documented} == templates
