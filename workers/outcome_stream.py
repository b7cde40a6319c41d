"""The stream ``mailroom:outcomes``: every change in an email's fate, for the apps.

One ``XADD`` per outcome, trimmed with ``MAXLEN ~`` (Redis drops whole entries
from the oldest end once the stream is past the cap).  Publishing never fails a
delivery or an intake: the email's row is the truth (the API reads it), so an
outcome Redis does not take is logged (``outcome.unpublished``), counted, and
dropped.
"""

import json
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
#: Seconds one append may wait on Redis (connecting, then answering).
REDIS_TIMEOUT = 1.0
#: Seconds appends are skipped after one failed: a Redis that hangs costs the
#: mail in hand one timeout, not one per outcome.
PAUSE_AFTER_FAILURE = 5.0

log = get_logger("mailroom.pipeline")


class OutcomeStream:
    """This process's writer; its client connects on the first append."""

    def __init__(self, redis_url: str, maxlen: int) -> None:
        self.redis_url = redis_url
        #: About how many entries the stream keeps.
        self.maxlen = maxlen
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        #: ``time.monotonic()`` before which appends are skipped.
        self._paused_until = 0.0

    def _connected(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                self._client = connect(
                    self.redis_url,
                    socket_timeout=REDIS_TIMEOUT,
                    socket_connect_timeout=REDIS_TIMEOUT,
                    # Once more on a fresh connection (Redis restarted under an idle
                    # one), at once; never after a timeout: a delivery thread waits.
                    retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                )
            return self._client

    def append(self, record: dict) -> bool:
        """Add one outcome; False when it was not (Redis down: see the log)."""
        if time.monotonic() < self._paused_until:
            self._unpublished(record, "skipped: Redis failed moments ago")
            return False
        try:
            self._connected().xadd(
                STREAM,
                {FIELD: json.dumps(record, separators=(",", ":"))},
                maxlen=self.maxlen,
                approximate=True,
            )
        except Exception as exc:  # whatever it is, the delivery in hand must not fail of it
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
            self._unpublished(record, f"{type(exc).__name__}: {exc}")
            return False
        return True

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

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def outcome_stream_for(redis_url: str, maxlen: int) -> OutcomeStream | None:
    """This process's writer; None when ``MAILROOM_OUTCOMES_MAXLEN`` is 0."""
    return OutcomeStream(redis_url, maxlen) if maxlen else None
