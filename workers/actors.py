"""The Dramatiq actors: thin shells around ``workers.pipeline``.

Actors are declared on a given broker by ``declare`` (no global broker is
touched at import), and find their dependencies through ``workers.app.current``.
"""

import uuid
from dataclasses import dataclass

import dramatiq
from dramatiq.middleware import CurrentMessage

from workers import pipeline

#: Queue of raw events on their way to validation.
EVENTS_QUEUE = "events"
#: Queue of emails to send.
MAIL_QUEUE = "mail"

#: Broker retries of an event whose handling failed unexpectedly (database down...).
EVENT_MAX_RETRIES = 10
#: Upper bound on broker retries of a send; the email's deadline usually ends it first.
DELIVER_MAX_RETRIES = 30
#: Longest a single deliver may run, in milliseconds (covers the quick retries).
DELIVER_TIME_LIMIT_MS = 240_000


def _runtime():
    # Imported here: workers.app declares these actors, so it imports this module.
    from workers.app import current

    return current()


def handle_event(raw: str, rejected: str | None = None) -> None:
    pipeline.accept_event(_runtime(), raw, rejected=rejected)


def deliver(email_id: str) -> None:
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message else 0
    outcome = pipeline.deliver_email(_runtime(), uuid.UUID(email_id), retries=retries)
    if outcome.retry_after_ms is not None:
        raise dramatiq.Retry("transient send failure", delay=outcome.retry_after_ms)


@dataclass(frozen=True)
class Actors:
    handle_event: dramatiq.Actor
    deliver: dramatiq.Actor


def declare(broker: dramatiq.Broker) -> Actors:
    return Actors(
        handle_event=dramatiq.actor(
            handle_event,
            broker=broker,
            actor_name="handle_event",
            queue_name=EVENTS_QUEUE,
            max_retries=EVENT_MAX_RETRIES,
        ),
        deliver=dramatiq.actor(
            deliver,
            broker=broker,
            actor_name="deliver",
            queue_name=MAIL_QUEUE,
            max_retries=DELIVER_MAX_RETRIES,
            time_limit=DELIVER_TIME_LIMIT_MS,
        ),
    )
