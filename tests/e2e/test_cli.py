"""The ``mailroom`` command as an operator runs it: a real process, real exit codes."""

import json
import os
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from domain.tokens import code_digest
from tests.commands import MAILROOM, run
from tests.conftest import TOKEN_SECRET, make_event
from tests.mail import secrets_in
from tests.servers import wait_until
from workers import intake
from workers.store.tables import Email


def code_digest_of(challenge, code: str) -> str:
    return code_digest(
        TOKEN_SECRET.encode(),
        key_id=challenge.key_id,
        app=challenge.app,
        purpose=challenge.purpose,
        challenge_id=str(challenge.id),
        email=challenge.email,
        code=code,
    )


def test_a_bad_setting_stops_the_command_with_one_line(env):
    result = run({**env, "MAILROOM_SMTP_PORT": "smtp"}, "failed", "list")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "mailroom: configuration error: MAILROOM_SMTP_PORT: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]

    missing = {k: v for k, v in env.items() if k != "MAILROOM_TOKEN_SECRET"}
    missing["MAILROOM_TOKEN_SECRET"] = ""  # empty counts as unset
    result = run(missing, "failed", "list")
    assert result.returncode == 3
    assert "MAILROOM_TOKEN_SECRET: is required when REDIS_URL is set" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_redis_is_exit_4(env):
    result = run({**env, "REDIS_URL": "redis://127.0.0.1:1/0"}, "publish", "user.signup_requested",
                 "--data", '{"email": "ada@example.com"}')  # fmt: skip
    assert result.returncode == 4
    assert result.stderr.startswith("mailroom: cannot reach Redis:")


def test_publish_validates_then_prints_the_event_id(env, redis_client):
    result = run(env, "publish", "user.signup_requested", "--source", "notes",
                 "--data", '{"email": "ada@example.com", "name": "Ada"}')  # fmt: skip
    assert result.returncode == 0, result.stderr
    event_id = result.stdout.strip()
    assert uuid.UUID(event_id)
    [(_, fields)] = redis_client.xrange("mailroom:events")
    event = json.loads(fields[b"event"])
    assert event["id"] == event_id and event["source"] == "notes"

    result = run(env, "publish", "user.signup_requested", "--data", '{"email": "not-an-address"}')
    assert result.returncode == 1
    assert result.stderr.startswith("mailroom: invalid event: data.email: ")
    assert redis_client.xlen("mailroom:events") == 1


def test_publish_from_a_jsonl_file(env, redis_client, tmp_path):
    good = [make_event(), make_event()]
    lines = [json.dumps(good[0]), json.dumps({"type": "nope"}), "", json.dumps(good[1])]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run(env, "publish", "--file", str(path))
    assert result.returncode == 1
    assert result.stdout.split() == [good[0]["id"], good[1]["id"]]
    assert "line 2: " in result.stderr
    assert redis_client.xlen("mailroom:events") == 2

    result = run(env, "publish", "--file", "-", "--json", stdin=json.dumps(good[0]) + "\n")
    assert result.returncode == 0
    assert json.loads(result.stdout) == [{"line": 1, "id": good[0]["id"]}]


def test_usage_errors_are_exit_2(env):
    assert run(env, "publish").returncode == 2
    assert run(env, "failed", "replay").returncode == 2
    result = run(env, "failed", "list", "--since", "yesterday")
    assert result.returncode == 2 and "30m, 2h, 7d" in result.stderr
    assert "'--since'" in result.stderr
    result = run(env, "failed", "list", "--limit", "-1")
    assert result.returncode == 2 and "Invalid value for '--limit'" in result.stderr
    result = run(env, "failed", "list", "--offset", "-5")
    assert result.returncode == 2 and "'--offset'" in result.stderr
    result = run(env, "failed", "replay", "--reason", "rejected")
    assert result.returncode == 2 and "go with --all" in result.stderr
    result = run(env, "failed", "replay", "--all", "--rate", "0")
    assert result.returncode == 2 and "'--rate'" in result.stderr


def test_dead_letters_list_show_replay_discard(mailroom, smtp_sink, env):
    assert run(env, "failed", "list").stderr.strip() == "no dead letters"

    smtp_sink.reply = "550 5.1.1 mailbox unavailable"
    mailroom.publish(make_event())
    mailroom.publish(make_event(data={"email": "grace@example.com"}))
    mailroom.publish("{broken")
    mailroom.wait_for_failed(3)
    smtp_sink.reply = None

    table = run(env, "failed", "list")
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "ID", "FAILED", "AGE", "STATUS", "REASON", "KIND", "APP", "RECIPIENT", "TRIES",
        "REPLAY_OF", "REPLAYED_AS", "ERROR",
    ]  # fmt: skip
    assert len(rows) == 3
    assert table.stderr.strip() == "rows 1-3 of 3, newest first"
    # Masked, with a keyed tag that tells the two recipients apart.
    recipients = set(re.findall(r"\S+@example\.com#[a-z2-7]{8}", table.stdout))
    assert {r.split("#")[0] for r in recipients} == {"a***@example.com", "g***@example.com"}
    assert "ada@" not in table.stdout and "grace@" not in table.stdout

    listed = json.loads(run(env, "failed", "list", "--json", "--reason", "rejected").stdout)
    assert {row["recipient"] for row in listed} == {"ada@example.com", "grace@example.com"}
    assert all(row["error"].startswith("SMTP 550") and row["attempts"] == 1 for row in listed)
    assert json.loads(run(env, "failed", "list", "--json", "--since", "1h").stdout)
    assert json.loads(run(env, "failed", "list", "--json", "--since", "2099-01-01").stdout) == []

    invalid = json.loads(run(env, "failed", "list", "--json", "--reason", "invalid_event").stdout)
    shown = run(env, "failed", "show", str(invalid[0]["id"]))
    assert shown.returncode == 0
    assert "reason:            invalid_event" in shown.stdout
    assert shown.stdout.rstrip().endswith("payload:\n{broken")

    missing = run(env, "failed", "show", "999")
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error: no dead letter with id 999")

    # Replay: a new mail with a new code; the row records it; a second replay is refused.
    ada = next(row for row in listed if row["recipient"] == "ada@example.com")
    dry = run(env, "failed", "replay", "--all", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    *lines, summary = dry.stdout.splitlines()
    assert len(lines) == 3
    assert sum("would skip rejected" in line for line in lines) == 2
    assert summary.startswith("would replay 0 email(s) and 1 event(s); skipped 2: rejected 2")
    assert smtp_sink.messages == []

    guarded = run(env, "failed", "replay", str(ada["id"]))
    assert guarded.returncode == 1  # the only row was skipped: nothing done
    assert "skipped rejected: the address refused it for good" in guarded.stdout
    replayed = run(env, "failed", "replay", str(ada["id"]), "--force")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed as email" in replayed.stdout
    [first] = smtp_sink.wait_for(1)
    again = run(env, "failed", "replay", str(ada["id"]), "--force")
    assert again.returncode == 1
    assert f"dead letter {ada['id']} is already replayed" in again.stderr
    record = json.loads(run(env, "failed", "show", str(ada["id"]), "--json").stdout)
    assert record["status"] == "replayed" and record["replayed_email_id"]
    assert record["replayed_as"] == record["replayed_email_id"]
    assert record["replay_outcome"] == "sent"

    replayed = run(env, "failed", "replay", str(ada["id"]), "999", "--force")
    assert replayed.returncode == 1

    # The replayed mail carries a new code: the refused one no longer verifies.
    refused = next(m for m in smtp_sink.rejected if m["To"] == "ada@example.com")
    assert first["To"] == "ada@example.com"
    assert secrets_in(first)[0] != secrets_in(refused)[0]
    assert secrets_in(first)[1] != secrets_in(refused)[1]
    [challenge] = [c for c in mailroom.challenges() if c.email == "ada@example.com"]
    assert challenge.code_hash == code_digest_of(challenge, secrets_in(first)[0])
    assert challenge.code_hash != code_digest_of(challenge, secrets_in(refused)[0])

    # An invalid event replays by publishing its raw content again.
    assert run(env, "failed", "replay", str(invalid[0]["id"])).returncode == 0
    wait_until(lambda: len(mailroom.failed()) == 4, what="the replayed event to fail again")

    grace = next(row for row in listed if row["recipient"] == "grace@example.com")
    discarded = run(env, "failed", "discard", str(grace["id"]))
    assert (discarded.returncode, discarded.stdout.strip()) == (0, f"{grace['id']}: discarded")
    again = run(env, "failed", "discard", str(grace["id"]))
    assert again.returncode == 1 and "is already discarded" in again.stderr
    assert run(env, "failed", "replay", str(grace["id"]), "--force").returncode == 1

    nothing = run(env, "failed", "replay", "--all", "--reason", "render_error")
    assert (nothing.returncode, nothing.stderr.strip()) == (1, "Error: nothing to replay")
    assert len(smtp_sink.messages) == 1


def test_db_upgrade_on_a_fresh_sqlite_file(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
    result = run(env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert run(env, "failed", "list", "--json").stdout.strip() == "[]"


@pytest.mark.slow
def test_worker_command_runs_dramatiq_processes(env, smtp_sink, redis_server):
    """The Procfile's worker, fed by raw redis-cli: no Dramatiq on the producer side."""
    process = subprocess.Popen(
        [MAILROOM, "worker", "--processes", "1", "--threads", "2"],
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        event = make_event(data={"email": "ada@example.com"})
        subprocess.run(
            ["redis-cli", "-u", redis_server.url, "XADD", "mailroom:events", "*",
             "event", json.dumps(event)],
            check=True, capture_output=True,
        )  # fmt: skip
        [message] = smtp_sink.wait_for(1, timeout=30)
        assert message["To"] == "ada@example.com"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["event"] == "email.sent" for line in lines)
    errors = [line for line in lines if line["level"] in ("error", "critical")]
    assert not errors, errors


def test_status_shows_health_mail_dead_letters_and_queues(make_mailroom, env, smtp_sink):
    mailroom = make_mailroom(start_worker=False)
    mailroom.publish(make_event())  # waits in the ingress stream
    mailroom.rt.dispatch.event("{broken")  # waits in the events queue
    report = run(env, "status", "--json")
    assert report.returncode == 5, report.stderr  # work waits and no worker is alive
    shown = json.loads(report.stdout)
    sections = ("transports", "emails", "stale_sending", "dead_letters", "queues")
    assert {section: shown[section] for section in sections} == {
        "transports": {"smtp": {"state": "unknown", "error": None, "setting": None}},
        "emails": {},
        "stale_sending": 0,
        "dead_letters": 0,
        "queues": {"ingress": 1, "events": 1, "mail": 0},
    }
    mailroom.start()
    smtp_sink.wait_for(1)
    mailroom.wait_for_failed(1)
    text = run(env, "status")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith("transport smtp: ok")
    assert "emails: sent 1" in lines and "dead letters: 1" in lines


def test_status_shows_a_failing_transport_while_it_fails(make_mailroom, env, smtp_sink):
    smtp_sink.stop()
    mailroom = make_mailroom()
    mailroom.publish(make_event())
    wait_until(
        lambda: any(line["event"] == "email.retrying" for line in mailroom.log_lines()),
        what="a failed attempt",
    )
    failing = run(env, "status", "--json")
    assert failing.returncode == 1
    smtp = json.loads(failing.stdout)["transports"]["smtp"]
    assert smtp["state"] == "failing" and "unreachable" in smtp["error"]
    assert run(env, "status").stdout.startswith("transport smtp: failing: SMTP 127.0.0.1")

    smtp_sink.start()
    mailroom.wait_for_status("sent", timeout=20)
    recovered = run(env, "status", "--json")
    assert recovered.returncode == 0
    assert json.loads(recovered.stdout)["transports"]["smtp"]["state"] == "ok"


def test_status_counts_emails_held_past_their_claim_as_stale(make_mailroom, env):
    mailroom = make_mailroom(start_worker=False)
    intake.accept_event(mailroom.rt, json.dumps(make_event()))  # held for this process
    [email] = mailroom.emails()
    assert email.status == "sending"
    report = run(env, "status", "--json")
    assert json.loads(report.stdout)["stale_sending"] == 0  # its lease runs
    lapsed = mailroom.rt.clock() - timedelta(seconds=1)
    with mailroom.rt.engine.begin() as conn:  # the process died: nobody renews it
        conn.execute(update(Email).where(Email.id == email.id).values(lease_until=lapsed))
    report = run(env, "status", "--json")
    assert json.loads(report.stdout)["stale_sending"] == 1
    assert "stale: 1 sending past their claim (their worker is gone)" in run(env, "status").stdout


def test_a_database_without_the_schema_says_what_to_run(tmp_path):
    result = run({"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}, "failed", "list")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "mailroom: the database has no mailroom schema yet: run `mailroom db upgrade`"
    )


def test_purge_counts_then_removes_what_retention_lets_go(env):
    from sqlalchemy import func, select, text

    from tests import aged_rows
    from workers import db
    from workers.retention import Retention, purge
    from workers.settings import load_settings
    from workers.store.retention import PURGE_LOCK

    engine = db.make_engine(load_settings(env).sqlalchemy_url)
    with engine.begin() as conn:
        ids = aged_rows.build(conn, datetime.now(UTC))
    everything = {name: set(ids[name]) for name in ids}
    expected = aged_rows.gone_counts(ids)
    assert expected == {
        "failed_emails": 4,
        "emails": 8,
        "challenges": 4,
        "events": 6,
        "suppressions": 1,
        "failed_webhooks": 2,
    }

    def left():
        with engine.connect() as conn:
            return aged_rows.remaining(conn, ids)

    try:
        dry = run(env, "purge", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout) == {
            "dry_run": True,
            "counts": expected,
            "retention_days": {"emails": 30, "events": 30, "challenges": 7, "dead_letters": 90},
        }
        dry = run(env, "purge", "--dry-run")
        assert dry.stdout.splitlines()[0].split() == ["TABLE", "WOULD", "REMOVE"]
        assert left() == everything

        with engine.connect() as other:  # another process is purging
            assert other.scalar(select(func.pg_try_advisory_lock(PURGE_LOCK)))
            busy = run(env, "purge")
            assert busy.returncode == 1
            assert "another process is purging right now" in busy.stderr
            assert purge(engine, datetime.now(UTC), Retention()) is None
            other.scalar(select(func.pg_advisory_unlock(PURGE_LOCK)))
        assert left() == everything

        done = run(env, "purge")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "TABLE            REMOVED",
            f"failed_emails    {expected['failed_emails']}",
            f"emails           {expected['emails']}",
            f"challenges       {expected['challenges']}",
            f"events           {expected['events']}",
            f"suppressions     {expected['suppressions']}",
            f"failed_webhooks  {expected['failed_webhooks']}",
        ]
        assert left() == aged_rows.KEPT
        again = run(env, "purge", "--json")
        assert json.loads(again.stdout)["counts"] == dict.fromkeys(expected, 0)

        # In process, on a pooled connection: the lock is given back after the purge.
        assert purge(engine, datetime.now(UTC), Retention()) == dict.fromkeys(expected, 0)
        with engine.connect() as conn:
            held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            assert conn.scalar(text(held)) == 0
    finally:
        engine.dispose()

    unreachable = {**env, "DATABASE_URL": "postgresql://mailroom@127.0.0.1:1/mailroom"}
    result = run(unreachable, "purge")
    assert result.returncode == 4
    assert result.stderr.startswith("mailroom: cannot use the database:")
