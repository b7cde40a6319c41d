"""The outbox: one row per mail, and the claim a worker holds while sending it.

A claim is known by its ``lease_until``: once it lapses and another worker
claims the email, the first worker's later writes match nothing.
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from domain.addresses import address_key
from domain.flows import EmailSpec
from domain.vocabulary import EmailStatus, Suppressed
from workers.store import sql
from workers.store.tables import Challenge, Email


def serialize_recipient(session: Session, app: str, recipient: str) -> None:
    """Make concurrent plans for one recipient take turns, so a rate limit holds.

    PostgreSQL: a transaction-scoped advisory lock.  SQLite: every write
    transaction is already exclusive (BEGIN IMMEDIATE).
    """
    if sql.is_postgres(session):
        digest = hashlib.sha256(f"{app}\x1f{address_key(recipient)}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(key)))


def recent_sends(session: Session, app: str, spec: EmailSpec, since: datetime) -> int:
    """Mails of this kind to this recipient since ``since`` that count against the rate limit."""
    return session.scalar(
        select(func.count())
        .select_from(Email)
        .where(
            Email.app == app,
            Email.recipient_key == address_key(spec.recipient),
            Email.kind == spec.kind,
            # Every granted request counts, mailed or superseded before it left;
            # only the requests the gate itself refused do not.
            or_(
                Email.status != EmailStatus.SUPPRESSED,
                Email.suppressed_reason == Suppressed.SUPERSEDED,
            ),
            Email.created_at >= since,
        )
    )


def add_email(
    session: Session,
    event_id: uuid.UUID | None,
    app: str,
    spec: EmailSpec,
    now: datetime,
    *,
    challenge_id: uuid.UUID | None = None,
    suppressed: Suppressed | None = None,
    replay_of: int | None = None,
) -> uuid.UUID:
    email_id = uuid.uuid4()
    session.add(
        Email(
            id=email_id,
            event_id=event_id,
            challenge_id=challenge_id,
            app=app,
            kind=spec.kind,
            locale=spec.locale,
            recipient=spec.recipient,
            recipient_key=address_key(spec.recipient),
            context=dict(spec.context),
            status=EmailStatus.SUPPRESSED if suppressed else EmailStatus.QUEUED,
            suppressed_reason=suppressed,
            attempts=0,
            deadline=spec.deadline,
            next_attempt_at=now,
            replay_of=replay_of,
            created_at=now,
        )
    )
    session.flush()
    return email_id


def get(session: Session, email_id: uuid.UUID | None) -> Email | None:
    return session.get(Email, email_id) if email_id else None


def first_of_challenge(session: Session, challenge_id: uuid.UUID) -> Email | None:
    """The first mail that carried a challenge's secret."""
    return session.scalars(
        select(Email).where(Email.challenge_id == challenge_id).order_by(Email.created_at)
    ).first()


@dataclass(frozen=True)
class Claimed:
    """An email this worker now owns until ``lease_until``, with its challenge."""

    email: Email
    challenge: Challenge | None


def _claimable(now: datetime):
    """Waiting to be sent, or held by a worker whose claim has lapsed."""
    return or_(
        Email.status == EmailStatus.QUEUED,
        (Email.status == EmailStatus.SENDING) & (Email.lease_until < now),
    )


def claim(session: Session, email_id: uuid.UUID, now: datetime, lease: timedelta) -> Claimed | None:
    """Take the email for sending, or None if it is done or another worker holds it."""
    claimed = session.execute(
        update(Email)
        .where(Email.id == email_id, _claimable(now))
        .values(status=EmailStatus.SENDING, lease_until=now + lease)
        .returning(Email)
    ).scalar_one_or_none()
    if claimed is None:
        return None
    challenge = session.get(Challenge, claimed.challenge_id) if claimed.challenge_id else None
    return Claimed(claimed, challenge)


def _held(email_id: uuid.UUID, claim: datetime) -> tuple:
    """The email, as long as this worker's claim on it stands."""
    return (Email.id == email_id, Email.status == EmailStatus.SENDING, Email.lease_until == claim)


def suppress(session: Session, email_id: uuid.UUID, reason: Suppressed) -> None:
    session.execute(
        update(Email)
        .where(Email.id == email_id)
        .values(status=EmailStatus.SUPPRESSED, suppressed_reason=reason, lease_until=None)
    )


def mark_sent(
    session: Session,
    email_id: uuid.UUID,
    *,
    claim: datetime,
    now: datetime,
    attempts: int,
    message_id: str,
    provider_id: str | None,
    transport: str,
) -> bool:
    return bool(
        session.execute(
            update(Email)
            .where(*_held(email_id, claim))
            .values(
                status=EmailStatus.SENT,
                sent_at=now,
                lease_until=None,
                attempts=Email.attempts + attempts,
                message_id=message_id,
                provider_id=provider_id,
                transport=transport,
                last_error=None,
            )
        ).rowcount
    )


def schedule_retry(
    session: Session,
    email_id: uuid.UUID,
    *,
    claim: datetime,
    attempts: int,
    error: str,
    next_attempt_at: datetime,
) -> None:
    session.execute(
        update(Email)
        .where(*_held(email_id, claim))
        .values(
            status=EmailStatus.QUEUED,
            lease_until=None,
            attempts=Email.attempts + attempts,
            last_error=error,
            next_attempt_at=next_attempt_at,
        )
    )


def release_claim(session: Session, email_id: uuid.UUID, claim: datetime, now: datetime) -> None:
    """Hand an email back after an unexpected error so a retry can claim it at once."""
    session.execute(
        update(Email)
        .where(*_held(email_id, claim))
        .values(status=EmailStatus.QUEUED, lease_until=None, next_attempt_at=now)
    )


def mark_failed(
    session: Session,
    email_id: uuid.UUID,
    *,
    error: str,
    attempts: int,
    claim: datetime | None,
    now: datetime,
) -> Email | None:
    """End an email as failed; None when it cannot be ended by this caller.

    With ``claim``, only while that claim stands.  Without one (the broker gave
    up on it), only while no worker holds a live claim: a duplicate delivery
    may be sending it this very moment.
    """
    where = _held(email_id, claim) if claim else (Email.id == email_id, _claimable(now))
    return session.execute(
        update(Email)
        .where(*where)
        .values(
            status=EmailStatus.FAILED,
            lease_until=None,
            attempts=Email.attempts + attempts,
            last_error=error,
        )
        .returning(Email)
    ).scalar_one_or_none()


def due(session: Session, now: datetime, stale_after: timedelta, limit: int) -> list[uuid.UUID]:
    """Emails that should be moving but are not: never enqueued, or held by a dead worker.

    Rows another sweeper is handling are skipped (``SKIP LOCKED``), and the ones
    taken are pushed forward, so each due email is handed out by one sweep only.
    """
    session.execute(
        update(Email)
        .where(Email.status == EmailStatus.SENDING, Email.lease_until < now)
        .values(status=EmailStatus.QUEUED, lease_until=None, next_attempt_at=now - stale_after)
    )
    ids = list(
        session.scalars(
            select(Email.id)
            .where(Email.status == EmailStatus.QUEUED, Email.next_attempt_at <= now - stale_after)
            .order_by(Email.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        session.execute(update(Email).where(Email.id.in_(ids)).values(next_attempt_at=now))
    return ids


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Email.status, func.count()).group_by(Email.status))
    return {status: count for status, count in rows}
