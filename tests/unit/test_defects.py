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
from workers.delivery import SEND_LEASE
from workers.middleware import DeadLetters
from workers.store import dead_letters, ledger, outbox
from workers.store.tables import Challenge, Email, EventRow, FailedEmail
from workers.sweeper import STALE_QUEUED_AFTER


def queued_email(unit, event: dict | None = None) -> Email:
    """An event accepted, its mail queued (and its delivery message left unsent)."""
    unit.rt.dispatch.delivery = lambda _id: None
    intake.accept_event(unit.rt, json.dumps(event or make_event()))
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
    with unit.rt.engine.begin() as conn:
        claim = outbox.claim(conn, email.id, unit.rt.clock(), SEND_LEASE).lease_until
        outbox.schedule_retry(
            conn,
            email.id,
            claim=claim,
            attempts=4,
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
        lease_until = outbox.claim(conn, email.id, now, SEND_LEASE).lease_until

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
    assert (ended.status, ended.lease_until) == ("failed", None)


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


# ---------------------------------------------------------------- d. the sweeper hands out once


def test_a_due_email_is_handed_out_once(unit):
    email = queued_email(unit)
    now = unit.rt.clock()
    with unit.rt.engine.begin() as conn:
        assert outbox.due(conn, now, STALE_QUEUED_AFTER, 100) == []  # not stale yet

    later = now + STALE_QUEUED_AFTER + timedelta(seconds=1)
    with unit.rt.engine.begin() as conn:
        assert outbox.due(conn, later, STALE_QUEUED_AFTER, 100) == [email.id]
    with unit.rt.engine.begin() as conn:
        assert outbox.due(conn, later, STALE_QUEUED_AFTER, 100) == []
    [pushed] = unit.rows(Email)
    assert (pushed.status, pushed.next_attempt_at) == ("queued", later)
    # Still undelivered a stale period later: handed out again.
    again = later + STALE_QUEUED_AFTER
    with unit.rt.engine.begin() as conn:
        assert outbox.due(conn, again, STALE_QUEUED_AFTER, 100) == [email.id]


def test_a_lapsed_sending_claim_is_queued_again_and_handed_out(unit):
    # A notice: its deadline (a day) outlives the claim (a code's mail would expire first).
    data = {"email": "ada@example.com", "user_id": "u1"}
    email = queued_email(unit, make_event("password.changed", data))
    now = unit.rt.clock()
    with unit.rt.engine.begin() as conn:
        lease_until = outbox.claim(conn, email.id, now, SEND_LEASE).lease_until

    while_held = lease_until - timedelta(seconds=1)
    with unit.rt.engine.begin() as conn:
        assert outbox.due(conn, while_held, STALE_QUEUED_AFTER, 100) == []
    assert unit.rows(Email)[0].status == "sending"

    lapsed = lease_until + timedelta(seconds=1)
    with unit.rt.engine.begin() as conn:
        assert outbox.due(conn, lapsed, STALE_QUEUED_AFTER, 100) == [email.id]
    [requeued] = unit.rows(Email)
    assert (requeued.status, requeued.lease_until) == ("queued", None)
    with unit.rt.engine.begin() as conn:
        assert outbox.due(conn, lapsed, STALE_QUEUED_AFTER, 100) == []

    # And the delivery it is handed to sends it.
    unit.rt.clock = lambda: lapsed
    assert delivery.deliver_email(unit.rt, email.id).status == "sent"
    assert len(unit.transport.sent) == 1


def test_the_sweep_respects_its_batch_limit(unit):
    unit.rt.dispatch.delivery = lambda _id: None
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        intake.accept_event(unit.rt, json.dumps(make_event(data={"email": address})))
    later = unit.rt.clock() + STALE_QUEUED_AFTER + timedelta(seconds=1)
    with unit.rt.engine.begin() as conn:
        first = outbox.due(conn, later, STALE_QUEUED_AFTER, 2)
    with unit.rt.engine.begin() as conn:
        rest = outbox.due(conn, later, STALE_QUEUED_AFTER, 2)
    assert len(first) == 2 and len(rest) == 1
    assert set(first) | set(rest) == {e.id for e in unit.rows(Email)}


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
