"""Dead letters as an admin looks at hundreds of them: filtered, paged, counted,
each with its app, the time of the request behind it, and the replay chain
(what it was a replay of, and what became of its own replay)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row, and_, func, or_, select
from sqlalchemy.sql import Select

from domain.vocabulary import DeadLetterStatus
from workers.store.outbox import EMAILS
from workers.store.tables import EventRow, FailedEmail

FAILED = FailedEmail.__table__
F = FAILED.c

_email = EMAILS.alias("email")  # the email this dead letter ended
_copy = EMAILS.alias("copy")  # the email its replay queued
_again = FAILED.alias("again")  # the dead letter that copy became, if it failed too
_first = EMAILS.alias("first")
_events = EventRow.__table__.alias("event")

#: When the user asked: the first mail of the chain (a replay keeps the event,
#: kind and recipient of what it copies), else when the dead letter was filed
#: (an event that never became mail).
REQUESTED_AT = func.coalesce(
    select(func.min(_first.c.created_at))
    .where(
        _first.c.event_id == _email.c.event_id,
        _first.c.kind == _email.c.kind,
        _first.c.recipient_key == _email.c.recipient_key,
    )
    .scalar_subquery(),
    _email.c.created_at,
    F.created_at,
).label("requested_at")

APP = func.coalesce(_email.c.app, _events.c.source).label("app")

_VIEW = select(
    FAILED,
    APP,
    REQUESTED_AT,
    _email.c.replay_of.label("replay_of"),
    _email.c.challenge_id.label("challenge_id"),
    _copy.c.status.label("copy_status"),
    _copy.c.suppressed_reason.label("copy_suppressed"),
    _again.c.id.label("again_id"),
    _again.c.reason.label("again_reason"),
).select_from(
    FAILED.outerjoin(_email, _email.c.id == F.email_id)
    .outerjoin(_events, _events.c.id == F.event_id)
    .outerjoin(_copy, _copy.c.id == F.replayed_email_id)
    .outerjoin(_again, _again.c.email_id == F.replayed_email_id)
)


@dataclass(frozen=True)
class Filters:
    status: DeadLetterStatus | None = DeadLetterStatus.DEAD
    reason: str | None = None
    #: A kind of mail, or an event type (for events that never became mail).
    kind: str | None = None
    app: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select) -> Select:
        if self.status:
            query = query.where(F.status == self.status)
        if self.reason:
            query = query.where(F.reason == self.reason)
        if self.kind:
            query = query.where(or_(F.kind == self.kind, F.event_type == self.kind))
        if self.app:
            query = query.where(APP == self.app)  # noqa: SIM300 (a column, not a constant)
        if self.since:
            query = query.where(F.created_at >= self.since)
        if self.until:
            query = query.where(F.created_at < self.until)
        return query


def page(
    conn: Connection,
    filters: Filters,
    *,
    limit: int | None = None,
    offset: int = 0,
    newest_first: bool = True,
) -> list[Row]:
    order = (F.created_at.desc(), F.id.desc()) if newest_first else (F.created_at, F.id)
    query = filters.apply(_VIEW).order_by(*order).offset(offset)
    if limit:
        query = query.limit(limit)
    return list(conn.execute(query))


def total(conn: Connection, filters: Filters) -> int:
    return conn.scalar(select(func.count()).select_from(filters.apply(_VIEW).subquery()))


def one(conn: Connection, failed_id: int) -> Row | None:
    return conn.execute(_VIEW.where(F.id == failed_id)).first()


def of_ids(conn: Connection, failed_ids: list[int]) -> list[Row]:
    return list(conn.execute(_VIEW.where(F.id.in_(failed_ids)).order_by(F.id)))


def outcomes(conn: Connection, email_ids: list) -> list[Row]:
    """What became of replayed emails: status, why suppressed, and the dead
    letter each became if it failed again."""
    if not email_ids:
        return []
    failed_again = and_(_again.c.email_id == _copy.c.id)
    query = (
        select(
            _copy.c.id,
            _copy.c.status,
            _copy.c.suppressed_reason,
            _again.c.id.label("again_id"),
            _again.c.reason.label("again_reason"),
        )
        .select_from(_copy.outerjoin(_again, failed_again))
        .where(_copy.c.id.in_(email_ids))
    )
    return list(conn.execute(query))
