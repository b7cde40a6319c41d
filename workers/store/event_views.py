"""Events as their app looks them up ("what became of the event I published?"):
its ledger row, or the dead letter it became when refused at intake.  Its mail
is read with ``email_views`` (``Filters(event_id=...)``).
"""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row, func, select

from domain.vocabulary import EmailStatus
from workers.store.ledger import EVENTS
from workers.store.outbox import EMAILS, E
from workers.store.tables import FailedEmail

FAILED = FailedEmail.__table__
F = FAILED.c
#: Dead letters read per lookup, newest first: a producer that publishes one
#: refused event again and again leaves a dead letter each time.
MAX_CANDIDATES = 10


@dataclass(frozen=True)
class Refusal:
    """An event dead-lettered at intake: it has no ledger row and no mail."""

    reason: str
    error: str
    type: str | None
    at: datetime


def accepted(conn: Connection, event_id: uuid.UUID, app: str) -> Row | None:
    """The ledger row of one of ``app``'s events."""
    query = select(EVENTS).where(EVENTS.c.id == event_id, EVENTS.c.source == app)
    return conn.execute(query).first()


def refused(conn: Connection, event_id: uuid.UUID, app: str) -> Refusal | None:
    """The dead letter of one of ``app``'s events refused at intake.

    A dead letter keeps no app: its raw content says whose it was.  An event read
    but refused (unknown source) keeps its id; one that failed validation keeps
    none, so the id its raw content claims is looked for there (a scan of those
    dead letters only, on the path of an id the ledger does not know).
    """
    unmailed = (F.email_id.is_(None),)
    by_id = select(FAILED).where(*unmailed, F.event_id == event_id)
    by_content = select(FAILED).where(
        *unmailed, F.event_id.is_(None), func.lower(F.payload).contains(str(event_id))
    )
    for query in (by_id, by_content):
        for row in conn.execute(query.order_by(F.id.desc()).limit(MAX_CANDIDATES)):
            claimed = _claimed(row.payload)
            if claimed.get("source") == app and _same_id(claimed.get("id"), event_id):
                kind = row.event_type or claimed.get("type")
                kind = kind if isinstance(kind, str) else None
                return Refusal(row.reason, row.error, kind, row.created_at)
    return None


def _claimed(payload: str | None) -> dict:
    try:
        value = json.loads(payload or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _same_id(value, event_id: uuid.UUID) -> bool:
    try:
        return uuid.UUID(str(value)) == event_id
    except ValueError:
        return False


def suppressed_at_intake(conn: Connection, event_ids: list[uuid.UUID]) -> list[Row]:
    """The mail the gate suppressed as these events were taken in (never attempted;
    mail suppressed as its attempt began has one)."""
    query = select(EMAILS).where(
        E.event_id.in_(event_ids), E.status == EmailStatus.SUPPRESSED, E.attempts == 0
    )
    return list(conn.execute(query.order_by(E.created_at, E.id)))
