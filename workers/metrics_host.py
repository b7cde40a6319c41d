"""The ``/metrics`` endpoint of a worker host: one per ``mailroom worker`` (or
``mailroom dev``), whatever its number of processes.

Each worker process keeps its values in files (prometheus_client's
multiprocess mode) in a directory its master chooses at start; the master
serves their sum, Dramatiq's own ``dramatiq_*`` among them, with the backlog
read at each scrape (``workers.backlog``).

Light to import: prometheus_client reads the directory's setting when it is
first imported, so ``prepare`` must run before anything that counts is.
"""

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from workers.logs import get_logger

#: Where prometheus_client's multiprocess mode keeps each process's values.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The same directory, as Dramatiq's Prometheus middleware reads it.
DRAMATIQ_ENV = "dramatiq_prom_db"

log = get_logger("mailroom.metrics")


def enabled() -> bool:
    """This process's counts reach an endpoint (a worker under a master, or dev)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def prepare() -> Path:
    """A fresh directory the worker processes count in, for this process and
    every child it starts."""
    directory = Path(tempfile.mkdtemp(prefix="mailroom-metrics-"))
    os.environ[MULTIPROC_ENV] = os.environ[DRAMATIQ_ENV] = str(directory)
    return directory


def process_gone(pid: int) -> None:
    """A worker process ended: its live gauges stop counting (its counters stay)."""
    if enabled():
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, os.environ[MULTIPROC_ENV])


def start(settings, redis_url: str) -> Callable[[], None]:
    """Prepare the directory and serve it on MAILROOM_METRICS_HOST:PORT from a
    thread; returns what stops it.  A port already taken (a second worker
    master on the host) leaves this one without an endpoint, not stopped."""
    directory = prepare()

    def cleanup() -> None:
        shutil.rmtree(directory, ignore_errors=True)

    try:
        stop = _serve(settings, redis_url, settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        log.error(
            "metrics.unavailable",
            port=settings.metrics_port,
            error=str(exc),
            setting="MAILROOM_METRICS_PORT",
        )
        return cleanup

    def stop_all() -> None:
        stop()
        cleanup()

    return stop_all


def _serve(settings, redis_url: str, host: str, port: int) -> Callable[[], None]:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    from workers.backlog import Backlog, reader
    from workers.db import make_engine

    engine = make_engine(settings.sqlalchemy_url)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.environ[MULTIPROC_ENV])
    registry.register(Backlog(reader(redis_url, engine)))
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics.serving", address=f"{host}:{server.server_port}", path="/metrics")

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        engine.dispose()

    return stop
