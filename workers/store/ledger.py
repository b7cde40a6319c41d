"""The event ledger: one row per event id, so an event is acted on once."""

import uuid
from datetime import datetime

from sqlalchemy import Connection, select, text, update

from workers.store import sql
from workers.store.tables import EventRow

EVENTS = EventRow.__table__


#: PostgreSQL takes a batch as one array per column: a statement whose text
#: never changes, so psycopg parses it and the server plans it once (a
#: multi-row VALUES list is new text for every batch size, parsed anew).
_RECORD_ARRAYS = text(
    "INSERT INTO events (id, type, source, occurred_at, received_at, outcome) "
    "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS varchar[]), "
    "CAST(:sources AS varchar[]), CAST(:occurred AS timestamptz[]), "
    "CAST(:received AS timestamptz[]), CAST(:outcomes AS varchar[])) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)


def record_events(conn: Connection, events: list, outcomes: list[str], now: datetime) -> set:
    """Insert the ledger rows of a batch; the ids that were new.

    ``ON CONFLICT DO NOTHING`` makes a concurrent duplicate wait for the first
    transaction and then insert nothing, so exactly one of them goes on.
    """
    if not events:
        return set()
    if sql.is_postgres(conn):
        columns = {
            "ids": [event.id for event in events],
            "types": [event.type for event in events],
            "sources": [event.source for event in events],
            "occurred": [event.occurred_at for event in events],
            "received": [now] * len(events),
            "outcomes": list(outcomes),
        }
        return set(conn.execute(_RECORD_ARRAYS, columns).scalars())
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
    return set(conn.execute(statement, rows).scalars())


def set_outcome(conn: Connection, event_id: uuid.UUID, outcome: str) -> None:
    conn.execute(update(EVENTS).where(EVENTS.c.id == event_id).values(outcome=outcome))


def event_type(conn: Connection, event_id: uuid.UUID | None) -> str | None:
    if event_id is None:
        return None
    return conn.scalar(select(EVENTS.c.type).where(EVENTS.c.id == event_id))
