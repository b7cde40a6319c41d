"""Outcomes back to the apps, for real: every fate an email meets (sent, deferred then
sent, dead-lettered, suppressed at intake and as its attempt began) appended to
`mailroom:outcomes` in order, read through consumer groups from Python and from Node;
and `GET /v1/events/{event_id}` telling each event's fate to its app alone."""

import json
import re
import shutil
import uuid
from pathlib import Path

import pytest

from domain.policy import RATE_LIMIT_SENDS
from tests.conftest import make_event
from tests.node import install_example, node
from tests.servers import wait_until
from workers.store import apikeys
from workers.store.tables import Email, FailedEmail

STREAM = "mailroom:outcomes"
ONE = "/v1/events/{event_id}"
CONSUMER = Path(__file__).with_name("consume_outcomes.mjs")
FIELDS = ["event_id", "email_id", "app", "kind", "status", "reason", "transport", "attempt", "at"]
#: Why the invalid event (a numeric user_id) was refused.
NOT_A_STRING = "data.user_id: Input should be a valid string"
#: What JavaScript's toISOString writes.
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def mailroom(make_mailroom):
    # A retry waits 1 to 2 seconds: time to change the SMTP server's mind before it.
    return make_mailroom(MAILROOM_RETRY_MIN_BACKOFF="2", MAILROOM_RETRY_MAX_BACKOFF="4")


@pytest.fixture
def keys(mailroom):
    with mailroom.rt.engine.begin() as conn:
        return {
            app: apikeys.create(conn, app, mailroom.rt.clock())[1] for app in ("notes", "other")
        }


@pytest.fixture(scope="module")
def node_example(tmp_path_factory) -> Path:
    example = install_example(tmp_path_factory.mktemp("checkout"))
    shutil.copy(CONSUMER, example)
    return example


def mail_of(mailroom, event: dict) -> list[Email]:
    return mailroom.rows(Email, Email.event_id == uuid.UUID(event["id"]))


def wait_for(mailroom, event: dict, **values) -> Email:
    """The event's one mail, once it has these values."""

    def matches():
        for mail in mail_of(mailroom, event):
            if all(getattr(mail, name) == value for name, value in values.items()):
                return mail
        return None

    return wait_until(matches, 20, what=f"{event['data']['email']}'s mail {values}")


def publish_every_fate(mailroom, smtp_sink) -> dict[str, dict]:
    """One event per fate, each settled, by name."""
    events = {}

    def publish(name: str, address: str) -> dict:
        events[name] = make_event(data={"email": address})
        mailroom.publish(events[name])
        return events[name]

    wait_for(mailroom, publish("sent", "ada@example.com"), status="sent")

    smtp_sink.reply = "451 4.3.0 try again later"
    deferred = publish("deferred", "bob@example.com")
    wait_for(mailroom, deferred, status="queued", attempts=1)
    smtp_sink.reply = None
    wait_for(mailroom, deferred, status="sent")

    # A newer request comes while the first one's mail waits for its retry.
    smtp_sink.reply = "451 4.3.0 try again later"
    wait_for(mailroom, publish("superseded", "erin@example.com"), status="queued", attempts=1)
    smtp_sink.reply = None
    wait_for(mailroom, publish("newer", "erin@example.com"), status="sent")
    wait_for(mailroom, events["superseded"], status="suppressed")

    smtp_sink.reply = "550 5.1.1 mailbox unavailable"
    wait_for(mailroom, publish("dead_lettered", "carol@example.com"), status="failed")
    smtp_sink.reply = None

    for n in range(RATE_LIMIT_SENDS):
        wait_for(mailroom, publish(f"allowed{n}", "dave@example.com"), status="sent")
    wait_for(mailroom, publish("rate_limited", "dave@example.com"), status="suppressed")

    events["invalid"] = make_event(data={"email": "eve@example.com", "user_id": 42})
    mailroom.publish(events["invalid"])
    wait_until(
        lambda: mailroom.rows(FailedEmail, FailedEmail.reason == "invalid_event"),
        what="the invalid event's dead letter",
    )
    return events


#: Each event's mail on the stream: (status, reason, transport, attempt), in order.
EXPECTED = {
    "sent": [("sent", None, "smtp", 1)],
    "deferred": [("deferred", None, "smtp", 1), ("sent", None, "smtp", 2)],
    "superseded": [("deferred", None, "smtp", 1), ("suppressed", "superseded", None, 2)],
    "newer": [("sent", None, "smtp", 1)],
    "dead_lettered": [("dead_lettered", "rejected", "smtp", 1)],
    **{f"allowed{n}": [("sent", None, "smtp", 1)] for n in range(RATE_LIMIT_SENDS)},
    "rate_limited": [("suppressed", "rate_limited", None, 0)],
    "invalid": [],  # refused at intake: no mail, no outcome (the API tells it)
}


def fates_by_event(outcomes: list[dict], mailroom, events: dict) -> dict[str, list]:
    """The outcomes read, per event name, checking each one's shape on the way."""
    emails = {str(m.id): m for m in mailroom.emails()}
    names = {event["id"]: name for name, event in events.items()}
    seen: dict[str, list] = {name: [] for name in events}
    for outcome in outcomes:
        assert list(outcome) == FIELDS
        email = emails[outcome["email_id"]]
        assert (outcome["event_id"], outcome["app"], outcome["kind"]) == (
            str(email.event_id), "notes", "signup",
        )  # fmt: skip
        assert ISO_UTC.fullmatch(outcome["at"]), outcome["at"]
        fate = (outcome["status"], outcome["reason"], outcome["transport"], outcome["attempt"])
        seen[names[outcome["event_id"]]].append(fate)
    # One email per event here: the event's sequence is its email's.
    assert all(len(mail_of(mailroom, events[name])) == 1 for name in events if name != "invalid")
    return seen


def read_with_python(redis_client, group: str) -> list[dict]:
    """What an app's Python consumer does: its group, each entry read and acknowledged."""
    redis_client.xgroup_create(STREAM, group, id="0", mkstream=True)
    outcomes = []
    while batches := redis_client.xreadgroup(group, "py-1", {STREAM: ">"}, count=5, block=500):
        for _stream, entries in batches:
            for entry_id, fields in entries:
                outcomes.append(json.loads(fields[b"outcome"]))
                redis_client.xack(STREAM, group, entry_id)
    return outcomes


def test_every_fate_is_on_the_stream_in_order_for_python_and_node_consumers(
    mailroom, smtp_sink, redis_client, redis_server, node_example
):
    events = publish_every_fate(mailroom, smtp_sink)
    total = sum(len(fates) for fates in EXPECTED.values())
    wait_until(lambda: redis_client.xlen(STREAM) == total, what=f"{total} outcomes")

    from_python = read_with_python(redis_client, "notes-py")
    assert fates_by_event(from_python, mailroom, events) == EXPECTED

    result = node(
        node_example, "consume_outcomes.mjs",
        REDIS_URL=redis_server.url, GROUP="notes-node", WANT=str(total),
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    from_node = [json.loads(line) for line in result.stdout.splitlines()]
    # Each group gets every entry, in the stream's order.
    assert from_node == from_python
    for group in ("notes-py", "notes-node"):
        assert redis_client.xpending(STREAM, group)["pending"] == 0  # each one acknowledged


def fate(api, key, event_id):
    return api.call("GET", f"/v1/events/{event_id}", key, ONE)


def test_the_api_tells_each_event_its_fate_and_no_other_app(mailroom, smtp_sink, api, keys):
    events = publish_every_fate(mailroom, smtp_sink)
    answers = {}
    for name, event in events.items():
        response = fate(api, keys["notes"], event["id"])
        assert response.status_code == 200, response.text
        answers[name] = response.json()

    def summary(answer):
        return (answer["outcome"], answer["delivery"], answer["error"])

    assert {name: summary(answer) for name, answer in answers.items()} == {
        "sent": ("queued", "sent", None),
        "deferred": ("queued", "sent", None),
        "superseded": ("queued", "suppressed", None),
        "newer": ("queued", "sent", None),
        "dead_lettered": ("queued", "failed", None),
        **{f"allowed{n}": ("queued", "sent", None) for n in range(RATE_LIMIT_SENDS)},
        "rate_limited": ("suppressed:rate_limited", "suppressed", None),
        "invalid": ("refused:invalid_event", "none", NOT_A_STRING),
    }  # fmt: skip
    for name, answer in answers.items():
        assert answer["event_id"] == events[name]["id"]
        assert answer["type"] == "user.signup_requested"

    assert answers["invalid"]["emails"] == []
    [failed] = answers["dead_lettered"]["emails"]
    assert [failed[k] for k in ("recipient", "status", "reason", "attempts", "sent_at")] == [
        "carol@example.com", "failed", "rejected", 1, None,
    ]  # fmt: skip
    assert failed["error"] == "SMTP 550 5.1.1 mailbox unavailable"
    [retried] = answers["deferred"]["emails"]
    assert (retried["status"], retried["attempts"], retried["transport"]) == ("sent", 2, "smtp")
    assert retried["reason"] is None and retried["sent_at"] is not None
    [gated] = answers["rate_limited"]["emails"]
    assert (gated["status"], gated["reason"], gated["attempts"]) == (
        "suppressed",
        "rate_limited",
        0,
    )
    [moot] = answers["superseded"]["emails"]
    assert (moot["status"], moot["reason"], moot["attempts"]) == ("suppressed", "superseded", 2)

    # Another app's key, or an id nobody published, learns nothing.
    for event_id in (events["sent"]["id"], events["invalid"]["id"], uuid.uuid4()):
        hidden = fate(api, keys["other"], event_id)
        assert (hidden.status_code, hidden.json()) == (404, {"error": "not_found"})
    missing = fate(api, keys["notes"], uuid.uuid4())
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})
    malformed = fate(api, keys["notes"], "42")
    assert (malformed.status_code, malformed.json()["error"]) == (422, "bad_request")
    unauthorized = fate(api, None, events["sent"]["id"])
    assert (unauthorized.status_code, unauthorized.json()) == (401, {"error": "unauthorized"})
