"""The JSON Schema producers check events against: generated, checked in, and as strict
as the workers wherever a schema can be."""

import json
import uuid
from pathlib import Path
from typing import Annotated

import pytest
from jsonschema import Draft202012Validator
from pydantic import AfterValidator, TypeAdapter

from domain import schema
from domain.errors import InvalidEvent
from domain.events import EVENT_TYPES, _header_safe, parse_event
from domain.schema_typescript import typescript
from workers.cli.publishing import demo_events
from workers.ingress import FIELD, STREAM

ROOT = Path(__file__).parents[2]
SCHEMA_DIR = ROOT / "schema"


def test_the_checked_in_schema_is_what_the_models_generate():
    generated = schema.schema_files()
    on_disk = {path.name for path in SCHEMA_DIR.iterdir() if path.is_file()}
    stale = sorted(
        name
        for name, text in generated.items()
        if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_bytes() != text.encode()
    )
    extra = sorted(on_disk - set(generated))
    assert not stale and not extra, (
        f"schema/ is out of date with domain/events.py (differs or missing: {stale}; "
        f"not generated: {extra}): run `mailroom schema --out schema` from the top of the "
        "checkout and commit the result"
    )


def test_there_is_one_file_per_type_plus_any_event_and_typescript():
    assert sorted(schema.schema_files()) == sorted(
        [schema.EVENT_FILE, schema.TYPESCRIPT_FILE, *(f"{t}.schema.json" for t in EVENT_TYPES)]
    )


def test_every_schema_is_valid_2020_12_with_a_stable_id():
    for name, text in schema.schema_files().items():
        if name.endswith(".json"):
            document = json.loads(text)
            Draft202012Validator.check_schema(document)
            assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert text.endswith("}\n") and text == schema.schema_text(document)
    assert schema.event_schema()["$id"] == "urn:mailroom:schema:event"
    assert schema.type_schema("invite.created")["$id"] == "urn:mailroom:schema:event:invite.created"


def test_the_schema_says_where_events_go():
    assert (
        f"as the field `{FIELD}` of an XADD to the Redis stream `{STREAM}`"
        in (schema.event_schema()["description"])
    )


def validators(event_type: str | None):
    """Both ways a producer may check: the schema of any event and the type's own, and
    without format checks (the 2020-12 default), so the patterns alone must hold."""
    chosen = [schema.event_schema()]
    if event_type in EVENT_TYPES:
        chosen.append(schema.type_schema(event_type))
    return [Draft202012Validator(s) for s in chosen] + [
        Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER) for s in chosen
    ]


def envelope(type_="user.signup_requested", data=None, **change) -> dict:
    return {
        "version": 1,
        "id": str(uuid.uuid4()),
        "type": type_,
        "source": "notes",
        "occurred_at": "2026-11-22T10:00:00Z",
        "data": data if data is not None else {"email": "ada@example.com"},
        **change,
    }


def readme_examples() -> list[dict]:
    section = (ROOT / "README.md").read_text().split("## Event contract", 1)[1]
    section = section.split("\n## ", 1)[0]
    return [json.loads(b.split("```", 1)[0]) for b in section.split("```json\n")[1:]]


EVERY_FIELD = {
    "user.signup_requested": {"email": "ü@bücher.de", "user_id": "u:1@x", "name": "Ada Lovelace",
                              "locale": "zh-CN"},
    "login.code_requested": {"email": "ada+tag@example.com", "user_id": "u_1", "name": None,
                             "locale": None},
    "email.change_requested": {"user_id": "u1", "current_email": "Ada@Example.COM",
                               "new_email": "ada@xn--bcher-kva.de", "name": "Ada", "locale": "fr"},
    "password.reset_requested": {"email": "ada@example.com", "account_exists": False},
    "invite.created": {"invite_id": "inv.1", "email": "grace@example.com", "inviter_name": "Ada",
                       "workspace_id": "w-1", "workspace_name": "Engines, Ltd. (R&D)",
                       "role": "editor_2", "existing_user": True, "name": "Grace",
                       "locale": "pt_BR"},
    "password.changed": {"email": "ada@example.com", "user_id": "u1", "name": "Ádá ☃"},
    "email.changed": {"user_id": "u1", "old_email": "a.b.c@sub.example.co.uk",
                      "new_email": "ada@example.org"},
}  # fmt: skip

GOOD = [
    *demo_events(),
    *readme_examples(),
    *(envelope(t, data) for t, data in EVERY_FIELD.items()),
    envelope(occurred_at="2026-11-22t10:00:00.123456789z"),
    envelope(occurred_at="2026-11-22T10:00:00.5+05:30"),
    envelope(occurred_at="2026-02-28T23:59:59-00:00"),
    envelope(id="2F1C6EF5-8A4B-4C7E-9D0F-0B7E6F9A1C11"),
    envelope(source="a" * 64),
    envelope(data={"email": "ada@example.com", "user_id": "u" * 128, "name": "x" * 100}),
]


@pytest.mark.parametrize("event", GOOD, ids=lambda e: e["type"])
def test_what_the_workers_accept_the_schema_accepts(event):
    assert parse_event(json.dumps(event)).type == event["type"]
    for validator in validators(event["type"]):
        assert list(validator.iter_errors(event)) == []


def without(event: dict, key: str) -> dict:
    return {k: v for k, v in event.items() if k != key}


SIGNUP = {"email": "ada@example.com"}
INVITE = EVERY_FIELD["invite.created"]
#: (what is wrong, the event): the workers dead-letter each as invalid_event.
BAD = [
    ("occurred_at: Date.now()", envelope(occurred_at=1763805600000)),
    ("occurred_at: seconds", envelope(occurred_at=1763805600)),
    ("occurred_at: naive", envelope(occurred_at="2026-11-22T10:00:00")),
    ("occurred_at: a date", envelope(occurred_at="2026-11-22")),
    ("occurred_at: hour 24", envelope(occurred_at="2026-11-22T24:00:00Z")),
    ("occurred_at: half an offset", envelope(occurred_at="2026-11-22T10:00:00+00")),
    ("userId", envelope("login.code_requested", {"email": "ada@example.com", "userId": "u1"})),
    ("user_id: 42", envelope(data={**SIGNUP, "user_id": 42})),
    ("user_id: newline", envelope(data={**SIGNUP, "user_id": "u1\n"})),
    ("user_id: too long", envelope(data={**SIGNUP, "user_id": "u" * 129})),
    ("user_id: space", envelope(data={**SIGNUP, "user_id": "u 1"})),
    ("account_exists: 'true'",
     envelope("password.reset_requested", {**SIGNUP, "account_exists": "true"})),
    ("account_exists: 1", envelope("password.reset_requested", {**SIGNUP, "account_exists": 1})),
    ("account_exists missing", envelope("password.reset_requested", SIGNUP)),
    ("existing_user: 'false'",
     envelope("invite.created", {**INVITE, "existing_user": "false"})),
    ("role: upper case", envelope("invite.created", {**INVITE, "role": "Admin"})),
    ("invite without workspace", envelope("invite.created", without(INVITE, "workspace_id"))),
    ("version 2", envelope(version=2)),
    ("version '1'", envelope(version="1")),
    ("version true", envelope(version=True)),
    ("unknown type", envelope("user.deleted")),
    ("no type", without(envelope(), "type")),
    ("no data", without(envelope(), "data")),
    ("data not an object", envelope(data=["ada@example.com"])),
    ("id not a UUID", envelope(id="42")),
    ("id a number", envelope(id=42)),
    ("source with a space", envelope(source="Notes App")),
    ("source too long", envelope(source="a" * 65)),
    ("extra envelope field", envelope(trace="x")),
    ("extra data field", envelope(data={**SIGNUP, "plan": "pro"})),
    ("email missing", envelope(data={})),
    ("email a list", envelope(data={"email": ["ada@example.com"]})),
    ("display name", envelope(data={"email": "Ada <ada@example.com>"})),
    ("quoted local part", envelope(data={"email": '"ada"@example.com'})),
    ("full-width @", envelope(data={"email": "ada＠example.com"})),
    ("no domain dot", envelope(data={"email": "ada@localhost"})),
    ("IP literal", envelope(data={"email": "ada@[127.0.0.1]"})),
    ("two dots", envelope(data={"email": "ada..b@example.com"})),
    ("trailing dot", envelope(data={"email": "ada@example.com."})),
    ("underscore domain", envelope(data={"email": "ada@ex_ample.com"})),
    ("space in address", envelope(data={"email": "ada @example.com"})),
    ("encoded word address", envelope(data={"email": "=?UTF-8?Q?ada?=@example.com"})),
    ("name: CRLF", envelope(data={**SIGNUP, "name": "Ada\r\nBcc: x@example.com"})),
    ("name: tab", envelope(data={**SIGNUP, "name": "Ada\tL"})),
    ("name: encoded word", envelope(data={**SIGNUP, "name": "=?UTF-8?B?QWRh?="})),
    ("name: leading space", envelope(data={**SIGNUP, "name": " Ada"})),
    ("name: trailing nbsp", envelope(data={**SIGNUP, "name": "Ada\u00a0"})),
    ("name: empty", envelope(data={**SIGNUP, "name": ""})),
    ("name: 101 characters", envelope(data={**SIGNUP, "name": "x" * 101})),
    ("name: newline at the end", envelope(data={**SIGNUP, "name": "Ada\n"})),
    ("locale: not a tag", envelope(data={**SIGNUP, "locale": "english"})),
]  # fmt: skip


@pytest.mark.parametrize(("what", "event"), BAD, ids=[what for what, _ in BAD])
def test_what_the_workers_refuse_the_schema_refuses(what, event):
    with pytest.raises(InvalidEvent):
        parse_event(json.dumps(event))
    for validator in validators(event.get("type")):
        assert list(validator.iter_errors(event)) != [], f"the schema accepts {what}"


#: What the workers refuse and no schema can tell: the address checks only
#: email-validator knows, and 1.0 for 1 (JSON Schema compares numbers by value; a
#: JavaScript producer cannot even write 1.0).  Producers learn these from the dead
#: letter, or from ``mailroom publish`` and ``workers.ingress.publish``, which run
#: the workers' rules.
ONLY_THE_WORKERS_KNOW = [
    ("reserved .local", envelope(data={"email": "ada@intranet.local"})),
    ("reserved .test", envelope(data={"email": "ada@example.test"})),
    ("label starting with -", envelope(data={"email": "ada@-example.com"})),
    ("version 1.0", envelope(version=1.0)),
]


@pytest.mark.parametrize(
    ("what", "event"), ONLY_THE_WORKERS_KNOW, ids=[w for w, _ in ONLY_THE_WORKERS_KNOW]
)
def test_what_only_the_workers_can_tell(what, event):
    with pytest.raises(InvalidEvent):
        parse_event(json.dumps(event))
    assert all(list(v.iter_errors(event)) == [] for v in validators(event["type"])), what


def test_the_text_pattern_refuses_exactly_what_the_worker_refuses():
    # Every character of the first planes, in the middle and at either end of a name.
    name = schema.event_schema()["$defs"]["SignupRequested"]["properties"]["name"]
    assert name["pattern"].startswith(schema.TEXT_PATTERN[:-1])
    pattern = Draft202012Validator({"type": "string", "pattern": name["pattern"]})
    disagreements = []
    for code in [*range(0x3100), 0xFEFF, 0xFFFD, 0x1F600]:
        for text in (f"A{chr(code)}B", f"{chr(code)}AB", f"AB{chr(code)}", f"A=?{chr(code)}"):
            try:
                _header_safe(text)
                worker_accepts = True
            except ValueError:
                worker_accepts = False
            if pattern.is_valid(text) != worker_accepts:
                disagreements.append(text)
    assert disagreements == []


def test_the_errors_name_the_field_a_producer_got_wrong():
    from jsonschema.exceptions import best_match

    checker = Draft202012Validator(schema.event_schema())

    def error_of(event):
        error = best_match(checker.iter_errors(event))
        return ".".join(map(str, error.absolute_path)), error.message

    assert error_of(envelope(occurred_at=1763805600000)) == (
        "occurred_at",
        "1763805600000 is not of type 'string'",
    )
    assert error_of(envelope(data={**SIGNUP, "user_id": 42})) == (
        "data.user_id",
        "42 is not of type 'string', 'null'",
    )
    assert error_of(envelope(data={**SIGNUP, "userId": "u1"})) == (
        "data",
        "Additional properties are not allowed ('userId' was unexpected)",
    )
    reset = envelope("password.reset_requested", {**SIGNUP, "account_exists": "true"})
    assert error_of(reset) == ("data.account_exists", "'true' is not of type 'boolean'")


def test_a_validator_the_schema_cannot_express_stops_the_generation():
    def shouty(value: str) -> str:
        return value.upper()

    with pytest.raises(ValueError, match="shouty validates event fields in code"):
        TypeAdapter(Annotated[str, AfterValidator(shouty)]).json_schema(
            schema_generator=schema._ContractSchema
        )


def test_typescript_declares_each_type_closely():
    declarations = schema.schema_files()[schema.TYPESCRIPT_FILE]
    assert "export type MailroomEvent =\n  | SignupEvent\n" in declarations
    assert '  type: "password.reset_requested";\n  /** The type\'s payload. */\n' in declarations
    assert "  account_exists: boolean;\n" in declarations
    assert "  existing_user?: boolean;\n" in declarations
    assert "  version: 1;\n" in declarations
    assert "  occurred_at: string;\n" in declarations
    assert "  user_id?: string | null;\n" in declarations


def test_typescript_refuses_a_shape_it_cannot_declare():
    odd = schema.event_schema()
    odd["$defs"]["SignupRequested"]["properties"]["tags"] = {"type": "array"}
    with pytest.raises(ValueError, match="no TypeScript for the schema"):
        typescript(odd)
