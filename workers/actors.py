"""The Dramatiq actors: thin shells around the use cases, and how work reaches them.

``declare`` registers the actors on a broker, each closing over the runtime it
serves (no global broker or runtime is touched).  ``BrokerDispatch`` is the
runtime's way to hand them work.
"""

import uuid

import dramatiq
from dramatiq.middleware import CurrentMessage

from workers import delivery, intake
from workers.runtime import Runtime

#: Queue of raw events on their way to validation.
EVENTS_QUEUE = "events"
#: Queue of emails to send.
MAIL_QUEUE = "mail"
#: Actor names, as messages in Redis carry them.
HANDLE_EVENT = "handle_event"
DELIVER = "deliver"

#: Broker retries of an event whose handling failed unexpectedly (database down...).
EVENT_MAX_RETRIES = 10
#: Upper bound on broker retries of a send; the email's deadline usually ends it first.
DELIVER_MAX_RETRIES = 30
#: Longest a single deliver may run, in milliseconds (covers the quick retries).
DELIVER_TIME_LIMIT_MS = 240_000


def declare(broker: dramatiq.Broker, rt: Runtime) -> None:
    def handle_event(raw: str, rejected: str | None = None) -> None:
        intake.accept_event(rt, raw, rejected=rejected)

    def deliver(email_id: str) -> None:
        message = CurrentMessage.get_current_message()
        retries = message.options.get("retries", 0) if message else 0
        outcome = delivery.deliver_email(rt, uuid.UUID(email_id), retries=retries)
        if outcome.retry_after_ms is not None:
            raise dramatiq.Retry("transient send failure", delay=outcome.retry_after_ms)

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


class BrokerDispatch:
    """Sends work to the actors ``declare`` registered on ``broker``."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def event(self, raw: str, rejected: str | None = None) -> None:
        self.broker.get_actor(HANDLE_EVENT).send(raw, rejected)

    def delivery(self, email_id: uuid.UUID) -> None:
        self.broker.get_actor(DELIVER).send(str(email_id))
