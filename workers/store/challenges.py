"""Challenges: a code and/or a link bound to an app, a purpose and an address.

Only keyed digests are stored.  Single use is one conditional UPDATE; expiry
is compared with the database clock.
"""

import uuid
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.addresses import address_key
from domain.flows import ChallengeSpec
from domain.policy import MAX_CODE_TTL
from domain.vocabulary import RULES, Purpose, Subject
from workers.store import sql
from workers.store.tables import Challenge


def live() -> tuple:
    """Not consumed, revoked or superseded (expiry is checked against a clock)."""
    return (
        Challenge.consumed_at.is_(None),
        Challenge.revoked_at.is_(None),
        Challenge.superseded_at.is_(None),
    )


def _target(purpose: Purpose):
    """The column holding the address a purpose's secret is mailed to."""
    return Challenge.new_email_key if purpose == Purpose.EMAIL_CHANGE else Challenge.email_key


def _same_subject(app: str, spec: ChallengeSpec) -> list:
    """What a new challenge replaces: the live one for the same thing."""
    where = [Challenge.app == app, Challenge.purpose == spec.purpose, *live()]
    subject = RULES[spec.purpose].same_subject
    if subject == Subject.USER:
        return [*where, Challenge.user_id == spec.user_id]
    if subject == Subject.INVITE:
        return [*where, Challenge.data["invite_id"].as_string() == spec.data["invite_id"]]
    return [*where, _target(spec.purpose) == address_key(spec.target)]


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
            db_now = sql.now(session)
            replaced = session.execute(
                update(Challenge)
                .where(*_same_subject(app, spec))
                .values(superseded_at=now)
                .returning(Challenge.attempts, (Challenge.expires_at <= db_now).label("expired"))
            ).all()
            # Failures carry over from every replaced challenge still in force
            # (or not yet mailed), by the database's clock.
            inherited = max((attempts for attempts, expired in replaced if not expired), default=0)
            if spec.purpose == Purpose.EMAIL_CHANGE:
                # An expired claim on the address no longer holds it, nor does
                # one whose code was never mailed and now cannot be in time.
                never_mailed = Challenge.expires_at.is_(None) & (
                    Challenge.created_at < now - MAX_CODE_TTL
                )
                session.execute(
                    update(Challenge)
                    .where(
                        Challenge.app == app,
                        Challenge.purpose == Purpose.EMAIL_CHANGE,
                        Challenge.new_email_key == address_key(spec.new_email),
                        (Challenge.expires_at < db_now) | never_mailed,
                        *live(),
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


def get(session: Session, challenge_id: uuid.UUID | None) -> Challenge | None:
    return session.get(Challenge, challenge_id) if challenge_id else None


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
    return bool(
        session.execute(
            update(Challenge)
            .where(Challenge.id == challenge_id, *live())
            .values(
                code_hash=code_hash,
                token_hash=token_hash,
                key_id=key_id,
                issued_at=sql.now(session),
                expires_at=sql.now_plus(session, ttl_seconds),
            )
        ).rowcount
    )


def latest_live(session: Session, app: str, purpose: Purpose, address: str) -> Challenge | None:
    """The newest live challenge whose secret went to ``address`` (an ``address_key``)."""
    return session.scalars(
        select(Challenge)
        .where(
            Challenge.app == app,
            Challenge.purpose == purpose,
            _target(purpose) == address,
            *live(),
        )
        .order_by(Challenge.created_at.desc())
        .limit(1)
    ).first()


def count_attempt(session: Session, challenge_id: uuid.UUID, max_attempts: int) -> bool | None:
    """Count one try of a code.  None when the challenge is locked (or no longer
    live); otherwise whether it has expired, by the database clock."""
    counted = session.execute(
        update(Challenge)
        .where(Challenge.id == challenge_id, Challenge.attempts < max_attempts, *live())
        .values(attempts=Challenge.attempts + 1)
        .returning((Challenge.expires_at <= sql.now(session)).label("expired"))
    ).first()
    return None if counted is None else bool(counted.expired)


def _by_token(app: str, purpose: Purpose, digests: list[str]) -> tuple:
    return (Challenge.token_hash.in_(digests), Challenge.app == app, Challenge.purpose == purpose)


def _consume(session: Session, where: tuple) -> Challenge | None:
    """Single use: of concurrent consumers, the database lets exactly one through."""
    db_now = sql.now(session)
    return session.execute(
        update(Challenge)
        .where(*where, *live(), Challenge.expires_at > db_now)
        .values(consumed_at=db_now)
        .returning(Challenge)
    ).scalar_one_or_none()


def consume(session: Session, challenge_id: uuid.UUID) -> Challenge | None:
    return _consume(session, (Challenge.id == challenge_id,))


def consume_token(
    session: Session, app: str, purpose: Purpose, digests: list[str]
) -> Challenge | None:
    return _consume(session, _by_token(app, purpose, digests))


def find_token(
    session: Session, app: str, purpose: Purpose, digests: list[str]
) -> tuple[Challenge, bool, bool] | None:
    """The challenge a token belongs to, whether it is live and whether it is
    still fresh (by the database clock); None for an unknown token."""
    found = session.execute(
        select(
            Challenge,
            and_(*live()).label("live"),
            (Challenge.expires_at > sql.now(session)).label("fresh"),
        ).where(*_by_token(app, purpose, digests))
    ).first()
    if found is None:
        return None
    challenge, is_live, fresh = found
    return challenge, bool(is_live), bool(fresh)


def revoke_user(
    session: Session, app: str, user_id: str | None, purpose: Purpose | None, now: datetime
) -> int:
    """Revoke a user's live challenges (of one purpose, or all); how many there were."""
    if user_id is None:
        return 0
    where = [Challenge.app == app, Challenge.user_id == user_id, *live()]
    if purpose:
        where.append(Challenge.purpose == purpose)
    return session.execute(update(Challenge).where(*where).values(revoked_at=now)).rowcount


def revoke(session: Session, app: str, challenge_id: uuid.UUID, now: datetime) -> int:
    return session.execute(
        update(Challenge)
        .where(Challenge.id == challenge_id, Challenge.app == app, *live())
        .values(revoked_at=now)
    ).rowcount
