"""A stream batch is one transaction: events in it see each other as if they had
come one by one (rate limits, supersession, address claims), and a value the
database refuses costs only its own event."""

import json
from datetime import timedelta

from sqlalchemy.exc import DataError

from tests.conftest import change, make_event
from workers import intake
from workers.store import outbox
from workers.store.tables import Challenge, Email, EventRow, FailedEmail
from workers.sweeper import sweep


def signup(address: str) -> dict:
    return make_event(data={"email": address, "name": "Ada"})


def batch(unit, *events) -> None:
    intake.accept_batch(unit.rt, [(json.dumps(e), None) for e in events])


def outcomes(unit, events) -> list[str]:
    by_id = {str(row.id): row.outcome for row in unit.rows(EventRow)}
    return [by_id[e["id"]] for e in events]


def test_a_rate_limit_counts_the_mails_earlier_in_the_same_batch(unit):
    events = [signup("ada@example.com") for _ in range(4)] + [signup("bob@example.com")]
    batch(unit, *events)
    assert outcomes(unit, events) == ["queued"] * 3 + ["suppressed:rate_limited", "queued"]
    unit.drain()
    # Each request supersedes the one before: only the last code for Ada is mailed.
    assert sorted(m["To"] for m in unit.transport.sent) == ["ada@example.com", "bob@example.com"]
    live = [c for c in unit.rows(Challenge) if c.superseded_at is None]
    assert sorted(c.email for c in live) == ["ada@example.com", "bob@example.com"]


def test_an_email_change_in_a_batch_sees_the_claims_before_it(unit):
    first = change(user="u1", current="ada@example.com", new="shared@example.org")
    second = change(user="u2", current="bob@example.com", new="shared@example.org")
    other = signup("carol@example.com")
    batch(unit, other, first, second)
    assert outcomes(unit, [other, first, second]) == [
        "queued",
        "queued",
        "refused:address_claimed",
    ]
    assert {e.recipient for e in unit.rows(Email)} == {
        "carol@example.com",
        "shared@example.org",
        "ada@example.com",
    }


def test_a_value_the_database_refuses_is_dead_lettered_alone(unit, monkeypatch):
    # The schema keeps out every value we know PostgreSQL refuses (NUL, overlong
    # strings); this stands in for one that slips through.
    real = outbox.send_facts

    def refusing(conn, app, spec, since, now):
        if spec.recipient == "bob@example.com":
            raise DataError("INSERT ...", {}, Exception("invalid byte sequence"))
        return real(conn, app, spec, since, now)

    monkeypatch.setattr(outbox, "send_facts", refusing)
    ok, bad = signup("ada@example.com"), signup("bob@example.com")
    duplicate = dict(ok)  # the same id twice in one batch is one event
    batch(unit, ok, duplicate, bad)
    assert [str(r.id) for r in unit.rows(EventRow)] == [ok["id"]]
    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.event_type) == ("invalid_event", "user.signup_requested")
    assert failed.error == "the database refused it: invalid byte sequence"
    assert json.loads(failed.payload)["id"] == bad["id"]
    unit.drain()
    assert [m["To"] for m in unit.transport.sent] == ["ada@example.com"]


def test_nul_is_kept_on_a_dead_letter_as_its_escape(unit):
    intake.accept_batch(unit.rt, [("\x00\xff bad", "event is not valid UTF-8")])
    [failed] = unit.rows(FailedEmail)
    assert failed.payload == "\\u0000\xff bad"


def test_an_event_the_planner_fails_on_is_dead_lettered_alone(unit, monkeypatch):
    real = intake.plan_event

    def failing(event, now, policy):
        if event.data.email == "bob@example.com":
            raise KeyError("a bug")
        return real(event, now, policy)

    monkeypatch.setattr(intake, "plan_event", failing)
    ok, bad = signup("ada@example.com"), signup("bob@example.com")
    batch(unit, ok, bad)
    [failed] = unit.rows(FailedEmail)
    assert failed.reason == "invalid_event"
    assert failed.error == "could not be planned: KeyError: 'a bug'"
    assert [str(r.id) for r in unit.rows(EventRow)] == [ok["id"]]


def test_an_entry_read_again_after_its_bridge_died_is_sent_once_by_the_sweeper(unit):
    # The bridge committed the event, then its process died before the send:
    # the mail is held for a process that no longer renews it.
    event = signup("ada@example.com")
    [email] = unit.accept_unsent(event)
    # Another bridge reads the unacknowledged entry again: no second event or mail.
    batch(unit, event)
    unit.drain()
    assert unit.transport.sent == [] and len(unit.rows(Email)) == 1
    # Once the dead process's lease lapses, a sweep sends it, once.
    lapsed = email.lease_until + timedelta(seconds=1)
    assert sweep(unit.rt.engine, unit.rt.claimant, unit.rt.dispatch.courier, lapsed) == 1
    unit.drain()
    assert [m["To"] for m in unit.transport.sent] == ["ada@example.com"]
    assert sweep(unit.rt.engine, unit.rt.claimant, unit.rt.dispatch.courier, lapsed) == 0
    batch(unit, event)
    unit.drain()
    assert len(unit.transport.sent) == 1
