"""An app's own mail over real HTTP: `GET /v1/emails` and `/v1/emails/{id}`,
checked against the OpenAPI document, never showing another app's mail."""

import uuid

import pytest

from tests.conftest import make_event
from tests.mail import secrets_in
from tests.servers import wait_until
from workers.store import apikeys
from workers.store.tables import Email

LIST, ONE = "/v1/emails", "/v1/emails/{email_id}"


@pytest.fixture
def keys(mailroom):
    with mailroom.rt.engine.begin() as conn:
        return {
            app: apikeys.create(conn, app, mailroom.rt.clock())[1] for app in ("notes", "billing")
        }


def emails(api, key, **params) -> dict:
    response = api.call("GET", LIST, key, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def show(api, key, email_id):
    return api.call("GET", f"{LIST}/{email_id}", key, ONE)


def test_an_app_sees_its_own_mail_and_no_other(mailroom, smtp_sink, api, keys):
    from openapi_spec_validator import validate

    validate(api.spec)
    mailroom.publish(make_event(data={"email": "ada@example.com", "name": "Ada"}))
    mailroom.publish(make_event(data={"email": "grace@example.com"}, source="billing"))
    mailroom.wait_for_status("sent", 2)
    secrets = [secret for message in smtp_sink.messages for secret in secrets_in(message)]

    page = emails(api, keys["notes"])
    [ada] = page["emails"]
    assert page["next_cursor"] is None
    assert (ada["recipient"], ada["status"], ada["kind"], ada["transport"]) == (
        "ada@example.com", "sent", "signup", "smtp",
    )  # fmt: skip
    assert [step["happened"] for step in ada["history"]] == ["requested", "queued", "sent"]
    assert ada["message_id"] and ada["dead_letter"] is None
    # The worker's name and the app are not the app's business (it knows its own).
    assert not {"claimed_by", "lease_until", "app", "recipient_tag"} & set(ada)
    assert emails(api, keys["notes"], to="ADA@Example.com")["emails"] == [ada]
    assert emails(api, keys["notes"], to="grace@example.com")["emails"] == []
    assert emails(api, keys["notes"], event_id=ada["event_id"])["emails"] == [ada]
    assert emails(api, keys["notes"], status="failed")["emails"] == []
    assert emails(api, keys["notes"], since="2099-01-01T00:00:00")["emails"] == []

    shown = show(api, keys["notes"], ada["email_id"])
    assert (shown.status_code, shown.json()) == (200, ada)
    [grace] = emails(api, keys["billing"])["emails"]
    assert grace["recipient"] == "grace@example.com"
    for email_id in (grace["email_id"], uuid.uuid4()):
        hidden = show(api, keys["notes"], email_id)
        assert (hidden.status_code, hidden.json()) == (404, {"error": "not_found"})
    assert show(api, keys["billing"], grace["email_id"]).json() == grace

    for response in (api.call("GET", LIST, None), show(api, None, ada["email_id"])):
        assert (response.status_code, response.json()) == (401, {"error": "unauthorized"})
    seen = [emails(api, keys[app]) for app in keys] + [shown.json()]
    assert all(secret not in str(seen) for secret in secrets)


def test_a_refused_mail_shows_its_dead_letter(mailroom, smtp_sink, api, keys):
    smtp_sink.reply = "550 5.1.1 mailbox unavailable"
    mailroom.publish(make_event())
    [dead] = mailroom.wait_for_failed(1)
    [failed] = emails(api, keys["notes"], status="failed")["emails"]
    letter = failed["dead_letter"]
    assert (letter["id"], letter["reason"], letter["status"]) == (dead.id, "rejected", "dead")
    assert failed["last_error"].startswith("SMTP 550")
    assert failed["history"][-1]["happened"] == "dead_lettered"
    assert failed["history"][-1]["at"] is not None


def test_pages_follow_a_cursor_while_new_mail_arrives(mailroom, smtp_sink, api, keys):
    addresses = [f"user{n}@example.com" for n in range(5)]
    for address in addresses:
        mailroom.publish(make_event(data={"email": address}))
    mailroom.wait_for_status("sent", 5)

    first = emails(api, keys["notes"], limit=2)
    mailroom.publish(make_event(data={"email": "late@example.com"}))
    wait_until(lambda: len(mailroom.rows(Email)) == 6, what="the late mail")
    second = emails(api, keys["notes"], limit=2, cursor=first["next_cursor"])
    third = emails(api, keys["notes"], limit=2, cursor=second["next_cursor"])
    assert third["next_cursor"] is None
    pages = [first["emails"], second["emails"], third["emails"]]
    assert [len(page) for page in pages] == [2, 2, 1]
    walked = [email for page in pages for email in page]
    assert sorted(email["recipient"] for email in walked) == addresses
    times = [email["created_at"] for email in walked]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"to": "not an address"}, "to: Value error, not a valid address"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor: Value error, not a cursor this API gave"),
        ({"limit": 0}, "limit: "),
        ({"limit": 101}, "limit: "),
        ({"status": "lost"}, "status: "),
        ({"event_id": "42"}, "event_id: "),
        ({"since": "yesterday"}, "since: "),
    ],
)
def test_a_malformed_parameter_is_422_bad_request(api, keys, params, detail):
    response = api.call("GET", LIST, keys["notes"], params=params)
    assert (response.status_code, response.json()["error"]) == (422, "bad_request")
    assert response.json()["detail"].startswith(detail)


def test_a_malformed_id_is_422_bad_request(api, keys):
    response = show(api, keys["notes"], "42")
    assert (response.status_code, response.json()["error"]) == (422, "bad_request")
    assert response.json()["detail"].startswith("email_id: ")


def test_the_address_asked_for_is_masked_in_the_access_log(mailroom, api, keys):
    emails(api, keys["notes"], to="ada@example.com")
    access = [line["event"] for line in mailroom.log_lines() if line["logger"] == "uvicorn.access"]
    [line] = [event for event in access if "/v1/emails" in event]
    assert "a***@example.com" in line
    assert "ada@example.com" not in mailroom.log.getvalue()
    assert "ada%40example.com" not in mailroom.log.getvalue()
