"""`mailroom status` tells a dead fleet from an idle one: workers by their
heartbeats, what waits, and an exit code a monitor can act on."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from datetime import datetime, timedelta

import redis
from sqlalchemy import update

from tests.commands import MAILROOM, run
from tests.conftest import make_event
from tests.faults.servers import FaultRedis
from tests.servers import wait_until
from workers import intake
from workers.heartbeat import KEY, Heartbeat, redis_now
from workers.runtime import Holds
from workers.store.tables import Email

#: `mailroom status`'s exit code while work waits and no worker is alive.
EXIT_NO_WORKER = 5


def beats(redis_client) -> dict[int, dict]:
    """The heartbeat records in Redis, by pid."""
    records = (json.loads(raw) for raw in redis_client.hvals(KEY))
    return {record["pid"]: record for record in records}


def age_beat(redis_client, record: dict, seconds: float) -> None:
    """What the record of a process that stopped beating looks like ``seconds`` later."""
    old = redis_now(redis_client) - timedelta(seconds=seconds)
    redis_client.hset(KEY, record["claimant"], json.dumps({**record, "beat_at": old.isoformat()}))


def status_json(env) -> tuple[int, dict]:
    result = run(env, "status", "--json")
    return result.returncode, json.loads(result.stdout)


def test_a_running_worker_is_listed_until_it_stops(mailroom, env):
    result = run(env, "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "transport smtp: unknown"
    assert lines[1] == "workers: 1 alive"
    assert lines[2].split() == ["HOST", "PID", "LAST", "BEAT", "IN", "FLIGHT", "THREADS", "UP",
                                "VERSION"]  # fmt: skip
    host, pid, *_ = lines[3].split()
    assert (host, pid) == (socket.gethostname(), str(os.getpid()))
    assert not any(line.startswith("problem:") for line in lines)

    code, report = status_json(env)
    assert code == 0 and report["problems"] == []
    [worker] = report["workers"]["alive"]
    assert worker["pid"] == os.getpid() and worker["claimant"] == mailroom.rt.claimant
    assert worker["in_flight"] == 0 and worker["threads"] == 8
    assert 0 <= worker["last_beat_seconds"] < report["workers"]["alive_within_seconds"] == 15

    mailroom.stop_worker()  # graceful: the process takes its record with it
    result = run(env, "status")
    assert result.returncode == 0  # nothing waits
    assert "workers: no worker alive (none beat in the last 15s); nothing waits" in result.stdout
    assert "gone:" not in result.stdout
    assert status_json(env)[1]["workers"]["alive"] == []


def test_a_killed_worker_process_stops_counting_as_alive(env, redis_client):
    master = subprocess.Popen(
        [MAILROOM, "worker", "-p", "1", "-t", "1"], env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        [first] = wait_until(lambda: list(beats(redis_client)), 60, what="a worker's first beat")
        os.kill(first, signal.SIGKILL)  # the OOM killer, say: no goodbye
        wait_until(lambda: set(beats(redis_client)) - {first}, 60, what="its replacement")
        records = beats(redis_client)
        killed, [second] = records[first], set(records) - {first}
        age_beat(redis_client, killed, 20)  # as it looks once the window has passed
        code, report = status_json(env)
        assert code == 0
        assert [w["pid"] for w in report["workers"]["alive"]] == [second]
        assert [w["pid"] for w in report["workers"]["gone"]] == [first]
        text = run(env, "status").stdout
        assert "workers: 1 alive" in text
        assert re.search(
            "^gone: 1 stopped beating in the last hour without stopping cleanly "
            rf"\(latest {killed['host']} pid {first}, 2\ds ago\)$", text, re.MULTILINE
        )  # fmt: skip

        master.send_signal(signal.SIGTERM)
        assert master.wait(60) == 0
        report = status_json(env)[1]
        assert report["workers"]["alive"] == []  # the replacement left cleanly
        assert [w["pid"] for w in report["workers"]["gone"]] == [first]
    finally:
        if master.poll() is None:
            os.killpg(master.pid, signal.SIGKILL)
            master.wait()


def test_work_waiting_with_no_worker_alive_is_exit_5(make_mailroom, env, redis_client):
    mailroom = make_mailroom(start_worker=False)
    mailroom.publish(make_event())
    result = run(env, "status")
    assert result.returncode == EXIT_NO_WORKER
    lines = result.stdout.splitlines()
    assert "workers: no worker alive (none beat in the last 15s)" in lines
    assert lines[-1] == (
        "problem: no worker alive while work waits: 1 event in the ingress stream; "
        "start `mailroom worker`"
    )

    # A worker that died a minute ago is no help; neither is a transport's old "ok".
    dead = {"claimant": "h-1-x", "host": "h", "pid": 1, "version": "0", "threads": 8,
            "in_flight": 2, "started_at": "2024-01-01T00:00:00+00:00"}  # fmt: skip
    age_beat(redis_client, dead, 60)
    intake.accept_event(mailroom.rt, json.dumps(make_event(data={"email": "grace@example.com"})))
    asked = mailroom.rt.clock() - timedelta(hours=2)
    with mailroom.rt.engine.begin() as conn:
        conn.execute(update(Email).values(created_at=asked, requested_at=asked))
    mailroom.rt.dispatch.delivery(uuid.uuid4(), delay_ms=60_000)  # a retry, for later
    code, report = status_json(env)
    assert code == EXIT_NO_WORKER
    assert report["workers"]["alive"] == [] and report["workers"]["gone"][0]["pid"] == 1
    assert report["unsent"] == 1 and 7200 <= report["oldest_unsent_seconds"] < 7260
    assert report["delayed"] == {"events": 0, "mail": 1}
    assert report["problems"] == [
        "no worker alive while work waits: 1 unsent email (oldest asked 2h00m ago), "
        "1 event in the ingress stream, 1 message in Dramatiq's queues; start `mailroom worker`"
    ]
    text = run(env, "status").stdout
    assert "oldest unsent: 2h00m since asked" in text and "delayed: events 0, mail 1" in text
    assert "gone: 1 stopped beating in the last hour without stopping cleanly" in text


def test_the_ingress_backlog_is_what_no_bridge_has_finished(make_mailroom, env, redis_client):
    make_mailroom(start_worker=False)
    stream, group = "mailroom:events", "mailroom"
    for n in range(4):
        redis_client.xadd(stream, {"event": f"e{n}"})
    assert status_json(env)[1]["ingress"] == {"unread": 4, "pending": 0}  # no group yet

    redis_client.xgroup_create(stream, group, id="0")
    [[_, entries]] = redis_client.xreadgroup(group, "dead-bridge", {stream: ">"}, count=2)
    redis_client.xack(stream, group, entries[0][0])  # handled, not yet deleted: not waiting
    report = status_json(env)[1]
    assert redis_client.xlen(stream) == 4
    assert report["ingress"] == {"unread": 2, "pending": 1}
    assert report["queues"]["ingress"] == 3


def test_dramatiqs_dead_letter_sets_are_counted(make_mailroom, env):
    mailroom = make_mailroom(start_worker=False)
    mailroom.rt.dispatch.delivery(uuid.uuid4())
    consumer = mailroom.rt.broker.consume("mail", prefetch=1, timeout=1000)
    message = wait_until(lambda: next(consumer), what="the message")
    consumer.nack(message)  # what Dramatiq does once retries are exhausted
    consumer.close()
    assert status_json(env)[1]["broker_dead_letters"] == {"events": 0, "mail": 1}
    assert "broker dead-letter sets: events 0, mail 1" in run(env, "status").stdout


def test_status_json_has_every_section(mailroom, env):
    code, report = status_json(env)
    assert code == 0
    assert set(report) == {
        "checked_at", "workers", "transports", "emails", "unsent", "oldest_unsent_seconds",
        "stale_sending", "dead_letters", "ingress", "queues", "delayed", "broker_dead_letters",
        "problems",
    }  # fmt: skip
    assert set(report["workers"]) == {"alive", "gone", "alive_within_seconds"}
    assert set(report["workers"]["alive"][0]) == {
        "claimant", "host", "pid", "version", "threads", "in_flight", "started_at", "beat_at",
        "last_beat_seconds",
    }  # fmt: skip
    assert report["queues"] == {"ingress": 0, "events": 0, "mail": 0}
    assert report["oldest_unsent_seconds"] is None
    datetime.fromisoformat(report["checked_at"])


def watch(env, *args: str, seconds: float) -> tuple[int, str]:
    process = subprocess.Popen(
        [MAILROOM, "status", *args], env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(seconds)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert err == ""
    return process.returncode, out


def test_watch_redraws_until_ctrl_c(mailroom, env):
    code, out = watch(env, "--watch", "0.5", seconds=4)
    assert code == 0
    frames = out.split("mailroom status at ")[1:]
    assert len(frames) >= 2
    for frame in frames:
        assert "every 0.5s; Ctrl-C stops" in frame and "workers: 1 alive" in frame

    code, out = watch(env, "--watch", "0.5", "--json", seconds=4)
    assert code == 0
    reports = [json.loads(line) for line in out.splitlines()]
    assert len(reports) >= 2
    assert all(report["workers"]["alive"][0]["pid"] == os.getpid() for report in reports)


def test_a_heartbeat_outlives_a_redis_restart(tmp_path):
    server = FaultRedis(tmp_path)
    client = redis.Redis.from_url(server.url)
    beat = Heartbeat(server.url, "host-1-abcd", Holds(), 2, every=0.1)
    try:
        beat.start()
        wait_until(lambda: client.hexists(KEY, "host-1-abcd"), what="the first beat")
        server.kill()
        server.wipe()  # it comes back empty
        time.sleep(0.5)  # beats fail meanwhile
        assert beat.is_alive()
        server.start()
        wait_until(lambda: client.hexists(KEY, "host-1-abcd"), what="a beat after the restart")
        beat.stop()
        beat.join(5)
        assert not beat.is_alive() and not client.hexists(KEY, "host-1-abcd")
    finally:
        beat.stop()
        client.close()
        server.kill()
