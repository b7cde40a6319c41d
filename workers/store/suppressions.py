"""The suppression list, and the feedback each email earned."""

import uuid
from datetime import datetime

from sqlalchemy import Connection, Row, case, delete, func, literal, or_, select, update

from domain.feedback import Source
from domain.suppression import ALL_APPS, NOT_SENT, PRECEDENCE, UNDELIVERED, Suppression
from domain.vocabulary import EmailStatus, Feedback, Suppressed
from workers.store.sql import insert
from workers.store.tables import Email, SuppressionRow

#: Feedback after which nothing more is recorded of an email.
FINAL_FEEDBACK = (Feedback.BOUNCED, Feedback.COMPLAINED)

SUPPRESSIONS = SuppressionRow.__table__
S = SUPPRESSIONS.c
EMAILS = Email.__table__
E = EMAILS.c


def _live(now):
    return or_(S.expires_at.is_(None), S.expires_at > now)


_RANKED = case(*((S.reason == reason, rank) for rank, reason in enumerate(PRECEDENCE)))


def strongest(address_key, app, now):
    """A scalar subquery: the strongest reason ``address_key`` is suppressed for,
    for ``app``, at ``now`` (SQL expressions), as its place in
    ``domain.suppression.PRECEDENCE``; NULL when none.  Asked beside what a
    statement reads anyway, it costs no round trip of its own."""
    return (
        select(func.min(_RANKED))
        .where(S.address_key == address_key, S.scope.in_([literal(ALL_APPS), app]))
        .where(_live(now))
        .scalar_subquery()
    )


def strongest_for_email(now):
    """``strongest`` for the recipient and app of the emails row at hand (the
    claim returns it with the row)."""
    return strongest(E.recipient_key, E.app, now).correlate(EMAILS)


def put(
    conn: Connection,
    address_key: str,
    suppression: Suppression,
    *,
    source: str,
    detail: str | None,
    email_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """Suppress (again: the newest report and expiry win, except over an admin's
    own suppression, which only an admin changes)."""
    values = {
        "reason": suppression.reason,
        "source": source,
        "detail": detail,
        "email_id": email_id,
        "created_at": now,
        "expires_at": suppression.expires_at,
    }
    statement = insert(conn, SUPPRESSIONS).values(
        address_key=address_key, scope=suppression.scope, **values
    )
    keeps = None if source == Source.ADMIN else S.reason != Suppressed.MANUAL
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[S.address_key, S.scope], set_=values, where=keeps
        )
    )


def remove(conn: Connection, address_key: str, scope: str | None) -> int:
    """Lift an address's suppressions (``scope`` None: every one); how many."""
    statement = delete(SUPPRESSIONS).where(S.address_key == address_key)
    if scope is not None:
        statement = statement.where(S.scope == scope)
    return conn.execute(statement).rowcount


def listing(
    conn: Connection,
    now: datetime,
    *,
    address_key: str | None = None,
    scope: str | None = None,
    include_expired: bool = False,
    limit: int = 100,
) -> list[Row]:
    """Suppressions, newest first."""
    query = select(SUPPRESSIONS).order_by(S.created_at.desc(), S.address_key).limit(limit)
    if address_key is not None:
        query = query.where(S.address_key == address_key)
    if scope is not None:
        query = query.where(S.scope == scope)
    if not include_expired:
        query = query.where(_live(now))
    return conn.execute(query).all()


# ------------------------------------------------------------ feedback


def note_feedback(
    conn: Connection, email_id: uuid.UUID, feedback: Feedback, detail: str | None, now: datetime
) -> bool:
    """Record what was said of a sent email; False if it said so already (a
    report delivered twice), or something final was (a hard bounce, a complaint),
    which a later, weaker report arriving out of order must not undo."""
    statement = (
        update(EMAILS)
        .where(
            E.id == email_id,
            or_(E.feedback.is_(None), E.feedback.not_in([feedback, *FINAL_FEEDBACK])),
        )
        .values(feedback=feedback, feedback_at=now, feedback_detail=detail)
    )
    return bool(conn.execute(statement).rowcount)


def recent_feedback(
    conn: Connection, address_key: str, since: datetime, limit: int
) -> list[str | None]:
    """What was said of the latest mails sent to an address since ``since``
    that anything was said of, newest first."""
    query = (
        select(E.feedback)
        .where(E.recipient_key == address_key, E.sent_at > since, E.feedback.is_not(None))
        .order_by(E.created_at.desc())
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def undelivered(conn: Connection, challenge_id: uuid.UUID) -> bool:
    """Whether a challenge's mail bounced, or was never sent to an address that
    bounces or complained: its user cannot have its code."""
    query = select(E.id).where(
        E.challenge_id == challenge_id,
        or_(
            E.feedback.in_(list(UNDELIVERED)),
            (E.status == EmailStatus.SUPPRESSED) & E.suppressed_reason.in_(list(NOT_SENT)),
        ),
    )
    return conn.execute(query.limit(1)).first() is not None
