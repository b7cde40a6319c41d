"""The Dramatiq broker and mailroom's middleware.

``DeadLetters`` files every message Dramatiq gives up on (``after_nack``) in
``failed_emails``.  ``Background`` runs the ingress bridge and the sweeper
beside the worker threads of each worker process.
"""

import json
import uuid

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from domain.policy import Reason
from workers import pipeline, store
from workers.logs import get_logger

#: Prefix of every key Dramatiq keeps in Redis (apart from the public ingress stream).
NAMESPACE = "mailroom:dq"

log = get_logger("mailroom.broker")


def _runtime():
    # Imported here: workers.app builds the broker, so it imports this module.
    from workers.app import current

    return current()


class DeadLetters(Middleware):
    def after_nack(self, broker, message):
        rt = _runtime()
        exception = getattr(message, "_exception", None)
        error = f"{type(exception).__name__}: {exception}" if exception else "retries exhausted"
        try:
            if message.actor_name == "deliver":
                pipeline.dead_letter_exhausted(rt, uuid.UUID(message.args[0]), error)
            else:
                raw = message.args[0] if message.args else json.dumps(message.asdict())
                with rt.sessions.begin() as session:
                    failed_id = store.dead_letter_event(
                        session,
                        raw,
                        reason=Reason.RETRIES_EXHAUSTED,
                        error=error,
                        attempts=message.options.get("retries", 0),
                        now=rt.clock(),
                    )
                log.error("event.dead_lettered", error=error, failed_id=failed_id)
        except Exception:
            # The message itself stays in Dramatiq's dead-letter set in Redis.
            log.exception("dead_letter.unrecorded", actor=message.actor_name)


class Background(Middleware):
    """Starts the ingress bridge and the sweeper with the worker, stops them with it."""

    def __init__(self) -> None:
        self.threads = []

    def after_worker_boot(self, broker, worker):
        from workers.ingress import IngressBridge
        from workers.sweeper import Sweeper

        rt = _runtime()
        self.threads = [IngressBridge(rt), Sweeper(rt)]
        for thread in self.threads:
            thread.start()

    def before_worker_shutdown(self, broker, worker):
        for thread in self.threads:
            thread.stop()
        for thread in self.threads:
            thread.join(timeout=10)


def make_broker(redis_url: str, *, min_backoff_ms: int, max_backoff_ms: int) -> RedisBroker:
    middleware = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(min_backoff=min_backoff_ms, max_backoff=max_backoff_ms),
        CurrentMessage(),
        DeadLetters(),
        Background(),
    ]
    return RedisBroker(url=redis_url, middleware=middleware, namespace=NAMESPACE)
