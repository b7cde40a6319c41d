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
from workers import delivery, intake, webhooks
from workers.actors import DELIVER
from workers.logs import get_logger
from workers.runtime import Runtime

log = get_logger("mailroom.broker")

#: Seconds to wait for one background thread to stop (the courier finishing the
#: mail in hand takes longest: at most one transport timeout).
STOP_TIMEOUT = 30.0


class DeadLetters(Middleware):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def after_nack(self, broker, message):
        exception = getattr(message, "_exception", None)
        error = f"{type(exception).__name__}: {exception}" if exception else "retries exhausted"
        try:
            if message.actor_name == webhooks.SEND_WEBHOOK:
                webhooks.dead_letter_unsent(self.rt, *message.args, error=error)
            elif message.actor_name == DELIVER:
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
    """Starts threads with the worker and stops them with it: ``early`` ones
    before the broker's worker threads stop, one after the other in their
    order, and ``late`` ones after."""

    def __init__(
        self,
        early: Callable[[], list[StoppableThread]],
        late: Callable[[], list[StoppableThread]] = list,
    ) -> None:
        self.make_early = early
        self.make_late = late
        self.early: list[StoppableThread] = []
        self.late: list[StoppableThread] = []

    def after_worker_boot(self, broker, worker):
        self.early, self.late = self.make_early(), self.make_late()
        for thread in (*self.early, *self.late):
            thread.start()

    def before_worker_shutdown(self, broker, worker):
        _stop(self.early)

    def after_worker_shutdown(self, broker, worker):
        _stop(self.late)


def _stop(threads: list[StoppableThread]) -> None:
    for thread in threads:
        thread.stop()
        thread.join(timeout=STOP_TIMEOUT)
