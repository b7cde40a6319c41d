"""Per-app API keys for the verification API: shown once, stored as SHA-256."""

from datetime import datetime

from sqlalchemy import Connection, Row, insert, select, update

from domain.tokens import api_key_digest, new_api_key
from workers.store.tables import ApiKey

KEYS = ApiKey.__table__

#: Characters of a key kept in clear to tell keys apart in a list.
SHOWN_PREFIX = 12


def create(conn: Connection, app: str, now: datetime) -> tuple[Row, str]:
    key = new_api_key()
    row = conn.execute(
        insert(KEYS)
        .values(app=app, prefix=key[:SHOWN_PREFIX], key_hash=api_key_digest(key), created_at=now)
        .returning(KEYS)
    ).one()
    return row, key


def app_for(conn: Connection, key: str) -> str | None:
    """The app a presented key belongs to, or None (unknown or revoked)."""
    return conn.scalar(
        select(KEYS.c.app).where(
            KEYS.c.key_hash == api_key_digest(key), KEYS.c.revoked_at.is_(None)
        )
    )


def list_keys(conn: Connection) -> list[Row]:
    return list(conn.execute(select(KEYS).order_by(KEYS.c.id)))


def revoke(conn: Connection, key_id: int, now: datetime) -> bool:
    return bool(
        conn.execute(
            update(KEYS)
            .where(KEYS.c.id == key_id, KEYS.c.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
    )
