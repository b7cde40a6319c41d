"""What differs between PostgreSQL and SQLite, in one place.

Every store function takes a ``Connection`` inside the caller's transaction
(``engine.begin()``) and runs Core statements: the ORM's unit of work cost more
CPU per mail than everything else the hot path does.
"""

from datetime import timedelta

from sqlalchemy import Connection, func, literal
from sqlalchemy.dialects import postgresql, sqlite


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def insert(conn: Connection, table):
    """An INSERT that knows ``ON CONFLICT`` on this connection's database."""
    return (postgresql if is_postgres(conn) else sqlite).insert(table)


def now(conn: Connection):
    """The database's clock as a SQL expression (expiry never trusts a worker's clock)."""
    if is_postgres(conn):
        return func.now()
    return func.strftime("%Y-%m-%d %H:%M:%f", "now")


def now_plus(conn: Connection, seconds: float):
    if is_postgres(conn):
        return func.now() + literal(timedelta(seconds=seconds))
    return func.strftime("%Y-%m-%d %H:%M:%f", "now", f"+{seconds:.3f} seconds")
