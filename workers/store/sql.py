"""What differs between PostgreSQL and SQLite, in one place.

Every store function takes a ``Connection`` inside the caller's transaction
(``engine.begin()``, or ``db.autocommit``) and runs Core statements.  The hot
path's statements are built once, at import, with bound parameters: building a
statement anew costs more CPU than running it.  ``db_now()`` and
``db_now_plus(seconds)`` are the database's clock on either database, so those
statements need not know which one they will meet.
"""

from sqlalchemy import Connection, Float
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from workers.store.tables import UTCDateTime


class db_now(FunctionElement):  # noqa: N801 (reads as the SQL function it stands for)
    """The database's clock (expiry never trusts a worker's clock)."""

    type = UTCDateTime()
    inherit_cache = True


class db_now_plus(FunctionElement):  # noqa: N801
    """The database's clock plus a number of seconds."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(db_now, "postgresql")
def _now_pg(element, compiler, **kw):
    return "now()"


@compiles(db_now, "sqlite")
def _now_sqlite(element, compiler, **kw):
    return "strftime('%Y-%m-%d %H:%M:%f', 'now')"


@compiles(db_now_plus, "postgresql")
def _now_plus_pg(element, compiler, **kw):
    return f"now() + make_interval(secs => {compiler.process(element.clauses, **kw)})"


@compiles(db_now_plus, "sqlite")
def _now_plus_sqlite(element, compiler, **kw):
    seconds = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '+' || {seconds} || ' seconds')"


#: The type a ``db_now_plus`` argument is bound with.
SECONDS = Float()


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def insert(conn: Connection, table):
    """An INSERT that knows ``ON CONFLICT`` on this connection's database."""
    return (postgresql if is_postgres(conn) else sqlite).insert(table)
