"""The ingress stream: how events reach mailroom from any language.

Producers append plain JSON to a Redis stream::

    XADD mailroom:events * event '{"version":1,"id":"...","type":...}'

Dramatiq's own queues are internal: its consumer cannot survive a message it
cannot decode, and a foreign producer would have to mimic its wire format.  So
producers never write there.  Instead every worker process runs an
``IngressBridge`` that reads the stream through a consumer group, hands each
entry, whatever it contains, to the ``handle_event`` actor (which validates and
dead-letters), then acknowledges and deletes it.  An entry taken by a bridge
that died before acknowledging is claimed by another after ``CLAIM_IDLE_MS``.
"""

import json
import os
import socket
import threading
import uuid
from datetime import UTC, datetime

import redis

from domain.errors import InvalidEvent
from domain.events import event_payload, parse_event
from workers.embedded import redis_url_for
from workers.logs import get_logger
from workers.runtime import Dispatch
from workers.settings import load_settings

#: The stream producers append to.
STREAM = "mailroom:events"
#: The consumer group all bridges share.
GROUP = "mailroom"
#: The stream entry field holding the event JSON.
FIELD = "event"
#: Entries read per round trip.
BATCH = 100
#: How long one read waits for new entries, in milliseconds.
BLOCK_MS = 1000
#: An entry unacknowledged this long belongs to a dead bridge and is taken over, in ms.
CLAIM_IDLE_MS = 60_000

log = get_logger("mailroom.ingress")


def publish_raw(client: redis.Redis, event_json: str) -> str:
    """Append one already-serialized event to the stream (no validation)."""
    return client.xadd(STREAM, {FIELD: event_json})


def publish(event: dict | str, *, redis_client: redis.Redis | str | None = None) -> str:
    """Validate an event and append it to the stream; return its id.

    ``redis_client`` is a client or a URL; by default REDIS_URL, else the embedded
    Redis of a running ``mailroom dev``.  Raises ``InvalidEvent`` before anything
    is written.
    """
    raw = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
    parsed = parse_event(raw)
    if isinstance(redis_client, redis.Redis):
        publish_raw(redis_client, raw)
    else:
        if redis_client is None:
            redis_client = redis_url_for(load_settings())
        with redis.Redis.from_url(redis_client) as client:
            publish_raw(client, raw)
    return str(parsed.id)


def new_event(type: str, data: dict, *, source: str) -> dict:
    """An envelope for ``data`` with a fresh id and the current time."""
    return event_payload(
        type=type, source=source, data=data, id=uuid.uuid4(), occurred_at=datetime.now(UTC)
    )


def ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def decode_entry(fields: dict) -> tuple[str, str | None]:
    """(raw text, rejection reason or None) for one stream entry."""
    value = fields.get(FIELD.encode())
    if value is None:
        described = {
            k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items()
        }
        return json.dumps(described), f"stream entry has no {FIELD!r} field"
    try:
        return value.decode("utf-8"), None
    except UnicodeDecodeError:
        return value.decode("utf-8", "backslashreplace"), "event is not valid UTF-8"


class IngressBridge(threading.Thread):
    def __init__(self, redis_url: str, dispatch: Dispatch) -> None:
        super().__init__(name="mailroom-ingress", daemon=True)
        self.dispatch = dispatch
        self.client = redis.Redis.from_url(redis_url)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        log.info("ingress.started", stream=STREAM, consumer=self.consumer)
        group_ready = False
        while not self.stopping.is_set():
            try:
                if not group_ready:
                    ensure_group(self.client)
                    group_ready = True
                self.pump()
            except redis.RedisError as exc:
                log.warning("ingress.redis_error", error=str(exc))
                self.stopping.wait(1.0)
            except Exception:
                log.exception("ingress.error")
                self.stopping.wait(1.0)
        self.client.close()

    def pump(self) -> int:
        """Move one batch from the stream to the broker; return how many entries."""
        # Redis 6.2 answers [cursor, entries]; 7.0 adds the ids it found deleted.
        entries = self.client.xautoclaim(
            STREAM, GROUP, self.consumer, min_idle_time=CLAIM_IDLE_MS, count=BATCH
        )[1]
        if not entries:
            response = self.client.xreadgroup(
                GROUP, self.consumer, {STREAM: ">"}, count=BATCH, block=BLOCK_MS
            )
            entries = response[0][1] if response else []
        for _entry_id, fields in entries:
            if fields is None:  # deleted while pending
                continue
            raw, rejected = decode_entry(fields)
            self.dispatch.event(raw, rejected)
        if entries:
            ids = [entry_id for entry_id, _ in entries]
            pipe = self.client.pipeline(transaction=False)
            pipe.xack(STREAM, GROUP, *ids)
            pipe.xdel(STREAM, *ids)
            pipe.execute()
        return len(entries)


__all__ = ["publish", "new_event", "publish_raw", "IngressBridge", "InvalidEvent", "STREAM"]
