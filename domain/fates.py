"""What became of an email, as the apps that asked for it are told.

Each change in an email's fate is one record on the stream ``mailroom:outcomes``
(``record``); ``GET /v1/events/{event_id}`` sums up an event's mail in one word
(``delivery_of``).  Both are a contract with code in other languages: fields and
values are only ever added.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum

from domain.suppression import NOT_SENT, UNDELIVERED
from domain.vocabulary import EmailStatus, Feedback


class Fate(StrEnum):
    """An outcome record's ``status``.  Consumers ignore a status they do not
    know: more may come."""

    #: A relay or provider accepted it.
    SENT = "sent"
    #: An attempt failed for now; another is due.
    DEFERRED = "deferred"
    #: Given up on, and filed as a dead letter (``reason``: why).
    DEAD_LETTERED = "dead_lettered"
    #: Deliberately not sent (``reason``: rate limited, locked, superseded,
    #: bounced, complained, manual).
    SUPPRESSED = "suppressed"
    #: Sent, then bounced (``reason``: permanent, transient or undetermined).
    BOUNCED = "bounced"
    #: Sent, then reported as spam by its recipient (``reason``: the report's type).
    COMPLAINED = "complained"
    #: Sent, and the receiving server reports it took it.
    DELIVERED = "delivered"


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
    #: It bounced, or was not sent because the address bounces or complained:
    #: "we could not deliver to that address".
    UNDELIVERABLE = "undeliverable"
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


def _undeliverable(email: Mapping) -> bool:
    if email["status"] == EmailStatus.SUPPRESSED:
        return email.get("reason") in NOT_SENT
    return email.get("feedback") in UNDELIVERED


def delivery_of(emails: Iterable[Mapping]) -> EventDelivery:
    """The word for an event's emails (each with ``email_id``, ``status``,
    ``reason``, ``feedback`` and ``replayed_as``).  A mail replayed as another
    of them is that one's business: the copy stands for it."""
    emails = list(emails)
    ids = {email["email_id"] for email in emails}
    statuses = {email["status"] for email in emails if email["replayed_as"] not in ids}
    if not statuses:
        return EventDelivery.NONE
    if statuses & set(_PENDING):
        return EventDelivery.PENDING
    if EmailStatus.FAILED in statuses:
        return EventDelivery.FAILED
    if any(_undeliverable(email) for email in emails if email["replayed_as"] not in ids):
        return EventDelivery.UNDELIVERABLE
    if EmailStatus.SENT in statuses:
        return EventDelivery.SENT
    return EventDelivery.SUPPRESSED


#: The outcome a report of each kind is published as.
REPORTED = {
    Feedback.BOUNCED: Fate.BOUNCED,
    Feedback.SOFT_BOUNCED: Fate.BOUNCED,
    Feedback.COMPLAINED: Fate.COMPLAINED,
    Feedback.DELIVERED: Fate.DELIVERED,
}
