"""Database operations, each a few statements inside the caller's transaction.

State changes that two workers could race on are conditional UPDATEs, so the
database decides who wins (claiming an email, replaying a dead letter).
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.addresses import address_key
from domain.flows import ChallengeSpec, EmailSpec, SendFacts
from domain.policy import MAX_DEAD_LETTER_PAYLOAD, RATE_LIMIT_WINDOW
from workers.db import now_plus_sql, now_sql
from workers.models import AddressGuard, Challenge, Email, EventRow, FailedEmail

#: Email statuses from which nothing more will happen.
FINAL_STATUSES = ("sent", "failed", "suppressed")


def record_event(session: Session, event, outcome: str, now: datetime) -> bool:
    """Insert the ledger row; False when this event id was seen before.

    ``ON CONFLICT DO NOTHING`` makes a concurrent duplicate wait for the first
    transaction and then insert nothing, so exactly one of them goes on.
    """
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(EventRow)
        .values(
            id=event.id,
            type=event.type,
            source=event.source,
            occurred_at=event.occurred_at,
            received_at=now,
            outcome=outcome,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(EventRow.id)
    )
    return session.execute(statement).scalar_one_or_none() is not None


def set_outcome(session: Session, event_id: uuid.UUID, outcome: str) -> None:
    session.execute(update(EventRow).where(EventRow.id == event_id).values(outcome=outcome))


def serialize_recipient(session: Session, app: str, recipient: str) -> None:
    """Make concurrent plans for one recipient take turns, so a rate limit holds.

    PostgreSQL: a transaction-scoped advisory lock.  SQLite: every write
    transaction is already exclusive (BEGIN IMMEDIATE).
    """
    if session.bind.dialect.name == "postgresql":
        digest = hashlib.sha256(f"{app}\x1f{address_key(recipient)}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(key)))


def send_facts(session: Session, app: str, spec: EmailSpec, now: datetime) -> SendFacts:
    recent = session.scalar(
        select(func.count())
        .select_from(Email)
        .where(
            Email.app == app,
            Email.recipient_key == address_key(spec.recipient),
            Email.kind == spec.kind,
            # Every granted request counts, mailed or superseded before it left;
            # only the requests the gate itself refused do not.
            or_(Email.status != "suppressed", Email.suppressed_reason == "superseded"),
            Email.created_at >= now - RATE_LIMIT_WINDOW,
        )
    )
    locked = False
    if spec.challenge is not None:
        key = (app, spec.challenge.purpose, address_key(spec.challenge.target))
        guard = session.get(AddressGuard, key)
        locked = bool(guard and guard.locked_until and guard.locked_until > now)
    return SendFacts(recent_sends=recent, address_locked=locked)


def live_challenge() -> tuple:
    """Not consumed, revoked or superseded (expiry is checked against a clock)."""
    return (
        Challenge.consumed_at.is_(None),
        Challenge.revoked_at.is_(None),
        Challenge.superseded_at.is_(None),
    )


def _same_subject(app: str, spec: ChallengeSpec):
    """What a new challenge replaces: the previous one for the same thing."""
    where = [Challenge.app == app, Challenge.purpose == spec.purpose, *live_challenge()]
    if spec.purpose == "email_change":
        return [*where, Challenge.user_id == spec.user_id]
    if spec.purpose == "invite":
        return [*where, Challenge.data["invite_id"].as_string() == spec.data["invite_id"]]
    return [*where, Challenge.email_key == address_key(spec.email)]


def open_challenge(
    session: Session, app: str, event_id: uuid.UUID, spec: ChallengeSpec, now: datetime
) -> uuid.UUID | None:
    """Supersede the previous challenge for the same subject and open a new one.

    The new challenge inherits the wrong-attempt count of the live one it
    replaces, so asking for a new code never buys more guesses.  Returns None
    when an email change claims an address another user's live change holds.
    """
    for _ in range(2):
        with session.begin_nested() as savepoint:
            db_now = now_sql(session.bind.dialect.name)
            replaced = session.execute(
                update(Challenge)
                .where(*_same_subject(app, spec))
                .values(superseded_at=now)
                .returning(Challenge.attempts, (Challenge.expires_at <= db_now).label("expired"))
            ).all()
            # Failures carry over from every replaced challenge still in force
            # (or not yet mailed), by the database's clock.
            inherited = max((attempts for attempts, expired in replaced if not expired), default=0)
            if spec.purpose == "email_change":
                # An expired claim on the address no longer holds it.
                session.execute(
                    update(Challenge)
                    .where(
                        Challenge.app == app,
                        Challenge.purpose == "email_change",
                        Challenge.new_email_key == address_key(spec.new_email),
                        Challenge.expires_at < db_now,
                        *live_challenge(),
                    )
                    .values(revoked_at=now)
                )
            challenge_id = uuid.uuid4()
            session.add(
                Challenge(
                    id=challenge_id,
                    event_id=event_id,
                    app=app,
                    purpose=spec.purpose,
                    user_id=spec.user_id,
                    email=spec.email,
                    email_key=address_key(spec.email),
                    new_email=spec.new_email,
                    new_email_key=address_key(spec.new_email) if spec.new_email else None,
                    data=dict(spec.data),
                    attempts=inherited,
                    created_at=now,
                )
            )
            try:
                session.flush()
            except IntegrityError as exc:
                savepoint.rollback()
                if "uq_challenges_change_user" in str(exc.orig):
                    continue  # the same user's concurrent request won; supersede it too
                return None
            return challenge_id
    return None


def revoke_user_challenges(
    session: Session, app: str, user_id: str | None, purpose: str | None, now: datetime
) -> int:
    """Revoke a user's live challenges (of one purpose, or all); how many there were."""
    if user_id is None:
        return 0
    where = [Challenge.app == app, Challenge.user_id == user_id, *live_challenge()]
    if purpose:
        where.append(Challenge.purpose == purpose)
    return session.execute(update(Challenge).where(*where).values(revoked_at=now)).rowcount


def add_email(
    session: Session,
    event_id: uuid.UUID | None,
    app: str,
    spec: EmailSpec,
    now: datetime,
    *,
    challenge_id: uuid.UUID | None = None,
    suppressed_reason: str | None = None,
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
            status="suppressed" if suppressed_reason else "queued",
            suppressed_reason=suppressed_reason,
            attempts=0,
            deadline=spec.deadline,
            next_attempt_at=now,
            replay_of=replay_of,
            created_at=now,
        )
    )
    session.flush()
    return email_id


@dataclass(frozen=True)
class Claimed:
    """An email this worker now owns until ``lease_until``, with its challenge."""

    email: Email
    challenge: Challenge | None


def claim_email(
    session: Session, email_id: uuid.UUID, now: datetime, lease: timedelta
) -> Claimed | None:
    """Take the email for sending, or None if it is done or another worker holds it."""
    claimed = session.execute(
        update(Email)
        .where(
            Email.id == email_id,
            or_(
                Email.status == "queued",
                (Email.status == "sending") & (Email.lease_until < now),
            ),
        )
        .values(status="sending", lease_until=now + lease)
        .returning(Email)
    ).scalar_one_or_none()
    if claimed is None:
        return None
    challenge = session.get(Challenge, claimed.challenge_id) if claimed.challenge_id else None
    return Claimed(claimed, challenge)


def store_secret_digests(
    session: Session,
    challenge_id: uuid.UUID,
    *,
    code_hash: str | None,
    token_hash: str,
    key_id: str,
    ttl_seconds: float,
) -> bool:
    """Replace a live challenge's secret (the previous code and link stop working).

    Issue and expiry times come from the database clock.  False when the
    challenge is no longer live (superseded, revoked or used before this mail).
    """
    dialect = session.bind.dialect.name
    return bool(
        session.execute(
            update(Challenge)
            .where(Challenge.id == challenge_id, *live_challenge())
            .values(
                code_hash=code_hash,
                token_hash=token_hash,
                key_id=key_id,
                issued_at=now_sql(dialect),
                expires_at=now_plus_sql(dialect, ttl_seconds),
            )
        ).rowcount
    )


def suppress_email(session: Session, email_id: uuid.UUID, reason: str) -> None:
    session.execute(
        update(Email)
        .where(Email.id == email_id)
        .values(status="suppressed", suppressed_reason=reason, lease_until=None)
    )


def _held(email_id: uuid.UUID, claim: datetime):
    """The email, as long as this worker's claim on it stands.

    A claim is known by its ``lease_until``: once it lapses and another worker
    claims the email, this worker's later writes match nothing.
    """
    return (Email.id == email_id, Email.status == "sending", Email.lease_until == claim)


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
                status="sent",
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
            status="queued",
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
        .values(status="queued", lease_until=None, next_attempt_at=now)
    )


def dead_letter_email(
    session: Session,
    email_id: uuid.UUID,
    *,
    reason: str,
    error: str,
    attempts: int,
    now: datetime,
    claim: datetime | None = None,
) -> int | None:
    """Mark the email failed and file its dead letter; None if it had already ended
    (or, given the sender's ``claim``, if another worker has taken it over)."""
    where = _held(email_id, claim) if claim else (Email.id == email_id,)
    email = session.execute(
        update(Email)
        .where(*where, Email.status.not_in(FINAL_STATUSES))
        .values(
            status="failed",
            lease_until=None,
            attempts=Email.attempts + attempts,
            last_error=error,
        )
        .returning(Email)
    ).scalar_one_or_none()
    if email is None:
        return None
    event = session.get(EventRow, email.event_id) if email.event_id else None
    return session.execute(
        insert(FailedEmail)
        .values(
            email_id=email.id,
            event_id=email.event_id,
            event_type=event.type if event else None,
            kind=email.kind,
            recipient=email.recipient,
            reason=reason,
            error=error,
            attempts=email.attempts,
            status="dead",
            created_at=now,
        )
        .returning(FailedEmail.id)
    ).scalar_one()


def dead_letter_event(
    session: Session,
    payload: str,
    *,
    reason: str,
    error: str,
    now: datetime,
    event_id: uuid.UUID | None = None,
    event_type: str | None = None,
    attempts: int = 0,
) -> int:
    """File an event that never became mail, keeping its raw content for replay."""
    return session.execute(
        insert(FailedEmail)
        .values(
            event_id=event_id,
            event_type=event_type,
            reason=reason,
            error=error,
            attempts=attempts,
            payload=payload[:MAX_DEAD_LETTER_PAYLOAD],
            status="dead",
            created_at=now,
        )
        .returning(FailedEmail.id)
    ).scalar_one()


def due_emails(session: Session, now: datetime, stale_after: timedelta, limit: int) -> list:
    """Emails that should be moving but are not: never enqueued, or held by a dead worker."""
    session.execute(
        update(Email)
        .where(Email.status == "sending", Email.lease_until < now)
        .values(status="queued", lease_until=None, next_attempt_at=now - stale_after)
    )
    ids = list(
        session.scalars(
            select(Email.id)
            .where(Email.status == "queued", Email.next_attempt_at <= now - stale_after)
            .order_by(Email.next_attempt_at)
            .limit(limit)
        )
    )
    if ids:
        # Pushed forward so the next sweep leaves them to the delivery just sent.
        session.execute(update(Email).where(Email.id.in_(ids)).values(next_attempt_at=now))
    return ids


def list_failed(
    session: Session,
    *,
    reason: str | None = None,
    since: datetime | None = None,
    status: str | None = "dead",
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


def get_failed(session: Session, failed_id: int) -> FailedEmail | None:
    return session.get(FailedEmail, failed_id)


def replay_email(session: Session, failed: FailedEmail, now: datetime) -> uuid.UUID | None:
    """Queue a fresh copy of a dead-lettered email; None if the row was replayed already.

    The copy keeps the challenge, so delivering it issues a new secret for that
    challenge and the code in the failed mail (if any got out) stops working.
    """
    won = session.execute(
        update(FailedEmail)
        .where(FailedEmail.id == failed.id, FailedEmail.status == "dead")
        .values(status="replayed", replayed_at=now)
    ).rowcount
    if not won:
        return None
    original = session.get(Email, failed.email_id)
    copy = EmailSpec(
        kind=original.kind,
        recipient=original.recipient,
        locale=original.locale,
        # The same delivery window the original had, counted from now.
        deadline=now + (original.deadline - original.created_at),
        context=original.context,
    )
    new_id = add_email(
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
    return bool(
        session.execute(
            update(FailedEmail)
            .where(FailedEmail.id == failed_id, FailedEmail.status == "dead")
            .values(status="replayed", replayed_at=now)
        ).rowcount
    )


def discard_failed(session: Session, failed_id: int, now: datetime) -> bool:
    return bool(
        session.execute(
            update(FailedEmail)
            .where(FailedEmail.id == failed_id, FailedEmail.status == "dead")
            .values(status="discarded", discarded_at=now)
        ).rowcount
    )


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Email.status, func.count()).group_by(Email.status))
    return {status: count for status, count in rows}
