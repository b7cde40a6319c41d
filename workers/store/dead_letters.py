"""Dead letters (``failed_emails``): what could not be sent or accepted, and
what an admin made of it (replayed, discarded)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, func, insert, select, update

from domain.flows import EmailSpec
from domain.policy import MAX_DEAD_LETTER_PAYLOAD
from domain.vocabulary import DeadLetterStatus, Reason
from workers.store import claims, ledger, outbox
from workers.store.tables import FailedEmail

FAILED = FailedEmail.__table__
F = FAILED.c


@dataclass(frozen=True)
class Filed:
    """A dead letter just filed, with the email it ends."""

    id: int
    email: Row


def file_email(
    conn: Connection,
    email_id: uuid.UUID,
    *,
    reason: Reason,
    error: str,
    now: datetime,
    claim: claims.Claim | None = None,
    attempted: bool = True,
) -> Filed | None:
    """Mark the email failed and file its dead letter; None when this caller may
    not end it (see ``claims.mark_failed``)."""
    email = claims.mark_failed(
        conn, email_id, error=error, claim=claim, now=now, attempted=attempted
    )
    if email is None:
        return None
    failed_id = conn.execute(
        insert(FAILED)
        .values(
            email_id=email.id,
            event_id=email.event_id,
            event_type=ledger.event_type(conn, email.event_id),
            kind=email.kind,
            recipient=email.recipient,
            reason=reason,
            error=error,
            attempts=email.attempts,
            status=DeadLetterStatus.DEAD,
            created_at=now,
        )
        .returning(F.id)
    ).scalar_one()
    return Filed(failed_id, email)


def _storable(text: str) -> str:
    """Text as PostgreSQL can hold it: NUL, which no text column can, kept as its
    JSON escape; a lone surrogate (a JSON escape such as ``\\ud800`` parsed, then
    written back by redaction), which UTF-8 cannot encode, as its Python escape."""
    text = text.replace("\x00", "\\u0000")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _kept(payload: str, error: str) -> tuple[str, str]:
    """The payload as stored, cut to ``MAX_DEAD_LETTER_PAYLOAD`` characters, and
    the error, which says when it was cut (a cut payload cannot be replayed as is)."""
    payload = _storable(payload)
    if len(payload) <= MAX_DEAD_LETTER_PAYLOAD:
        return payload, error
    cut = f"raw content cut to its first {MAX_DEAD_LETTER_PAYLOAD} characters"
    return payload[:MAX_DEAD_LETTER_PAYLOAD], f"{error} ({cut})"


def file_event(
    conn: Connection,
    payload: str,
    *,
    reason: Reason,
    error: str,
    now: datetime,
    event_id: uuid.UUID | None = None,
    event_type: str | None = None,
    attempts: int = 0,
) -> int:
    """File an event that never became mail, keeping its (redacted) raw content for
    replay: whatever its characters, at most ``MAX_DEAD_LETTER_PAYLOAD`` of them."""
    payload, error = _kept(payload, error)
    return conn.execute(
        insert(FAILED)
        .values(
            event_id=event_id,
            event_type=event_type,
            reason=reason,
            error=_storable(error),
            attempts=attempts,
            payload=payload,
            status=DeadLetterStatus.DEAD,
            created_at=now,
        )
        .returning(F.id)
    ).scalar_one()


def list_failed(
    conn: Connection,
    *,
    reason: Reason | None = None,
    since: datetime | None = None,
    status: DeadLetterStatus | None = DeadLetterStatus.DEAD,
    limit: int | None = None,
) -> list[Row]:
    query = select(FAILED).order_by(F.id)
    if reason:
        query = query.where(F.reason == reason)
    if since:
        query = query.where(F.created_at >= since)
    if status:
        query = query.where(F.status == status)
    if limit:
        query = query.limit(limit)
    return list(conn.execute(query))


def count(conn: Connection, status: DeadLetterStatus = DeadLetterStatus.DEAD) -> int:
    return conn.scalar(select(func.count()).select_from(FAILED).where(F.status == status))


def get(conn: Connection, failed_id: int) -> Row | None:
    return conn.execute(select(FAILED).where(F.id == failed_id)).first()


def _settle(conn: Connection, failed_id: int, status: DeadLetterStatus, **values) -> bool:
    """Move a dead letter out of ``dead``; False when it had already left it."""
    return bool(
        conn.execute(
            update(FAILED)
            .where(F.id == failed_id, F.status == DeadLetterStatus.DEAD)
            .values(status=status, **values)
        ).rowcount
    )


def replay_email(
    conn: Connection,
    failed: Row,
    now: datetime,
    due: datetime | None = None,
    window: timedelta | None = None,
) -> uuid.UUID | None:
    """Queue a fresh copy of a dead-lettered email, due at ``due`` (default now)
    with ``window`` to arrive (default: the window the original had); None if
    the row was replayed already.

    The copy keeps the challenge, so delivering it issues a new secret for that
    challenge and the code in the failed mail (if any got out) stops working.
    """
    if not _settle(conn, failed.id, DeadLetterStatus.REPLAYED, replayed_at=now):
        return None
    due = due or now
    original = outbox.get(conn, failed.email_id)
    copy = EmailSpec(
        kind=original.kind,
        recipient=original.recipient,
        locale=original.locale,
        # Counted from when it is due.
        deadline=due + (window or original.deadline - original.created_at),
        context=original.context,
    )
    new_id = outbox.add_email(
        conn,
        original.event_id,
        original.app,
        copy,
        now,
        challenge_id=original.challenge_id,
        replay_of=failed.id,
        due=due,
    )
    conn.execute(update(FAILED).where(F.id == failed.id).values(replayed_email_id=new_id))
    return new_id


def mark_event_replayed(conn: Connection, failed_id: int, now: datetime) -> bool:
    return _settle(conn, failed_id, DeadLetterStatus.REPLAYED, replayed_at=now)


def discard(conn: Connection, failed_id: int, now: datetime) -> bool:
    return _settle(conn, failed_id, DeadLetterStatus.DISCARDED, discarded_at=now)


def count_by_reason(conn: Connection, status: DeadLetterStatus = DeadLetterStatus.DEAD) -> dict:
    rows = conn.execute(select(F.reason, func.count()).where(F.status == status).group_by(F.reason))
    return {reason: count for reason, count in rows}
