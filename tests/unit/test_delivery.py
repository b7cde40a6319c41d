"""Delivering one email: retries, dead letters, deadlines, supersession, the secret issued."""

import json
import re
from datetime import timedelta

from domain import tokens
from domain.errors import PermanentError, TransientError, TransportConfigError
from tests.conftest import make_event
from tests.mail import parts, secrets_in
from tests.unit.conftest import BASE_URL, TOKEN_SECRET, RecordingTransport
from workers import delivery, intake
from workers.store.tables import Challenge, Email, EventRow, FailedEmail


class FlakyTransport(RecordingTransport):
    """Its first ``failures`` sends raise a transient error, then it accepts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def send(self, message, *, sender, recipient, return_path=None):
        if self.attempts < self.failures:
            self.attempts += 1
            raise TransientError("421 4.7.0 try again later")
        return super().send(message, sender=sender, recipient=recipient)


def accept(unit, event=None) -> None:
    intake.accept_event(unit.rt, json.dumps(event or make_event()))


def logged(unit, name: str) -> list[dict]:
    return [line for line in unit.log_lines() if line["event"] == name]


def test_the_mail_is_complete_and_its_secret_is_issued_at_send_time(unit):
    accept(unit, make_event(data={"email": "Ada@Example.COM", "name": "Ada"}))
    unit.drain()

    [message] = unit.transport.sent
    assert message["From"] == "Notes <no-reply@notes.example.com>"
    assert message["To"] == "Ada@example.com"
    assert message["Subject"] == "Your Notes verification code"
    assert re.fullmatch(r"<[^@\s]+@notes\.example\.com>", message["Message-ID"])
    assert message["Date"] is not None
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = parts(message)
    code, token = secrets_in(message)
    assert len(code) == 6 and code in html
    link = f"{BASE_URL}/verify-email?token={token}"
    assert link in text and f'href="{link}"' in html
    assert "Ada" in text

    [email] = unit.rows(Email)
    assert (email.status, email.attempts, email.message_id) == ("sent", 1, message["Message-ID"])
    assert code not in json.dumps(email.context) and token not in json.dumps(email.context)
    [challenge] = unit.rows(Challenge)
    pepper = TOKEN_SECRET.encode()
    assert challenge.key_id == "k1"
    assert challenge.code_hash == tokens.code_digest(
        pepper,
        key_id="k1",
        app="notes",
        purpose="signup",
        challenge_id=str(challenge.id),
        email="ada@example.com",
        code=code,
    )
    assert challenge.token_hash == tokens.token_digest(pepper, key_id="k1", token=token)
    assert challenge.expires_at - challenge.issued_at == timedelta(minutes=5)

    [line] = logged(unit, "email.sent")
    assert (line["to"], line["kind"], line["attempt"]) == ("A***@example.com", "signup", 1)
    assert code not in unit.log.getvalue() and token not in unit.log.getvalue()


def test_a_transient_failure_is_one_attempt_and_a_scheduled_retry(unit):
    # No sleeping in the attempt: it ends at once and the broker holds the retry.
    unit.transport.fail_with = TransientError("421 4.7.0 try again later")
    [email] = unit.accept_unsent(make_event())
    outcome = delivery.deliver_email(unit.rt, email.id, held=0)

    assert outcome.status == "retrying" and unit.transport.attempts == 1
    [waiting] = unit.rows(Email)
    assert (waiting.status, waiting.attempts, waiting.claimed_by) == ("queued", 1, None)
    assert waiting.last_error == "421 4.7.0 try again later"
    assert waiting.next_attempt_at > unit.rt.clock()
    [line] = logged(unit, "email.retrying")
    assert line["attempt"] == 1 and line["retry_in_seconds"] <= 0.05


def test_a_transient_failure_is_retried_by_the_broker_then_sent(unit):
    unit.rt.transport = FlakyTransport(failures=2)
    accept(unit)
    unit.drain()

    assert len(unit.rt.transport.sent) == 1
    [email] = unit.rows(Email)
    assert (email.status, email.attempts, email.last_error) == ("sent", 3, None)
    retrying = logged(unit, "email.retrying")
    assert [(r["attempt"], r["error"]) for r in retrying] == [
        (1, "421 4.7.0 try again later"),
        (2, "421 4.7.0 try again later"),
    ]
    assert unit.rows(FailedEmail) == []


def test_a_permanent_rejection_is_dead_lettered_after_one_attempt(unit):
    unit.transport.fail_with = PermanentError("SMTP 550 5.1.1 mailbox unavailable")
    accept(unit)
    unit.drain()

    assert unit.transport.sent == [] and unit.transport.attempts == 1
    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.attempts, failed.status) == ("rejected", 1, "dead")
    assert failed.error == "SMTP 550 5.1.1 mailbox unavailable"
    assert (failed.kind, failed.recipient) == ("signup", "ada@example.com")
    assert failed.event_type == "user.signup_requested"
    [email] = unit.rows(Email)
    assert (email.status, email.attempts) == ("failed", 1)
    assert failed.email_id == email.id
    [line] = logged(unit, "email.dead_lettered")
    assert (line["reason"], line["failed_id"]) == ("rejected", failed.id)


def test_a_misconfigured_transport_is_dead_lettered_as_such(unit):
    unit.transport.fail_with = TransportConfigError("MAILROOM_SMTP_PASSWORD", "login refused")
    accept(unit)
    unit.drain()

    assert unit.transport.sent == [] and unit.transport.attempts == 1
    [failed] = unit.rows(FailedEmail)
    assert failed.reason == "misconfigured"
    assert failed.error == "login refused (check MAILROOM_SMTP_PASSWORD)"
    assert unit.rows(Email)[0].status == "failed"


def test_a_code_past_its_deadline_is_not_sent(unit):
    accept(unit)
    later = unit.rt.clock() + timedelta(minutes=5, seconds=1)  # a signup code lives 5 minutes
    unit.rt.clock = lambda: later
    unit.drain()

    assert unit.transport.attempts == 0
    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.attempts) == ("expired_before_delivery", 0)
    assert failed.error == "the deadline passed before the first attempt"
    [email] = unit.rows(Email)
    assert email.status == "failed"
    # No secret was ever issued for it.
    assert unit.rows(Challenge)[0].code_hash is None


def test_retries_that_would_land_past_the_deadline_are_dead_lettered(unit):
    unit.transport.fail_with = TransientError("connection refused")
    accept(unit)
    [email] = unit.rows(Email)
    # The next broker retry (10-50 ms away) would come after the deadline.
    just_before = email.deadline - timedelta(milliseconds=5)
    unit.rt.clock = lambda: just_before
    unit.drain()

    assert unit.transport.attempts == 1
    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.attempts) == ("expired_before_delivery", 1)
    assert failed.error == "connection refused"


def test_a_superseded_challenges_mail_is_suppressed_not_sent(unit):
    accept(unit)
    accept(unit)  # asked again before the first mail left
    unit.drain()

    first, second = sorted(unit.rows(Email), key=lambda e: e.created_at)
    assert (first.status, first.suppressed_reason) == ("suppressed", "superseded")
    assert (second.status, second.suppressed_reason) == ("sent", None)
    assert len(unit.transport.sent) == 1 and unit.transport.attempts == 1
    [line] = logged(unit, "email.suppressed")
    assert (line["email_id"], line["reason"]) == (str(first.id), "superseded")
    assert unit.rows(FailedEmail) == []


def test_a_redelivered_deliver_for_a_sent_email_sends_nothing(unit):
    accept(unit)
    unit.drain()
    [email] = unit.rows(Email)

    assert delivery.deliver_email(unit.rt, email.id).status == "skipped"
    unit.rt.dispatch.delivery(email.id)
    unit.drain()
    assert len(unit.transport.sent) == 1
    [after] = unit.rows(Email)
    assert (after.status, after.attempts, after.message_id) == ("sent", 1, email.message_id)


def test_a_notice_carries_no_secret(unit):
    data = {"email": "ada@example.com", "user_id": "u1", "name": "Ada"}
    accept(unit, make_event("password.changed", data))
    unit.drain()

    [message] = unit.transport.sent
    assert message["Subject"] == "Your Notes password was changed"
    assert unit.rows(Challenge) == []
    assert unit.rows(Email)[0].status == "sent"


def test_a_transient_failure_is_retried_past_30_attempts_until_the_deadline(unit):
    """``DELIVER_MAX_RETRIES`` (30) caps the broker's retries of unexpected
    errors only: a send that keeps failing transiently is retried until its
    own deadline, however many attempts that takes."""
    from workers.actors import DELIVER_MAX_RETRIES

    asked = unit.rt.clock()
    moment = [asked]
    unit.rt.clock = lambda: moment[0]

    class AlwaysTransient(RecordingTransport):
        def send(self, message, *, sender, recipient, return_path=None):
            self.attempts += 1
            moment[0] += timedelta(seconds=7)  # each attempt "takes" 7 s of the 5 minutes
            raise TransientError("421 4.7.0 try again later")

    unit.rt.transport = AlwaysTransient()
    accept(unit)
    unit.drain()

    attempts = unit.rt.transport.attempts
    assert attempts > DELIVER_MAX_RETRIES
    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.attempts) == ("expired_before_delivery", attempts)
    assert failed.error == "421 4.7.0 try again later"
    [email] = unit.rows(Email)
    # It stopped only because the next retry would have landed past the deadline.
    assert moment[0] <= email.deadline + timedelta(seconds=7)
    assert len(logged(unit, "email.retrying")) == attempts - 1


def test_a_suppressed_address_gets_only_what_its_suppression_lets_through(unit):
    """On SQLite too: intake sees the suppression, and so does the claim of mail
    taken in before it."""
    from domain.suppression import ALL_APPS, Suppression
    from domain.vocabulary import Suppressed
    from tests.conftest import reset
    from workers.store import suppressions

    before = make_event("login.code_requested", {"email": "ada@example.com", "user_id": "u1"})
    accept(unit, before)  # queued; the suppression comes before its attempt
    now = unit.rt.clock()
    with unit.rt.engine.begin() as conn:
        for scope, reason, until in [
            ("notes", Suppressed.COMPLAINED, None),
            ("other", Suppressed.MANUAL, None),
            (ALL_APPS, Suppressed.BOUNCED, now - timedelta(seconds=1)),  # expired
        ]:
            suppressions.put(
                conn, "ada@example.com", Suppression(scope, reason, until),
                source="admin", detail=None, email_id=None, now=now,
            )  # fmt: skip
    accept(unit, make_event(data={"email": "Ada@example.com"}))
    accept(unit, reset(email="ada@example.com"))  # asked for now: a complaint lets it through
    accept(unit, make_event(data={"email": "ada@example.com"}, source="other"))
    unit.drain()

    assert [m["Subject"] for m in unit.transport.sent] == ["Reset your Notes password"]
    outcome = {
        (e.kind, e.app): (e.status, e.suppressed_reason, e.attempts) for e in unit.rows(Email)
    }
    assert outcome == {
        ("login", "notes"): ("suppressed", "complained", 1),  # as its attempt began
        ("signup", "notes"): ("suppressed", "complained", 0),  # at intake
        ("password_reset", "notes"): ("sent", None, 1),
        ("signup", "other"): ("suppressed", "manual", 0),
    }
    events = {e.type + ":" + e.source: e.outcome for e in unit.rows(EventRow)}
    assert events["user.signup_requested:notes"] == "suppressed:complained"
    assert events["user.signup_requested:other"] == "suppressed:manual"
