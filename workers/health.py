"""Transport health the operator can see (`mailroom status`), shared by all workers.

A transport that turns out to be set up wrong is recorded as ``misconfigured``
with the error and the setting to fix; one that fails for now (down, 4xx) as
``failing`` with the error; its next success records ``ok``.  Each
process writes only when the state it last wrote changes.  ``mailroom
send-test`` records what its attempts showed as well (``record``).
"""

import json
import threading
import time
from datetime import UTC, datetime

import redis

from domain.errors import TransportConfigError
from workers.logs import get_logger
from workers.redisconn import connect

#: Redis hash: transport name -> JSON state.
KEY = "mailroom:transports"

#: Seconds after which a process writes its state again even if unchanged, so
#: one healthy worker corrects another's stale "misconfigured".
REASSERT_AFTER = 30.0

log = get_logger("mailroom.health")


class TransportHealth:
    def __init__(self, redis_url: str) -> None:
        self.client = connect(redis_url)
        self.written: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()

    def report(self, name: str, error: Exception | None) -> None:
        """``error``: None after a success; a ``TransportConfigError`` (misconfigured)
        or any other delivery error (failing) after a failure."""
        state = state_after(error)
        fingerprint = json.dumps(state, sort_keys=True)
        now = time.monotonic()
        with self.lock:
            last, at = self.written.get(name, (None, 0.0))
            if last == fingerprint and now - at < REASSERT_AFTER:
                return
            self.written[name] = (fingerprint, now)
        state["since"] = datetime.now(UTC).isoformat()
        try:
            self.client.hset(KEY, name, json.dumps(state))
        except redis.RedisError as exc:
            log.warning("health.unrecorded", transport=name, error=str(exc))

    def close(self) -> None:
        self.client.close()


def state_after(error: Exception | None) -> dict:
    """A transport's health after an attempt that raised ``error`` (None: it worked)."""
    if error is None:
        condition = "ok"
    elif isinstance(error, TransportConfigError):
        condition = "misconfigured"
    else:
        condition = "failing"
    return {
        "state": condition,
        "error": str(error) if error is not None else None,
        "setting": getattr(error, "setting", None),
    }


def record(client: redis.Redis, name: str, error: Exception | None) -> None:
    """Write at once what one attempt outside the workers showed (``mailroom
    send-test``); a ``redis.RedisError`` is the caller's to report."""
    state = {**state_after(error), "since": datetime.now(UTC).isoformat()}
    client.hset(KEY, name, json.dumps(state))


def read(client: redis.Redis) -> dict[str, dict]:
    return {k.decode(): json.loads(v) for k, v in client.hgetall(KEY).items()}
