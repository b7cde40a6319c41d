"""The store on PostgreSQL: races the database decides (no worker threads run here)."""

import json
import threading
from datetime import timedelta

from sqlalchemy import event

from tests.conftest import change, make_event
from workers import intake, issuing
from workers.db import autocommit
from workers.delivery import CLAIM_LEASE
from workers.store import claims, dead_letters
from workers.store.tables import Challenge, EventRow
from workers.sweeper import STALE_QUEUED_AFTER


def test_concurrent_duplicates_are_decided_by_the_database(make_mailroom):
    mailroom = make_mailroom(start_worker=False)
    raw = json.dumps(make_event())
    barrier = threading.Barrier(8)
    errors = []

    def accept():
        barrier.wait()
        try:
            intake.accept_event(mailroom.rt, raw)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=accept) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(mailroom.rows(EventRow)) == 1
    assert len(mailroom.emails()) == 1


def test_a_worker_whose_claim_lapsed_cannot_overwrite_the_new_owner(make_mailroom):
    mailroom = make_mailroom(start_worker=False)
    rt = mailroom.rt
    intake.accept_event(rt, json.dumps(make_event()))  # held by this process
    [email] = mailroom.emails()
    with rt.engine.begin() as conn:
        first = claims.claim_of(claims.begin_attempt(conn, email.id, rt.claimant, 0, rt.clock()))
    # The first process stalled past its lease; another took the email over.
    later = email.lease_until + timedelta(seconds=1)
    with rt.engine.begin() as conn:
        [(_, attempts)] = claims.take_due(
            conn, "other-1", later, stale_after=STALE_QUEUED_AFTER, lease=CLAIM_LEASE, limit=5
        )
        second = claims.claim_of(claims.begin_attempt(conn, email.id, "other-1", attempts, later))
    assert second == ("other-1", 2)
    with rt.engine.begin() as conn:
        stale = dict(now=later, message_id="<a@b>", provider_id=None, transport="smtp")
        assert not claims.mark_sent(conn, email.id, claim=first, **stale)
        claims.release_claim(conn, email.id, first, later)
        assert dead_letters.file_email(conn, email.id, reason="rejected", error="x",
                                       now=later, claim=first) is None  # fmt: skip
        assert claims.renew(conn, rt.claimant, [email.id], later + CLAIM_LEASE) == 0
    [still] = mailroom.emails()
    assert (still.status, still.claimed_by, still.attempts) == ("sending", "other-1", 2)
    with rt.engine.begin() as conn:
        assert claims.mark_sent(conn, email.id, claim=second, **stale)
    assert mailroom.emails()[0].status == "sent"


def test_concurrent_sweeps_take_each_email_once(make_mailroom):
    mailroom = make_mailroom(start_worker=False)
    rt = mailroom.rt
    for n in range(40):
        intake.accept_event(rt, json.dumps(make_event(data={"email": f"u{n}@example.com"})))
    lapsed = rt.clock() + CLAIM_LEASE + timedelta(seconds=1)
    barrier = threading.Barrier(4)
    taken: dict[str, list] = {}

    def sweep(name):
        barrier.wait()
        with rt.engine.begin() as conn:
            taken[name] = claims.take_due(
                conn, name, lapsed, stale_after=STALE_QUEUED_AFTER, lease=CLAIM_LEASE, limit=40
            )

    threads = [threading.Thread(target=sweep, args=(f"p{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [email_id for rows in taken.values() for email_id, _ in rows]
    assert len(ids) == len(set(ids)) == 40


def test_concurrent_claims_of_one_address_cannot_both_win(make_mailroom):
    mailroom = make_mailroom(start_worker=False)
    events = [change(user=f"u{i}", current=f"user{i}@example.com") for i in range(8)]
    barrier = threading.Barrier(len(events))

    def accept(event):
        barrier.wait()
        intake.accept_event(mailroom.rt, json.dumps(event))

    threads = [threading.Thread(target=accept, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = sorted(row.outcome for row in mailroom.rows(EventRow))
    assert outcomes == ["queued"] + ["refused:address_claimed"] * 7
    assert len(mailroom.rows(Challenge, Challenge.purpose == "email_change")) == 1


def test_a_dead_letter_keeps_nul_on_postgresql(make_mailroom):
    mailroom = make_mailroom(start_worker=False)
    intake.accept_batch(mailroom.rt, [("{\x00 bad", "event is not valid UTF-8")])
    [failed] = mailroom.failed()
    assert failed.reason == "invalid_event" and failed.payload == "{\\u0000 bad"


def test_a_batch_is_one_transaction_that_sees_itself(make_mailroom):
    mailroom = make_mailroom(start_worker=False)
    events = [make_event(data={"email": "ada@example.com"}) for _ in range(4)]
    events.append(change(user="u1", current="bob@example.com", new="ada@example.org"))
    intake.accept_batch(mailroom.rt, [(json.dumps(e), None) for e in events])
    outcomes = {str(r.id): r.outcome for r in mailroom.rows(EventRow)}
    assert [outcomes[e["id"]] for e in events] == ["queued"] * 3 + [
        "suppressed:rate_limited",
        "queued",
    ]
    live = mailroom.rows(Challenge, Challenge.superseded_at.is_(None))
    assert sorted(c.purpose for c in live) == ["email_change", "signup"]


def test_hot_statements_answer_as_sqlalchemy_would_in_any_session_time_zone(make_mailroom):
    mailroom = make_mailroom(start_worker=False)
    rt = mailroom.rt
    intake.accept_event(rt, json.dumps(make_event()))
    [email] = mailroom.emails()
    with autocommit(rt.engine) as conn:
        conn.exec_driver_sql("SET TIME ZONE 'Asia/Tokyo'")
        try:
            # The same row, once through the driver and once through SQLAlchemy.
            hot = claims.begin_attempt(conn, email.id, rt.claimant, 0, rt.clock())
            held = {"b_id": email.id, "b_by": rt.claimant, "b_attempt": 1, "b_now": rt.clock()}
            core = conn.execute(claims._BEGIN.statement, held).first()
            sent = dict(claim=claims.Claim(rt.claimant, 2), now=rt.clock(), message_id="<m@x>",
                        provider_id=None, transport="smtp")  # fmt: skip
            assert claims.mark_sent(conn, email.id, **sent)
            assert not claims.mark_sent(conn, email.id, **sent)  # that claim has ended
        finally:
            conn.exec_driver_sql("RESET TIME ZONE")
    assert (hot.attempts, core.attempts) == (1, 2)
    assert {**hot._asdict(), "attempts": 2} == core._asdict()
    assert hot.deadline.utcoffset() == timedelta(0) and hot.context == core.context != {}


def test_a_first_attempt_begins_and_stores_its_secret_in_one_statement(make_mailroom):
    mailroom = make_mailroom(start_worker=False)
    rt = mailroom.rt
    for _ in range(2):  # the second request supersedes the first one's challenge
        intake.accept_event(rt, json.dumps(make_event()))
    first, second = sorted(mailroom.emails(), key=lambda e: e.created_at)
    sent = []
    event.listen(rt.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))

    def begin(email, now):
        _, digests = issuing.new_secret(rt, email.challenge_id, "notes", "signup", email.recipient)
        with autocommit(rt.engine) as conn:
            return claims.begin_first_attempt(conn, email.id, rt.claimant, now, digests), digests

    (begun, live), digests = begin(second, rt.clock())
    assert len(sent) == 1 and sent[0].startswith("WITH begun AS")  # one round trip
    assert live and begun.attempts == 1 and begun.id == second.id
    challenge = mailroom.rows(Challenge, Challenge.id == second.challenge_id)[0]
    assert (challenge.code_hash, challenge.token_hash) == (digests["b_code"], digests["b_token"])

    (begun, live), _ = begin(first, rt.clock())  # its challenge was superseded
    assert begun.attempts == 1 and not live
    assert mailroom.rows(Challenge, Challenge.id == first.challenge_id)[0].code_hash is None
    (begun, live), _ = begin(first, rt.clock())  # the hold is on attempt 1 now
    assert (begun, live) == (None, False)

    intake.accept_event(rt, json.dumps(make_event(data={"email": "bob@example.com"})))
    [late] = [e for e in mailroom.emails() if e.recipient == "bob@example.com"]
    (begun, live), _ = begin(late, late.deadline + timedelta(seconds=1))
    assert begun.attempts == 1 and not live  # a mail that will not be sent gets no secret
    assert mailroom.rows(Challenge, Challenge.id == late.challenge_id)[0].code_hash is None
