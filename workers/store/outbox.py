"""The outbox: one row per mail, and the claim a worker holds while sending it.

A claim is known by its ``lease_until``: once it lapses and another worker
claims the email, the first worker's later writes match nothing.
"""

import hashlib
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, bindparam, func, insert, or_, select, text, update

from domain.addresses import address_key
from domain.flows import EmailSpec, SendFacts
from domain.vocabulary import EmailStatus, Suppressed
from workers.store import guards, sql
from workers.store.tables import Email

EMAILS = Email.__table__
E = EMAILS.c


def serialize_recipients(conn: Connection, recipients: set[tuple[str, str]]) -> None:
    """Make concurrent plans for the same (app, recipient) take turns, so a rate
    limit holds.

    PostgreSQL: transaction-scoped advisory locks, all taken in one statement and
    in one order, so two batches that share recipients cannot deadlock.  SQLite:
    every write transaction is already exclusive (BEGIN IMMEDIATE).
    """
    if not recipients or not sql.is_postgres(conn):
        return
    keys = sorted(
        int.from_bytes(
            hashlib.sha256(f"{app}\x1f{address_key(recipient)}".encode()).digest()[:8],
            "big",
            signed=True,
        )
        for app, recipient in recipients
    )
    conn.execute(
        text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"),
        {"keys": keys},
    )


#: Mails of one kind to one recipient since a time that count against the rate
#: limit: every granted request, mailed or superseded before it left; only the
#: requests the gate itself refused do not.
_RECENT = (
    select(func.count())
    .select_from(EMAILS)
    .where(
        E.app == bindparam("b_app"),
        E.recipient_key == bindparam("b_recipient"),
        E.kind == bindparam("b_kind"),
        or_(E.status != EmailStatus.SUPPRESSED, E.suppressed_reason == Suppressed.SUPERSEDED),
        E.created_at >= bindparam("b_since"),
    )
    .scalar_subquery()
)
_FACTS = select(_RECENT)
_FACTS_WITH_GUARD = select(_RECENT, guards.LOCKED_UNTIL.scalar_subquery())


def send_facts(
    conn: Connection, app: str, spec: EmailSpec, since: datetime, now: datetime
) -> SendFacts:
    """What the gate needs to know, in one round trip: the mails that count
    against the rate limit, and whether the address the secret would go to is
    cooling down."""
    parameters = {
        "b_app": app,
        "b_recipient": address_key(spec.recipient),
        "b_kind": spec.kind,
        "b_since": since,
    }
    if spec.challenge is None:
        return SendFacts(recent_sends=conn.execute(_FACTS, parameters).scalar_one())
    parameters.update(b_purpose=spec.challenge.purpose, b_target=address_key(spec.challenge.target))
    count, locked_until = conn.execute(_FACTS_WITH_GUARD, parameters).one()
    return SendFacts(recent_sends=count, address_locked=bool(locked_until and locked_until > now))


_INSERT = insert(EMAILS)


def add_email(
    conn: Connection,
    event_id: uuid.UUID | None,
    app: str,
    spec: EmailSpec,
    now: datetime,
    *,
    challenge_id: uuid.UUID | None = None,
    suppressed: Suppressed | None = None,
    replay_of: int | None = None,
    defer: list[dict] | None = None,
) -> uuid.UUID:
    """Queue (or record as suppressed) one email; with ``defer``, its row is
    appended there for ``insert_rows`` instead of inserted now."""
    email_id = uuid.uuid4()
    row = {
        "id": email_id,
        "event_id": event_id,
        "challenge_id": challenge_id,
        "app": app,
        "kind": spec.kind,
        "locale": spec.locale,
        "recipient": spec.recipient,
        "recipient_key": address_key(spec.recipient),
        "context": dict(spec.context),
        "status": EmailStatus.SUPPRESSED if suppressed else EmailStatus.QUEUED,
        "suppressed_reason": suppressed,
        "attempts": 0,
        "deadline": spec.deadline,
        "next_attempt_at": now,
        "replay_of": replay_of,
        "created_at": now,
    }
    if defer is None:
        conn.execute(_INSERT, row)
    else:
        defer.append(row)
    return email_id


def insert_rows(conn: Connection, rows: list[dict]) -> None:
    """Insert the rows ``add_email`` deferred, in one round trip."""
    if rows:
        conn.execute(_INSERT, rows)


def get(conn: Connection, email_id: uuid.UUID | None) -> Row | None:
    if email_id is None:
        return None
    return conn.execute(select(EMAILS).where(E.id == email_id)).first()


def first_of_challenge(conn: Connection, challenge_id: uuid.UUID) -> Row | None:
    """The first mail that carried a challenge's secret."""
    return conn.execute(
        select(EMAILS).where(E.challenge_id == challenge_id).order_by(E.created_at).limit(1)
    ).first()


def _claimable(now):
    """Waiting to be sent, or held by a worker whose claim has lapsed."""
    return or_(
        E.status == EmailStatus.QUEUED,
        (E.status == EmailStatus.SENDING) & (E.lease_until < now),
    )


#: The email, as long as this worker's claim on it stands.  A claim is known by
#: its ``lease_until``: once another worker claims the email, this one's later
#: writes match nothing.
_HELD = (
    E.id == bindparam("b_id"),
    E.status == EmailStatus.SENDING,
    E.lease_until == bindparam("b_claim"),
)

_CLAIM = (
    update(EMAILS)
    .where(E.id == bindparam("b_id"), _claimable(bindparam("b_now")))
    .values(status=EmailStatus.SENDING, lease_until=bindparam("b_lease_until"))
    .returning(EMAILS)
)
_SUPPRESS = (
    update(EMAILS)
    .where(E.id == bindparam("b_id"))
    .values(
        status=EmailStatus.SUPPRESSED, suppressed_reason=bindparam("b_reason"), lease_until=None
    )
)
_SENT = (
    update(EMAILS)
    .where(*_HELD)
    .values(
        status=EmailStatus.SENT,
        sent_at=bindparam("b_now"),
        lease_until=None,
        attempts=E.attempts + bindparam("b_attempts"),
        message_id=bindparam("b_message_id"),
        provider_id=bindparam("b_provider_id"),
        transport=bindparam("b_transport"),
        last_error=None,
    )
)
_RETRY = (
    update(EMAILS)
    .where(*_HELD)
    .values(
        status=EmailStatus.QUEUED,
        lease_until=None,
        attempts=E.attempts + bindparam("b_attempts"),
        last_error=bindparam("b_error"),
        next_attempt_at=bindparam("b_next"),
    )
)
_RELEASE = (
    update(EMAILS)
    .where(*_HELD)
    .values(status=EmailStatus.QUEUED, lease_until=None, next_attempt_at=bindparam("b_now"))
)


def claim(conn: Connection, email_id: uuid.UUID, now: datetime, lease: timedelta) -> Row | None:
    """Take the email for sending (its row, as claimed), or None if it is done or
    another worker holds it."""
    parameters = {"b_id": email_id, "b_now": now, "b_lease_until": now + lease}
    return conn.execute(_CLAIM, parameters).first()


def suppress(conn: Connection, email_id: uuid.UUID, reason: Suppressed) -> None:
    conn.execute(_SUPPRESS, {"b_id": email_id, "b_reason": reason})


def mark_sent(
    conn: Connection,
    email_id: uuid.UUID,
    *,
    claim: datetime,
    now: datetime,
    attempts: int,
    message_id: str,
    provider_id: str | None,
    transport: str,
) -> bool:
    parameters = {
        "b_id": email_id,
        "b_claim": claim,
        "b_now": now,
        "b_attempts": attempts,
        "b_message_id": message_id,
        "b_provider_id": provider_id,
        "b_transport": transport,
    }
    return bool(conn.execute(_SENT, parameters).rowcount)


def schedule_retry(
    conn: Connection,
    email_id: uuid.UUID,
    *,
    claim: datetime,
    attempts: int,
    error: str,
    next_attempt_at: datetime,
) -> None:
    parameters = {
        "b_id": email_id,
        "b_claim": claim,
        "b_attempts": attempts,
        "b_error": error,
        "b_next": next_attempt_at,
    }
    conn.execute(_RETRY, parameters)


def release_claim(conn: Connection, email_id: uuid.UUID, claim: datetime, now: datetime) -> None:
    """Hand an email back after an unexpected error so a retry can claim it at once."""
    conn.execute(_RELEASE, {"b_id": email_id, "b_claim": claim, "b_now": now})


#: Failing an email: as its claim holder, or (the broker gave up on it) while no
#: worker holds a live claim.
_FAIL_HELD, _FAIL_UNCLAIMED = (
    update(EMAILS)
    .where(*where)
    .values(
        status=EmailStatus.FAILED,
        lease_until=None,
        attempts=E.attempts + bindparam("b_attempts"),
        last_error=bindparam("b_error"),
    )
    .returning(EMAILS)
    for where in (_HELD, (E.id == bindparam("b_id"), _claimable(bindparam("b_now"))))
)


def mark_failed(
    conn: Connection,
    email_id: uuid.UUID,
    *,
    error: str,
    attempts: int,
    claim: datetime | None,
    now: datetime,
) -> Row | None:
    """End an email as failed; None when it cannot be ended by this caller.

    With ``claim``, only while that claim stands.  Without one (the broker gave
    up on it), only while no worker holds a live claim: a duplicate delivery
    may be sending it this very moment.
    """
    parameters = {"b_id": email_id, "b_attempts": attempts, "b_error": error}
    if claim:
        return conn.execute(_FAIL_HELD, {**parameters, "b_claim": claim}).first()
    return conn.execute(_FAIL_UNCLAIMED, {**parameters, "b_now": now}).first()


def due(conn: Connection, now: datetime, stale_after: timedelta, limit: int) -> list[uuid.UUID]:
    """Emails that should be moving but are not: never enqueued, or held by a dead worker.

    Rows another sweeper is handling are skipped (``SKIP LOCKED``), and the ones
    taken are pushed forward, so each due email is handed out by one sweep only.
    """
    conn.execute(
        update(EMAILS)
        .where(E.status == EmailStatus.SENDING, E.lease_until < now)
        .values(status=EmailStatus.QUEUED, lease_until=None, next_attempt_at=now - stale_after)
    )
    ids = list(
        conn.scalars(
            select(E.id)
            .where(E.status == EmailStatus.QUEUED, E.next_attempt_at <= now - stale_after)
            .order_by(E.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        conn.execute(update(EMAILS).where(E.id.in_(ids)).values(next_attempt_at=now))
    return ids


def queued_for_events(conn: Connection, event_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The emails of these events that are still waiting for a first delivery."""
    if not event_ids:
        return []
    return list(
        conn.scalars(select(E.id).where(E.event_id.in_(event_ids), E.status == EmailStatus.QUEUED))
    )


def count_stale(conn: Connection, now: datetime) -> int:
    """Emails held for sending by a claim that has lapsed: their worker is gone."""
    return conn.scalar(
        select(func.count())
        .select_from(EMAILS)
        .where(E.status == EmailStatus.SENDING, E.lease_until < now)
    )


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(E.status, func.count()).group_by(E.status))
    return {status: count for status, count in rows}
