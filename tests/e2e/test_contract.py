"""The contract as a producer meets it: `mailroom schema`, the TypeScript declarations,
and the Node and Python examples publishing every event type through real Redis to a
real worker, refusing a mistaken event before it is published."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from domain.errors import InvalidEvent
from domain.events import EVENT_TYPES, parse_event
from domain.schema import event_schema
from tests.commands import run
from tests.node import RUN_TIMEOUT, install_example, node, node_env
from tests.servers import wait_until
from tests.unit.test_schema import BAD, GOOD, ONLY_THE_WORKERS_KNOW
from workers.store.tables import EventRow

ROOT = Path(__file__).parents[2]
SCHEMA_DIR = ROOT / "schema"

#: The mails one event of every type makes, as (recipient, subject in lower case: the
#: product's name in it comes from the app's settings).
EVERY_MAIL = sorted(
    [
        ("ada@example.com", "your notes verification code"),
        ("ada@example.com", "your notes login code"),
        ("ada@example.org", "confirm your new notes email address"),
        ("ada@example.com", "a change of your notes email address was requested"),
        ("ada@example.com", "reset your notes password"),
        ("grace@example.com", "ada invites you to join analytical engines"),
        ("ada@example.com", "your notes password was changed"),
        ("ada@example.com", "your notes email address was changed"),
    ]
)
PUBLISHED = re.compile(r"published (\S+) ([0-9a-f-]{36})")


@pytest.fixture(scope="module")
def node_example(tmp_path_factory) -> Path:
    return install_example(tmp_path_factory.mktemp("checkout"))


def assert_every_type_published_and_mailed(result, mailroom, smtp_sink, redis_client):
    assert (result.returncode, result.stderr) == (0, "")  # no warning from the validator either
    lines = result.stdout.splitlines()
    published = [PUBLISHED.fullmatch(line).groups() for line in lines[:-1]]
    assert [event_type for event_type, _ in published] == list(EVENT_TYPES)
    messages = smtp_sink.wait_for(len(EVERY_MAIL), timeout=30)
    assert sorted((m["To"], m["Subject"].lower()) for m in messages) == EVERY_MAIL
    # Every entry was read and acknowledged, each became its event, none a dead letter:
    # the refused event never reached the stream.
    wait_until(lambda: redis_client.xlen("mailroom:events") == 0, 15, what="an empty stream")
    assert sorted(str(row.id) for row in mailroom.rows(EventRow)) == sorted(i for _, i in published)
    assert mailroom.failed() == []
    return lines[-1]


def test_the_node_example_publishes_every_type_and_every_mail_arrives(
    node_example, mailroom, smtp_sink, redis_client, redis_server
):
    result = node(node_example, "publish-all.js", REDIS_URL=redis_server.url)

    refusal = assert_every_type_published_and_mailed(result, mailroom, smtp_sink, redis_client)
    assert refusal == "refused before publishing: occurred_at: must be string"


#: The mistakes a Node producer made without a schema, and what the example says.
NODE_MISTAKES = [
    ({"occurred_at": 1763805600000}, "occurred_at: must be string"),
    ({"data": {"email": "ada@example.com", "user_id": 42}}, "data.user_id: must be string,null"),
    ({"data": {"email": "ada@example.com", "userId": "u1"}}, 'data: unknown field "userId"'),
    (
        {"type": "password.reset_requested",
         "data": {"email": "ada@example.com", "account_exists": "true"}},
        "data.account_exists: must be boolean",
    ),
    (
        {"data": {"email": "ada@example.com", "name": "Ada\r\nBcc: x@example.com"}},
        "data.name: invalid. Free text: no control characters (CR, LF, tab...), no encoded "
        "words (=?...?=), no leading or trailing whitespace.",
    ),
]  # fmt: skip

#: Publishes each event of a JSON array through the example's `publish`, printing
#: "ok" or the refusal.
PUBLISH_EACH = """
import { createClient } from "redis";
import { InvalidEvent, publish } from "./mailroom.js";
const events = JSON.parse(await new Response(process.stdin).text());
const client = createClient({ url: process.env.REDIS_URL });
await client.connect();
for (const event of events) {
  try { await publish(client, event); console.log("ok"); }
  catch (error) { if (!(error instanceof InvalidEvent)) throw error; console.log(error.message); }
}
await client.close();
"""


def test_the_node_example_refuses_what_the_workers_would_dead_letter(
    node_example, redis_client, redis_server
):
    valid = GOOD[0]
    events = [{**valid, **change} for change, _ in NODE_MISTAKES]
    for event in events:  # each would become an invalid_event dead letter
        with pytest.raises(InvalidEvent):
            parse_event(json.dumps(event))

    result = node(
        node_example,
        "--input-type=module",
        "-e",
        PUBLISH_EACH,
        stdin=json.dumps([*events, valid]),
        REDIS_URL=redis_server.url,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [message for _, message in NODE_MISTAKES] + ["ok"]
    [(_, fields)] = redis_client.xrange("mailroom:events")  # only the valid one
    assert json.loads(fields[b"event"]) == valid


#: Prints, for each event of a JSON array, null or why the schema refuses it.
CHECK_EACH = """
import { problemWith } from "./mailroom.js";
const events = JSON.parse(await new Response(process.stdin).text());
console.log(JSON.stringify(events.map(problemWith)));
"""


def test_node_and_python_read_the_schema_alike(node_example):
    # JavaScript and Python regular expressions differ (\\s, \\d, $): the patterns
    # must not, or a Node producer would be told otherwise than the workers decide.
    events = [*GOOD, *(event for _, event in ONLY_THE_WORKERS_KNOW), *(e for _, e in BAD)]

    result = node(node_example, "--input-type=module", "-e", CHECK_EACH, stdin=json.dumps(events))

    assert result.returncode == 0, result.stderr
    problems = json.loads(result.stdout)
    accepted = len(GOOD) + len(ONLY_THE_WORKERS_KNOW)
    assert problems[:accepted] == [None] * accepted
    refused = zip(BAD, problems[accepted:], strict=True)
    let_through = [what for (what, _), problem in refused if not problem]
    assert let_through == []


#: The issue's mistakes in a typed producer: TypeScript must refuse each.
TYPED_MISTAKES = """\
import { newEvent } from "./mailroom.js";
const ada = { email: "ada@example.com" };
/** @type {import("../../schema/mailroom-events.js").SignupEvent} */
export const a = { ...newEvent("user.signup_requested", ada, "n"), occurred_at: Date.now() };
export const b = newEvent("login.code_requested", { ...ada, user_id: 42 }, "n");
export const c = newEvent("login.code_requested", { ...ada, userId: "u1" }, "n");
export const d = newEvent("password.reset_requested", { ...ada, account_exists: "true" }, "n");
"""


def test_the_typescript_declarations_refuse_the_same_mistakes(node_example):
    checked = subprocess.run(
        ["npx", "--no-install", "tsc", "-p", "."],
        cwd=node_example,
        env=node_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    # The example type-checks, its @ts-expect-error on a numeric occurred_at included.
    assert checked.returncode == 0, checked.stdout

    (node_example / "mistakes.js").write_text(TYPED_MISTAKES)
    config = {"extends": "./tsconfig.json", "include": ["mistakes.js"]}
    (node_example / "tsconfig.mistakes.json").write_text(json.dumps(config))
    mistaken = subprocess.run(
        ["npx", "--no-install", "tsc", "-p", "tsconfig.mistakes.json"],
        cwd=node_example,
        env=node_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )

    assert mistaken.returncode != 0
    errors = sorted(re.findall(r"^mistakes\.js\((\d+),\d+\): error (TS\d+)", mistaken.stdout, re.M))
    assert [line for line, _ in errors] == ["4", "5", "6", "7"], mistaken.stdout
    assert "'userId' does not exist in type 'LoginCodeRequested'" in mistaken.stdout


def test_the_python_example_publishes_every_type_and_every_mail_arrives(
    mailroom, smtp_sink, redis_client, redis_server
):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "publish_all.py")],
        env={"PATH": os.environ["PATH"], "REDIS_URL": redis_server.url},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )

    refusal = assert_every_type_published_and_mailed(result, mailroom, smtp_sink, redis_client)
    assert re.fullmatch(
        r"refused before publishing: occurred_at: \d{13} is not of type 'string'", refusal
    )


def test_schema_prints_what_is_checked_in():
    any_event = run({}, "schema")
    assert any_event.returncode == 0, any_event.stderr
    assert any_event.stdout == (SCHEMA_DIR / "event.schema.json").read_text()
    assert json.loads(any_event.stdout) == event_schema()

    one_type = run({}, "schema", "invite.created")
    assert one_type.stdout == (SCHEMA_DIR / "invite.created.schema.json").read_text()

    declarations = run({}, "schema", "--typescript")
    assert declarations.stdout == (SCHEMA_DIR / "mailroom-events.d.ts").read_text()


def test_schema_out_writes_the_checked_in_files_and_check_finds_drift(tmp_path):
    out = tmp_path / "schema"

    written = run({}, "schema", "--out", str(out))

    assert written.returncode == 0, written.stderr
    assert written.stdout.splitlines()[0] == f"wrote {out / 'event.schema.json'}"
    names = sorted(p.name for p in SCHEMA_DIR.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        assert (out / name).read_bytes() == (SCHEMA_DIR / name).read_bytes(), name

    clean = run({}, "schema", "--out", str(out), "--check")
    assert (clean.returncode, clean.stdout) == (0, f"{out}: 9 files match the event models\n")

    (out / "email.changed.schema.json").write_text("{}\n")
    (out / "user.signup_requested.schema.json").unlink()
    (out / "user.deleted.schema.json").write_text("{}\n")

    drifted = run({}, "schema", "--out", str(out), "--check")

    assert drifted.returncode == 1
    assert drifted.stderr.splitlines() == [
        f"Error: {out} is out of date with the event models:",
        "  user.signup_requested.schema.json is missing",
        "  email.changed.schema.json differs",
        "  user.deleted.schema.json is not generated any more: delete it",
        f"run `mailroom schema --out {out}` to regenerate",
    ]
    assert (out / "email.changed.schema.json").read_text() == "{}\n"  # --check wrote nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--check"], "--check needs --out DIR"),
        (["invite.created", "--out", "x"], "--out writes every file: it takes no TYPE or"),
        (["invite.created", "--typescript"], "--typescript declares every type: it takes no TYPE"),
        (["user.deleted"], "Invalid value for 'TYPE': 'user.deleted' is not one of"),
    ],
)
def test_schema_usage_errors_are_exit_2(args, message, tmp_path):
    result = run({}, "schema", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert f"Error: {message}" in result.stderr
    assert not (tmp_path / "x").exists()
