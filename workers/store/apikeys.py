"""Per-app API keys for the verification API: shown once, stored as SHA-256."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.tokens import api_key_digest, new_api_key
from workers.store.tables import ApiKey

#: Characters of a key kept in clear to tell keys apart in a list.
SHOWN_PREFIX = 12


def create(session: Session, app: str, now: datetime) -> tuple[ApiKey, str]:
    key = new_api_key()
    row = ApiKey(app=app, prefix=key[:SHOWN_PREFIX], key_hash=api_key_digest(key), created_at=now)
    session.add(row)
    session.flush()
    return row, key


def app_for(session: Session, key: str) -> str | None:
    """The app a presented key belongs to, or None (unknown or revoked)."""
    return session.scalar(
        select(ApiKey.app).where(
            ApiKey.key_hash == api_key_digest(key), ApiKey.revoked_at.is_(None)
        )
    )


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke(session: Session, key_id: int, now: datetime) -> bool:
    return bool(
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
    )
