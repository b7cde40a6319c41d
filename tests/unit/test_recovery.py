"""What a worker that dies leaves behind, and how the next one picks it up."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from domain.vocabulary import Verdict
from tests.conftest import make_event
from tests.mail import secrets_in
from tests.unit.conftest import RecordingTransport
from workers import delivery, intake
from workers.courier import Keeper
from workers.delivery import CLAIM_LEASE
from workers.store import claims
from workers.store.tables import Email, FailedEmail
from workers.sweeper import STALE_QUEUED_AFTER
from workers.verification import VerificationFailed, Verifier


class Killed(BaseException):
    """The process died: nothing after this point runs."""


class DiesAfterData(RecordingTransport):
    """The server accepts the mail (the user will get it); then the worker is killed."""

    def send(self, message, *, sender, recipient, return_path=None):
        super().send(message, sender=sender, recipient=recipient)
        raise Killed


def died_in_data(unit, monkeypatch) -> Email:
    """A sign-up whose first attempt reached the server before its worker died."""
    normal = unit.rt.transport
    unit.rt.transport = DiesAfterData()
    # A killed process runs no cleanup: its claim stays as it was.
    monkeypatch.setattr(claims, "release_claim", lambda *args: None)
    [email] = unit.accept_unsent(make_event(data={"email": "ada@example.com"}))
    with pytest.raises(Killed):
        delivery.deliver_email(unit.rt, email.id, held=0)
    first = unit.rt.transport.sent
    unit.rt.transport = normal
    monkeypatch.undo()
    [held] = unit.rows(Email)
    assert (held.status, held.attempts) == ("sending", 1)
    return held, first


def take_over(unit, held: Email) -> None:
    lapsed = held.lease_until + timedelta(seconds=1)
    with unit.rt.engine.begin() as conn:
        [(email_id, attempts)] = claims.take_due(
            conn,
            unit.rt.claimant,
            lapsed,
            stale_after=STALE_QUEUED_AFTER,
            lease=CLAIM_LEASE,
            limit=10,
        )
    assert delivery.deliver_email(unit.rt, email_id, held=attempts).status == "sent"


@pytest.mark.parametrize("used_first", ["old", "new"])
def test_a_resend_after_an_unknown_outcome_keeps_the_first_mails_code_working(
    unit, monkeypatch, used_first
):
    held, [first] = died_in_data(unit, monkeypatch)
    take_over(unit, held)
    [second] = unit.transport.sent
    old, new = secrets_in(first)[0], secrets_in(second)[0]
    assert old != new
    [email] = unit.rows(Email)
    assert (email.status, email.attempts) == ("sent", 2)
    # One email, one Message-ID: a receiver can tell the resend for what it is.
    assert first["Message-ID"] == second["Message-ID"] == f"<{email.id}.mailroom@notes.example.com>"

    verifier = Verifier(unit.rt)
    codes = {"old": old, "new": new}
    other = "new" if used_first == "old" else "old"
    assert verifier.verify_code("notes", "signup", "ada@example.com", codes[used_first])
    # Using either one ends the challenge.
    with pytest.raises(VerificationFailed) as refused:
        verifier.verify_code("notes", "signup", "ada@example.com", codes[other])
    assert refused.value.code == Verdict.INVALID


def test_the_first_mails_link_works_too_and_only_once(unit, monkeypatch):
    held, [first] = died_in_data(unit, monkeypatch)
    take_over(unit, held)
    [second] = unit.transport.sent
    verifier = Verifier(unit.rt)

    assert verifier.peek_token("notes", "signup", secrets_in(first)[1]).email == "ada@example.com"
    assert verifier.consume_token("notes", "signup", secrets_in(first)[1])
    with pytest.raises(VerificationFailed):
        verifier.consume_token("notes", "signup", secrets_in(second)[1])


def test_a_code_that_cannot_arrive_in_time_counts_from_when_the_user_asked(unit):
    # The entry sat in the stream (its worker was down) for six minutes.
    asked = datetime.now(UTC) - timedelta(minutes=6)
    event = make_event(data={"email": "ada@example.com"})
    intake.accept_batch(unit.rt, [intake.Entry(json.dumps(event), None, asked)])
    unit.drain()

    assert unit.transport.sent == []
    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.attempts) == ("expired_before_delivery", 0)
    assert failed.error == "the deadline passed before the first attempt"
    [email] = unit.rows(Email)
    assert email.deadline == asked + timedelta(minutes=5)


def test_an_attempt_cut_off_past_the_deadline_is_recorded_as_attempted(unit, monkeypatch):
    held, _ = died_in_data(unit, monkeypatch)
    unit.rt.clock = lambda: held.deadline + timedelta(seconds=1)
    take_over_at = held.deadline + timedelta(seconds=1)
    with unit.rt.engine.begin() as conn:
        [(email_id, attempts)] = claims.take_due(
            conn, "other-1", take_over_at, stale_after=STALE_QUEUED_AFTER, lease=CLAIM_LEASE,
            limit=10,
        )  # fmt: skip
    unit.rt.claimant = "other-1"
    assert delivery.deliver_email(unit.rt, email_id, held=attempts).status == "failed"
    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.attempts) == ("expired_before_delivery", 1)
    assert "an attempt was cut off" in failed.error


def test_a_stopping_process_hands_back_what_it_holds_for_the_others_at_once(unit):
    unit.accept_unsent(make_event(data={"email": "a@example.com"}))
    unit.accept_unsent(make_event(data={"email": "b@example.com"}))
    keeper = Keeper(unit.rt.engine, unit.rt.claimant, unit.rt.holds, unit.rt.clock, CLAIM_LEASE)
    keeper.hand_back()

    emails = unit.rows(Email)
    assert {(e.status, e.claimed_by) for e in emails} == {("queued", None)}
    # Due for any sweep right away, not after a lease or a stale period.
    now = unit.rt.clock()
    with unit.rt.engine.begin() as conn:
        taken = claims.take_due(
            conn, "other-2", now, stale_after=STALE_QUEUED_AFTER, lease=CLAIM_LEASE, limit=10
        )
    assert len(taken) == 2
    assert [
        line["emails"] for line in unit.log_lines() if line["event"] == "claims.handed_back"
    ] == [2]
