"""Webhooks given up on (``failed_webhooks``), and their replays."""

from datetime import datetime

from sqlalchemy import Connection, Row, insert, select, update

from workers.store.tables import FailedWebhook

FAILED_WEBHOOKS = FailedWebhook.__table__
W = FAILED_WEBHOOKS.c

DEAD = "dead"
REPLAYED = "replayed"


def file(
    conn: Connection,
    *,
    app: str,
    webhook_id: str,
    url: str,
    payload: str,
    last_status: int | None,
    last_error: str,
    attempts: int,
    now: datetime,
) -> int:
    """File one dead webhook; its id."""
    return conn.execute(
        insert(FAILED_WEBHOOKS)
        .values(
            app=app,
            webhook_id=webhook_id,
            url=url,
            payload=payload,
            last_status=last_status,
            last_error=last_error,
            attempts=attempts,
            status=DEAD,
            created_at=now,
        )
        .returning(W.id)
    ).scalar_one()


def listing(
    conn: Connection,
    *,
    status: str | None = DEAD,
    app: str | None = None,
    ids: list[int] | None = None,
    limit: int = 0,
) -> list[Row]:
    """Rows oldest first; ``status`` None: any; ``limit`` 0: all."""
    query = select(FAILED_WEBHOOKS).order_by(W.created_at, W.id)
    if status is not None:
        query = query.where(W.status == status)
    if app is not None:
        query = query.where(W.app == app)
    if ids is not None:
        query = query.where(W.id.in_(ids))
    if limit:
        query = query.limit(limit)
    return list(conn.execute(query))


def mark_replayed(conn: Connection, failed_id: int, now: datetime) -> bool:
    """False when the row is gone or was replayed already (by another admin)."""
    result = conn.execute(
        update(FAILED_WEBHOOKS)
        .where(W.id == failed_id, W.status == DEAD)
        .values(status=REPLAYED, replayed_at=now)
    )
    return result.rowcount == 1
