"""Poison in the stream: whatever an entry holds, it is dead-lettered at once with
a clear reason and its raw content (redacted, bounded), the batch around it goes
through, and no log line shows an address, a code or a link's token."""

import io
import json
import logging
import sys
import time

import pytest

from domain.policy import MAX_DEAD_LETTER_PAYLOAD, MAX_EVENT_BYTES
from tests.conftest import make_event
from workers import intake
from workers.ingress import decode_entry
from workers.logs import configure_logging
from workers.store.tables import EventRow, FailedEmail

ADDRESS = "ada.lovelace@example.com"
#: Bytes in "a megabyte" of poison.
MEGABYTE = 1_000_000
#: What a dead letter says of a payload it cut.
CUT = f"(raw content cut to its first {MAX_DEAD_LETTER_PAYLOAD} characters)"


def entry(value: bytes | str) -> dict:
    """A stream entry as redis-py reads it: bytes field names and values."""
    return {b"event": value.encode() if isinstance(value, str) else value}


def accept(unit, *entries: dict) -> list[FailedEmail]:
    """What the ingress bridge does with one batch read from the stream."""
    intake.accept_batch(unit.rt, [decode_entry(fields) for fields in entries])
    return unit.rows(FailedEmail)


def refused(unit, fields: dict) -> FailedEmail:
    [failed] = accept(unit, fields)
    assert (failed.reason, failed.status, failed.attempts) == ("invalid_event", "dead", 0)
    assert failed.event_id is None and failed.email_id is None
    return failed


def unmasked(text: str) -> bool:
    return ADDRESS in text or ADDRESS.encode("unicode_escape").decode() in text


# ---------------------------------------------------------------- one kind at a time


def test_malformed_json(unit):
    raw = '{"version": 1, "data": {"email": "ada@example.com",'
    failed = refused(unit, entry(raw))
    assert failed.error.startswith("event: Invalid JSON: EOF while parsing")
    assert failed.payload == raw


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": "1"}, "version: Input should be a valid integer"),
        ({"id": 42}, "id: UUID input should be a string, bytes or UUID object"),
        ({"data": ["ada@example.com"]}, "data: Input should be an object"),
    ],
)
def test_wrong_types(unit, change, error):
    raw = json.dumps({**make_event(), **change})
    failed = refused(unit, entry(raw))
    assert failed.error == error
    assert failed.payload == raw


def test_an_unknown_type(unit):
    raw = json.dumps(make_event("user.deleted"))
    failed = refused(unit, entry(raw))
    assert failed.error.startswith("type: unknown event type; expected one of ")
    assert failed.payload == raw


def test_a_megabyte_is_refused_by_size_and_kept_cut_saying_so(unit):
    raw = json.dumps(make_event(data={"email": ADDRESS, "name": "x" * MEGABYTE}))
    failed = refused(unit, entry(raw))
    assert failed.error == f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES} {CUT}"
    assert failed.payload == raw[:MAX_DEAD_LETTER_PAYLOAD]


def test_a_megabyte_of_unclosed_secret_looking_text_costs_no_more_than_its_size(unit):
    # An unbounded name pattern backtracked over "passpass..." in quadratic time:
    # minutes for a megabyte, the stream stalled behind it.
    raw = '{"password": "hunter2", "x": "' + "pass" * (MEGABYTE // 4)
    started = time.monotonic()
    failed = refused(unit, entry(raw))
    assert time.monotonic() - started < 2
    assert failed.error.startswith(f"event is {len(raw)} bytes")
    assert "hunter2" not in failed.payload
    assert failed.payload.startswith('{"password": "[redacted]", "x": "passpass')


def test_a_thousand_fields_without_an_event_field(unit):
    fields = {f"field{i}".encode(): f"value {i}".encode() for i in range(1000)}
    failed = refused(unit, fields)
    assert failed.error == "stream entry has no 'event' field"
    kept = json.loads(failed.payload)
    assert len(kept) == 1000 and kept["field999"] == "value 999"


def test_a_thousand_fields_beside_a_valid_event(unit):
    event = json.dumps(make_event())
    fields = {b"event": event.encode()} | {f"f{i}".encode(): b"x" for i in range(999)}
    failed = refused(unit, fields)
    assert failed.error == "stream entry has 1000 fields; only 'event' is allowed"
    assert json.loads(failed.payload)["event"] == event
    assert unit.rows(EventRow) == [] and unit.transport.sent == []


def test_a_thousand_fields_of_a_megabyte_each_are_kept_cut(unit):
    fields = {f"f{i}".encode(): b"x" * MEGABYTE for i in range(1000)}
    failed = refused(unit, fields)
    assert failed.error == f"stream entry has no 'event' field {CUT}"
    assert len(failed.payload) == MAX_DEAD_LETTER_PAYLOAD
    assert failed.payload.startswith('{"f0": "xxx')


def test_nul_in_bytes_that_are_not_utf8(unit):
    failed = refused(unit, entry(b"\xff\xfe\x00bad"))
    assert failed.error == "event is not valid UTF-8"
    assert failed.payload == "\\xff\\xfe\\u0000bad"


def test_nul_and_control_bytes_in_utf8(unit):
    failed = refused(unit, entry(b'{"name": "\x00\x01\x07\x1b[31m\x7f"}'))
    assert failed.error.startswith("event: Invalid JSON: control character")
    assert failed.payload == '{"name": "\\u0000\x01\x07\x1b[31m\x7f"}'


def test_nul_and_control_characters_in_a_field_name(unit):
    event = make_event(data={"email": "ada@example.com", "\x00\x1b[2J": 1})
    raw = json.dumps(event)
    failed = refused(unit, entry(raw))
    # The reason quotes the name escaped: it is printed on terminals.
    assert failed.error == "data.\\x00\\x1b[2J: Extra inputs are not permitted"
    assert json.loads(failed.payload) == event


def test_a_lone_surrogate_beside_a_secret(unit):
    # Redaction writes the event back with the surrogate its escape stood for,
    # which UTF-8 cannot encode: the insert raised and the batch was read again
    # and again, everything behind it stuck.
    raw = '{"password": "hunter2", "name": "\\ud800"}'
    failed = refused(unit, entry(raw))
    assert failed.error.startswith("event: Invalid JSON: unexpected end of hex escape")
    assert failed.payload == '{"password": "[redacted]", "name": "\\ud800"}'


def test_nesting_a_hundred_thousand_deep(unit):
    raw = "[" * 100_000 + "]" * 100_000
    failed = refused(unit, entry(raw))
    assert failed.error == f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES} {CUT}"
    assert failed.payload == raw[:MAX_DEAD_LETTER_PAYLOAD]


def test_nesting_deeper_than_any_parser_within_the_size_limit(unit):
    deep = '{"a":' * 2000 + '{"password": "hunter2"}' + "}" * 2000
    failed = refused(unit, entry(deep))
    assert failed.error.startswith("event: Invalid JSON: recursion limit exceeded")
    assert "hunter2" not in failed.payload
    assert failed.payload == deep.replace('"hunter2"', '"[redacted]"')


def test_nesting_just_shallow_enough_for_json_on_a_deep_stack(unit):
    # Redaction walks the JSON only when it is shallow: nothing recurses as
    # deep as the text, whatever the stack already holds.
    deep = '{"a":' * 900 + '{"token": "t0k3n"}' + "}" * 900

    def nested(depth: int):
        if depth:
            return nested(depth - 1)
        return refused(unit, entry(deep))

    limit = sys.getrecursionlimit()
    failed = nested(limit - 150)
    assert "t0k3n" not in failed.payload


def test_an_empty_value(unit):
    failed = refused(unit, entry(b""))
    assert failed.error == "the stream entry's 'event' field is empty"
    assert failed.payload == ""


def test_no_event_field(unit):
    failed = refused(unit, {b"evnt": b'{"id": 1}'})
    assert failed.error == "stream entry has no 'event' field"
    assert failed.payload == '{"evnt": "{\\"id\\": 1}"}'


# ---------------------------------------------------------------- all at once


POISON = [
    entry('{"version": 1, "data": {"email": "ada.lovelace@example.com",'),
    entry(json.dumps({**make_event(data={"email": ADDRESS}), "version": "1"})),
    entry(json.dumps(make_event(data={"email": ADDRESS, "name": "x" * MEGABYTE}))),
    {f"f{i}".encode(): ADDRESS.encode() for i in range(1000)},
    entry(json.dumps(make_event("user.deleted", data={"email": ADDRESS}))),
    entry(b"\xff\xfe\x00bad"),
    entry(b'{"email": "ada.lovelace@example.com\x00\x1b"}'),
    entry('{"password": "hunter2", "email": "ada.lovelace@example.com", "name": "\\ud800"}'),
    entry(json.dumps(make_event(data={"email": ADDRESS, ADDRESS: "\x00"}))),
    entry("[" * 100_000 + "]" * 100_000),
    entry('{"a":' * 4000 + "1" + "}" * 4000),
    entry(b""),
    {b"payload": ADDRESS.encode()},
]


def test_a_batch_of_poison_is_dead_lettered_and_its_valid_event_served(unit):
    valid = json.dumps(make_event(data={"email": ADDRESS, "name": "Ada"}))
    failed = accept(unit, *POISON, entry(valid))

    assert len(failed) == len(POISON)
    assert {f.reason for f in failed} == {"invalid_event"}
    assert all(f.error and "\n" not in f.error for f in failed)
    unit.drain()
    assert [m["To"] for m in unit.transport.sent] == [ADDRESS]
    assert len(unit.rows(FailedEmail)) == len(POISON)  # never retried

    refusals = [line for line in unit.log_lines() if line["event"] == "event.refused"]
    assert len(refusals) == len(POISON)
    assert not unmasked(unit.log.getvalue())
    assert "a***@example.com" in unit.log.getvalue()


def test_decoding_an_entry_parses_nothing():
    raw, reason = decode_entry(entry("[" * 100_000))
    assert reason == f"event is 100000 bytes; the limit is {MAX_EVENT_BYTES}"
    assert decode_entry(entry(b'{"ok": 1}')) == ('{"ok": 1}', None)


# ---------------------------------------------------------------- log lines


def worker_failure(out: io.StringIO, fmt: str) -> str:
    """What Dramatiq logs when an actor raised, with the message's arguments."""
    configure_logging(fmt, "INFO", stream=out)
    try:
        raise ValueError(f"<{ADDRESS}>: code 123456 https://app.example.com/v?token=s3cr3tT0k3n")
    except ValueError:
        logging.getLogger("dramatiq.worker.WorkerThread").error(
            "Failed to process message handle_event('%s', None) with unhandled exception.",
            json.dumps({"data": {"email": ADDRESS}}),
            exc_info=sys.exc_info(),
        )
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_library_failure_line_masks_its_arguments_and_traceback(fmt):
    text = worker_failure(io.StringIO(), fmt)
    assert "Failed to process message handle_event(" in text
    assert "Traceback (most recent call last)" in text
    assert not unmasked(text)
    # Once in the message's arguments, once in the exception's text.
    assert text.count("a***@example.com") == 2


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_library_line_never_shows_a_code_or_a_links_token(fmt):
    text = worker_failure(io.StringIO(), fmt)
    assert "123456" not in text and "s3cr3tT0k3n" not in text
    assert "code [redacted]" in text and "?token=[redacted]" in text


def test_masking_leaves_ordinary_numbers_and_parameters_alone():
    out = io.StringIO()
    configure_logging("json", "INFO", stream=out)
    logging.getLogger("smtplib").warning("status %s after 123456 ms, see ?page=2", 421)
    [line] = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["event"] == "status 421 after 123456 ms, see ?page=2"
