"""What differs between PostgreSQL and SQLite, in one place."""

from datetime import timedelta

from sqlalchemy import func, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def is_postgres(session: Session) -> bool:
    return session.bind.dialect.name == "postgresql"


def insert(session: Session, table):
    """An INSERT that knows ``ON CONFLICT`` on this session's database."""
    return (postgresql if is_postgres(session) else sqlite).insert(table)


def now(session: Session):
    """The database's clock as a SQL expression (expiry never trusts a worker's clock)."""
    if is_postgres(session):
        return func.now()
    return func.strftime("%Y-%m-%d %H:%M:%f", "now")


def now_plus(session: Session, seconds: float):
    if is_postgres(session):
        return func.now() + literal(timedelta(seconds=seconds))
    return func.strftime("%Y-%m-%d %H:%M:%f", "now", f"+{seconds:.3f} seconds")
