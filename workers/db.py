"""Engines and migrations; created on demand, never at import."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event

#: Seconds to wait for a PostgreSQL connection to open.
CONNECT_TIMEOUT = 5
#: How long SQLite waits for a competing writer, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 15_000


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _tune_sqlite(engine)
        return engine
    # A database that hangs instead of refusing must not hold a thread for
    # psycopg's default of minutes; the URL's own connect_timeout wins.
    connect_args = {} if "connect_timeout=" in url else {"connect_timeout": CONNECT_TIMEOUT}
    return create_engine(url, pool_size=10, max_overflow=10, connect_args=connect_args)


def _tune_sqlite(engine: Engine) -> None:
    # Several worker threads and CLI processes share the embedded file: WAL lets
    # readers run beside the writer, and BEGIN IMMEDIATE takes the write lock up
    # front so two transactions never deadlock upgrading a read lock.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def autocommit(engine: Engine) -> Iterator[Connection]:
    """A connection on which each statement commits by itself: no BEGIN and COMMIT
    round trips around single-statement writes.  (SQLite: one transaction, as
    its BEGIN IMMEDIATE must be ended.)"""
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def alembic_config(url: str):
    """Alembic configuration pointing at the shipped ``migrations/``."""
    from alembic.config import Config

    from workers.shipped import shipped

    config = Config()
    config.set_main_option("script_location", str(shipped("migrations")))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)
