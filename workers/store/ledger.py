"""The event ledger: one row per event id, so an event is acted on once."""

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from workers.store import sql
from workers.store.tables import EventRow


def record_event(session: Session, event, outcome: str, now: datetime) -> bool:
    """Insert the ledger row; False when this event id was seen before.

    ``ON CONFLICT DO NOTHING`` makes a concurrent duplicate wait for the first
    transaction and then insert nothing, so exactly one of them goes on.
    """
    statement = (
        sql.insert(session, EventRow)
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


def event_type(session: Session, event_id: uuid.UUID | None) -> str | None:
    if event_id is None:
        return None
    row = session.get(EventRow, event_id)
    return row.type if row else None
