"""Poison written straight into the stream, on the real engine (Redis, PostgreSQL,
a running worker): every entry is dead-lettered at once with a clear reason, the
valid event behind it is mailed, the stream is drained, and no worker log line
shows a full address."""

import json

from domain.policy import MAX_DEAD_LETTER_PAYLOAD, MAX_EVENT_BYTES
from tests.conftest import make_event
from tests.servers import wait_until
from workers.actors import HANDLE_EVENT
from workers.ingress import GROUP, STREAM

ADDRESS = "ada.lovelace@example.com"
#: Bytes in "a megabyte" of poison.
MEGABYTE = 1_000_000
#: What a dead letter says of a payload it cut.
CUT = f"(raw content cut to its first {MAX_DEAD_LETTER_PAYLOAD} characters)"

MALFORMED = '{"version": 1, "data": {"email": "ada.lovelace@example.com",'
WRONG_TYPE = json.dumps({**make_event(data={"email": ADDRESS}), "version": "1"})
LARGE = json.dumps(make_event(data={"email": ADDRESS, "name": "x" * MEGABYTE}))
UNKNOWN_TYPE = json.dumps(make_event("user.deleted", data={"email": ADDRESS}))
DEEP = "[" * 100_000 + "]" * 100_000
DEEP_WITHIN_LIMIT = '{"a":' * 2500 + '{"password": "hunter2"}' + "}" * 2500
SURROGATE = '{"password": "hunter2", "email": "ada.lovelace@example.com", "name": "\\ud800"}'

#: (stream entry, the start of its dead letter's error, its payload).
POISON = [
    ({"event": MALFORMED}, "event: Invalid JSON: EOF while parsing", MALFORMED),
    ({"event": WRONG_TYPE}, "version: Input should be a valid integer", WRONG_TYPE),
    (
        {"event": LARGE},
        f"event is {len(LARGE)} bytes; the limit is {MAX_EVENT_BYTES} {CUT}",
        LARGE[:MAX_DEAD_LETTER_PAYLOAD],
    ),
    (
        {f"f{i}": ADDRESS for i in range(1000)},
        "stream entry has no 'event' field",
        json.dumps({f"f{i}": ADDRESS for i in range(1000)}),
    ),
    (
        {"event": WRONG_TYPE} | {f"f{i}": "x" for i in range(999)},
        "stream entry has 1000 fields; only 'event' is allowed",
        json.dumps({"event": WRONG_TYPE} | {f"f{i}": "x" for i in range(999)}),
    ),
    ({"event": UNKNOWN_TYPE}, "type: unknown event type", UNKNOWN_TYPE),
    ({"event": b"\xff\xfe\x00bad"}, "event is not valid UTF-8", "\\xff\\xfe\\u0000bad"),
    (
        {"event": b'{"email": "ada.lovelace@example.com\x00\x01\x1b[2J"}'},
        "event: Invalid JSON: control character",
        '{"email": "ada.lovelace@example.com\\u0000\x01\x1b[2J"}',
    ),
    (
        {"event": SURROGATE},
        "event: Invalid JSON: unexpected end of hex escape",
        SURROGATE.replace('"hunter2"', '"[redacted]"'),
    ),
    (
        {"event": DEEP},
        f"event is {len(DEEP)} bytes; the limit is {MAX_EVENT_BYTES} {CUT}",
        DEEP[:MAX_DEAD_LETTER_PAYLOAD],
    ),
    (
        {"event": DEEP_WITHIN_LIMIT},
        "event: Invalid JSON: recursion limit exceeded",
        DEEP_WITHIN_LIMIT.replace('"hunter2"', '"[redacted]"'),
    ),
    ({"event": ""}, "the stream entry's 'event' field is empty", ""),
    ({"payload": ADDRESS}, "stream entry has no 'event' field", f'{{"payload": "{ADDRESS}"}}'),
]


def test_poison_is_dead_lettered_at_once_and_the_worker_serves_on(mailroom, smtp_sink):
    for fields, _, _ in POISON:
        mailroom.redis.xadd(STREAM, fields)
    mailroom.publish(make_event(data={"email": ADDRESS, "name": "Ada"}))

    [message] = smtp_sink.wait_for(1, timeout=30)
    assert message["To"] == ADDRESS
    failed = sorted(mailroom.wait_for_failed(len(POISON), timeout=30), key=lambda f: f.id)
    assert [(f.reason, f.status, f.attempts) for f in failed] == [
        ("invalid_event", "dead", 0)
    ] * len(POISON)
    for row, (fields, error, payload) in zip(failed, POISON, strict=True):
        assert row.error.startswith(error), (row.error, list(fields)[:3])
        assert row.payload == payload, (row.error, list(fields)[:3])
    assert "hunter2" not in "".join(f.payload for f in failed)

    # Drained: nothing left in the stream, nothing pending, nothing retried.
    wait_until(lambda: mailroom.redis.xlen(STREAM) == 0, what="the stream to drain")
    assert mailroom.redis.xpending(STREAM, GROUP)["pending"] == 0
    assert len(mailroom.failed()) == len(POISON)

    refusals = [line for line in mailroom.log_lines() if line["event"] == "event.refused"]
    assert len(refusals) == len(POISON)
    assert ADDRESS not in mailroom.log.getvalue()


def test_a_failing_actor_logs_its_arguments_and_traceback_masked(mailroom):
    # Dramatiq logs the message's arguments (a raw event) and the traceback when
    # an actor raises: here a call the actor cannot take.
    raw = json.dumps(make_event(data={"email": ADDRESS}))
    actor = mailroom.rt.broker.get_actor(HANDLE_EVENT)
    actor.send_with_options(args=(raw, None, ADDRESS), max_retries=0)

    line = wait_until(
        lambda: next(
            (x for x in mailroom.log_lines() if x["logger"] == "dramatiq.worker.WorkerThread"),
            None,
        ),
        what="Dramatiq's failure line",
    )
    assert line["event"].startswith("Failed to process message handle_event(")
    assert "a***@example.com" in line["event"]
    assert "TypeError" in line["exception"]
    [failed] = mailroom.wait_for_failed(1)
    assert failed.reason == "retries_exhausted"
    assert ADDRESS not in mailroom.log.getvalue()
