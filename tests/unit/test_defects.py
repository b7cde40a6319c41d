"""One test per defect the restructure fixed; each fails on the old behaviour."""

import json
import uuid
from datetime import timedelta

import dramatiq

from domain.events import parse_event
from domain.flows import ChallengeSpec, EmailSpec, Plan
from domain.vocabulary import DeadLetterStatus, Purpose
from tests.conftest import make_event
from workers import delivery, intake
from workers.actors import DELIVER, EVENTS_QUEUE, HANDLE_EVENT, MAIL_QUEUE
from workers.delivery import CLAIM_LEASE
from workers.middleware import DeadLetters
from workers.store import claims, dead_letters, ledger
from workers.store.tables import Challenge, Email, EventRow, FailedEmail
from workers.sweeper import STALE_QUEUED_AFTER

#: Another worker process, as the outbox knows it.
OTHER = "other-host-4242-0a0b0c0d"


def queued_email(unit, event: dict | None = None) -> Email:
    """An event accepted, its mail handed back to the queue before any attempt
    (as a stopping process does)."""
    [email] = unit.accept_unsent(event or make_event())
    with unit.rt.engine.begin() as conn:
        claims.release_all(conn, unit.rt.claimant, unit.rt.clock())
    [email] = unit.rows(Email)
    return email


def change(user: str, current: str, new: str) -> dict:
    data = {"user_id": user, "current_email": current, "new_email": new, "name": "Ada"}
    return make_event("email.change_requested", data)


# ---------------------------------------------------------------- a. events the broker gave up on


def nacked_event(raw: str, retries: int = 10) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name=EVENTS_QUEUE,
        actor_name=HANDLE_EVENT,
        args=(raw, None),
        kwargs={},
        options={"retries": retries},
    )


def test_an_event_the_broker_gave_up_on_is_dead_lettered_redacted(unit):
    raw = json.dumps(make_event(data={"email": "ada@example.com", "password": "hunter2"}))

    DeadLetters(unit.rt).after_nack(unit.rt.broker, nacked_event(raw))

    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.status, failed.attempts) == ("retries_exhausted", "dead", 10)
    assert failed.error == "retries exhausted"
    assert failed.email_id is None
    assert "hunter2" not in failed.payload
    assert json.loads(failed.payload)["data"]["password"] == "[redacted]"
    assert "hunter2" not in unit.log.getvalue()


def test_an_event_whose_handling_keeps_failing_is_dead_lettered_by_the_worker(unit, monkeypatch):
    def database_down(rt, raw, *, rejected=None):
        raise ConnectionError("database is down")

    monkeypatch.setattr(intake, "accept_event", database_down)
    raw = json.dumps(make_event(data={"email": "ada@example.com", "password": "hunter2"}))
    unit.rt.broker.get_actor(HANDLE_EVENT).send_with_options(args=(raw, None), max_retries=0)
    unit.drain()

    [failed] = unit.rows(FailedEmail)
    assert failed.reason == "retries_exhausted"
    assert failed.error == "ConnectionError: database is down"
    assert "hunter2" not in failed.payload


def test_a_delivery_the_broker_gave_up_on_is_dead_lettered_with_the_emails_error(unit):
    email = queued_email(unit)
    for _ in range(4):
        with unit.rt.engine.begin() as conn:
            row = claims.claim(conn, email.id, OTHER, unit.rt.clock(), CLAIM_LEASE)
            claims.schedule_retry(
                conn,
                email.id,
                claim=claims.claim_of(row),
                error="SMTP 421 4.7.0 try again later",
                next_attempt_at=unit.rt.clock(),
            )
    message = dramatiq.Message(
        queue_name=MAIL_QUEUE, actor_name=DELIVER, args=(str(email.id),), kwargs={}, options={}
    )

    DeadLetters(unit.rt).after_nack(unit.rt.broker, message)

    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.error) == ("retries_exhausted", "SMTP 421 4.7.0 try again later")
    assert (failed.email_id, failed.attempts, failed.kind) == (email.id, 4, "signup")
    assert unit.rows(Email)[0].status == "failed"


# ---------------------------------------------------------------- b. a live claim is not ended


def test_exhausted_retries_file_nothing_while_another_worker_holds_the_email(unit):
    email = queued_email(unit)
    now = unit.rt.clock()
    with unit.rt.engine.begin() as conn:
        lease_until = claims.claim(conn, email.id, OTHER, now, CLAIM_LEASE).lease_until

    assert delivery.dead_letter_exhausted(unit.rt, email.id, "Retry: gave up") is None
    assert unit.rows(FailedEmail) == []
    [held] = unit.rows(Email)
    assert (held.status, held.lease_until) == ("sending", lease_until)

    # The other worker died: once its claim lapses, the email is ended.
    lapsed = lease_until + timedelta(seconds=1)
    unit.rt.clock = lambda: lapsed
    failed_id = delivery.dead_letter_exhausted(unit.rt, email.id, "Retry: gave up")
    [failed] = unit.rows(FailedEmail)
    assert failed.id == failed_id
    assert (failed.reason, failed.error, failed.email_id) == (
        "retries_exhausted",
        "Retry: gave up",
        email.id,
    )
    [ended] = unit.rows(Email)
    assert (ended.status, ended.lease_until, ended.claimed_by) == ("failed", None, None)


def test_exhausted_retries_file_nothing_for_a_sent_email(unit):
    intake.accept_event(unit.rt, json.dumps(make_event()))
    unit.drain()
    [email] = unit.rows(Email)
    assert email.status == "sent"

    assert delivery.dead_letter_exhausted(unit.rt, email.id, "Retry: gave up") is None
    assert unit.rows(FailedEmail) == [] and unit.rows(Email)[0].status == "sent"


# ---------------------------------------------------------------- c. a plan refused half-way


def test_a_plan_refused_half_way_leaves_no_mail_behind(unit):
    intake.accept_event(unit.rt, json.dumps(change("u1", "ada@example.com", "new@example.com")))
    [held] = unit.rows(Challenge)
    before = {e.id for e in unit.rows(Email)}

    event = parse_event(json.dumps(change("u2", "bob@example.com", "new@example.com")))
    now = unit.rt.clock()
    notice = EmailSpec(
        kind="email_change_notice",
        recipient="bob@example.com",
        locale="",
        deadline=now + timedelta(hours=24),
        context={"name": "Bob", "new_email_masked": "n***@example.com"},
    )
    claim = EmailSpec(
        kind="email_change",
        recipient="new@example.com",
        locale="",
        deadline=now + timedelta(minutes=5),
        context={"name": "Bob"},
        challenge=ChallengeSpec(
            purpose=Purpose.EMAIL_CHANGE,
            email="bob@example.com",
            new_email="new@example.com",
            user_id="u2",
        ),
    )
    with unit.rt.engine.begin() as conn:
        assert ledger.record_events(conn, [event], ["queued"], now) == {event.id}
        result = intake.apply_plan(conn, event.id, "notes", Plan("queued", (notice, claim)), now)
        assert result == ("refused:address_claimed", [], [])
        ledger.set_outcome(conn, event.id, result[0])  # the session is still usable

    assert {e.id for e in unit.rows(Email)} == before
    assert unit.rows(Email, Email.event_id == event.id) == []
    assert unit.rows(Email, Email.recipient == "bob@example.com") == []
    [row] = unit.rows(EventRow, EventRow.id == event.id)
    assert row.outcome == "refused:address_claimed"
    # The holder's change is untouched; no challenge was opened for u2.
    [still] = unit.rows(Challenge)
    assert still.id == held.id and still.revoked_at is None and still.superseded_at is None


def test_a_refused_email_change_event_sends_not_even_its_notice(unit):
    intake.accept_event(unit.rt, json.dumps(change("u1", "ada@example.com", "new@example.com")))
    unit.drain()
    assert len(unit.transport.sent) == 2
    second = change("u2", "bob@example.com", "new@example.com")
    intake.accept_event(unit.rt, json.dumps(second))
    unit.drain()

    assert len(unit.transport.sent) == 2
    assert unit.rows(Email, Email.event_id == uuid.UUID(second["id"])) == []


# ---------------------------------------------------------------- d. the sweeper takes over once


def take_due(unit, when, claimant=OTHER, limit=100):
    with unit.rt.engine.begin() as conn:
        return claims.take_due(
            conn, claimant, when, stale_after=STALE_QUEUED_AFTER, lease=CLAIM_LEASE, limit=limit
        )


def test_a_due_email_is_taken_over_once(unit):
    email = queued_email(unit)
    now = unit.rt.clock()
    assert take_due(unit, now) == []  # not stale yet

    later = now + STALE_QUEUED_AFTER + timedelta(seconds=1)
    assert take_due(unit, later) == [(email.id, 0)]
    assert take_due(unit, later) == []  # held by the taker now
    [held] = unit.rows(Email)
    assert (held.status, held.claimed_by, held.lease_until) == (
        "sending",
        OTHER,
        later + CLAIM_LEASE,
    )


def test_mail_held_by_a_process_that_died_is_taken_over_when_its_lease_lapses(unit):
    [email] = unit.accept_unsent(make_event())  # held for this process's courier
    assert (email.status, email.claimed_by) == ("sending", unit.rt.claimant)

    while_held = email.lease_until - timedelta(seconds=1)
    assert take_due(unit, while_held) == []
    lapsed = email.lease_until + timedelta(seconds=1)
    assert take_due(unit, lapsed) == [(email.id, 0)]

    # The first process's courier, had it lived on, finds its hold gone.
    assert delivery.deliver_email(unit.rt, email.id, held=0).status == "skipped"
    assert unit.transport.sent == []


def test_a_process_that_renews_keeps_its_mail(unit):
    [email] = unit.accept_unsent(make_event())
    renewed_until = email.lease_until + CLAIM_LEASE
    with unit.rt.engine.begin() as conn:
        assert claims.renew(conn, unit.rt.claimant, [email.id], renewed_until) == 1
    assert take_due(unit, email.lease_until + timedelta(seconds=1)) == []
    assert delivery.deliver_email(unit.rt, email.id, held=0).status == "sent"


def test_the_sweep_respects_its_batch_limit(unit):
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        unit.accept_unsent(make_event(data={"email": address}))
    lapsed = unit.rt.clock() + CLAIM_LEASE + timedelta(seconds=1)
    first = take_due(unit, lapsed, limit=2)
    rest = take_due(unit, lapsed, claimant="third-host-1-00000000", limit=2)
    assert len(first) == 2 and len(rest) == 1
    assert {i for i, _ in first} | {i for i, _ in rest} == {e.id for e in unit.rows(Email)}


# ---------------------------------------------------------------- e. counting dead letters


def test_only_dead_letters_still_dead_are_counted(unit):
    now = unit.rt.clock()
    with unit.rt.engine.begin() as conn:
        ids = [
            dead_letters.file_event(conn, "{}", reason="invalid_event", error="x", now=now)
            for _ in range(3)
        ]
        assert dead_letters.count(conn) == 3
        assert dead_letters.mark_event_replayed(conn, ids[0], now)
        assert dead_letters.discard(conn, ids[1], now)
    with unit.rt.engine.connect() as conn:
        assert dead_letters.count(conn) == 1
        assert dead_letters.count(conn, DeadLetterStatus.REPLAYED) == 1
        assert dead_letters.count(conn, DeadLetterStatus.DISCARDED) == 1
        assert [row.id for row in dead_letters.list_failed(conn)] == [ids[2]]
