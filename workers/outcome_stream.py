"""The stream ``mailroom:outcomes``: every change in an email's fate, for the apps.

The thread that records an outcome only queues it: a writer thread sends what
has queued as one pipeline of ``XADD``s (trimmed with ``MAXLEN ~``: Redis drops
whole entries from the oldest end once the stream is past the cap), so a
delivery never waits on Redis and a burst costs one round trip per batch.
Publishing never fails a delivery or an intake: the email's row is the truth
(the API reads it), so an outcome Redis does not take is logged
(``outcome.unpublished``), counted, and dropped; so is what is still queued
when the process is killed.
"""

import json
import queue
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from workers import metrics
from workers.logs import get_logger
from workers.redisconn import connect

STREAM = "mailroom:outcomes"
#: The entry's one field, holding the record as JSON.
FIELD = "outcome"
#: Seconds one batch may wait on Redis (connecting, then answering).
REDIS_TIMEOUT = 1.0
#: Seconds appends are skipped after a batch failed: a Redis that hangs costs
#: one timeout, not one per batch.
PAUSE_AFTER_FAILURE = 5.0
#: Most outcomes sent in one pipeline.
BATCH = 500
#: Seconds ``close`` waits for what is queued to be sent.
FLUSH_TIMEOUT = 5.0

log = get_logger("mailroom.pipeline")

_STOP = object()


class OutcomeStream:
    """This process's writer; its thread and client start with the first append."""

    def __init__(self, redis_url: str, maxlen: int) -> None:
        self.redis_url = redis_url
        #: About how many entries the stream keeps.
        self.maxlen = maxlen
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        #: ``time.monotonic()`` before which batches are dropped unsent.
        self._paused_until = 0.0

    def append(self, record: dict) -> None:
        """Queue one outcome for the writer thread."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mailroom-outcomes", daemon=True
                )
                self._thread.start()
        self._queue.put(record)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in batch
            self._send([record for record in batch if record is not _STOP])
            if stop:
                return

    def _send(self, batch: list[dict]) -> None:
        if not batch:
            return
        if time.monotonic() < self._paused_until:
            for record in batch:
                self._unpublished(record, "skipped: Redis failed moments ago")
            return
        try:
            pipe = self._connected().pipeline(transaction=False)
            for record in batch:
                data = json.dumps(record, separators=(",", ":"))
                pipe.xadd(STREAM, {FIELD: data}, maxlen=self.maxlen, approximate=True)
            pipe.execute()
        except Exception as exc:  # whatever it is, it must not stop the writer
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
            for record in batch:
                self._unpublished(record, f"{type(exc).__name__}: {exc}")

    def _connected(self) -> redis.Redis:
        if self._client is None:
            self._client = connect(
                self.redis_url,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
                # Once more on a fresh connection (Redis restarted under an idle
                # one), at once; never after a timeout.
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            )
        return self._client

    def _unpublished(self, record: dict, error: str) -> None:
        metrics.OUTCOMES_UNPUBLISHED.labels(record["status"]).inc()
        log.warning(
            "outcome.unpublished",
            event_id=record["event_id"],
            email_id=record["email_id"],
            app=record["app"],
            kind=record["kind"],
            outcome=record["status"],
            error=error,
        )

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Send what is queued and stop the writer (a later append starts it again)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def close(self) -> None:
        self.flush()
        if self._client is not None:
            self._client.close()
            self._client = None


def outcome_stream_for(redis_url: str, maxlen: int) -> OutcomeStream | None:
    """This process's writer; None when ``MAILROOM_OUTCOMES_MAXLEN`` is 0."""
    return OutcomeStream(redis_url, maxlen) if maxlen else None
