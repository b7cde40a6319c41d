"""Challenges: a code and/or a link bound to an app, a purpose and an address.

Only keyed digests are stored.  Single use is one conditional UPDATE; expiry
is compared with the database clock.
"""

import uuid
from datetime import datetime

from sqlalchemy import Connection, Row, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from domain.addresses import address_key
from domain.flows import ChallengeSpec
from domain.policy import MAX_CODE_TTL
from domain.vocabulary import RULES, Purpose, Subject
from workers.store.hot import Hot
from workers.store.sql import SECONDS, db_now, db_now_plus
from workers.store.tables import Challenge

CHALLENGES = Challenge.__table__
C = CHALLENGES.c


def live() -> tuple:
    """Not consumed, revoked or superseded (expiry is checked against a clock)."""
    return (
        C.consumed_at.is_(None),
        C.revoked_at.is_(None),
        C.superseded_at.is_(None),
    )


def _target(purpose: Purpose):
    """The column holding the address a purpose's secret is mailed to."""
    return C.new_email_key if purpose == Purpose.EMAIL_CHANGE else C.email_key


def _supersede(subject_match) -> Hot:
    """Replace the live challenge for the same subject; what it had counted."""
    return Hot(
        update(CHALLENGES)
        .where(C.app == bindparam("b_app"), C.purpose == bindparam("b_purpose"), *live())
        .where(subject_match)
        .values(superseded_at=bindparam("b_now"))
        .returning(C.attempts, (C.expires_at <= db_now()).label("expired"))
    )


#: What a new challenge replaces, by what counts as the same subject.
_SUPERSEDE = {
    # Every purpose whose subject is the address mails its secret to ``email``.
    Subject.ADDRESS: _supersede(C.email_key == bindparam("b_subject")),
    Subject.USER: _supersede(C.user_id == bindparam("b_subject")),
    Subject.INVITE: _supersede(C.data["invite_id"].as_string() == bindparam("b_subject")),
}

#: An email change's claim on an address lapses with its code, or, when its
#: code was never mailed, once no code could still be in time.
_RELEASE_CLAIMS = (
    update(CHALLENGES)
    .where(
        C.app == bindparam("b_app"),
        C.purpose == Purpose.EMAIL_CHANGE,
        C.new_email_key == bindparam("b_address"),
        (C.expires_at < db_now())
        | (C.expires_at.is_(None) & (C.created_at < bindparam("b_unmailed_before"))),
        *live(),
    )
    .values(revoked_at=bindparam("b_now"))
)

_INSERT = insert(CHALLENGES)


def subject_of(spec: ChallengeSpec) -> str:
    """What identifies "the same thing asked again" for this challenge."""
    subject = RULES[spec.purpose].same_subject
    if subject == Subject.USER:
        return spec.user_id
    if subject == Subject.INVITE:
        return spec.data["invite_id"]
    return address_key(spec.target)


def open_challenge(
    conn: Connection,
    app: str,
    event_id: uuid.UUID,
    spec: ChallengeSpec,
    now: datetime,
    *,
    defer: list[dict] | None = None,
) -> uuid.UUID | None:
    """Supersede the previous challenge for the same subject and open a new one.

    The new challenge inherits the wrong-attempt count of the live one it
    replaces, so asking for a new code never buys more guesses.  Returns None
    when an email change claims an address another user's live change holds.
    With ``defer``, the new row is appended there for ``insert_rows`` (never for
    an email change, which must meet its unique indexes at once).
    """
    if spec.purpose != Purpose.EMAIL_CHANGE:
        return _open(conn, app, event_id, spec, now, defer)
    # Only an email change can hit a unique index (one pending change per user,
    # one claim per address): it alone needs a savepoint to survive that.
    for _ in range(2):
        with conn.begin_nested() as savepoint:
            try:
                return _open(conn, app, event_id, spec, now)
            except IntegrityError as exc:
                savepoint.rollback()
                error = str(exc.orig)
                if "uq_challenges_change_user" in error or "challenges.user_id" in error:
                    continue  # the same user's concurrent request won; supersede it too
                return None
    return None


def _open(
    conn: Connection, app: str, event_id, spec: ChallengeSpec, now: datetime, defer=None
) -> uuid.UUID:
    replaced = _SUPERSEDE[RULES[spec.purpose].same_subject].all(
        conn, {"b_app": app, "b_purpose": spec.purpose, "b_subject": subject_of(spec), "b_now": now}
    )
    # Failures carry over from every replaced challenge still in force (or not
    # yet mailed), by the database's clock.
    inherited = max((attempts for attempts, expired in replaced if not expired), default=0)
    if spec.purpose == Purpose.EMAIL_CHANGE:
        conn.execute(
            _RELEASE_CLAIMS,
            {
                "b_app": app,
                "b_address": address_key(spec.new_email),
                "b_unmailed_before": now - MAX_CODE_TTL,
                "b_now": now,
            },
        )
    challenge_id = uuid.uuid4()
    row = {
        "id": challenge_id,
        "event_id": event_id,
        "app": app,
        "purpose": spec.purpose,
        "user_id": spec.user_id,
        "email": spec.email,
        "email_key": address_key(spec.email),
        "new_email": spec.new_email,
        "new_email_key": address_key(spec.new_email) if spec.new_email else None,
        "data": dict(spec.data),
        "attempts": inherited,
        "created_at": now,
    }
    if defer is None:
        conn.execute(_INSERT, row)
    else:
        defer.append(row)
    return challenge_id


def insert_rows(conn: Connection, rows: list[dict]) -> None:
    """Insert the rows ``open_challenge`` deferred, in one round trip (see
    ``outbox.insert_rows``)."""
    if rows:
        conn.execute(_INSERT, rows)


_NEW_DIGESTS = {
    "code_hash": bindparam("b_code"),
    "token_hash": bindparam("b_token"),
    "key_id": bindparam("b_key"),
    "issued_at": db_now(),
    "expires_at": db_now_plus(bindparam("b_ttl", type_=SECONDS)),
}
#: Replace the secret of the live challenge ``b_challenge``; or replace it and
#: keep the one before as ``prev_*`` (a SET reads the row as it was, so
#: ``prev_code_hash=code_hash`` moves it).  ``STORE_DIGESTS`` is also part of
#: the statement that begins a first attempt (``claims.begin_first_attempt``).
STORE_DIGESTS, _ROTATE_DIGESTS = (
    update(CHALLENGES)
    .where(C.id == bindparam("b_challenge"), *live())
    .values(**_NEW_DIGESTS, **previous)
    for previous in (
        dict.fromkeys(("prev_code_hash", "prev_token_hash", "prev_key_id", "prev_expires_at")),
        {
            "prev_code_hash": C.code_hash,
            "prev_token_hash": C.token_hash,
            "prev_key_id": C.key_id,
            "prev_expires_at": C.expires_at,
        },
    )
)
_DIGESTS = {False: Hot(STORE_DIGESTS), True: Hot(_ROTATE_DIGESTS)}


def digests(
    challenge_id: uuid.UUID, *, code_hash: str | None, token_hash: str, key_id: str, ttl: float
) -> dict:
    """A new secret's digests for ``store_secret_digests`` (``STORE_DIGESTS``'s
    parameters); ``ttl`` in seconds."""
    return {
        "b_challenge": challenge_id,
        "b_code": code_hash,
        "b_token": token_hash,
        "b_key": key_id,
        "b_ttl": ttl,
    }


def store_secret_digests(conn: Connection, digests: dict, *, keep_previous: bool = False) -> bool:
    """Give a live challenge a new secret (``digests``).  The previous code and
    link stop working, unless ``keep_previous`` (the mail that carried them may
    have arrived): then they work until their own expiry, beside the new ones.

    Issue and expiry times come from the database clock.  False when the
    challenge is no longer live (superseded, revoked or used before this mail).
    """
    return bool(_DIGESTS[keep_previous].rowcount(conn, digests))


def latest_live(conn: Connection, app: str, purpose: Purpose, address: str) -> Row | None:
    """The newest live challenge whose secret went to ``address`` (an ``address_key``)."""
    return conn.execute(
        select(CHALLENGES)
        .where(
            C.app == app,
            C.purpose == purpose,
            _target(purpose) == address,
            *live(),
        )
        .order_by(C.created_at.desc())
        .limit(1)
    ).first()


def count_attempt(conn: Connection, challenge_id: uuid.UUID, max_attempts: int) -> Row | None:
    """Count one try of a code.  None when the challenge is locked (or no longer
    live); otherwise whether its secret (``expired``) and the previous one
    (``prev_expired``) have expired, by the database clock."""
    return conn.execute(
        update(CHALLENGES)
        .where(C.id == challenge_id, C.attempts < max_attempts, *live())
        .values(attempts=C.attempts + 1)
        .returning(
            (C.expires_at <= db_now()).label("expired"),
            func.coalesce(C.prev_expires_at <= db_now(), True).label("prev_expired"),
        )
    ).first()


def _by_token(app: str, purpose: Purpose, digests: list[str]) -> tuple:
    """The challenge a token digest belongs to: its current or its previous secret."""
    either = or_(C.token_hash.in_(digests), C.prev_token_hash.in_(digests))
    return (either, C.app == app, C.purpose == purpose)


def _token_fresh(digests: list[str]):
    """The token (current or previous secret) has not expired, by the database clock."""
    return or_(
        and_(C.token_hash.in_(digests), C.expires_at > db_now()),
        and_(C.prev_token_hash.in_(digests), C.prev_expires_at > db_now()),
    )


def _consume(conn: Connection, where: tuple) -> Row | None:
    """Single use: of concurrent consumers, the database lets exactly one through."""
    return conn.execute(
        update(CHALLENGES)
        .where(*where, *live(), C.expires_at > db_now())
        .values(consumed_at=db_now())
        .returning(CHALLENGES)
    ).first()


def consume(conn: Connection, challenge_id: uuid.UUID) -> Row | None:
    return _consume(conn, (C.id == challenge_id,))


def consume_token(conn: Connection, app: str, purpose: Purpose, digests: list[str]) -> Row | None:
    return _consume(conn, (*_by_token(app, purpose, digests), _token_fresh(digests)))


def find_token(
    conn: Connection, app: str, purpose: Purpose, digests: list[str]
) -> tuple[Row, bool, bool] | None:
    """The challenge a token belongs to, whether it is live and whether it is
    still fresh (by the database clock); None for an unknown token."""
    found = conn.execute(
        select(
            CHALLENGES,
            and_(*live()).label("live"),
            _token_fresh(digests).label("fresh"),
        ).where(*_by_token(app, purpose, digests))
    ).first()
    if found is None:
        return None
    return found, bool(found.live), bool(found.fresh)


def revoke_user(
    conn: Connection, app: str, user_id: str | None, purpose: Purpose | None, now: datetime
) -> int:
    """Revoke a user's live challenges (of one purpose, or all); how many there were."""
    if user_id is None:
        return 0
    where = [C.app == app, C.user_id == user_id, *live()]
    if purpose:
        where.append(C.purpose == purpose)
    return conn.execute(update(CHALLENGES).where(*where).values(revoked_at=now)).rowcount


def revoke(conn: Connection, app: str, challenge_id: uuid.UUID, now: datetime) -> int:
    return conn.execute(
        update(CHALLENGES).where(C.id == challenge_id, C.app == app, *live()).values(revoked_at=now)
    ).rowcount
