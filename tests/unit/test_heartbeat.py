"""Heartbeats: who counts as alive, what is forgotten, and a Redis that fails."""

import io
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis

from workers.heartbeat import KEY, Heartbeat, prune, read
from workers.logs import configure_logging
from workers.runtime import Holds

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeRedis:
    """The few hash commands a heartbeat uses, on a clock the test sets; ``down``
    makes every command fail as an unreachable server does."""

    def __init__(self) -> None:
        self.hash: dict[bytes, bytes] = {}
        self.now = NOW
        self.down = False

    def _check(self, key: str = KEY) -> None:
        assert key == KEY
        if self.down:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    def time(self):
        self._check()
        stamp = self.now.timestamp()
        return int(stamp), int(round(stamp % 1 * 1_000_000))

    def hset(self, key, field, value):
        self._check(key)
        self.hash[field.encode()] = value.encode()

    def hgetall(self, key):
        self._check(key)
        return dict(self.hash)

    def hvals(self, key):
        self._check(key)
        return list(self.hash.values())

    def hdel(self, key, *fields):
        self._check(key)
        gone = [f for f in fields if self.hash.pop(f if isinstance(f, bytes) else f.encode(), 0)]
        return len(gone)

    def close(self) -> None:
        pass


def put(client: FakeRedis, pid: int, age_seconds: float) -> None:
    beat_at = client.now - timedelta(seconds=age_seconds)
    record = {"claimant": f"h-{pid}", "host": "h", "pid": pid, "beat_at": beat_at.isoformat()}
    client.hash[f"h-{pid}".encode()] = json.dumps(record).encode()


def eventually(predicate, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def log():
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream=stream)
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


def test_alive_within_three_beats_gone_until_an_hour_then_forgotten():
    client = FakeRedis()
    for pid, age in [(1, 0.5), (2, 14.9), (3, 15.1), (4, 600), (5, 3601)]:
        put(client, pid, age)
    client.hash[b"garbage"] = b"{not json"
    fleet = read(client)
    assert [w["pid"] for w in fleet.alive] == [1, 2]
    assert [w["pid"] for w in fleet.gone] == [3, 4]  # the most recent first
    assert [w["last_beat_seconds"] for w in fleet.gone] == [15.1, 600.0]
    assert [w["pid"] for w in read(client, alive_within=1).alive] == [1]


def test_pruning_forgets_what_is_over_an_hour_old_or_unreadable():
    client = FakeRedis()
    for pid, age in [(1, 1), (2, 3599), (3, 3601)]:
        put(client, pid, age)
    client.hash[b"garbage"] = b"{not json"
    assert prune(client, client.now) == 2
    assert set(client.hash) == {b"h-1", b"h-2"}


def test_a_beat_says_who_and_how_busy_and_a_stop_takes_it_away():
    client, holds = FakeRedis(), Holds()
    holds.add(uuid.uuid4())
    beat = Heartbeat("redis://127.0.0.1:9/0", "host-42-ab", holds, 8)
    beat.client = client
    beat.beat()
    record = json.loads(client.hash[b"host-42-ab"])
    assert record["pid"] == os.getpid() and record["threads"] == 8 and record["in_flight"] == 1
    assert datetime.fromisoformat(record["beat_at"]) == NOW
    beat.leave()
    assert client.hash == {}


def test_a_failing_redis_is_logged_once_and_never_ends_the_thread(log):
    client = FakeRedis()
    client.down = True
    beat = Heartbeat("redis://127.0.0.1:9/0", "host-42-ab", Holds(), 2, every=0.01)
    beat.client = client
    beat.start()
    try:
        assert eventually(log)
        time.sleep(0.1)  # more failed beats
        assert beat.is_alive()
        assert [line["event"] for line in log()] == ["heartbeat.failed"]
        assert log()[0]["level"] == "warning" and "ConnectionError" in log()[0]["error"]
        client.down = False
        assert eventually(lambda: b"host-42-ab" in client.hash)
        assert "heartbeat.resumed" in [line["event"] for line in log()]
    finally:
        client.down = True  # the goodbye fails too: logged, the record ages out
        beat.stop()
        beat.join(5)
    assert not beat.is_alive()
    assert log()[-1]["event"] == "heartbeat.not_removed"
