"""Bounces and complaints from plain relays, for real: a worker sends through SMTP
with a VERP return path, `mailroom bounces serve` (a subprocess) takes the
returned DSN or feedback report over SMTP or LMTP, and the address is
suppressed; `mailroom bounces ingest` does the same from a Maildir."""

import json
import os
import signal
import smtplib
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain import verp
from domain.addresses import address_key
from tests.commands import MAILROOM, run
from tests.conftest import TOKEN_SECRET, make_event, reset
from tests.mail import code_in
from tests.servers import free_port, wait_until
from workers.store import apikeys
from workers.store.tables import Email, SuppressionRow

DOMAIN = "bounces.notes.example"
KEY = verp.key_for(TOKEN_SECRET.encode())
FIXTURES = Path(__file__).parents[1] / "fixtures" / "mail"
STREAM = "mailroom:outcomes"
NO_DOMAIN = (
    "mailroom: configuration error: MAILROOM_BOUNCE_DOMAIN: is not set: no mail carries a "
    "return path to take in\n"
)
APPS = """
default = "notes"

[apps.notes]
product_name = "Notes"
from = "Notes <no-reply@notes.example.com>"
public_base_url = "https://notes.example.com"

[apps.billing]
product_name = "Billing"
from = "Billing <accounts@billing.example.org>"
public_base_url = "https://billing.example.org"
"""


@pytest.fixture
def bounce_env(env, tmp_path):
    apps = tmp_path / "apps.toml"
    apps.write_text(APPS)
    return {**env, "MAILROOM_BOUNCE_DOMAIN": DOMAIN, "MAILROOM_APPS_FILE": str(apps)}


@pytest.fixture
def mailroom(make_mailroom, bounce_env):
    return make_mailroom(**bounce_env)


@pytest.fixture
def key(mailroom):
    with mailroom.rt.engine.begin() as conn:
        return apikeys.create(conn, "notes", mailroom.rt.clock())[1]


class BounceServer:
    """`mailroom bounces serve` in a subprocess, as a deployment runs it."""

    def __init__(self, environ: dict, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process = subprocess.Popen(
            [MAILROOM, "bounces", "serve", "--port", str(self.port), *args],
            env={"PATH": os.environ["PATH"], **environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(self._listens, timeout=20, what="mailroom bounces serve to listen")

    def _listens(self) -> bool:
        assert self.process.poll() is None, self.process.communicate()
        try:
            smtplib.SMTP("127.0.0.1", self.port, timeout=1).quit()
            return True
        except OSError:
            return False

    def stop(self) -> tuple[int, str]:
        """SIGTERM; its exit code and what it wrote on stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stderr


@pytest.fixture
def bounces(bounce_env):
    server = BounceServer(bounce_env)
    yield server
    code, stderr = server.stop()
    print(stderr)
    assert code == 0, stderr


def deliver(port: int, rcpt: str, raw: bytes, *, lmtp: bool = False) -> dict:
    """What a relay does with a bounce: MAIL FROM:<> to the return path, lines
    ending in CRLF."""
    client = smtplib.LMTP("127.0.0.1", port) if lmtp else smtplib.SMTP("127.0.0.1", port)
    with client:
        return client.sendmail("", [rcpt], raw.replace(b"\n", b"\r\n"))


def returned(name: str, sent_mail, recipient: str) -> bytes:
    """A fixture of tests/fixtures/mail, for the mail the sink received."""
    text = (FIXTURES / name).read_text().replace("RETURN_PATH", sent_mail.envelope_from)
    for example in ("nobody@example.com", "full@example.net", "grumpy@example.net"):
        text = text.replace(example, recipient)
    return text.encode()


def email_of(mailroom, event: dict) -> Email:
    [email] = mailroom.rows(Email, Email.event_id == uuid.UUID(event["id"]))
    return email


def suppressions(mailroom) -> list[tuple]:
    rows = mailroom.rows(SuppressionRow)
    return sorted((r.address_key, r.scope, r.reason, r.source, r.email_id) for r in rows)


def outcomes(redis_client) -> list[dict]:
    return [json.loads(f[b"outcome"]) for _, f in redis_client.xrange(STREAM)]


def last_outcome(redis_client) -> dict:
    """The newest outcome on the stream ({} while it is empty)."""
    told = outcomes(redis_client)
    return told[-1] if told else {}


def sign_up(mailroom, smtp_sink, address: str, source: str = "notes"):
    """A sign-up sent through the sink: its event, email row and received mail."""
    before = len(smtp_sink.messages)
    event = make_event(data={"email": address}, source=source)
    mailroom.publish(event)
    mail = smtp_sink.wait_for(before + 1)[before]
    return event, wait_for_email(mailroom, event, "sent"), mail


def wait_for_email(mailroom, event: dict, status: str) -> Email:
    def settled():
        rows = mailroom.rows(Email, Email.event_id == uuid.UUID(event["id"]))
        return rows[0] if rows and rows[0].status == status else None

    return wait_until(settled, timeout=20, what=f"the event's email {status}")


def test_a_bounce_suppresses_the_address_tells_the_app_and_fails_its_code(
    mailroom, smtp_sink, bounces, api, key, redis_client
):
    event, email, mail = sign_up(mailroom, smtp_sink, "nobody@example.com")
    # The return path names this email, under the MAC of the token pepper.
    assert mail.envelope_from.startswith("bounces+") and mail.envelope_from.endswith("@" + DOMAIN)
    assert verp.email_id_of(mail.envelope_from, [KEY], DOMAIN) == email.id
    code = code_in(mail)

    bounce = returned("postfix_user_unknown.eml", mail, "nobody@example.com")
    assert deliver(bounces.port, mail.envelope_from, bounce) == {}  # 250: recorded

    email = email_of(mailroom, event)
    assert email.feedback == "bounced"
    assert email.feedback_detail == (
        "5.1.1 smtp; 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
    )
    key_of = address_key("nobody@example.com")
    assert suppressions(mailroom) == [(key_of, "*", "bounced", "dsn", email.id)]
    [row] = mailroom.rows(SuppressionRow)
    expected_expiry = datetime.now(UTC) + timedelta(days=30)
    assert abs(row.expires_at.replace(tzinfo=UTC) - expected_expiry) < timedelta(minutes=1)
    wait_until(lambda: last_outcome(redis_client).get("status") == "bounced", what="outcome")
    last = outcomes(redis_client)[-1]
    assert (last["event_id"], last["email_id"], last["app"], last["kind"]) == (
        event["id"], str(email.id), "notes", "signup",
    )  # fmt: skip
    assert (last["reason"], last["transport"]) == ("permanent", "smtp")
    fate = api.call("GET", f"/v1/events/{event['id']}", key, "/v1/events/{event_id}")
    assert fate.json()["delivery"] == "undeliverable"

    # The same DSN again (a relay retrying) changes nothing.
    told = len(outcomes(redis_client))
    assert deliver(bounces.port, mail.envelope_from, bounce) == {}
    again = email_of(mailroom, event)
    assert (again.feedback, again.feedback_at) == ("bounced", email.feedback_at)
    [same] = mailroom.rows(SuppressionRow)
    assert (same.created_at, same.expires_at) == (row.created_at, row.expires_at)
    time.sleep(0.5)  # time enough for an outcome to reach the stream
    assert len(outcomes(redis_client)) == told

    # A made-up return path, or anybody else's address, is refused at RCPT.
    made_up = verp.return_path(email.id, verp.key_for(b"guessed"), DOMAIN)
    for stranger in (made_up, f"bounces+{'a' * 42}@{DOMAIN}", "postmaster@" + DOMAIN):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            deliver(bounces.port, stranger, bounce)
        assert refused.value.recipients[stranger][0] == 550

    # So is a message over 10 MB (a bounce returns at most the mail, a small one).
    with pytest.raises(smtplib.SMTPSenderRefused) as too_big:
        deliver(bounces.port, mail.envelope_from, bounce + b"x" * (10 * 1024 * 1024))
    assert too_big.value.smtp_code == 552

    # A wrong code for the bounced mail's challenge: the user never got it.
    body = {"purpose": "signup", "email": "nobody@example.com", "code": "000000"}
    if code == "000000":
        body["code"] = "111111"
    answer = api.call("POST", "/v1/codes/verify", key, json=body)
    assert answer.json()["error"] == "undeliverable"

    # The next sign-up to that address is not sent.
    later = make_event(data={"email": "nobody@example.com"})
    mailroom.publish(later)
    assert wait_for_email(mailroom, later, "suppressed").suppressed_reason == "bounced"
    time.sleep(0.5)
    assert len(smtp_sink.messages) == 1
    wait_until(lambda: last_outcome(redis_client).get("event_id") == later["id"], what="outcome")
    assert outcomes(redis_client)[-1]["status"] == "suppressed"
    assert outcomes(redis_client)[-1]["reason"] == "bounced"

    code_, stderr = bounces.stop()
    assert code_ == 0 and "mailroom bounces: stopping" in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    received = [line for line in lines if line["event"] == "bounce.received"]
    assert [(r["via"], r["recorded"], r["repeated"]) for r in received] == [
        ("smtp", 1, 0), ("smtp", 0, 1),
    ]  # fmt: skip
    assert received[0]["email_id"] == str(email.id)
    assert "nobody@example.com" not in stderr  # addresses are masked in every line


def test_a_complaint_suppresses_the_address_for_its_app_alone(
    mailroom, smtp_sink, bounces, redis_client
):
    event, email, mail = sign_up(mailroom, smtp_sink, "grumpy@example.net")
    complaint = returned("arf_abuse.eml", mail, "grumpy@example.net")
    assert deliver(bounces.port, mail.envelope_from, complaint) == {}

    assert email_of(mailroom, event).feedback == "complained"
    key_of = address_key("grumpy@example.net")
    assert suppressions(mailroom) == [(key_of, "notes", "complained", "arf", email.id)]
    assert mailroom.rows(SuppressionRow)[0].expires_at is None  # until an admin lifts it
    wait_until(lambda: last_outcome(redis_client).get("status") == "complained", what="outcome")
    assert outcomes(redis_client)[-1]["reason"] == "abuse"

    # Notes sends it no more sign-up mail; a password reset it asks for still goes,
    # and so does another app's mail.
    again = make_event(data={"email": "grumpy@example.net"})
    mailroom.publish(again)
    assert wait_for_email(mailroom, again, "suppressed").suppressed_reason == "complained"
    mailroom.publish(reset(email="grumpy@example.net"))
    mailroom.publish(make_event(data={"email": "grumpy@example.net"}, source="billing"))
    received = smtp_sink.wait_for(3)[1:]
    assert sorted(m["Subject"] for m in received) == [
        "Reset your Notes password", "Your Billing verification code",
    ]  # fmt: skip


def test_over_lmtp_each_recipient_gets_its_answer(mailroom, smtp_sink, bounce_env):
    event, email, mail = sign_up(mailroom, smtp_sink, "full@example.net")
    server = BounceServer(bounce_env, "--lmtp")
    try:
        full = returned("postfix_mailbox_full.eml", mail, "full@example.net")
        assert deliver(server.port, mail.envelope_from, full, lmtp=True) == {}
        # An SMTP greeting is refused: it speaks LMTP.
        with pytest.raises(smtplib.SMTPHeloError):
            deliver(server.port, mail.envelope_from, full)
    finally:
        code, stderr = server.stop()
    assert code == 0, stderr
    assert email_of(mailroom, event).feedback == "soft_bounced"
    assert suppressions(mailroom) == []  # one transient bounce counts, it does not suppress


def test_with_the_database_out_the_relay_is_told_to_try_again(mailroom, smtp_sink, bounce_env):
    event, email, mail = sign_up(mailroom, smtp_sink, "nobody@example.com")
    dead = f"postgresql://mailroom@127.0.0.1:{free_port()}/mailroom_test"
    server = BounceServer({**bounce_env, "DATABASE_URL": dead})
    try:
        bounce = returned("postfix_user_unknown.eml", mail, "nobody@example.com")
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            deliver(server.port, mail.envelope_from, bounce)
        assert deferred.value.smtp_code == 451
    finally:
        code, stderr = server.stop()
    assert code == 0, stderr
    assert email_of(mailroom, event).feedback is None
    assert '"event": "bounce.deferred"' in stderr


def test_neither_command_starts_without_a_bounce_domain(env, tmp_path):
    maildir = make_maildir(tmp_path)
    for args in (["serve"], ["ingest", str(maildir)]):
        result = run(env, "bounces", *args)
        assert (result.returncode, result.stdout, result.stderr) == (3, "", NO_DOMAIN)


# ---------------------------------------------------------------- Maildir


def make_maildir(parent: Path) -> Path:
    maildir = parent / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    return maildir


def test_ingest_records_a_maildir_and_marks_what_it_handled(
    mailroom, smtp_sink, bounce_env, tmp_path
):
    gone, _, gone_mail = sign_up(mailroom, smtp_sink, "nobody@example.com")
    full, _, full_mail = sign_up(mailroom, smtp_sink, "full@example.net")
    maildir = make_maildir(tmp_path)
    new, cur = maildir / "new", maildir / "cur"
    bounce = returned("postfix_user_unknown.eml", gone_mail, "nobody@example.com")
    (new / "1796119201.M1P1.mx").write_bytes(bounce)
    # In cur/ but not yet seen (a mail client flagged it): read too.
    (cur / "1796119202.M2P1.mx:2,F").write_bytes(
        returned("postfix_mailbox_full.eml", full_mail, "full@example.net")
    )
    (new / "1796119203.M3P1.mx").write_bytes(
        returned("out_of_office.eml", gone_mail, "nobody@example.com")
    )
    # Read already (flag S): left alone.
    (cur / "1796119200.M0P1.mx:2,S").write_bytes(bounce)

    result = run(bounce_env, "bounces", "ingest", str(maildir), "--json")
    assert (result.returncode, json.loads(result.stdout)) == (0, {
        "messages": 3, "recorded": 2, "repeated": 0, "unmatched": 0, "not_reports": 1,
        "failed": 0, "failed_files": [],
    }), result.stderr  # fmt: skip
    assert list(new.iterdir()) == []
    assert sorted(p.name for p in cur.iterdir()) == [
        "1796119200.M0P1.mx:2,S", "1796119201.M1P1.mx:2,S",
        "1796119202.M2P1.mx:2,FS", "1796119203.M3P1.mx:2,S",
    ]  # fmt: skip
    assert email_of(mailroom, gone).feedback == "bounced"
    assert email_of(mailroom, full).feedback == "soft_bounced"
    assert suppressions(mailroom) == [
        (address_key("nobody@example.com"), "*", "bounced", "dsn", email_of(mailroom, gone).id)
    ]

    again = run(bounce_env, "bounces", "ingest", str(maildir))
    assert (again.returncode, again.stdout) == (0, (
        f"0 message(s) from {maildir}: recorded 0, repeated 0, unmatched 0, not a report 0, "
        "failed 0\n"
    ))  # fmt: skip

    # The same bounce delivered twice: recorded once; --delete leaves nothing behind.
    (new / "1796119204.M4P1.mx").write_bytes(bounce)
    deleted = run(bounce_env, "bounces", "ingest", str(maildir), "--delete", "--json")
    assert json.loads(deleted.stdout)["repeated"] == 1 and deleted.returncode == 0
    assert list(new.iterdir()) == [] and len(list(cur.iterdir())) == 4


def test_ingest_leaves_what_it_could_not_record_for_the_next_run(
    mailroom, smtp_sink, bounce_env, tmp_path
):
    event, _, mail = sign_up(mailroom, smtp_sink, "nobody@example.com")
    maildir = make_maildir(tmp_path)
    message = maildir / "new" / "1796119201.M1P1.mx"
    message.write_bytes(returned("postfix_user_unknown.eml", mail, "nobody@example.com"))
    dead = f"postgresql://mailroom@127.0.0.1:{free_port()}/mailroom_test"

    result = run({**bounce_env, "DATABASE_URL": dead}, "bounces", "ingest", str(maildir), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["failed_files"] == ["new/1796119201.M1P1.mx"]
    assert "mailroom: new/1796119201.M1P1.mx: OperationalError: " in result.stderr
    assert message.exists() and email_of(mailroom, event).feedback is None

    retried = run(bounce_env, "bounces", "ingest", str(maildir), "--json")
    assert (retried.returncode, json.loads(retried.stdout)["recorded"]) == (0, 1)
    assert email_of(mailroom, event).feedback == "bounced"


def test_ingest_refuses_a_directory_that_is_no_maildir(bounce_env, tmp_path):
    result = run(bounce_env, "bounces", "ingest", str(tmp_path))
    assert result.returncode == 2
    assert f"{tmp_path} is not a Maildir (no new/)" in result.stderr
