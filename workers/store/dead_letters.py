"""Dead letters (``failed_emails``): what could not be sent or accepted, and
what an admin made of it (replayed, discarded)."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from domain.flows import EmailSpec
from domain.policy import MAX_DEAD_LETTER_PAYLOAD
from domain.vocabulary import DeadLetterStatus, Reason
from workers.store import ledger, outbox
from workers.store.tables import Email, FailedEmail


@dataclass(frozen=True)
class Filed:
    """A dead letter just filed, with the email it ends."""

    id: int
    email: Email


def file_email(
    session: Session,
    email_id: uuid.UUID,
    *,
    reason: Reason,
    error: str,
    attempts: int,
    now: datetime,
    claim: datetime | None = None,
) -> Filed | None:
    """Mark the email failed and file its dead letter; None when this caller may
    not end it (see ``outbox.mark_failed``)."""
    email = outbox.mark_failed(
        session, email_id, error=error, attempts=attempts, claim=claim, now=now
    )
    if email is None:
        return None
    failed_id = session.execute(
        insert(FailedEmail)
        .values(
            email_id=email.id,
            event_id=email.event_id,
            event_type=ledger.event_type(session, email.event_id),
            kind=email.kind,
            recipient=email.recipient,
            reason=reason,
            error=error,
            attempts=email.attempts,
            status=DeadLetterStatus.DEAD,
            created_at=now,
        )
        .returning(FailedEmail.id)
    ).scalar_one()
    return Filed(failed_id, email)


def file_event(
    session: Session,
    payload: str,
    *,
    reason: Reason,
    error: str,
    now: datetime,
    event_id: uuid.UUID | None = None,
    event_type: str | None = None,
    attempts: int = 0,
) -> int:
    """File an event that never became mail, keeping its (redacted) raw content for replay."""
    return session.execute(
        insert(FailedEmail)
        .values(
            event_id=event_id,
            event_type=event_type,
            reason=reason,
            error=error,
            attempts=attempts,
            payload=payload[:MAX_DEAD_LETTER_PAYLOAD],
            status=DeadLetterStatus.DEAD,
            created_at=now,
        )
        .returning(FailedEmail.id)
    ).scalar_one()


def list_failed(
    session: Session,
    *,
    reason: Reason | None = None,
    since: datetime | None = None,
    status: DeadLetterStatus | None = DeadLetterStatus.DEAD,
    limit: int | None = None,
) -> list[FailedEmail]:
    query = select(FailedEmail).order_by(FailedEmail.id)
    if reason:
        query = query.where(FailedEmail.reason == reason)
    if since:
        query = query.where(FailedEmail.created_at >= since)
    if status:
        query = query.where(FailedEmail.status == status)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def count(session: Session, status: DeadLetterStatus = DeadLetterStatus.DEAD) -> int:
    return session.scalar(
        select(func.count()).select_from(FailedEmail).where(FailedEmail.status == status)
    )


def get(session: Session, failed_id: int) -> FailedEmail | None:
    return session.get(FailedEmail, failed_id)


def _settle(session: Session, failed_id: int, status: DeadLetterStatus, **values) -> bool:
    """Move a dead letter out of ``dead``; False when it had already left it."""
    return bool(
        session.execute(
            update(FailedEmail)
            .where(FailedEmail.id == failed_id, FailedEmail.status == DeadLetterStatus.DEAD)
            .values(status=status, **values)
        ).rowcount
    )


def replay_email(session: Session, failed: FailedEmail, now: datetime) -> uuid.UUID | None:
    """Queue a fresh copy of a dead-lettered email; None if the row was replayed already.

    The copy keeps the challenge, so delivering it issues a new secret for that
    challenge and the code in the failed mail (if any got out) stops working.
    """
    if not _settle(session, failed.id, DeadLetterStatus.REPLAYED, replayed_at=now):
        return None
    original = outbox.get(session, failed.email_id)
    copy = EmailSpec(
        kind=original.kind,
        recipient=original.recipient,
        locale=original.locale,
        # The same delivery window the original had, counted from now.
        deadline=now + (original.deadline - original.created_at),
        context=original.context,
    )
    new_id = outbox.add_email(
        session,
        original.event_id,
        original.app,
        copy,
        now,
        challenge_id=original.challenge_id,
        replay_of=failed.id,
    )
    session.execute(
        update(FailedEmail).where(FailedEmail.id == failed.id).values(replayed_email_id=new_id)
    )
    return new_id


def mark_event_replayed(session: Session, failed_id: int, now: datetime) -> bool:
    return _settle(session, failed_id, DeadLetterStatus.REPLAYED, replayed_at=now)


def discard(session: Session, failed_id: int, now: datetime) -> bool:
    return _settle(session, failed_id, DeadLetterStatus.DISCARDED, discarded_at=now)
