"""What became of an email, as the apps that asked for it are told.

Each change in an email's fate is one record on the stream ``mailroom:outcomes``
(``record``); ``GET /v1/events/{event_id}`` sums up an event's mail in one word
(``delivery_of``).  Both are a contract with code in other languages: fields and
values are only ever added.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum

from domain.vocabulary import EmailStatus


class Fate(StrEnum):
    """An outcome record's ``status``.  Providers' reports (``bounced``,
    ``complained``, ``delivered``) are to join these: consumers ignore a
    status they do not know."""

    #: A relay or provider accepted it.
    SENT = "sent"
    #: An attempt failed for now; another is due.
    DEFERRED = "deferred"
    #: Given up on, and filed as a dead letter (``reason``: why).
    DEAD_LETTERED = "dead_lettered"
    #: Deliberately not sent (``reason``: rate limited, locked, superseded).
    SUPPRESSED = "suppressed"


class EventDelivery(StrEnum):
    """One word for what became of an event's mail, for an app to branch on."""

    #: Some of it is still to be sent (queued, being sent, or waiting for a retry).
    PENDING = "pending"
    #: Some of it was given up on: the user will not get it.
    FAILED = "failed"
    #: It went out (what was not sent was suppressed on purpose).
    SENT = "sent"
    #: None of it was sent, on purpose (rate limit, locked address, superseded).
    SUPPRESSED = "suppressed"
    #: The event asked for no mail, or was refused.
    NONE = "none"


def iso_utc(at: datetime) -> str:
    """``2026-11-22T10:00:00.123Z``: what JavaScript's ``toISOString`` writes."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record(
    *,
    event_id,
    email_id,
    app: str,
    kind: str,
    status: Fate,
    reason: str | None,
    transport: str | None,
    attempt: int,
    at: datetime,
) -> dict:
    """One outcome as the stream carries it (JSON, no address, no error text:
    the stream is shared by every app; ``GET /v1/emails/{email_id}`` says more)."""
    return {
        "event_id": str(event_id) if event_id else None,
        "email_id": str(email_id),
        "app": app,
        "kind": kind,
        "status": str(status),
        "reason": str(reason) if reason else None,
        "transport": transport,
        "attempt": attempt,
        "at": iso_utc(at),
    }


_PENDING = (EmailStatus.QUEUED, EmailStatus.SENDING)


def delivery_of(emails: Iterable[Mapping]) -> EventDelivery:
    """The word for an event's emails (each with ``email_id``, ``status`` and
    ``replayed_as``).  A mail replayed as another of them is that one's business:
    the copy stands for it."""
    emails = list(emails)
    ids = {email["email_id"] for email in emails}
    statuses = {email["status"] for email in emails if email["replayed_as"] not in ids}
    if not statuses:
        return EventDelivery.NONE
    if statuses & set(_PENDING):
        return EventDelivery.PENDING
    if EmailStatus.FAILED in statuses:
        return EventDelivery.FAILED
    if EmailStatus.SENT in statuses:
        return EventDelivery.SENT
    return EventDelivery.SUPPRESSED
