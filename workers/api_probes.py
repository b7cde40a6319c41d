"""Liveness and readiness probes: ``/healthz`` and ``/readyz``.

``/healthz`` touches nothing: a liveness probe that failed on an outage would
have the orchestrator restart every replica, which fixes no database.
``/readyz`` checks that PostgreSQL and Redis answer, and answers within
``PROBE_BUDGET`` whatever they do: a probe that hangs on a hung server is
worse than one that fails.
"""

from collections.abc import Callable
from typing import Literal

import anyio
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from workers import redisconn
from workers.api_errors import RETRY_AFTER_HEADER, Error, reason, unavailable
from workers.logs import get_logger
from workers.runtime import Runtime

log = get_logger("workers.api")

#: Seconds /readyz waits for its checks (run side by side) before it fails them.
PROBE_BUDGET = 1.5
#: Seconds a check's own connection may take: a hung check's thread ends soon
#: after the answer went out (2 s is the least libpq and psycopg accept).
CONNECT_TIMEOUT = 2
#: Milliseconds PostgreSQL may spend on the check's query.
STATEMENT_TIMEOUT_MS = 1000


class Health(BaseModel):
    status: Literal["ok"]


class Checks(BaseModel):
    redis: Literal["ok"]
    database: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: Checks


def probe_engine(engine: Engine) -> Engine:
    """An engine for the check alone: a fresh connection each time (the pool's may
    be busy, or stale), with timeouts the application's engine does not have."""
    if engine.dialect.name != "postgresql":
        return engine  # the embedded SQLite file: nothing to time out on
    return create_engine(
        engine.url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT}
    )


class Readiness:
    def __init__(self, runtime: Runtime) -> None:
        self.redis_url = runtime.redis_url
        self.engine = probe_engine(runtime.engine)

    def check_redis(self) -> None:
        client = redisconn.connect(
            self.redis_url, socket_timeout=CONNECT_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT
        )
        try:
            client.ping()
        finally:
            client.close()

    def check_database(self) -> None:
        if self.engine.dialect.name != "postgresql":
            # The driver's own connection: SQLAlchemy's would start with the
            # engine's BEGIN IMMEDIATE, and wait behind any writer of the file.
            raw = self.engine.raw_connection()
            try:
                raw.cursor().execute("SELECT 1")
            finally:
                raw.close()
            return
        with self.engine.begin() as conn:
            # SET LOCAL, not a startup option: PgBouncer refuses unknown ones.
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
            conn.exec_driver_sql("SELECT 1")

    async def failures(self) -> list[str]:
        """The names of the checks that failed, or timed out: [] when ready."""
        checks = {"redis": self.check_redis, "database": self.check_database}
        passed: dict[str, bool] = dict.fromkeys(checks, False)
        async with anyio.create_task_group() as group:
            for name, check in checks.items():
                group.start_soon(_run, name, check, passed)
        return [name for name, ok in passed.items() if not ok]


async def _run(name: str, check: Callable[[], None], passed: dict[str, bool]) -> None:
    with anyio.move_on_after(PROBE_BUDGET) as scope:
        try:
            # Abandoned when the budget runs out: its timeouts end it soon after.
            await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
        except Exception as exc:
            # The driver's words, never the URL: it may carry a password.
            log.warning("api.not_ready", check=name, error=type(exc).__name__, reason=reason(exc))
            return
        passed[name] = True
    if scope.cancelled_caught:
        log.warning("api.not_ready", check=name, error="timeout", seconds=PROBE_BUDGET)


def install(app: FastAPI, runtime: Runtime) -> None:
    readiness = Readiness(runtime)
    not_ready = {
        503: {
            "model": Error,
            "description": "`unavailable`: `detail` names the failed checks.",
            "headers": RETRY_AFTER_HEADER,
        }
    }

    @app.get("/healthz", response_model=Health)
    async def health() -> dict:
        """Liveness: the process answers. No I/O."""
        # Async, so it answers even while every worker thread waits on a hung database.
        return {"status": "ok"}

    @app.get("/readyz", response_model=Ready, responses=not_ready)
    async def ready():
        """Readiness: PostgreSQL and Redis answer (within 2 s, whatever they do)."""
        failed = await readiness.failures()
        if failed:
            return unavailable(", ".join(failed))
        return {"status": "ready", "checks": dict.fromkeys(("redis", "database"), "ok")}
