"""Worker heartbeats: which worker processes are alive, for `mailroom status`.

Every worker process (each of ``mailroom worker``'s, and ``mailroom dev``) runs a
``Heartbeat`` thread that writes a small record about itself into one Redis hash
every ``HEARTBEAT_EVERY`` seconds, and removes it when the process stops
gracefully.  A process killed outright cannot remove it: its record stops
changing, and once its last beat is older than ``ALIVE_WITHIN`` it counts as
gone.  Records older than ``FORGET_AFTER`` are pruned by the processes that
beat (`mailroom status` only reads), so the hash does not keep every pid that
ever ran.

Beats are stamped with Redis's own clock (``TIME``), and read against it: one
clock for every host, so a host whose clock is a few seconds off neither looks
dead nor stays alive after it died.
"""

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import redis

from workers.logs import get_logger
from workers.redisconn import connect

if TYPE_CHECKING:
    from workers.runtime import Holds

#: Redis hash: claimant (one worker process) -> JSON record of its last beat.
KEY = "mailroom:workers"
#: Seconds between two beats of one process.
HEARTBEAT_EVERY = 5.0
#: Seconds since its last beat within which a process counts as alive: three
#: beats, so one slow or lost write does not report a live process dead.
ALIVE_WITHIN = 3 * HEARTBEAT_EVERY
#: Seconds after its last beat when a gone process's record is pruned.
FORGET_AFTER = 3600.0
#: Seconds between two prunings by one process.
PRUNE_EVERY = 60.0
#: Seconds a beat waits on Redis: a blackholed server must not hold the thread
#: (nor the worker's shutdown, which waits for it) longer than a beat.
REDIS_TIMEOUT = HEARTBEAT_EVERY

log = get_logger("mailroom.heartbeat")


def _version() -> str:
    try:
        return version("mailroom")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def redis_now(client: redis.Redis) -> datetime:
    seconds, micros = client.time()
    return datetime.fromtimestamp(seconds + micros / 1_000_000, UTC)


class Heartbeat(threading.Thread):
    """Beats for one worker process while it runs; leaves when stopped."""

    def __init__(
        self,
        redis_url: str,
        claimant: str,
        holds: "Holds",
        threads: int,
        *,
        every: float = HEARTBEAT_EVERY,
    ) -> None:
        super().__init__(name="mailroom-heartbeat", daemon=True)
        self.client = connect(
            redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        self.claimant = claimant
        self.holds = holds
        self.threads = threads
        self.every = every
        self.stopping = threading.Event()
        self.started_at = datetime.now(UTC)
        self.host = socket.gethostname()
        self.version = _version()
        self.failing = False
        self.next_prune = 0.0

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        # At once, then every beat: a process is listed as soon as it serves.
        while not self.stopping.is_set():
            self.beat_safely()
            self.stopping.wait(self.every)
        self.leave()
        self.client.close()

    def record(self, now: datetime) -> dict:
        return {
            "claimant": self.claimant,
            "host": self.host,
            "pid": os.getpid(),
            "version": self.version,
            "threads": self.threads,
            "in_flight": len(self.holds.snapshot()),
            "started_at": self.started_at.isoformat(),
            "beat_at": now.isoformat(),
        }

    def beat(self) -> None:
        now = redis_now(self.client)
        self.client.hset(KEY, self.claimant, json.dumps(self.record(now)))
        if time.monotonic() >= self.next_prune:
            self.next_prune = time.monotonic() + PRUNE_EVERY
            prune(self.client, now)

    def beat_safely(self) -> None:
        # Nothing may end this thread: a process that stopped beating but still
        # works would be reported dead.  Redis down is retried at the next beat
        # (and a Redis that came back empty gets the record again then).
        try:
            self.beat()
        except Exception as exc:
            if not self.failing:
                log.warning("heartbeat.failed", error=f"{type(exc).__name__}: {exc}")
            self.failing = True
            return
        if self.failing:
            log.info("heartbeat.resumed")
        self.failing = False

    def leave(self) -> None:
        try:
            self.client.hdel(KEY, self.claimant)
        except redis.RedisError as exc:  # the record ages out as if the process died
            log.warning("heartbeat.not_removed", error=str(exc))


def _parse(raw: bytes) -> dict | None:
    try:
        record = json.loads(raw)
        record["beat_at"] = datetime.fromisoformat(record["beat_at"])
    except (ValueError, KeyError, TypeError):
        return None
    return record


def prune(client: redis.Redis, now: datetime) -> int:
    """Remove the records of processes gone for longer than ``FORGET_AFTER``
    (and any that cannot be read); how many."""
    forgotten = [
        field
        for field, raw in client.hgetall(KEY).items()
        if (record := _parse(raw)) is None
        or (now - record["beat_at"]).total_seconds() > FORGET_AFTER
    ]
    # A process that beats again between our read and this delete (after an
    # hour away) is listed again at its next beat.
    return client.hdel(KEY, *forgotten) if forgotten else 0


@dataclass
class Fleet:
    """The worker processes by their beats, each record with ``last_beat_seconds``."""

    #: Beat within ``ALIVE_WITHIN``, by host and pid.
    alive: list[dict]
    #: Stopped beating without leaving (killed, lost Redis) within ``FORGET_AFTER``,
    #: most recent first.
    gone: list[dict]


def read(client: redis.Redis, *, alive_within: float = ALIVE_WITHIN) -> Fleet:
    now = redis_now(client)
    alive, gone = [], []
    for raw in client.hvals(KEY):
        record = _parse(raw)
        if record is None:
            continue
        age = (now - record["beat_at"]).total_seconds()
        if age > FORGET_AFTER:
            continue
        record["last_beat_seconds"] = round(max(age, 0.0), 1)
        (alive if age <= alive_within else gone).append(record)
    alive.sort(key=lambda r: (str(r.get("host")), r.get("pid") or 0))
    gone.sort(key=lambda r: r["beat_at"], reverse=True)
    for record in (*alive, *gone):
        record["beat_at"] = record["beat_at"].isoformat()
    return Fleet(alive=alive, gone=gone)
