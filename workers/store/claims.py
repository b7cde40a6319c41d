"""Claims: how a worker process holds an email while it attempts it.

A claim is its holder (``claimed_by``: one worker process) and the attempt it
started (``attempts``): once its lease lapses and another process takes the
email over, the first one's later writes match nothing.  A live process renews
the leases of all it is working on in one statement (``renew``).
"""

import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, Row, bindparam, exists, func, or_, select, update

from domain.vocabulary import EmailStatus, Suppressed
from workers.store import challenges, sql, suppressions
from workers.store.hot import Hot
from workers.store.outbox import EMAILS, E, hold_values


class Claim(NamedTuple):
    """Who holds a ``sending`` email, and which attempt: later writes of that
    attempt match only while both still stand."""

    by: str
    attempt: int


def _claimable(now):
    """Waiting to be sent, or held by a worker whose lease has lapsed."""
    return or_(
        E.status == EmailStatus.QUEUED,
        (E.status == EmailStatus.SENDING) & (E.lease_until < now),
    )


_HELD = (
    E.id == bindparam("b_id"),
    E.status == EmailStatus.SENDING,
    E.claimed_by == bindparam("b_by"),
    E.attempts == bindparam("b_attempt"),
)
_LET_GO = {"claimed_by": None, "lease_until": None}
#: Back in the queue, due at ``b_next``, held by nobody.
_REQUEUE = {"status": EmailStatus.QUEUED, "next_attempt_at": bindparam("b_next"), **_LET_GO}

#: Returned with a claimed row: why its recipient must get no mail from its app.
_SUPPRESSED_FOR = suppressions.strongest_for_email(bindparam("b_now")).label("suppressed_for")

_CLAIM = Hot(
    update(EMAILS)
    .where(E.id == bindparam("b_id"), _claimable(bindparam("b_now")))
    .values(
        status=EmailStatus.SENDING,
        claimed_by=bindparam("b_by"),
        lease_until=bindparam("b_lease_until"),
        attempts=E.attempts + 1,
    )
    .returning(EMAILS, _SUPPRESSED_FOR)
)
#: Starting an attempt on an email this process holds: its own next attempt.
_BEGIN = Hot(
    update(EMAILS).where(*_HELD).values(attempts=E.attempts + 1).returning(EMAILS, _SUPPRESSED_FOR)
)
#: The same, and the new secret's digests stored on the email's challenge, in
#: one statement (PostgreSQL runs an UPDATE in a WITH): the secret goes in only
#: if the attempt begins before the email's deadline (a mail past it is dead at
#: once and gets no secret), and ``secret_live`` says whether the challenge
#: took it.  A mail that a suppression then holds back leaves a secret nobody
#: was sent: as good as none, and replaced by the next request's.
_BEGUN = _BEGIN.statement.cte("begun")
_SECRET = (
    challenges.STORE_DIGESTS.where(
        exists(select(_BEGUN.c.id).where(_BEGUN.c.deadline >= bindparam("b_now")))
    )
    .returning(challenges.C.id)
    .cte("secret")
)
_BEGIN_WITH_SECRET = Hot(select(_BEGUN, exists(select(_SECRET.c.id)).label("secret_live")))
_SUPPRESS = Hot(
    update(EMAILS)
    .where(*_HELD)
    .values(status=EmailStatus.SUPPRESSED, suppressed_reason=bindparam("b_reason"), **_LET_GO)
)
_SENT = Hot(
    update(EMAILS)
    .where(*_HELD)
    .values(
        status=EmailStatus.SENT,
        sent_at=bindparam("b_now"),
        message_id=bindparam("b_message_id"),
        provider_id=bindparam("b_provider_id"),
        transport=bindparam("b_transport"),
        last_error=None,
        **_LET_GO,
    )
)
_RETRY = update(EMAILS).where(*_HELD).values(last_error=bindparam("b_error"), **_REQUEUE)
_RELEASE = update(EMAILS).where(*_HELD).values(**_REQUEUE)
_RELEASE_ALL = (
    update(EMAILS)
    .where(E.status == EmailStatus.SENDING, E.claimed_by == bindparam("b_by"))
    .values(**_REQUEUE)
)
_RENEW = (
    update(EMAILS)
    .where(
        E.status == EmailStatus.SENDING,
        E.claimed_by == bindparam("b_by"),
        E.id.in_(bindparam("b_ids", expanding=True)),
    )
    .values(lease_until=bindparam("b_lease_until"))
)


def _held(email_id: uuid.UUID, claim: Claim) -> dict:
    return {"b_id": email_id, "b_by": claim.by, "b_attempt": claim.attempt}


def claim(
    conn: Connection, email_id: uuid.UUID, claimant: str, now: datetime, lease: timedelta
) -> Row | None:
    """Take the email for an attempt (its row, as claimed: ``attempts`` counts
    this one, ``suppressed_for`` says why it must not go, if so), or None if it
    is done or another worker holds it."""
    parameters = {"b_id": email_id, "b_by": claimant, "b_now": now, "b_lease_until": now + lease}
    return _CLAIM.first(conn, parameters)


def begin_attempt(
    conn: Connection, email_id: uuid.UUID, claimant: str, held: int, now: datetime
) -> Row | None:
    """Start an attempt on an email this process already holds (``held``: its
    attempts when it was taken); None if the hold was lost meanwhile."""
    return _BEGIN.first(conn, {**_held(email_id, Claim(claimant, held)), "b_now": now})


def begin_first_attempt(
    conn: Connection, email_id: uuid.UUID, claimant: str, now: datetime, digests: dict
) -> tuple[Row | None, bool]:
    """``begin_attempt`` of the first attempt at an email this process holds,
    storing its challenge's new secret (``challenges.digests``) in the
    same round trip: (the row, or None if the hold was lost; whether the
    challenge took the secret: not when it is no longer live, nor when the
    email's deadline has passed)."""
    held = {**_held(email_id, Claim(claimant, 0)), "b_now": now}
    if not sql.is_postgres(conn):  # SQLite's WITH holds no UPDATE: two statements
        email = _BEGIN.first(conn, held)
        if email is None or email.deadline < now:
            return email, False
        return email, challenges.store_secret_digests(conn, digests)
    email = _BEGIN_WITH_SECRET.first(conn, {**held, **digests})
    return (None, False) if email is None else (email, email.secret_live)


def claim_of(email: Row) -> Claim:
    return Claim(email.claimed_by, email.attempts)


def suppress(conn: Connection, email_id: uuid.UUID, claim: Claim, reason: Suppressed) -> None:
    _SUPPRESS.rowcount(conn, {**_held(email_id, claim), "b_reason": reason})


def mark_sent(
    conn: Connection,
    email_id: uuid.UUID,
    *,
    claim: Claim,
    now: datetime,
    message_id: str,
    provider_id: str | None,
    transport: str,
) -> bool:
    parameters = {
        **_held(email_id, claim),
        "b_now": now,
        "b_message_id": message_id,
        "b_provider_id": provider_id,
        "b_transport": transport,
    }
    return bool(_SENT.rowcount(conn, parameters))


def schedule_retry(
    conn: Connection, email_id: uuid.UUID, *, claim: Claim, error: str, next_attempt_at: datetime
) -> None:
    parameters = {**_held(email_id, claim), "b_error": error, "b_next": next_attempt_at}
    conn.execute(_RETRY, parameters)


def release_claim(conn: Connection, email_id: uuid.UUID, claim: Claim, now: datetime) -> None:
    """Hand an email back after an unexpected error so a retry can claim it at once."""
    conn.execute(_RELEASE, {**_held(email_id, claim), "b_next": now})


def release_all(conn: Connection, claimant: str, due: datetime) -> int:
    """Hand back every email a stopping process still holds, due at ``due``."""
    return conn.execute(_RELEASE_ALL, {"b_by": claimant, "b_next": due}).rowcount


def renew(conn: Connection, claimant: str, ids: list[uuid.UUID], lease_until: datetime) -> int:
    """Extend the leases of the emails a live process is working on, in one statement."""
    parameters = {"b_by": claimant, "b_ids": ids, "b_lease_until": lease_until}
    return conn.execute(_RENEW, parameters).rowcount


#: Failing an email: as its claim holder, or (the broker gave up on it) while no
#: worker holds a live claim.
_FAIL_HELD, _FAIL_UNCLAIMED = (
    update(EMAILS)
    .where(*where)
    .values(
        status=EmailStatus.FAILED,
        last_error=bindparam("b_error"),
        attempts=E.attempts + bindparam("b_delta"),
        **_LET_GO,
    )
    .returning(EMAILS)
    for where in (_HELD, (E.id == bindparam("b_id"), _claimable(bindparam("b_now"))))
)


def mark_failed(
    conn: Connection,
    email_id: uuid.UUID,
    *,
    error: str,
    claim: Claim | None,
    now: datetime,
    attempted: bool = True,
) -> Row | None:
    """End an email as failed; None when it cannot be ended by this caller.

    With ``claim``, only while that claim stands; ``attempted=False`` when the
    claim ended it without sending (its attempt is not counted).  Without one
    (the broker gave up on it), only while no worker holds a live claim: a
    duplicate delivery may be sending it this very moment.
    """
    parameters = {"b_id": email_id, "b_error": error, "b_delta": 0 if attempted else -1}
    if claim:
        return conn.execute(_FAIL_HELD, {**parameters, **_held(email_id, claim)}).first()
    return conn.execute(_FAIL_UNCLAIMED, {**parameters, "b_now": now}).first()


def take_due(
    conn: Connection,
    claimant: str,
    now: datetime,
    *,
    stale_after: timedelta,
    lease: timedelta,
    limit: int,
) -> list[tuple[uuid.UUID, int]]:
    """Hold for ``claimant`` the emails that should be moving and are not: held
    by a worker whose lease lapsed, or queued and not picked up within
    ``stale_after`` of being due.  (email id, attempts so far) of each.

    Rows another process is taking are skipped (``SKIP LOCKED``), so each is
    handed to one process only.
    """
    overdue = or_(
        (E.status == EmailStatus.QUEUED) & (E.next_attempt_at <= now - stale_after),
        (E.status == EmailStatus.SENDING) & (E.lease_until < now),
    )
    due = (
        select(E.id)
        .where(overdue)
        .order_by(E.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = conn.execute(
        update(EMAILS)
        .where(E.id.in_(due), overdue)
        .values(hold_values(claimant, now + lease))
        .returning(E.id, E.attempts)
    )
    return [(email_id, attempts) for email_id, attempts in rows]


def count_stale(conn: Connection, now: datetime) -> int:
    """Emails held for sending by a claim that has lapsed: their worker is gone."""
    return conn.scalar(
        select(func.count())
        .select_from(EMAILS)
        .where(E.status == EmailStatus.SENDING, E.lease_until < now)
    )
