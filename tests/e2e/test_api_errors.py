"""Every failure answers ``{"error": code, "detail": ...}``, crashes included, and
what is logged about it carries neither the request's body nor its secrets."""

import httpx
import pytest
import redis
from sqlalchemy import exc as db_errors

from workers.verification import Verifier

#: A body whose every value would be noticed in a log: none is shaped like an
#: address or a code, so the log's masking would not hide a leak.
BODY = {"purpose": "signup", "email": "body-marker-email", "code": "zq-marker-code"}


def test_unknown_route_and_wrong_method(api):
    missing = httpx.get(f"{api.url}/v1/nothing/here")
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})
    wrong = httpx.get(f"{api.url}/v1/codes/verify")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "method_not_allowed"})
    assert wrong.headers["allow"] == "POST"
    assert httpx.delete(f"{api.url}/healthz").json() == {"error": "method_not_allowed"}


def _raises(exc):
    def verify_code(*_args):
        raise exc

    return verify_code


@pytest.mark.parametrize(
    ("raised", "status", "body"),
    [
        (RuntimeError("boom"), 500, {"error": "internal"}),
        # A broken statement or constraint is a bug, not an outage: retrying won't help.
        (db_errors.IntegrityError("INSERT", {}, Exception("dup")), 500, {"error": "internal"}),
        (db_errors.OperationalError("SELECT", {}, Exception("gone")), 503,
         {"error": "unavailable", "detail": "database"}),
        (db_errors.TimeoutError("QueuePool limit reached"), 503,
         {"error": "unavailable", "detail": "database"}),
        (redis.ConnectionError("refused"), 503, {"error": "unavailable", "detail": "redis"}),
    ],
)  # fmt: skip
def test_unexpected_errors_answer_500_or_503(mailroom, api, key, monkeypatch, raised, status, body):
    monkeypatch.setattr(Verifier, "verify_code", _raises(raised))
    response = api.call("POST", "/v1/codes/verify", key, json=BODY)
    assert (response.status_code, response.json()) == (status, body)
    assert ("retry-after" in response.headers) == (status == 503)
    logged = [line for line in mailroom.log_lines() if line["logger"] == "workers.api"]
    [line] = logged
    assert (line["method"], line["route"]) == ("POST", "/v1/codes/verify")
    if status == 500:
        assert line["event"] == "api.internal_error" and line["level"] == "error"
        assert type(raised).__name__ in line["exception"]  # the traceback, to fix the bug
    else:
        assert line["event"] == "api.unavailable" and "exception" not in line
    text = mailroom.log.getvalue()
    assert all(value not in text for value in BODY.values())
    assert key not in text


def access_lines(mailroom) -> list[str]:
    return [line["event"] for line in mailroom.log_lines() if line["logger"] == "uvicorn.access"]


def test_the_access_log_shows_no_secret(mailroom, api, key):
    # Secrets belong in bodies; should a client put one in a URL, it is masked.
    url = f"{api.url}/v1/tokens/peek?token=tok-in-the-url-0123456789"
    httpx.post(url, json={"purpose": "signup", "token": "tok-in-the-body"},
               headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    access = access_lines(mailroom)
    assert any('"POST /v1/tokens/peek?token=[redacted] HTTP/1.1" 400' in a for a in access), access
    text = mailroom.log.getvalue()
    for secret in ("tok-in-the-url", "tok-in-the-body", key):
        assert secret not in text


def test_an_address_in_a_path_is_masked_in_the_access_log(mailroom, api, key):
    # An app whose user ids are addresses revokes by one.
    revoke = f"{api.url}/v1/users/ada@example.com/revoke"
    httpx.post(revoke, headers={"Authorization": f"Bearer {key}"})
    assert any("/v1/users/" in line for line in access_lines(mailroom))
    text = mailroom.log.getvalue()
    assert "ada@example.com" not in text and "ada%40example.com" not in text
    assert "a***@example.com" in text  # uvicorn's percent-encoded path, masked
