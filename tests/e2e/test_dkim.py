"""DKIM end to end: `mailroom dkim keygen` makes the keys and prints their DNS
records; mail a worker sends verifies against those records with dkimpy (the
lookup stubbed), as the SMTP server received it and after Postfix relayed it."""

import json
import os
import stat

import pytest

from tests.commands import run
from tests.conftest import make_event
from tests.peers import Certificates, Postfix
from tests.servers import free_port, wait_until
from tests.unit.test_dkim import APPS as SIGNING_APPS
from tests.unit.test_dkim import verdicts

APPS = (
    SIGNING_APPS
    + """
[apps.billing]
from = "Billing <accounts@billing.example.org>"
public_base_url = "https://billing.example.org"
"""
)
#: The header fields of a signed sign-up mail, and nothing else.
SIGNED_MAIL_HEADERS = sorted(
    ["DKIM-Signature", "DKIM-Signature", "From", "To", "Subject", "Date", "Message-ID",
     "Auto-Submitted", "X-Entity-Ref-ID", "Feedback-ID", "MIME-Version", "Content-Type"]
)  # fmt: skip


def printed_record(stdout: str) -> tuple[str, str]:
    lines = stdout.splitlines()
    assert lines[1] == "Publish this DNS TXT record:"
    assert lines[2].startswith("  name:  ") and lines[3].startswith("  value: ")
    return lines[2].removeprefix("  name:  "), lines[3].removeprefix("  value: ")


@pytest.fixture
def signing(env, tmp_path):
    """An apps file whose app `notes` signs, its keys made by the command; the
    environment to run with, and the DNS records the command printed."""
    apps_file = tmp_path / "apps.toml"
    apps_file.write_text(APPS)
    environ = {**env, "MAILROOM_APPS_FILE": str(apps_file)}
    rsa = run(environ, "dkim", "keygen", "--app", "notes")
    assert rsa.returncode == 0, rsa.stderr
    ed25519 = run(environ, "dkim", "keygen", "--app", "notes", "--ed25519", "--json")
    assert ed25519.returncode == 0, ed25519.stderr
    record = json.loads(ed25519.stdout)["record"]
    records = dict([printed_record(rsa.stdout), (record["name"], record["value"])])
    return environ, records


# ---------------------------------------------------------------- keygen


def test_keygen_writes_a_key_only_its_owner_reads_and_prints_its_record(env, tmp_path):
    apps_file = tmp_path / "apps.toml"
    apps_file.write_text(APPS)
    environ = {**env, "MAILROOM_APPS_FILE": str(apps_file)}
    key_file = tmp_path / "keys" / "notes.pem"

    result = run(environ, "dkim", "keygen", "--app", "notes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"Wrote an RSA-2048 key to {key_file} (mode 0600)."
    name, value = printed_record(result.stdout)
    assert name == "mailroom._domainkey.notes.example.com"
    assert value.startswith("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMII")
    assert len(result.stdout.splitlines()) == 4  # the apps file names it: nothing to add
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert b"PRIVATE" not in result.stdout.encode() + result.stderr.encode()

    again = run(environ, "dkim", "keygen", "--app", "notes")
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"Error: {key_file} exists: a key is never replaced (give another --out, and a new "
        "--selector to rotate keys)"
    )
    assert key_file.read_bytes() == key


def test_keygen_for_an_app_without_keys_says_what_to_add(env, tmp_path):
    apps_file = tmp_path / "apps.toml"
    apps_file.write_text(APPS)
    environ = {**env, "MAILROOM_APPS_FILE": str(apps_file)}

    result = run(environ, "dkim", "keygen", "--app", "billing")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: give --out: apps.billing.dkim.key_file is not set"
    )

    out = tmp_path / "billing-2026.pem"
    result = run(environ, "dkim", "keygen", "--app", "billing", "--selector", "b2026",
                 "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert printed_record(result.stdout)[0] == "b2026._domainkey.billing.example.org"
    assert result.stdout.splitlines()[4:] == [
        "Then name the key in the apps file, in [apps.billing.dkim]:",
        f'  key_file = "{out}"',
        '  selector = "b2026"',
    ]


def test_keygen_refuses_an_unknown_app_and_a_missing_apps_file(env, tmp_path):
    apps_file = tmp_path / "apps.toml"
    apps_file.write_text(APPS)
    unknown = run({**env, "MAILROOM_APPS_FILE": str(apps_file)}, "dkim", "keygen", "--app", "x")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--app': no app 'x' in {apps_file} (its apps: billing, notes)"
    )
    bad = run({**env, "MAILROOM_APPS_FILE": str(apps_file)}, "dkim", "keygen", "--app", "notes",
              "--selector", "2026 key")  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--selector': must be a DNS name: labels of letters, digits "
        "and inner hyphens"
    )
    no_file = run(env, "dkim", "keygen", "--app", "notes")
    assert no_file.returncode == 3
    assert no_file.stderr.strip() == (
        "mailroom: configuration error: MAILROOM_APPS_FILE: is not set: DKIM keys are named "
        "per app in the apps file"
    )


# ---------------------------------------------------------------- signed mail


def test_delivered_mail_carries_rsa_and_ed25519_signatures_that_verify(
    make_mailroom, smtp_sink, signing
):
    environ, records = signing
    mailroom = make_mailroom(MAILROOM_APPS_FILE=environ["MAILROOM_APPS_FILE"])
    mailroom.publish(make_event(data={"email": "ada@example.com"}, source="notes"))
    # The sink offers no SMTPUTF8: the transport rewrites To to the IDNA form,
    # and signs what it sends, after that.
    mailroom.publish(make_event(data={"email": "ada@bücher.de"}, source="notes"))
    received = {m["To"]: m for m in smtp_sink.wait_for(2)}
    for message in received.values():
        assert verdicts(message.raw, records) == [True, True]
        assert sorted(message.keys()) == SIGNED_MAIL_HEADERS
    assert "ada@xn--bcher-kva.de" in received
    # The signatures cover what the reader sees: another subject breaks both.
    raw = received["ada@example.com"].raw
    assert verdicts(raw.replace(b"Subject: Your", b"Subject: Our", 1), records) == [False, False]


def test_an_app_without_keys_sends_unsigned_beside_one_that_signs(make_mailroom, smtp_sink,
                                                                  signing):  # fmt: skip
    environ, _ = signing
    mailroom = make_mailroom(MAILROOM_APPS_FILE=environ["MAILROOM_APPS_FILE"])
    mailroom.publish(make_event(data={"email": "bob@example.com"}, source="billing"))
    [message] = smtp_sink.wait_for(1)
    assert "DKIM-Signature" not in message and message["Feedback-ID"].startswith("signup:billing")


def test_the_file_transport_writes_signed_mail_to_inspect(make_mailroom, smtp_sink, signing,
                                                          tmp_path):  # fmt: skip
    environ, records = signing
    outbox = tmp_path / "outbox"
    mailroom = make_mailroom(
        MAILROOM_APPS_FILE=environ["MAILROOM_APPS_FILE"],
        MAILROOM_TRANSPORT="file",
        MAILROOM_OUTBOX_DIR=str(outbox),
    )
    mailroom.publish(make_event(data={"email": "ada@example.com"}, source="notes"))
    [eml] = wait_until(lambda: list(outbox.glob("*.eml")), what="an .eml in the outbox")
    assert verdicts(eml.read_bytes(), records) == [True, True]


def test_send_test_signs_as_the_apps_mail_is_signed(smtp_sink, signing):
    environ, records = signing
    result = run(environ, "send-test", "--to", "ada@example.com", "--app", "notes")
    assert result.returncode == 0, result.stderr
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "mailroom test message"
    assert verdicts(message.raw, records) == [True, True]


def test_a_missing_key_stops_start_up_in_one_line(signing, tmp_path):
    environ, _ = signing
    key_file = tmp_path / "keys" / "notes.ed25519.pem"
    key_file.unlink()
    result = run(environ, "serve", "--port", str(free_port()))
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "mailroom: configuration error: MAILROOM_APPS_FILE: apps.notes.dkim.ed25519_key_file: "
        f"{key_file} does not exist (`mailroom dkim keygen` makes one)"
    ]


# ---------------------------------------------------------------- through Postfix


@pytest.fixture(scope="module")
def postfix(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root to start (CI runs as root)")
    certs = Certificates(tmp_path_factory.mktemp("certs"))
    server = Postfix(certs)
    server.certs = certs
    yield server
    server.stop()


def test_signatures_still_verify_after_postfix_relays_the_mail(make_mailroom, postfix, signing):
    environ, records = signing
    mailroom = make_mailroom(
        MAILROOM_APPS_FILE=environ["MAILROOM_APPS_FILE"],
        MAILROOM_SMTP_PORT=str(postfix.port),
        MAILROOM_SMTP_SECURITY="starttls",
        MAILROOM_SMTP_HOST="localhost",
        MAILROOM_SMTP_CA_FILE=str(postfix.certs.ca_file),
    )
    inbox = postfix.mail / "inbox" / "new"

    def files():  # the Maildir appears with its first mail
        return set(inbox.iterdir()) if inbox.exists() else set()

    before = files()
    mailroom.publish(make_event(data={"email": "ada@example.com"}, source="notes"))
    mailroom.publish(make_event(data={"email": "jürgen@example.org"}, source="notes"))  # SMTPUTF8
    delivered = wait_until(
        lambda: len(found := files() - before) >= 2 and found,
        timeout=30,
        what="Postfix to deliver",
    )
    for path in delivered:
        raw = path.read_bytes()
        # Postfix added its own fields atop ours (the Maildir file has LF endings).
        assert raw.index(b"\nReceived: ") < raw.index(b"\nDKIM-Signature: ")
        assert verdicts(raw, records) == [True, True]
