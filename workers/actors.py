"""The Dramatiq actors: thin shells around the use cases, and how work reaches them.

``declare`` registers the actors on a broker, each closing over the runtime it
serves (no global broker or runtime is touched).  ``Dispatcher`` is the
runtime's way to hand them work.
"""

import uuid

import dramatiq
import redis

from workers import delivery, intake, webhooks
from workers.courier import Courier
from workers.logs import get_logger
from workers.runtime import Runtime

log = get_logger("mailroom.broker")

#: Queue of raw events on their way to validation.
EVENTS_QUEUE = "events"
#: Queue of emails to send.
MAIL_QUEUE = "mail"
#: Actor names, as messages in Redis carry them.
HANDLE_EVENT = "handle_event"
DELIVER = "deliver"

#: Broker retries of an event whose handling failed unexpectedly (database down...).
EVENT_MAX_RETRIES = 10
#: Broker retries of a delivery that failed unexpectedly (database down...).  A
#: transient send failure is not one: it schedules its own next attempt.
DELIVER_MAX_RETRIES = 30
#: Longest a single deliver may run, in milliseconds: one attempt, through at
#: most two transports' timeouts.
DELIVER_TIME_LIMIT_MS = 120_000


def declare(broker: dramatiq.Broker, rt: Runtime) -> None:
    def handle_event(raw: str, rejected: str | None = None) -> None:
        intake.accept_event(rt, raw, rejected=rejected)

    def deliver(email_id: str) -> None:
        delivery.deliver_email(rt, uuid.UUID(email_id))

    dramatiq.actor(
        handle_event,
        broker=broker,
        actor_name=HANDLE_EVENT,
        queue_name=EVENTS_QUEUE,
        max_retries=EVENT_MAX_RETRIES,
    )
    dramatiq.actor(
        deliver,
        broker=broker,
        actor_name=DELIVER,
        queue_name=MAIL_QUEUE,
        max_retries=DELIVER_MAX_RETRIES,
        time_limit=DELIVER_TIME_LIMIT_MS,
    )

    if not webhooks.configured(rt.apps):
        # Each queue costs every worker process two consumers polling Redis.
        return

    def send_webhook(app: str, webhook_id: str, body: str, attempt: int = 1) -> None:
        webhooks.attempt(rt, app, webhook_id, body, attempt)

    dramatiq.actor(
        send_webhook,
        broker=broker,
        actor_name=webhooks.SEND_WEBHOOK,
        queue_name=webhooks.WEBHOOKS_QUEUE,
        max_retries=webhooks.SEND_MAX_RETRIES,
    )


class Dispatcher:
    """Hands work to the actors ``declare`` registered on ``broker``, and a
    process's own first attempts to its ``courier``."""

    def __init__(self, broker: dramatiq.Broker, courier: Courier) -> None:
        self.broker = broker
        self.courier = courier

    def event(self, raw: str, rejected: str | None = None) -> None:
        self.broker.get_actor(HANDLE_EVENT).send(raw, rejected)

    def delivery(self, email_id: uuid.UUID, delay_ms: int | None = None) -> bool:
        """False when the broker could not take it (the sweeper sends it then)."""
        try:
            self.broker.get_actor(DELIVER).send_with_options(args=(str(email_id),), delay=delay_ms)
        except redis.RedisError as exc:
            # The email is due in the outbox all the same: the sweeper sends it.
            log.warning("email.enqueue_failed", email_id=str(email_id), error=str(exc))
            return False
        return True

    def attempt(self, email_id: uuid.UUID, held: int, planned=None) -> None:
        self.courier.put(email_id, held, planned)
