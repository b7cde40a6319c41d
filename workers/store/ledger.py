"""The event ledger: one row per event id, so an event is acted on once."""

import uuid
from datetime import datetime

from sqlalchemy import Connection, select, update

from workers.store import sql
from workers.store.tables import EventRow

EVENTS = EventRow.__table__


def record_events(conn: Connection, events: list, outcomes: list[str], now: datetime) -> set:
    """Insert the ledger rows of a batch; the ids that were new.

    ``ON CONFLICT DO NOTHING`` makes a concurrent duplicate wait for the first
    transaction and then insert nothing, so exactly one of them goes on.
    """
    if not events:
        return set()
    rows = [
        {
            "id": event.id,
            "type": event.type,
            "source": event.source,
            "occurred_at": event.occurred_at,
            "received_at": now,
            "outcome": outcome,
        }
        for event, outcome in zip(events, outcomes, strict=True)
    ]
    statement = (
        sql.insert(conn, EVENTS)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(EVENTS.c.id)
    )
    # The rows as parameters, not as VALUES in the statement: SQLAlchemy then
    # compiles it once (not per batch) and still sends one multi-row INSERT.
    return set(conn.execute(statement, rows).scalars())


def set_outcome(conn: Connection, event_id: uuid.UUID, outcome: str) -> None:
    conn.execute(update(EVENTS).where(EVENTS.c.id == event_id).values(outcome=outcome))


def event_type(conn: Connection, event_id: uuid.UUID | None) -> str | None:
    if event_id is None:
        return None
    return conn.scalar(select(EVENTS.c.type).where(EVENTS.c.id == event_id))
