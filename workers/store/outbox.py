"""The outbox: one row per mail, whatever becomes of it.

How a worker process holds one while attempting it: ``workers.store.claims``.
"""

import hashlib
import uuid
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, func, insert, or_, select, text

from domain.addresses import address_key
from domain.flows import EmailSpec, SendFacts
from domain.vocabulary import EmailStatus, Suppressed
from workers.store import guards, sql, suppressions
from workers.store.hot import Hot
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
_SUPPRESSED_FOR = suppressions.strongest(
    bindparam("b_recipient"), bindparam("b_app"), bindparam("b_now")
)
_FACTS = Hot(select(_RECENT, _SUPPRESSED_FOR))
_FACTS_WITH_GUARD = Hot(select(_RECENT, _SUPPRESSED_FOR, guards.LOCKED_UNTIL.scalar_subquery()))


def send_facts(
    conn: Connection, app: str, spec: EmailSpec, since: datetime, now: datetime
) -> SendFacts:
    """What the gate needs to know, in one round trip: the mails that count
    against the rate limit, whether the recipient is suppressed, and whether
    the address the secret would go to is cooling down."""
    parameters = {
        "b_app": app,
        "b_recipient": address_key(spec.recipient),
        "b_kind": spec.kind,
        "b_since": since,
        "b_now": now,
    }
    if spec.challenge is None:
        count, suppressed_for = _FACTS.first(conn, parameters)
        return SendFacts(recent_sends=count, suppressed_for=suppressed_for)
    parameters.update(b_purpose=spec.challenge.purpose, b_target=address_key(spec.challenge.target))
    count, suppressed_for, locked_until = _FACTS_WITH_GUARD.first(conn, parameters)
    return SendFacts(
        recent_sends=count,
        suppressed_for=suppressed_for,
        address_locked=bool(locked_until and locked_until > now),
    )


_INSERT = insert(EMAILS)


def hold_values(claimant: str, lease_until: datetime) -> dict:
    """Row values of an email held by ``claimant`` for an attempt it will make."""
    return {"status": EmailStatus.SENDING, "claimed_by": claimant, "lease_until": lease_until}


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
    held: tuple[str, datetime] | None = None,
    due: datetime | None = None,
    requested_at: datetime | None = None,
) -> uuid.UUID:
    """Queue (or record as suppressed) one email; with ``defer``, its row is
    appended there for ``insert_rows`` instead of inserted now.  ``held``
    (claimant, lease end): the email is held for that process's first attempt.
    ``due``: not to be sent before then (a paced replay); default now.
    ``requested_at``: when the producer asked for it; default now."""
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
        "next_attempt_at": due or now,
        "replay_of": replay_of,
        "created_at": now,
        "requested_at": requested_at or now,
        "claimed_by": None,
        "lease_until": None,
    }
    if held and not suppressed:
        row.update(hold_values(*held))
    if defer is None:
        conn.execute(_INSERT, row)
    else:
        defer.append(row)
    return email_id


def insert_rows(conn: Connection, rows: list[dict]) -> None:
    """Insert the rows ``add_email`` deferred, in one round trip.

    psycopg pipelines one prepared single-row INSERT per row.  One multi-row
    INSERT would be fewer statements, but its text changes with the batch's
    size, and psycopg parses such a long text anew each time: measured, that
    cost the worker more CPU than the statements saved the server."""
    if rows:
        conn.execute(_INSERT, rows)


def get(conn: Connection, email_id: uuid.UUID | None) -> Row | None:
    if email_id is None:
        return None
    return conn.execute(select(EMAILS).where(E.id == email_id)).first()


def get_by_provider_id(conn: Connection, provider_id: str) -> Row | None:
    """The email a provider knows by this id (SES's MessageId; ``ix_emails_provider``)."""
    return conn.execute(select(EMAILS).where(E.provider_id == provider_id).limit(1)).first()


def first_of_challenge(conn: Connection, challenge_id: uuid.UUID) -> Row | None:
    """The first mail that carried a challenge's secret."""
    return conn.execute(
        select(EMAILS).where(E.challenge_id == challenge_id).order_by(E.created_at).limit(1)
    ).first()


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(E.status, func.count()).group_by(E.status))
    return {status: count for status, count in rows}


def waiting(conn: Connection) -> tuple[int, datetime | None]:
    """How many emails are not yet sent (queued or sending), and when the
    oldest of them was asked for."""
    unsent = E.status.in_((EmailStatus.QUEUED, EmailStatus.SENDING))
    asked = func.coalesce(E.requested_at, E.created_at)
    count, oldest = conn.execute(select(func.count(), func.min(asked)).where(unsent)).one()
    return count, oldest
