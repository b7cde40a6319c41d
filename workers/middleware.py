"""mailroom's Dramatiq middleware.

``DeadLetters`` files every message Dramatiq gives up on (``after_nack``) in
``failed_emails``.  ``Background`` runs the threads each worker process needs
beside its worker threads (the ingress bridge, the sweeper).
"""

import uuid
from collections.abc import Callable
from typing import Protocol

from dramatiq.middleware import Middleware

from domain.vocabulary import Reason
from workers import delivery, intake
from workers.actors import DELIVER
from workers.logs import get_logger
from workers.runtime import Runtime

log = get_logger("mailroom.broker")


class DeadLetters(Middleware):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def after_nack(self, broker, message):
        exception = getattr(message, "_exception", None)
        error = f"{type(exception).__name__}: {exception}" if exception else "retries exhausted"
        try:
            if message.actor_name == DELIVER:
                delivery.dead_letter_exhausted(self.rt, uuid.UUID(message.args[0]), error)
            else:
                raw = message.args[0] if message.args else message.encode().decode()
                attempts = message.options.get("retries", 0)
                intake.refuse_event(
                    self.rt, raw, Reason.RETRIES_EXHAUSTED, error, attempts=attempts
                )
        except Exception:
            # The message itself stays in Dramatiq's dead-letter set in Redis.
            log.exception("dead_letter.unrecorded", actor=message.actor_name)


class StoppableThread(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


class Background(Middleware):
    """Starts threads with the worker and stops them with it."""

    def __init__(self, make_threads: Callable[[], list[StoppableThread]]) -> None:
        self.make_threads = make_threads
        self.threads: list[StoppableThread] = []

    def after_worker_boot(self, broker, worker):
        self.threads = self.make_threads()
        for thread in self.threads:
            thread.start()

    def before_worker_shutdown(self, broker, worker):
        for thread in self.threads:
            thread.stop()
        for thread in self.threads:
            thread.join(timeout=10)
