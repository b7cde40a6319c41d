"""Outcomes on the stream never cost the mail: a Redis that refuses or hangs leaves
deliveries and intake as they were, each lost outcome logged and counted; and the
pure parts (the record, an event's delivery in one word)."""

import json
import socket
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from domain.fates import EventDelivery, Fate, delivery_of, record
from domain.policy import RATE_LIMIT_SENDS
from tests.conftest import make_event
from tests.servers import free_port
from workers import intake
from workers.outcome_stream import REDIS_TIMEOUT, OutcomeStream
from workers.store.tables import Email


def unpublished(status: str) -> float:
    value = REGISTRY.get_sample_value("mailroom_outcomes_unpublished_total", {"status": status})
    return value or 0.0


@pytest.fixture
def hung_redis():
    """A server that takes connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


def test_a_refused_redis_fails_no_delivery_and_each_lost_outcome_is_logged(unit):
    unit.rt.outcome_stream = OutcomeStream(f"redis://127.0.0.1:{free_port()}/0", 1000)
    before = unpublished("sent")
    for address in ("ada@example.com", "bob@example.com"):
        intake.accept_event(unit.rt, json.dumps(make_event(data={"email": address})))
    unit.drain()
    unit.rt.outcome_stream.flush()

    assert len(unit.transport.sent) == 2
    emails = unit.rows(Email)
    assert [email.status for email in emails] == ["sent", "sent"]
    lost = [line for line in unit.log_lines() if line["event"] == "outcome.unpublished"]
    assert sorted(line["email_id"] for line in lost) == sorted(str(e.id) for e in emails)
    assert {(line["level"], line["outcome"], line["app"]) for line in lost} == {
        ("warning", "sent", "notes")
    }
    # The first batch met the refusal; a later one did not wait on Redis again.
    assert "Connection refused" in lost[0]["error"]
    assert {line["error"] for line in lost[1:]} <= {
        lost[0]["error"],
        "skipped: Redis failed moments ago",
    }
    assert unpublished("sent") == before + 2


def test_a_hung_redis_never_holds_a_delivery(unit, hung_redis):
    unit.rt.outcome_stream = OutcomeStream(hung_redis, 1000)
    intake.accept_event(unit.rt, json.dumps(make_event()))

    started = time.monotonic()
    unit.drain()
    assert time.monotonic() - started < REDIS_TIMEOUT  # the writer thread waits, not the mail
    unit.rt.outcome_stream.flush()
    [email] = unit.rows(Email)
    assert email.status == "sent" and len(unit.transport.sent) == 1
    [lost] = [line for line in unit.log_lines() if line["event"] == "outcome.unpublished"]
    assert lost["error"].startswith("TimeoutError")


def test_mail_suppressed_at_intake_is_kept_when_redis_is_down(unit):
    unit.rt.outcome_stream = OutcomeStream(f"redis://127.0.0.1:{free_port()}/0", 1000)
    before = unpublished("suppressed")
    for _ in range(RATE_LIMIT_SENDS + 1):
        intake.accept_event(unit.rt, json.dumps(make_event()))
        unit.drain()
    unit.rt.outcome_stream.flush()

    statuses = sorted((email.status, email.suppressed_reason) for email in unit.rows(Email))
    assert statuses == [("sent", None)] * RATE_LIMIT_SENDS + [("suppressed", "rate_limited")]
    [gated] = unit.rows(Email, Email.status == "suppressed")
    lost = [line for line in unit.log_lines() if line["event"] == "outcome.unpublished"]
    assert [line["outcome"] for line in lost if line["email_id"] == str(gated.id)] == ["suppressed"]
    assert unpublished("suppressed") == before + 1


def test_an_outcome_record_is_plain_json_with_a_javascript_timestamp():
    at = datetime(2026, 11, 22, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    outcome = record(
        event_id=None, email_id="e1", app="notes", kind="signup", status=Fate.DEFERRED,
        reason=None, transport="ses,smtp", attempt=1, at=at,
    )  # fmt: skip
    assert json.loads(json.dumps(outcome)) == {
        "event_id": None, "email_id": "e1", "app": "notes", "kind": "signup",
        "status": "deferred", "reason": None, "transport": "ses,smtp", "attempt": 1,
        "at": "2026-11-22T10:00:00.123Z",
    }  # fmt: skip
    assert datetime.fromisoformat(outcome["at"]) == at.astimezone(UTC).replace(microsecond=123000)


def mail(email_id: str, status: str, replayed_as: str | None = None, **said) -> dict:
    return {"email_id": email_id, "status": status, "replayed_as": replayed_as, **said}


@pytest.mark.parametrize(
    ("emails", "word"),
    [
        ([], EventDelivery.NONE),
        ([mail("a", "sent")], EventDelivery.SENT),
        ([mail("a", "sent"), mail("b", "suppressed")], EventDelivery.SENT),
        ([mail("a", "suppressed")], EventDelivery.SUPPRESSED),
        ([mail("a", "failed")], EventDelivery.FAILED),
        ([mail("a", "sent"), mail("b", "failed")], EventDelivery.FAILED),
        ([mail("a", "failed"), mail("b", "queued")], EventDelivery.PENDING),
        ([mail("a", "sending")], EventDelivery.PENDING),
        # Replayed: the copy stands for the mail given up on, the copy's copy for both.
        ([mail("a", "failed", "b"), mail("b", "sent")], EventDelivery.SENT),
        ([mail("a", "failed", "b"), mail("b", "failed", "c"), mail("c", "queued")],
         EventDelivery.PENDING),
        # A copy since purged: what is left is the mail given up on.
        ([mail("a", "failed", "gone")], EventDelivery.FAILED),
        # Sent, then bounced; or not sent as the address bounces or complained.
        ([mail("a", "sent", feedback="bounced")], EventDelivery.UNDELIVERABLE),
        ([mail("a", "sent", feedback="soft_bounced")], EventDelivery.UNDELIVERABLE),
        ([mail("a", "sent", feedback="complained")], EventDelivery.SENT),
        ([mail("a", "sent", feedback="delivered")], EventDelivery.SENT),
        ([mail("a", "suppressed", reason="bounced")], EventDelivery.UNDELIVERABLE),
        ([mail("a", "suppressed", reason="complained")], EventDelivery.UNDELIVERABLE),
        ([mail("a", "suppressed", reason="rate_limited")], EventDelivery.SUPPRESSED),
        ([mail("a", "sent", feedback="bounced"), mail("b", "queued")], EventDelivery.PENDING),
    ],
)  # fmt: skip
def test_an_event_s_delivery_in_one_word(emails, word):
    assert delivery_of(emails) == word
