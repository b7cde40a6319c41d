"""A steady load of sign-up events, kept up through the fault.

One ``user.signup_requested`` per tick, each for its own recipient
(``fault-<n>@example.com``).  An XADD that fails (Redis down, a failover) is
retried with the same event, same id, until Redis takes it: only an event whose
XADD returned counts as published.  Poison entries can be slipped in between.
"""

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tests.conftest import make_event
from workers.ingress import FIELD, STREAM


def address(n: int) -> str:
    return f"fault-{n}@example.com"


@dataclass(frozen=True)
class Published:
    n: int
    id: str
    address: str
    #: When Redis acknowledged the XADD (epoch seconds).
    at: float
    #: When the first attempt was made (an outage shows as the gap to ``at``).
    tried_at: float


class LoadGenerator(threading.Thread):
    def __init__(self, connect: Callable[[], redis.Redis], rate: float = 20.0) -> None:
        super().__init__(name="fault-load", daemon=True)
        self.connect = connect
        self.interval = 1.0 / rate
        self.published: list[Published] = []
        self.poison: list[tuple[dict, float]] = []
        self.failures = 0
        self.stopping = threading.Event()
        self._poison_queue: queue.Queue = queue.Queue()
        self._bursts: queue.Queue = queue.Queue()
        self._next = 0
        self.lock = threading.Lock()

    def burst(self, count: int, timeout: float = 30.0) -> None:
        """Publish ``count`` events at once (one pipeline), between two ticks, and
        return once Redis has taken them: a backlog for the fault to hit."""
        done = threading.Event()
        self._bursts.put((count, done))
        if not done.wait(timeout):
            raise AssertionError(f"the burst of {count} events was not published")

    def _burst(self, client: redis.Redis, count: int) -> None:
        events = [make_event(data={"email": address(n), "name": "Fault"})
                  for n in range(self._next, self._next + count)]  # fmt: skip
        tried = time.time()
        while not self.stopping.is_set():
            pipe = client.pipeline(transaction=False)
            for event in events:
                pipe.xadd(STREAM, {FIELD: json.dumps(event)})
            try:
                pipe.execute()  # all again on failure: the ledger drops what repeats
                break
            except (redis.RedisError, OSError):
                self.failures += 1
                self.stopping.wait(0.2)
        else:
            return
        now = time.time()
        with self.lock:
            for n, event in enumerate(events, self._next):
                self.published.append(Published(n, event["id"], address(n), now, tried))
        self._next += count

    def inject(self, *entries: dict) -> None:
        """Raw stream entries (field -> bytes or str) to XADD next, as they are."""
        for entry in entries:
            self._poison_queue.put(entry)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)

    def _xadd(self, client: redis.Redis, fields: dict) -> bool:
        try:
            client.xadd(STREAM, fields)
            return True
        except (redis.RedisError, OSError):
            self.failures += 1
            self.stopping.wait(0.2)
            return False

    def run(self) -> None:
        client = self.connect()
        due = time.monotonic()
        try:
            while not self.stopping.is_set():
                while not self._poison_queue.empty():
                    entry = self._poison_queue.get()
                    while not self._xadd(client, entry) and not self.stopping.is_set():
                        pass
                    self.poison.append((entry, time.time()))
                while not self._bursts.empty():
                    count, done = self._bursts.get()
                    self._burst(client, count)
                    done.set()
                delay = due - time.monotonic()
                if delay > 0:
                    self.stopping.wait(delay)
                n = self._next
                event = make_event(data={"email": address(n), "name": "Fault"})
                raw = json.dumps(event)
                tried = time.time()
                while not self._xadd(client, {FIELD: raw}):
                    if self.stopping.is_set():
                        return
                with self.lock:
                    self.published.append(Published(n, event["id"], address(n), time.time(), tried))
                self._next += 1
                # No catch-up burst after an outage: the offered rate stays steady.
                due = max(due + self.interval, time.monotonic() - self.interval)
        finally:
            client.close()

    def snapshot(self) -> list[Published]:
        with self.lock:
            return list(self.published)
