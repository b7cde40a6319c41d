"""The ingress stream: how events reach mailroom from any language.

Producers append plain JSON to a Redis stream::

    XADD mailroom:events * event '{"version":1,"id":"...","type":...}'

Dramatiq's own queues are internal: its consumer cannot survive a message it
cannot decode, and a foreign producer would have to mimic its wire format.  So
producers never write there.  Instead every worker process runs an
``IngressBridge`` that reads the stream through a consumer group in batches,
hands each batch, whatever it contains, to the intake (which validates,
dead-letters and commits), then acknowledges and deletes its entries: an entry
is acknowledged only once what became of it is durable.  An entry taken by a
bridge that died before acknowledging is claimed by another after
``CLAIM_IDLE_MS``.
"""

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import redis

from domain.errors import InvalidEvent
from domain.events import event_payload, parse_event, too_large
from domain.policy import MAX_DEAD_LETTER_PAYLOAD
from workers.embedded import redis_url_for
from workers.intake import Entry
from workers.logs import get_logger
from workers.redisconn import connect
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
#: An entry unacknowledged this long belongs to a dead bridge and is taken over, in
#: ms.  A batch commits in well under a second; one taken over from a bridge that
#: was only slow is deduplicated by the event ledger.
CLAIM_IDLE_MS = 15_000
#: How often a bridge looks for such entries, in seconds.
CLAIM_EVERY_S = 5.0

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
        with connect(redis_client) as client:
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
    """(raw text, rejection reason or None) for one stream entry.

    Only lengths are looked at until the entry is known to be one ``event``
    field within the size limit; whatever else it is (more fields, none, an
    oversized value) is decoded only as far as its dead letter keeps it, and
    never parsed.
    """
    # A character is at most 4 bytes: this many bytes always decode to more than
    # the characters a dead letter keeps, so that it says it cut them.
    kept = 4 * (MAX_DEAD_LETTER_PAYLOAD + 1)

    def text(data: bytes) -> str:
        return data[:kept].decode("utf-8", "backslashreplace")

    value = fields.get(FIELD.encode())
    if value is None or len(fields) > 1:
        shown, size = {}, 0
        for key, data in fields.items():
            if size > kept:  # a thousand fields of a megabyte each are not decoded
                break
            shown[text(key)] = text(data)
            size += len(key) + len(data)
        raw = json.dumps(shown, ensure_ascii=False)
        if value is None:
            return raw, f"stream entry has no {FIELD!r} field"
        return raw, f"stream entry has {len(fields)} fields; only {FIELD!r} is allowed"
    if refused := too_large(len(value)):
        return text(value), refused
    if not value:
        return "", f"the stream entry's {FIELD!r} field is empty"
    try:
        return value.decode("utf-8"), None
    except UnicodeDecodeError:
        return text(value), "event is not valid UTF-8"


def entry_time(entry_id: bytes) -> datetime:
    """When Redis appended an entry: its id is ``<milliseconds>-<sequence>``."""
    return datetime.fromtimestamp(int(entry_id.split(b"-", 1)[0]) / 1000, UTC)


class IngressBridge(threading.Thread):
    """Reads the stream in batches, hands each batch to ``accept`` (which commits
    it), and only then acknowledges and deletes its entries.

    A batch ``accept`` raises on stays pending under this consumer and is read
    again; entries a dead bridge left pending are claimed after ``CLAIM_IDLE_MS``.
    """

    def __init__(
        self,
        redis_url: str,
        accept: Callable[[list[Entry]], None],
        *,
        wait_for_room: Callable[[threading.Event], None] | None = None,
    ) -> None:
        super().__init__(name="mailroom-ingress", daemon=True)
        self.accept = accept
        #: Blocks while this process has more mail in hand than it can send soon.
        self.wait_for_room = wait_for_room
        self.client = connect(redis_url)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.stopping = threading.Event()
        #: This consumer holds entries it has not acknowledged (a failed batch).
        self.holding = False
        self.next_claim = 0.0

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
                # NOGROUP: Redis came back without its data; the group is made anew.
                group_ready = "NOGROUP" not in str(exc)
                self.holding = True  # whatever we had read is read again
                log.warning("ingress.redis_error", error=str(exc))
                self.stopping.wait(1.0)
            except Exception as exc:
                self.holding = True
                log.warning("ingress.batch_failed", error=f"{type(exc).__name__}: {exc}")
                self.stopping.wait(1.0)
        self.client.close()

    def _read(self) -> list:
        if self.holding:  # our own pending entries first, at once
            response = self.client.xreadgroup(GROUP, self.consumer, {STREAM: "0"}, count=BATCH)
            entries = response[0][1] if response else []
            if entries:
                return entries
            self.holding = False
        if time.monotonic() >= self.next_claim:
            self.next_claim = time.monotonic() + CLAIM_EVERY_S
            # Redis 6.2 answers [cursor, entries]; 7.0 adds the ids it found deleted.
            entries = self.client.xautoclaim(
                STREAM, GROUP, self.consumer, min_idle_time=CLAIM_IDLE_MS, count=BATCH
            )[1]
            if entries:
                return entries
        response = self.client.xreadgroup(
            GROUP, self.consumer, {STREAM: ">"}, count=BATCH, block=BLOCK_MS
        )
        return response[0][1] if response else []

    def pump(self) -> int:
        """Move one batch from the stream into the database; return how many entries."""
        if self.wait_for_room is not None:
            self.wait_for_room(self.stopping)
        entries = self._read()
        if not entries:
            return 0
        # An entry deleted while pending has no fields: nothing to accept, only to ack.
        batch = [
            Entry(*decode_entry(fields), asked_at=entry_time(entry_id))
            for entry_id, fields in entries
            if fields is not None
        ]
        if batch:
            self.accept(batch)
        ids = [entry_id for entry_id, _ in entries]
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()
        return len(entries)


def backlog(client: redis.Redis) -> dict[str, int]:
    """Stream entries no bridge has finished with: ``unread`` (never delivered to
    one) and ``pending`` (delivered, not acknowledged: in a batch being
    committed, or held by a dead bridge until another claims it).

    The consumer group's own counters rather than XLEN, which counts whatever
    the stream still holds: entries a bridge acknowledged but did not delete
    (its XDEL failed), or kept by a producer's own retention.
    """
    try:
        groups = client.xinfo_groups(STREAM)
    except redis.ResponseError:  # no stream: nothing published since Redis started afresh
        return {"unread": 0, "pending": 0}
    group = next((g for g in groups if g["name"] in (GROUP, GROUP.encode())), None)
    if group is None:  # no bridge ever read it (since Redis lost its data)
        return {"unread": client.xlen(STREAM), "pending": 0}
    pending = group["pending"]
    lag = group.get("lag")  # None when Redis cannot tell (an unread entry was deleted)
    if lag is None:  # bridges delete what they acknowledge: the rest is pending or unread
        lag = max(0, client.xlen(STREAM) - pending)
    return {"unread": lag, "pending": pending}


__all__ = ["publish", "new_event", "publish_raw", "IngressBridge", "InvalidEvent", "STREAM"]
