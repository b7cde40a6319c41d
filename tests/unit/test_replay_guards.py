"""What a replay leaves alone unless forced, how it paces its mail, what it
does with the broker down, and how dead letters are listed with their chain."""

import json
from collections import Counter
from datetime import timedelta

import redis
from sqlalchemy import update

from domain.addresses import recipient_tag
from domain.replays import ReplayLimits, age_bucket, short_age, skip_reason
from tests.conftest import invite, make_event
from tests.unit.conftest import TOKEN_SECRET
from workers import intake
from workers.db import autocommit
from workers.replay import replay
from workers.store import claims, dead_letter_views
from workers.store.dead_letter_views import Filters
from workers.store.tables import Email, FailedEmail
from workers.sweeper import STALE_QUEUED_AFTER


def expired(unit, *events) -> list[FailedEmail]:
    """Accept the events now, then let their deadline pass before any attempt:
    dead letters ``expired_before_delivery``, asked at the returned rows' time."""
    asked = unit.rt.clock()
    unit.rt.clock = lambda: asked
    for event in events:
        intake.accept_event(unit.rt, json.dumps(event))
    late = asked + timedelta(days=1, minutes=1)
    unit.rt.clock = lambda: late
    unit.drain()
    rows = sorted(unit.rows(FailedEmail), key=lambda f: f.id)
    assert {row.reason for row in rows} == {"expired_before_delivery"}
    return rows


def at(unit, moment) -> None:
    unit.rt.clock = lambda: moment


def test_the_rules_alone():
    limits = ReplayLimits(codes=timedelta(hours=1), notices=timedelta(hours=24))
    hour = timedelta(hours=1)

    def skip(kind, reason="expired_before_delivery", age=hour / 2, gate=None):
        return skip_reason(kind=kind, reason=reason, age=age, limits=limits, gate_says=gate)

    assert skip("signup") is None
    assert skip("signup", age=hour * 2) == "too_old"
    assert skip("invite", age=hour * 2) is None
    assert skip("password_changed", age=hour * 25) == "too_old"
    assert skip(None, age=hour * 2) == "too_old"  # an unreadable event: the stricter limit
    assert skip("invite", reason="rejected") == "rejected"
    assert skip("signup", gate="rate_limited") == "rate_limited"
    assert (age_bucket(hour / 2), age_bucket(hour * 3), age_bucket(hour * 200)) == (
        "<1h",
        "1h-24h",
        ">7d",
    )
    assert [short_age(timedelta(seconds=s)) for s in (5, 300, 3900, 90000)] == [
        "5s",
        "5m",
        "1h05m",
        "1d01h",
    ]
    pepper = TOKEN_SECRET.encode()
    tag = recipient_tag(pepper, "Ada@Example.com")
    assert len(tag) == 8 and tag == recipient_tag(pepper, "ada@example.com")
    assert not tag.isdigit()  # never read as a code
    assert tag != recipient_tag(pepper, "grace@example.com")
    assert tag != recipient_tag(b"another-pepper", "ada@example.com")


def test_a_request_older_than_its_kinds_limit_needs_force(unit):
    code, notice = expired(unit, make_event(), invite())
    asked = unit.rows(Email)[0].created_at

    at(unit, asked + timedelta(minutes=61))  # MAILROOM_REPLAY_CODE_MAX_AGE: 60 minutes
    old = replay(unit.rt, None, code.id, dry_run=False)
    assert (old.skipped, old.kind, old.age) == ("too_old", "signup", timedelta(minutes=61))
    assert replay(unit.rt, None, notice.id, dry_run=False).new_email_id  # 24 hours for invites
    unit.drain()
    assert [m["To"] for m in unit.transport.sent] == ["grace@example.com"]
    assert unit.rows(FailedEmail, FailedEmail.id == code.id)[0].status == "dead"

    forced = replay(unit.rt, None, code.id, dry_run=False, force=True)
    assert forced.new_email_id and forced.skipped is None
    unit.drain()
    assert len(unit.transport.sent) == 2


def test_the_age_is_the_first_requests_even_for_a_replay_of_a_replay(unit):
    [first] = expired(unit, make_event())
    asked = unit.rows(Email)[0].created_at
    at(unit, asked + timedelta(minutes=30))
    replay(unit.rt, None, first.id, dry_run=False)
    at(unit, asked + timedelta(days=2))  # the copy's deadline passes too
    unit.drain()
    [again] = unit.rows(FailedEmail, FailedEmail.id != first.id)
    with unit.rt.engine.connect() as conn:
        row = dead_letter_views.one(conn, again.id)
        original = dead_letter_views.one(conn, first.id)
    assert row.requested_at == asked and row.replay_of == first.id
    assert (original.copy_status, original.again_id, original.again_reason) == (
        "failed",
        again.id,
        "expired_before_delivery",
    )
    assert replay(unit.rt, None, again.id, dry_run=True).skipped == "too_old"


def test_a_recipient_at_its_rate_limit_is_skipped_and_a_dry_run_counts_its_own(unit):
    ada = {"email": "ada@example.com"}
    first, second = expired(unit, make_event(data=ada), make_event(data=ada))
    at(unit, unit.rows(Email)[0].created_at + timedelta(minutes=5))
    # 2 requests in the window; a replay makes 3, the limit: the next one is refused.
    planned = Counter()
    dry = [replay(unit.rt, None, f.id, dry_run=True, planned=planned) for f in (first, second)]
    assert [(r.dry_run, r.skipped) for r in dry] == [(True, None), (True, "rate_limited")]
    real = [replay(unit.rt, None, f.id, dry_run=False) for f in (first, second)]
    assert [r.skipped for r in real] == [None, "rate_limited"]
    assert replay(unit.rt, None, second.id, dry_run=False, force=True).new_email_id


def test_a_paced_replay_is_due_later_with_its_whole_window(unit):
    [failed] = expired(unit, make_event())
    [original] = unit.rows(Email)
    # Taken in late (a backlog after an outage): it had one minute of its five left.
    with unit.rt.engine.begin() as conn:
        conn.execute(
            update(Email)
            .where(Email.id == original.id)
            .values(deadline=original.created_at + timedelta(minutes=1))
        )
    now = original.created_at + timedelta(minutes=10)
    at(unit, now)
    due = now + timedelta(seconds=7)
    result = replay(unit.rt, None, failed.id, dry_run=False, due=due)
    [copy] = unit.rows(Email, Email.replay_of == failed.id)
    assert (copy.status, copy.next_attempt_at, copy.created_at) == ("queued", due, now)
    assert copy.deadline == due + timedelta(minutes=5)  # a whole window, from when it is due
    assert str(copy.id) == result.new_email_id


def test_with_the_broker_down_the_replay_stands_and_the_sweeper_sends_it(unit):
    [failed] = expired(unit, make_event())
    now = unit.rows(Email)[0].created_at + timedelta(minutes=10)
    at(unit, now)

    def refuse(*args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    unit.rt.broker.get_actor("deliver").send_with_options = refuse
    result = replay(unit.rt, None, failed.id, dry_run=False)
    assert result.new_email_id and result.handed_on is False
    assert result.as_dict()["via"] == "sweeper"
    assert unit.rows(FailedEmail, FailedEmail.id == failed.id)[0].status == "replayed"
    assert [line["event"] for line in unit.log_lines()].count("email.enqueue_failed") == 1

    # What every worker's sweeper does: an email due and not picked up is taken.
    with autocommit(unit.rt.engine) as conn:
        taken = claims.take_due(
            conn,
            unit.rt.claimant,
            now + STALE_QUEUED_AFTER + timedelta(seconds=1),
            stale_after=STALE_QUEUED_AFTER,
            lease=timedelta(seconds=15),
            limit=10,
        )
    assert [str(email_id) for email_id, _ in taken] == [result.new_email_id]
    for email_id, held in taken:
        unit.rt.dispatch.attempt(email_id, held)
    unit.drain()
    assert [m["To"] for m in unit.transport.sent] == ["ada@example.com"]


def test_listing_filters_pages_and_counts(unit):
    rows = expired(
        unit,
        make_event(data={"email": "a1@example.com"}),
        make_event(data={"email": "a2@example.com"}),
        invite(),
        make_event(source="billing", data={"email": "b1@example.com"}),
    )
    with unit.rt.engine.connect() as conn:
        assert dead_letter_views.total(conn, Filters()) == 4
        assert dead_letter_views.total(conn, Filters(kind="signup")) == 3
        assert dead_letter_views.total(conn, Filters(kind="invite")) == 1
        assert dead_letter_views.total(conn, Filters(app="billing")) == 1
        assert dead_letter_views.total(conn, Filters(reason="rejected")) == 0
        newest = dead_letter_views.page(conn, Filters(), limit=2)
        oldest = dead_letter_views.page(conn, Filters(), limit=2, offset=1, newest_first=False)
    assert [r.id for r in newest] == [rows[3].id, rows[2].id]
    assert [r.id for r in oldest] == [rows[1].id, rows[2].id]
    assert newest[0].app == "billing"
