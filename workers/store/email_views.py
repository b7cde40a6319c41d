"""Emails as support looks them up ("did the reset mail go out?"): by recipient,
event, app, status and time, newest first, each with its dead letter, what
became of that letter's replay, and its history.

Every listing walks an index: ``ix_emails_recipient`` for a recipient,
``ix_emails_event`` for an event, ``ix_emails_created`` otherwise.  The
template context is never read: it is the mail's data, not its story.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row, or_, select
from sqlalchemy.sql import Select

from domain.history import history
from domain.vocabulary import EmailStatus
from workers.store.outbox import EMAILS, E
from workers.store.tables import FailedEmail

_dead = FailedEmail.__table__.alias("dead")  # the dead letter this email became
_copy = EMAILS.alias("copy")  # the email that dead letter's replay queued

_VIEW = select(
    *(column for column in EMAILS.c if column.name != "context"),
    _dead.c.id.label("dead_letter_id"),
    _dead.c.reason.label("dead_letter_reason"),
    _dead.c.error.label("dead_letter_error"),
    _dead.c.status.label("dead_letter_status"),
    _dead.c.created_at.label("dead_lettered_at"),
    _dead.c.replayed_email_id.label("replayed_as"),
    _dead.c.replayed_at,
    _dead.c.discarded_at,
    _copy.c.status.label("replay_status"),
    _copy.c.suppressed_reason.label("replay_suppressed"),
).select_from(
    # One dead letter per email at most: only a live email can be failed.
    EMAILS.outerjoin(_dead, _dead.c.email_id == E.id).outerjoin(
        _copy, _copy.c.id == _dead.c.replayed_email_id
    )
)
_NEWEST_FIRST = (E.created_at.desc(), E.id.desc())


@dataclass(frozen=True)
class Filters:
    #: An ``address_key``.
    recipient_key: str | None = None
    event_id: uuid.UUID | None = None
    app: str | None = None
    status: EmailStatus | None = None
    #: Written to the outbox at or after.
    since: datetime | None = None

    def apply(self, query: Select) -> Select:
        if self.recipient_key:
            query = query.where(E.recipient_key == self.recipient_key)
        if self.event_id:
            query = query.where(E.event_id == self.event_id)
        if self.app:
            query = query.where(E.app == self.app)
        if self.status:
            query = query.where(E.status == self.status)
        if self.since:
            query = query.where(E.created_at >= self.since)
        return query


@dataclass(frozen=True)
class Position:
    """Where a page ended (its last email), for the next to start after it: steady
    while new mail arrives, and no slower on page 1000 than on page 1."""

    created_at: datetime
    email_id: uuid.UUID


def page(
    conn: Connection,
    filters: Filters,
    *,
    limit: int | None = None,
    offset: int = 0,
    after: Position | None = None,
) -> list[Row]:
    """Newest first: at most ``limit`` (None: all), skipping ``offset`` or
    starting after ``after``."""
    query = filters.apply(_VIEW).order_by(*_NEWEST_FIRST).offset(offset)
    if after is not None:
        # The first condition alone is what the index serves; the second breaks
        # ties (an event's mails are written at one time).
        query = query.where(
            E.created_at <= after.created_at,
            or_(E.created_at < after.created_at, E.id < after.email_id),
        )
    if limit:
        query = query.limit(limit)
    return list(conn.execute(query))


def one(conn: Connection, email_id: uuid.UUID, app: str | None = None) -> Row | None:
    """One email; with ``app``, only if it is that app's."""
    query = _VIEW.where(E.id == email_id)
    if app is not None:
        query = query.where(E.app == app)
    return conn.execute(query).first()


def position(row: Row) -> Position:
    return Position(row.created_at, row.id)


def record(row: Row, now: datetime) -> dict:
    """Everything the CLI's ``--json`` and the API show of one email."""

    def iso(value):
        return value.isoformat() if value else None

    sending = row.status == EmailStatus.SENDING
    dead_letter = None
    if row.dead_letter_id is not None:
        dead_letter = {
            "id": row.dead_letter_id,
            "reason": row.dead_letter_reason,
            "error": row.dead_letter_error,
            "status": row.dead_letter_status,
            "created_at": iso(row.dead_lettered_at),
            "replayed_as": str(row.replayed_as) if row.replayed_as else None,
            "replayed_at": iso(row.replayed_at),
            "discarded_at": iso(row.discarded_at),
        }
    return {
        "email_id": str(row.id),
        "status": row.status,
        "suppressed_reason": row.suppressed_reason,
        "kind": row.kind,
        "app": row.app,
        "locale": row.locale,
        "recipient": row.recipient,
        "event_id": str(row.event_id) if row.event_id else None,
        "challenge_id": str(row.challenge_id) if row.challenge_id else None,
        "requested_at": iso(row.requested_at),
        "created_at": iso(row.created_at),
        "deadline": iso(row.deadline),
        # The column keeps its last value once the mail is done: shown while it means something.
        "next_attempt_at": iso(row.next_attempt_at) if row.status == EmailStatus.QUEUED else None,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "claimed_by": row.claimed_by if sending else None,
        "lease_until": iso(row.lease_until) if sending else None,
        "transport": row.transport,
        "message_id": row.message_id,
        "provider_id": row.provider_id,
        "sent_at": iso(row.sent_at),
        "feedback": row.feedback,
        "feedback_at": iso(row.feedback_at),
        "replay_of": row.replay_of,
        "dead_letter": dead_letter,
        "history": [
            {"happened": step.happened.value, "at": iso(step.at), "detail": step.detail}
            for step in history(row, now)
        ],
    }
