"""The relay from ``mailroom:outcomes`` to the apps' webhooks: a thread in each
worker process, reading the stream through the consumer group
``mailroom-webhooks`` and queueing one ``send_webhook`` message per outcome an
app wants.

An entry is acknowledged once its message is queued (or it needs none).  One a
process read but never acknowledged (it was killed in between) is taken over by
any live relay with ``XAUTOCLAIM`` once it has sat ``CLAIM_IDLE_MS``: a webhook
is sent at least once, and its stable ``webhook-id`` lets the receiver drop a
repeat.  The group is created at ``$`` (the stream's end): a newly configured
webhook starts with the outcomes that follow, not the whole retained stream.
The group keeps its place while no worker runs: what was published meanwhile
is relayed when one starts.
"""

import json
import threading
import time
from collections.abc import Callable

import redis

from domain import webhooks
from domain.apps import Directory
from workers import metrics
from workers.logs import get_logger
from workers.outcome_stream import FIELD, STREAM
from workers.redisconn import connect

GROUP = "mailroom-webhooks"
#: Milliseconds an entry read but not acknowledged sits before another process
#: takes it over (a live relay acknowledges within milliseconds).
CLAIM_IDLE_MS = 30_000
#: Seconds between two looks for such entries.
CLAIM_EVERY = 10.0
#: Entries read (or taken over) at once.
BATCH = 100
#: Milliseconds one read waits for new entries (also how soon ``stop`` is seen).
BLOCK_MS = 1_000
#: Seconds to wait after Redis failed before trying again.
PAUSE_AFTER_FAILURE = 1.0
#: Milliseconds after which a consumer with nothing pending counts as a process
#: long gone (a live one reads every ``BLOCK_MS``), and is removed from the group.
FORGET_IDLE_MS = 3_600_000

log = get_logger("mailroom.webhooks")

#: Queues one webhook: (app id, webhook id, body).
Enqueue = Callable[[str, str, str], None]


def wanted(directory: Directory, record: dict) -> tuple[str, str] | None:
    """(app id, body) when the outcome goes to a webhook; None when it does not."""
    app = directory.for_source(record.get("app") or "")
    if app is None or app.webhook is None or not app.webhook.wants(record.get("status")):
        return None
    return app.id, webhooks.body(record)


class WebhookRelay:
    def __init__(self, redis_url: str, directory: Directory, consumer: str,
                 enqueue: Enqueue) -> None:  # fmt: skip
        self.redis_url = redis_url
        self.directory = directory
        #: This process's name in the group (the runtime's claimant: unique).
        self.consumer = consumer
        self.enqueue = enqueue
        self._stopping = threading.Event()
        self._client: redis.Redis | None = None
        self._thread = threading.Thread(target=self._run, name="mailroom-webhooks", daemon=True)

    def start(self) -> None:
        try:
            self._ensure_group(self._connected())
        except redis.RedisError as exc:  # the thread tries again
            log.warning("webhook.relay_failed", error=str(exc))
        self._thread.start()
        log.info("webhook.relay_started", consumer=self.consumer)

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if self._client is not None:
            self._client.close()

    def _connected(self) -> redis.Redis:
        if self._client is None:
            # Reads block for BLOCK_MS: the socket must wait longer than that.
            self._client = connect(self.redis_url, socket_timeout=BLOCK_MS / 1000 + 5)
        return self._client

    def _ensure_group(self, client: redis.Redis) -> None:
        try:
            client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _run(self) -> None:
        next_claim = 0.0
        while not self._stopping.is_set():
            try:
                client = self._connected()
                if time.monotonic() >= next_claim:
                    self._take_over(client)
                    next_claim = time.monotonic() + CLAIM_EVERY
                read = client.xreadgroup(
                    GROUP, self.consumer, {STREAM: ">"}, count=BATCH, block=BLOCK_MS
                )
                for _stream, entries in read or []:
                    self._relay(client, entries)
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):  # the stream was deleted (or Redis emptied)
                    self._recover(lambda: self._ensure_group(self._connected()), exc)
                else:
                    self._failed(exc)
            except redis.RedisError as exc:
                self._failed(exc)
            except Exception as exc:  # a bug must not end webhooks for this process's life
                log.exception("webhook.relay_failed", error=f"{type(exc).__name__}: {exc}")
                self._stopping.wait(PAUSE_AFTER_FAILURE)

    def _take_over(self, client: redis.Redis) -> None:
        """Relay what dead processes read and never acknowledged; forget them."""
        cursor = "0-0"
        while True:
            cursor, entries, *_ = client.xautoclaim(
                STREAM, GROUP, self.consumer, CLAIM_IDLE_MS, start_id=cursor, count=BATCH
            )
            if entries:
                log.info("webhook.relay_took_over", entries=len(entries))
                self._relay(client, entries)
            if cursor in (b"0-0", "0-0") or self._stopping.is_set():
                break
        for consumer in client.xinfo_consumers(STREAM, GROUP):
            if consumer["pending"] == 0 and consumer["idle"] > FORGET_IDLE_MS:
                client.xgroup_delconsumer(STREAM, GROUP, consumer["name"])

    def _relay(self, client: redis.Redis, entries) -> None:
        done = []
        try:
            for entry_id, fields in entries:
                if fields:  # None or empty: trimmed from the stream before its turn
                    self._relay_one(entry_id.decode(), fields)
                done.append(entry_id)
        finally:
            # What was queued is acknowledged even when a later entry failed.
            if done:
                client.xack(STREAM, GROUP, *done)

    def _relay_one(self, entry_id: str, fields: dict) -> None:
        try:
            record = json.loads(fields[FIELD.encode()])
            target = wanted(self.directory, record)
        except (KeyError, ValueError, TypeError, AttributeError):
            # Not an outcome mailroom wrote: acknowledged, or it would come back forever.
            log.warning("webhook.unreadable_outcome", entry_id=entry_id)
            return
        if target is not None:
            app_id, body = target
            # Raises with Redis down: the entry stays pending, for a take-over.
            self.enqueue(app_id, webhooks.webhook_id(entry_id), body)
            metrics.WEBHOOKS_RELAYED.labels(app_id).inc()

    def _failed(self, exc: Exception) -> None:
        log.warning("webhook.relay_failed", error=f"{type(exc).__name__}: {exc}")
        self._stopping.wait(PAUSE_AFTER_FAILURE)

    def _recover(self, fix: Callable[[], None], exc: Exception) -> None:
        try:
            fix()
        except redis.RedisError:
            self._failed(exc)
