"""End to end on the real engine: Redis stream -> Dramatiq -> PostgreSQL -> SMTP."""

import json
import re
import uuid
from datetime import timedelta

import pytest

from domain import tokens
from tests.conftest import BASE_URL, TOKEN_SECRET, make_event
from tests.mail import parts, secrets_in
from tests.servers import wait_until
from workers import delivery, intake
from workers.db import autocommit
from workers.store import claims, dead_letters
from workers.store.tables import Email
from workers.sweeper import sweep


def test_signup_event_delivers_a_complete_mail(mailroom, smtp_sink):
    event = make_event(data={"email": "Ada@Example.COM", "name": "Ada"})
    mailroom.publish(event)

    [message] = smtp_sink.wait_for(1)
    assert message["From"] == "Notes <no-reply@notes.example.com>"
    assert message["To"] == "Ada@example.com"
    assert message.envelope_to == ["Ada@example.com"]
    assert message["Subject"] == "Your Notes verification code"
    assert re.fullmatch(r"<[^@\s]+@notes\.example\.com>", message["Message-ID"])
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]

    text, html = parts(message)
    code, token = secrets_in(message)
    assert len(code) == 6 and code in html
    link = f"{BASE_URL}/verify-email?token={token}"
    assert link in text and f'href="{link}"' in html
    assert len(token) >= 43  # 256 bits, URL-safe base64

    # The mailed secrets are the ones the database can verify, by digest only.
    sent = mailroom.wait_for_status("sent")[0]
    assert sent.message_id == message["Message-ID"] and sent.attempts == 1
    [challenge] = mailroom.challenges()
    pepper = TOKEN_SECRET.encode()
    assert challenge.code_hash == tokens.code_digest(
        pepper,
        key_id="k1",
        app="notes",
        purpose="signup",
        challenge_id=str(challenge.id),
        email="ada@example.com",  # bound in lower case: providers ignore case
        code=code,
    )
    assert challenge.token_hash == tokens.token_digest(pepper, key_id="k1", token=token)
    assert challenge.expires_at > sent.sent_at

    lines = [line for line in mailroom.log_lines() if line["event"] == "email.sent"]
    assert lines and lines[0]["to"] == "A***@example.com" and lines[0]["kind"] == "signup"


def test_the_same_event_twice_yields_one_mail(mailroom, smtp_sink):
    event = make_event()
    mailroom.publish(event)
    mailroom.publish(event)
    smtp_sink.wait_for(1)
    wait_until(
        lambda: any(line["event"] == "event.duplicate" for line in mailroom.log_lines()),
        what="the duplicate to be noticed",
    )
    # The duplicate was turned away before it could queue anything.
    assert len(smtp_sink.messages) == 1
    assert len(mailroom.emails()) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "event: Invalid JSON"),
        ('{"version": 1, "type": "user.signup_requested"}', "id: Field required"),
        (b"\xff\xfe not utf-8", "event is not valid UTF-8"),
    ],
)
def test_an_invalid_event_is_dead_lettered_and_the_worker_serves_on(
    mailroom, smtp_sink, raw, reason
):
    mailroom.redis.xadd("mailroom:events", {"event": raw})
    [failed] = mailroom.wait_for_failed(1)
    assert failed.reason == "invalid_event"
    assert failed.error.startswith(reason)
    assert failed.attempts == 0 and failed.status == "dead"
    expected = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
    assert failed.payload == expected

    mailroom.publish(make_event())
    smtp_sink.wait_for(1)
    assert len(mailroom.failed()) == 1  # never retried


def test_a_stream_entry_without_an_event_field_is_kept_whole(mailroom):
    mailroom.redis.xadd("mailroom:events", {"evnt": '{"id": 1}'})
    [failed] = mailroom.wait_for_failed(1)
    assert failed.error == "stream entry has no 'event' field"
    assert failed.payload == '{"evnt": "{\\"id\\": 1}"}'
    assert mailroom.redis.xlen("mailroom:events") == 0


def test_smtp_down_then_up_is_delivered_after_retries(mailroom, smtp_sink):
    smtp_sink.stop()
    mailroom.publish(make_event())
    wait_until(lambda: mailroom.rows(Email), what="the email row")
    wait_until(  # the first attempt fails: connection refused
        lambda: any(line["event"] == "email.retrying" for line in mailroom.log_lines()),
        what="a failed attempt",
    )
    smtp_sink.start()
    smtp_sink.wait_for(1, timeout=20)
    sent = mailroom.wait_for_status("sent")[0]
    assert sent.attempts > 1
    assert mailroom.failed() == []


def test_smtp_550_is_dead_lettered_after_one_attempt(mailroom, smtp_sink):
    smtp_sink.reply = "550 5.1.1 <ada@example.com>: mailbox unavailable"
    mailroom.publish(make_event())
    [failed] = mailroom.wait_for_failed(1)
    assert failed.reason == "rejected"
    assert failed.attempts == 1
    assert failed.error.startswith("SMTP 550 5.1.1")
    assert failed.kind == "signup" and failed.recipient == "ada@example.com"
    assert mailroom.emails()[0].status == "failed"
    assert smtp_sink.messages == []


@pytest.mark.slow
def test_a_code_that_cannot_arrive_in_time_is_not_sent(make_mailroom, smtp_sink):
    # The next broker retry would come after the code's 5 minutes are over.
    mailroom = make_mailroom(MAILROOM_RETRY_MIN_BACKOFF="600", MAILROOM_RETRY_MAX_BACKOFF="600")
    smtp_sink.stop()
    mailroom.publish(make_event())
    [failed] = mailroom.wait_for_failed(1, timeout=20)
    assert failed.reason == "expired_before_delivery"
    assert failed.attempts == 1  # the one try there was time for
    assert "unreachable" in failed.error


class Broken:
    """A transport with a bug: it raises what no send should."""

    name = "broken"

    def send(self, message, *, sender, recipient, return_path=None):
        raise RuntimeError("a bug in the transport")

    def close(self) -> None:
        pass


def test_a_delivery_that_keeps_failing_unexpectedly_is_dead_lettered(make_mailroom, smtp_sink):
    mailroom = make_mailroom(start_worker=False)
    mailroom.rt.transport = Broken()
    queued = queued_email(mailroom)
    # A delivery message that may not be retried by the broker at all.
    mailroom.rt.broker.get_actor("deliver").send_with_options(args=(str(queued),), max_retries=0)
    mailroom.start()
    [failed] = mailroom.wait_for_failed(1, timeout=20)
    assert failed.reason == "retries_exhausted"
    assert failed.error == "RuntimeError: a bug in the transport"
    assert failed.attempts == 1
    assert mailroom.emails()[0].status == "failed"


def queued_email(mailroom) -> uuid.UUID:
    """Accept an event in a process whose courier is not running, then hand its
    mail back to the queue (as a stopping process does)."""
    rt = mailroom.rt
    intake.accept_event(rt, json.dumps(make_event()))
    [(email_id, *_)] = drain_courier(rt)
    with autocommit(rt.engine) as conn:
        claims.release_all(conn, rt.claimant, rt.clock())
    return email_id


def drain_courier(rt) -> list:
    """What the process's courier was about to send (as if it died first)."""
    taken = []
    while not rt.dispatch.courier.queue.empty():
        taken.append(rt.dispatch.courier.queue.get_nowait())
    return taken


def test_replay_sends_a_new_mail_with_a_new_code_once(mailroom, smtp_sink):
    smtp_sink.reply = "550 5.7.1 rejected for now"
    mailroom.publish(make_event())
    [failed] = mailroom.wait_for_failed(1)
    smtp_sink.reply = None

    with mailroom.rt.engine.begin() as conn:
        row = dead_letters.get(conn, failed.id)
        new_id = dead_letters.replay_email(conn, row, mailroom.rt.clock())
        again = dead_letters.replay_email(conn, row, mailroom.rt.clock())
    assert again is None
    mailroom.rt.dispatch.delivery(new_id)
    [message] = smtp_sink.wait_for(1)
    [replayed] = mailroom.failed()
    assert replayed.status == "replayed" and replayed.replayed_email_id == new_id
    assert mailroom.rows(Email, Email.id == new_id)[0].replay_of == failed.id


def test_mail_of_a_process_that_died_after_the_commit_is_taken_over(make_mailroom, smtp_sink):
    mailroom = make_mailroom(start_worker=False)
    rt = mailroom.rt
    intake.accept_event(rt, json.dumps(make_event()))
    [(email_id, *_)] = drain_courier(rt)  # the process "dies" before the send
    [held] = mailroom.emails()
    assert (held.status, held.claimed_by) == ("sending", rt.claimant)

    # Nothing moves while the dead process's lease runs; then a sweep takes it.
    other = "other-host-1-00000000"
    assert sweep(rt.engine, other, rt.dispatch.courier, rt.clock()) == 0
    lapsed = held.lease_until + timedelta(seconds=1)
    assert sweep(rt.engine, other, rt.dispatch.courier, lapsed) == 1
    rt.claimant = other
    mailroom.start()
    smtp_sink.wait_for(1)
    assert sweep(rt.engine, other, rt.dispatch.courier, lapsed) == 0
    [sent] = mailroom.wait_for_status("sent")
    assert (sent.id, sent.attempts, sent.claimed_by) == (email_id, 1, None)


def test_a_redelivered_deliver_for_a_sent_email_sends_nothing(mailroom, smtp_sink):
    mailroom.publish(make_event())
    smtp_sink.wait_for(1)
    [email] = mailroom.wait_for_status("sent")
    outcome = delivery.deliver_email(mailroom.rt, email.id)
    assert outcome.status == "skipped"
    assert len(smtp_sink.messages) == 1
