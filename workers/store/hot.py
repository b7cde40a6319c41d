"""The statements every mail runs, without SQLAlchemy's per-call work.

Running a compiled Core statement costs SQLAlchemy more CPU than psycopg spends
on it (the cache lookup, building the parameters, the result's metadata): on
an open connection the sent mark took 78-96 us of CPU that way against 55-64 us
here, in two runs of each.  A ``Hot`` statement is compiled once per database.  On
PostgreSQL its SQL goes through ``exec_driver_sql``, which keeps SQLAlchemy's
error translation and the pool's handling of lost connections, with the
parameters and results converted by the very type processors SQLAlchemy would
apply; other databases run it as any statement.
"""

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from workers.store.sql import is_postgres


@dataclass(frozen=True)
class _Compiled:
    sql: str
    construct: Callable[[dict], dict]
    #: Bind name -> how SQLAlchemy would convert its value.
    binds: tuple[tuple[str, Callable], ...]
    #: Builds a result row from the driver's values (None: no RETURNING).
    row: Callable | None


class Hot:
    """One statement of the hot path; ``first``, ``all`` and ``rowcount`` run it."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        # Compiled on first use; two threads compiling at once build the same thing.
        self._compiled: _Compiled | None = None

    def first(self, conn: Connection, parameters: dict):
        if not is_postgres(conn):
            return conn.execute(self.statement, parameters).first()
        compiled, result = self._run(conn, parameters)
        values = result.fetchone()
        result.close()
        return None if values is None else compiled.row(values)

    def all(self, conn: Connection, parameters: dict) -> list:
        if not is_postgres(conn):
            return conn.execute(self.statement, parameters).all()
        compiled, result = self._run(conn, parameters)
        return [compiled.row(values) for values in result.fetchall()]

    def rowcount(self, conn: Connection, parameters: dict) -> int:
        if not is_postgres(conn):
            return conn.execute(self.statement, parameters).rowcount
        return self._run(conn, parameters)[1].rowcount

    def _run(self, conn: Connection, parameters: dict):
        if self._compiled is None:
            self._compiled = _compile(self.statement, conn.dialect)
        compiled = self._compiled
        values = compiled.construct(parameters)
        for name, process in compiled.binds:
            values[name] = process(values[name])
        return compiled, conn.exec_driver_sql(compiled.sql, values)


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    binds = []
    for bind, name in compiled.bind_names.items():
        if bind.expanding:
            raise ValueError(f"a hot statement cannot expand {name!r} (an IN list)")
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            binds.append((name, process))
    row = None
    columns = list(getattr(statement, "exported_columns", ()) or ())
    if columns:
        Row = namedtuple("Row", [column.key for column in columns], rename=True)  # noqa: N806
        processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        if any(processors):
            pairs = [(p or _same) for p in processors]

            def row(values, _make=Row._make, _pairs=pairs):
                return _make([process(v) for process, v in zip(_pairs, values, strict=True)])
        else:
            row = Row._make
    return _Compiled(str(compiled), compiled.construct_params, tuple(binds), row)


def _same(value):
    return value
