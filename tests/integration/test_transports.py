"""Transports against real peers: aiosmtpd with TLS and AUTH, Postfix, moto's SES,
a local OAuth token endpoint with an XOAUTH2-checking SMTP server; failover,
configuration checks and `mailroom send-test`."""

import json
import os
import re
import socket
import time
from datetime import UTC, datetime

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from botocore.exceptions import ClientError

from domain.errors import PermanentError, TransientError, TransportConfigError
from domain.messages import build_message, message_id_for
from tests.commands import run
from tests.conftest import make_event
from tests.mail import code_in, parts
from tests.peers import Certificates, Postfix, TokenEndpoint, xoauth2_handler
from tests.servers import SMTPSink, _Handler, free_port, wait_until
from workers.settings import load_settings
from workers.store.tables import Email
from workers.transports import ses as ses_module
from workers.transports.gmail import from_settings as gmail_transport
from workers.transports.ses import SESTransport
from workers.transports.smtp import SMTPTransport, from_settings, password_login

SENDER = "no-reply@notes.example.com"


def message(recipient="ada@example.com", subject="Hello"):
    return build_message(
        sender=SENDER,
        sender_name="Notes",
        recipient=recipient,
        subject=subject,
        text="plain body",
        html="<p>html body</p>",
        message_id=message_id_for(SENDER),
        date=datetime.now(UTC),
    )


def authenticator(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"mailroom", b"s3cret-password"
    )  # fmt: skip
    return AuthResult(success=ok, handled=False, auth_data=data.login.decode() if ok else None)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_sink(certs):
    sink = SMTPSink(
        tls_context=certs.server_context(),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def implicit_tls_sink(certs):
    sink = SMTPSink(
        ssl_context=certs.server_context(),
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,  # the whole session is TLS already
    )
    yield sink
    sink.stop()


def smtp(sink, certs=None, **options) -> SMTPTransport:
    options.setdefault("security", "none")
    return SMTPTransport("127.0.0.1", sink.port, ca_file=certs.ca_file if certs else None,
                         timeout=5, **options)  # fmt: skip


# ---------------------------------------------------------------- SMTP


def test_starttls_with_verified_certificate_and_auth(tls_sink, certs):
    tls_sink.reset()
    login = password_login("mailroom", "s3cret-password")
    transport = smtp(tls_sink, certs, security="starttls", login=login)
    receipt = transport.send(message(), sender=SENDER, recipient="ada@example.com")
    [received] = tls_sink.wait_for(1)
    assert received.login == "mailroom" and received["Subject"] == "Hello"
    assert receipt.transport == "smtp"
    transport.close()


def test_implicit_tls(implicit_tls_sink, certs):
    implicit_tls_sink.reset()
    login = password_login("mailroom", "s3cret-password")
    transport = smtp(implicit_tls_sink, certs, security="tls", login=login)
    transport.send(message(), sender=SENDER, recipient="ada@example.com")
    assert implicit_tls_sink.wait_for(1)[0].login == "mailroom"
    transport.close()


def test_refused_credentials_and_untrusted_certificates_name_the_setting(tls_sink, certs):
    wrong = smtp(tls_sink, certs, security="starttls", login=password_login("mailroom", "nope"))
    with pytest.raises(TransportConfigError) as caught:
        wrong.send(message(), sender=SENDER, recipient="ada@example.com")
    assert caught.value.setting == "MAILROOM_SMTP_PASSWORD"
    assert "535" in str(caught.value)

    untrusted = smtp(tls_sink, None, security="starttls")
    with pytest.raises(TransportConfigError) as caught:
        untrusted.send(message(), sender=SENDER, recipient="ada@example.com")
    assert caught.value.setting == "MAILROOM_SMTP_CA_FILE"
    assert "not trusted" in str(caught.value)


def test_one_connection_is_reused_and_checked_when_idle(smtp_sink):
    transport = smtp(smtp_sink)
    for n in range(3):
        transport.send(message(subject=f"m{n}"), sender=SENDER, recipient="ada@example.com")
    received = smtp_sink.wait_for(3)
    assert len({m.peer for m in received}) == 1
    assert smtp_sink.noops == 0
    transport.idle_check = 0  # every reuse now counts as idle
    transport.send(message(), sender=SENDER, recipient="ada@example.com")
    assert smtp_sink.noops == 1
    assert len({m.peer for m in smtp_sink.wait_for(4)}) == 1
    transport.close()


def test_it_greets_with_the_hosts_name_or_the_configured_one(smtp_sink):
    base = {"MAILROOM_TRANSPORT": "smtp", "MAILROOM_SMTP_HOST": "127.0.0.1",
            "MAILROOM_SMTP_PORT": str(smtp_sink.port), "MAILROOM_SMTP_SECURITY": "none",
            "MAILROOM_TOKEN_SECRET": "x" * 40}  # fmt: skip
    named = {"MAILROOM_SMTP_HELO_NAME": "mx1.example"}
    for extra, greeting in (({}, socket.getfqdn()), (named, "mx1.example")):
        transport = from_settings(load_settings({**base, **extra}))
        receipt = transport.send(message(), sender=SENDER, recipient="ada@example.com")
        transport.close()
        assert smtp_sink.wait_for(1)[-1].helo == greeting
        assert receipt.provider_id is None  # the sink's "250 2.0.0 OK queued" names no id
        smtp_sink.reset()


def test_a_dropped_connection_is_replaced_without_failing_the_mail(smtp_sink):
    transport = smtp(smtp_sink)
    transport.send(message(), sender=SENDER, recipient="ada@example.com")
    smtp_sink.stop()
    smtp_sink.start()  # the kept connection is now dead
    transport.send(message(), sender=SENDER, recipient="ada@example.com")
    first, second = smtp_sink.wait_for(2)
    assert first.peer != second.peer
    transport.close()


def test_a_421_drops_the_connection_and_is_transient(smtp_sink):
    transport = smtp(smtp_sink)
    transport.send(message(), sender=SENDER, recipient="ada@example.com")
    smtp_sink.reply = "421 4.3.2 Service shutting down"
    with pytest.raises(TransientError, match="SMTP 421"):
        transport.send(message(), sender=SENDER, recipient="ada@example.com")
    transport.send(message(), sender=SENDER, recipient="ada@example.com")
    first, second = smtp_sink.wait_for(2)
    assert first.peer != second.peer
    transport.close()


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("450 4.2.1 Mailbox busy", TransientError),
        ("451 4.3.0 Local error", TransientError),
        ("452 4.3.1 Insufficient storage", TransientError),
        ("550 5.1.1 No such user", PermanentError),
        ("552 5.3.4 Message too big", PermanentError),
        ("554 5.7.1 Rejected", PermanentError),
    ],
)
def test_reply_classes(smtp_sink, reply, error):
    smtp_sink.reply = reply
    transport = smtp(smtp_sink)
    with pytest.raises(error) as caught:
        transport.send(message(), sender=SENDER, recipient="ada@example.com")
    assert type(caught.value) is error
    assert str(caught.value) == f"SMTP {reply}"
    # The session survives a refused transaction.
    smtp_sink.reply = None
    transport.send(message(), sender=SENDER, recipient="ada@example.com")
    assert len(smtp_sink.wait_for(1)) == 1
    transport.close()


def test_international_addresses_without_smtputf8(smtp_sink):
    transport = smtp(smtp_sink)
    transport.send(message("ada@bücher.de"), sender=SENDER, recipient="ada@bücher.de")
    [received] = smtp_sink.wait_for(1)
    assert received.envelope_to == ["ada@xn--bcher-kva.de"]
    assert received["To"] == "ada@xn--bcher-kva.de"
    with pytest.raises(PermanentError, match="non-ASCII local part .* does not offer SMTPUTF8"):
        transport.send(message("jürgen@example.com"), sender=SENDER, recipient="jürgen@example.com")
    transport.close()


def test_international_addresses_with_smtputf8():
    sink = SMTPSink(enable_SMTPUTF8=True)  # the shared sink offers no SMTPUTF8
    try:
        transport = smtp(sink)
        transport.send(message("jürgen@bücher.de"), sender=SENDER, recipient="jürgen@bücher.de")
        [received] = sink.wait_for(1)
        assert received.envelope_to == ["jürgen@bücher.de"]
        assert "SMTPUTF8" in received.mail_options
        transport.close()
    finally:
        sink.stop()


def test_the_pipeline_over_starttls_and_auth(make_mailroom, tls_sink, certs):
    tls_sink.reset()
    mailroom = make_mailroom(
        MAILROOM_SMTP_PORT=str(tls_sink.port),
        MAILROOM_SMTP_SECURITY="starttls",
        MAILROOM_SMTP_HOST="localhost",
        MAILROOM_SMTP_USERNAME="mailroom",
        MAILROOM_SMTP_PASSWORD="s3cret-password",
        MAILROOM_SMTP_CA_FILE=str(certs.ca_file),
    )
    mailroom.publish(make_event())
    [received] = tls_sink.wait_for(1)
    assert received.login == "mailroom" and len(code_in(received)) == 6
    assert mailroom.wait_for_status("sent")[0].transport == "smtp"


# ---------------------------------------------------------------- Postfix


@pytest.fixture(scope="module")
def postfix(certs):
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root to start (CI runs as root)")
    server = Postfix(certs)
    yield server
    server.stop()


def test_a_real_mta_delivers_our_mail_to_a_mailbox(make_mailroom, postfix, certs):
    mailroom = make_mailroom(
        MAILROOM_SMTP_PORT=str(postfix.port),
        MAILROOM_SMTP_SECURITY="starttls",
        MAILROOM_SMTP_HOST="localhost",
        MAILROOM_SMTP_CA_FILE=str(certs.ca_file),
        MAILROOM_SMTP_HELO_NAME="mailer.notes.example",
    )
    before = len(postfix.delivered())
    mailroom.publish(make_event(data={"email": "ada@example.com", "name": "Ada"}))
    mailroom.publish(make_event(data={"email": "jürgen@example.org"}))
    delivered = wait_until(
        lambda: len(found := postfix.delivered()) >= before + 2 and found,
        timeout=30,
        what="Postfix to deliver",
    )[before:]
    by_rcpt = {m["To"]: m for m in delivered}
    ada = by_rcpt["ada@example.com"]
    assert ada["Subject"] == "Your Notes verification code"
    assert "Received" in ada  # it really went through the MTA
    assert "with ESMTPS" in ada["Received"]  # RFC 3848: the session used STARTTLS
    code = code_in(ada)
    assert code in parts(ada)[1]
    assert "jürgen@example.org" in by_rcpt  # SMTPUTF8 end to end
    # It greeted with the configured name, not an address literal.
    assert ada["Received"].startswith("from mailer.notes.example (")
    sent = mailroom.wait_for_status("sent", 2)
    assert {e.transport for e in sent} == {"smtp"}
    # Each email keeps the queue id Postfix answered, the one its own logs use.
    queue_ids = {re.search(r" id (\w+)", m["Received"]).group(1) for m in delivered}
    assert {e.provider_id for e in sent} == queue_ids


# ---------------------------------------------------------------- SES


@pytest.fixture
def ses(ses_server, monkeypatch):
    """moto's SES, empty, with our sender verified; AWS credentials from the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ses_server.reset()
    client = SESTransport(region="eu-west-1", endpoint_url=ses_server.url).client
    client.create_email_identity(EmailIdentity=SENDER)
    client.create_configuration_set(ConfigurationSetName="transactional")
    return ses_server


def test_ses_sends_the_raw_message(ses):
    transport = SESTransport(region="eu-west-1", endpoint_url=ses.url,
                             configuration_set="transactional")  # fmt: skip
    sent = message()
    receipt = transport.send(sent, sender=SENDER, recipient="ada@example.com")
    [recorded] = ses.sent()
    assert recorded["id"] == receipt.provider_id and receipt.transport == "ses"
    assert recorded["source"] == SENDER and "ada@example.com" in recorded["destinations"]
    raw = recorded["raw_data"]
    assert f"Message-ID: {sent['Message-ID']}" in raw and "Subject: Hello" in raw


def test_ses_refusing_the_sender_is_permanent(ses):
    transport = SESTransport(region="eu-west-1", endpoint_url=ses.url)
    with pytest.raises(PermanentError, match="SES MessageRejected"):
        transport.send(message(), sender="else@unverified.example.com", recipient="a@example.com")
    assert ses.sent() == []


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("Throttling", 400, TransientError),
        ("TooManyRequestsException", 429, TransientError),
        ("InternalFailure", 500, TransientError),
        ("ServiceUnavailable", 503, TransientError),
        ("MessageRejected", 400, PermanentError),
        ("MailFromDomainNotVerifiedException", 400, TransportConfigError),
        ("AccountSuspendedException", 400, TransportConfigError),
    ],
)
def test_ses_error_classes(code, status, expected):
    error = ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "SendEmail",
    )
    assert type(ses_module.classify(error)) is expected


def test_the_pipeline_through_ses(make_mailroom, ses, smtp_sink):
    mailroom = make_mailroom(
        MAILROOM_TRANSPORT="ses",
        MAILROOM_SES_REGION="eu-west-1",
        MAILROOM_SES_ENDPOINT_URL=ses.url,
        MAILROOM_MAIL_FROM=f"Notes <{SENDER}>",
    )
    mailroom.publish(make_event())
    [sent] = mailroom.wait_for_status("sent")
    [recorded] = ses.sent()
    assert (sent.transport, sent.provider_id) == ("ses", recorded["id"])
    assert "Your Notes verification code" in recorded["raw_data"]


# ---------------------------------------------------------------- Gmail


@pytest.fixture
def google():
    endpoint = TokenEndpoint()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def gmail_sink(google, certs):
    sink = SMTPSink(
        handler_class=xoauth2_handler(google, "sender@gmail.example.com"),
        tls_context=certs.server_context(),
        require_starttls=True,
        auth_required=True,
    )
    yield sink
    sink.stop()


def gmail_env(google, sink, certs) -> dict:
    return {
        "MAILROOM_TRANSPORT": "gmail",
        "MAILROOM_GMAIL_USER": "sender@gmail.example.com",
        "MAILROOM_GMAIL_CLIENT_ID": "client-1",
        "MAILROOM_GMAIL_CLIENT_SECRET": "client-secret-1234",
        "MAILROOM_GMAIL_REFRESH_TOKEN": "refresh-good",
        "MAILROOM_GMAIL_TOKEN_URI": google.url,
        "MAILROOM_GMAIL_SMTP_HOST": "localhost",
        "MAILROOM_GMAIL_SMTP_PORT": str(sink.port),
        "MAILROOM_SMTP_CA_FILE": str(certs.ca_file),
    }


def test_gmail_sends_with_a_cached_token_refreshed_before_expiry(google, gmail_sink, certs, env):
    transport = gmail_transport(load_settings({**env, **gmail_env(google, gmail_sink, certs)}))
    for _ in range(2):
        transport.send(message(), sender=SENDER, recipient="ada@example.com")
        transport.close()  # a new connection logs in again: with the cached token
    received = gmail_sink.wait_for(2)
    assert {m.login for m in received} == {"sender@gmail.example.com"}
    assert len(google.issued) == 1

    google.expires_in = 60  # inside google-auth's refresh margin: due at once
    transport.token(force=True)
    for _ in range(2):
        transport.send(message(), sender=SENDER, recipient="ada@example.com")
        transport.close()
    assert len(gmail_sink.wait_for(4)) == 4
    assert len(google.issued) == 4


def test_a_revoked_refresh_token_is_a_visible_configuration_error(
    make_mailroom, google, gmail_sink, certs, env
):
    google.refresh_tokens.clear()  # the user revoked mailroom's access
    mailroom = make_mailroom(**gmail_env(google, gmail_sink, certs))
    mailroom.publish(make_event())
    [failed] = mailroom.wait_for_failed(1)
    assert failed.reason == "misconfigured" and failed.attempts == 1
    assert "invalid_grant" in failed.error and "MAILROOM_GMAIL_REFRESH_TOKEN" in failed.error
    [line] = [x for x in mailroom.log_lines() if x["event"] == "transport.misconfigured"]
    assert line["level"] == "error" and line["setting"] == "MAILROOM_GMAIL_REFRESH_TOKEN"
    assert "refresh-good" not in mailroom.log.getvalue()

    status = run({**env, **gmail_env(google, gmail_sink, certs)}, "status", "--json")
    assert status.returncode == 1, status.stderr
    report = json.loads(status.stdout)
    assert report["transports"]["gmail"]["state"] == "misconfigured"
    assert report["transports"]["gmail"]["setting"] == "MAILROOM_GMAIL_REFRESH_TOKEN"
    assert report["dead_letters"] == 1


# ---------------------------------------------------------------- failover


def test_failover_to_the_next_transport_and_the_breaker(make_mailroom, smtp_sink, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mailroom = make_mailroom(
        MAILROOM_TRANSPORT="ses,smtp",
        MAILROOM_SES_REGION="eu-west-1",
        MAILROOM_SES_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",  # SES is down
    )
    for n in range(4):
        mailroom.publish(make_event(data={"email": f"user{n}@example.com"}))
    smtp_sink.wait_for(4)
    sent = mailroom.wait_for_status("sent", 4)
    assert {e.transport for e in sent} == {"smtp"}
    chain = mailroom.rt.transport
    assert chain.breakers["ses"].is_open(time.monotonic())


def test_a_permanent_rejection_is_not_retried_elsewhere(make_mailroom, ses, smtp_sink):
    mailroom = make_mailroom(
        MAILROOM_TRANSPORT="ses,smtp",
        MAILROOM_SES_REGION="eu-west-1",
        MAILROOM_SES_ENDPOINT_URL=ses.url,
        MAILROOM_MAIL_FROM="Notes <else@unverified.example.com>",
    )
    mailroom.publish(make_event())
    [failed] = mailroom.wait_for_failed(1)
    assert failed.reason == "rejected" and failed.error.startswith("SES MessageRejected")
    assert smtp_sink.messages == []
    assert mailroom.rows(Email)[0].transport is None


def test_a_misconfigured_first_transport_fails_over(make_mailroom, google, gmail_sink, certs,
                                                    smtp_sink):  # fmt: skip
    google.refresh_tokens.clear()
    mailroom = make_mailroom(
        **{**gmail_env(google, gmail_sink, certs), "MAILROOM_TRANSPORT": "gmail,smtp"}
    )
    mailroom.publish(make_event())
    smtp_sink.wait_for(1)
    assert mailroom.wait_for_status("sent")[0].transport == "smtp"


# ---------------------------------------------------------------- configuration


def test_a_missing_credential_refuses_to_start_in_one_line(env):
    broken = {**env, "MAILROOM_TRANSPORT": "gmail", "MAILROOM_GMAIL_USER": "a@gmail.example.com",
              "MAILROOM_GMAIL_CLIENT_ID": "c", "MAILROOM_GMAIL_CLIENT_SECRET": "s",
              "MAILROOM_GMAIL_REFRESH_TOKEN": ""}  # fmt: skip
    for command in (["worker"], ["serve"], ["send-test", "--to", "a@example.com"]):
        result = run(broken, *command)
        assert result.returncode == 3
        assert result.stderr.strip() == (
            "mailroom: configuration error: MAILROOM_GMAIL_REFRESH_TOKEN: is required when "
            "MAILROOM_TRANSPORT uses gmail"
        )


def test_config_show_masks_every_secret(env):
    secrets = {
        "MAILROOM_SMTP_USERNAME": "mailroom",
        "MAILROOM_SMTP_PASSWORD": "correct-horse-battery-staple",
        "MAILROOM_GMAIL_CLIENT_SECRET": "gmail-client-secret-xyz",
        "MAILROOM_GMAIL_REFRESH_TOKEN": "short",
        "MAILROOM_TOKEN_OLD_SECRETS": "k0=an-old-pepper-that-is-long-enough-123",
        "DATABASE_URL": env["DATABASE_URL"].replace("mailroom@", "mailroom:db-password-9@"),
    }
    result = run({**env, **secrets}, "config", "show")
    assert result.returncode == 0
    out = result.stdout
    for value in (*secrets.values(), env["MAILROOM_TOKEN_SECRET"], "db-password-9"):
        if value != "mailroom" and not value.startswith("postgresql"):
            assert value not in out
    assert "****aple" in out and "****-xyz" in out
    shown = json.loads(run({**env, **secrets}, "config", "show", "--json").stdout)
    assert shown["MAILROOM_GMAIL_REFRESH_TOKEN"] == "****"
    assert shown["MAILROOM_TOKEN_SECRET"] == "****" + env["MAILROOM_TOKEN_SECRET"][-4:]
    assert ":****@" in shown["DATABASE_URL"]
    assert shown["MAILROOM_SMTP_USERNAME"] == "mailroom"


def test_send_test_says_who_accepted_or_what_to_check(env, smtp_sink, monkeypatch):
    result = run(env, "send-test", "--to", "ada@example.com")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("smtp: accepted (127.0.0.1:")
    [received] = smtp_sink.wait_for(1)
    assert received["Subject"] == "mailroom test message"

    down = {**env, "MAILROOM_SMTP_PORT": str(free_port())}
    result = run(down, "send-test", "--to", "ada@example.com")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("smtp: failed: SMTP 127.0.0.1:") and "Connection refused" in lines[0]
    assert lines[1].startswith("smtp: check MAILROOM_SMTP_HOST, MAILROOM_SMTP_PORT")

    failover = {**env, "MAILROOM_TRANSPORT": "ses,smtp", "MAILROOM_SES_REGION": "eu-west-1",
                "MAILROOM_SES_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # fmt: skip
    result = run(failover, "send-test", "--to", "ada@example.com", "--json")
    assert result.returncode == 0
    ses_attempt, smtp_attempt = json.loads(result.stdout)
    assert ses_attempt["transport"] == "ses" and "unreachable" in ses_attempt["error"]
    assert smtp_attempt == {**smtp_attempt, "transport": "smtp", "accepted": True}


class _Refusing(_Handler):
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        return "553 5.7.1 Sender address rejected: not owned by user"


def test_a_refused_sender_is_the_setup_not_the_recipient():
    sink = SMTPSink(handler_class=_Refusing)
    try:
        with pytest.raises(TransportConfigError) as caught:
            smtp(sink).send(message(), sender=SENDER, recipient="ada@example.com")
        assert caught.value.setting == "MAILROOM_MAIL_FROM"
        assert "553 5.7.1" in str(caught.value)
    finally:
        sink.stop()


def test_send_test_sends_as_the_app(env, smtp_sink, tmp_path):
    apps = tmp_path / "apps.toml"
    apps.write_text('[apps.notes]\nfrom = "Notes <hello@notes.example.com>"\n'
                    'public_base_url = "https://notes.example.com"\n')  # fmt: skip
    with_apps = {**env, "MAILROOM_APPS_FILE": str(apps)}
    result = run(with_apps, "send-test", "--to", "ada@example.com")
    assert result.returncode == 2 and "--app" in result.stderr
    assert run(with_apps, "send-test", "--to", "ada@example.com", "--app", "notes").returncode == 0
    assert smtp_sink.wait_for(1)[0]["From"] == "Notes <hello@notes.example.com>"
