"""`mailroom status`: is mail moving, and if not, why.

One report from PostgreSQL and Redis: the transports' health as the workers
last saw it, the live workers by their heartbeats (``workers.heartbeat``), what
waits (the ingress stream, Dramatiq's queues, unsent mail) and what was given
up on.  The exit code is for monitoring: ``EXIT_NO_WORKER`` while work waits
and no worker is alive to do it, else ``EXIT_FAILED`` while a transport fails.
"""

import json
import signal
import sys
import threading
from datetime import UTC, datetime

import click
import redis
import sqlalchemy.exc

from workers.cli.base import (
    EXIT_FAILED,
    EXIT_NO_WORKER,
    cli,
    current_settings,
    echo_json,
    open_engine,
)
from workers.redisconn import connect
from workers.store import claims, dead_letters, outbox

#: Seconds between two frames of ``--watch`` given without a value.
WATCH_EVERY = 2.0
#: What a frame of ``--watch`` shows instead of the report while one is out of reach.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, sqlalchemy.exc.OperationalError)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one line per frame).")
@click.option(
    "--watch",
    type=click.FloatRange(min=0.5),
    is_flag=False,
    flag_value=WATCH_EVERY,
    default=None,
    metavar="[SECONDS]",
    help=f"Redraw every SECONDS (default {WATCH_EVERY:g}) until Ctrl-C.",
)
def status(as_json: bool, watch: float | None) -> None:
    """Live workers, transports' health, what waits and what was given up on.

    Workers are listed by their heartbeats (every 5 s; alive while the last is
    under 15 s old).  Emails still `sending` after their claim lapsed are
    counted as stale (their worker died; the sweeper sends them again).  Exit 5
    when work waits and no worker is alive; else 1 when a transport is
    misconfigured or failing (for monitoring).  With --watch, exit 0 on Ctrl-C.
    """
    from workers.embedded import redis_url_for

    settings = current_settings()
    engine = open_engine()
    client = connect(redis_url_for(settings))
    try:

        def take() -> dict:
            with engine.connect() as conn:
                return gather(conn, client, settings.transports)

        if watch is None:
            report = take()
            if as_json:
                echo_json(report)
            else:
                click.echo("\n".join(render(report)))
            sys.exit(exit_code(report))
        _watch(take, as_json, watch)
    finally:
        client.close()
        engine.dispose()


def _watch(take, as_json: bool, every: float) -> None:
    # Ctrl-C only sets a flag, and the loop ends after the frame in hand: an
    # interrupt raised wherever the main thread happens to be (inside a write
    # to stdout, or a driver's call) could leave a lock held and the exit hung.
    # A second Ctrl-C interrupts at once.
    stop = threading.Event()

    def on_interrupt(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        while not stop.is_set():
            at = datetime.now(UTC)
            try:
                report = take()
            except UNREACHABLE as exc:  # keep watching through a restart
                report = {"checked_at": at.isoformat(), "error": _unreachable(exc)}
            if as_json:
                click.echo(json.dumps(report, default=str))
            else:
                lines = render(report) if "error" not in report else [report["error"]]
                header = f"mailroom status at {at:%H:%M:%S} UTC, every {every:g}s; Ctrl-C stops"
                click.clear()
                click.echo("\n".join([header, "", *lines, ""]))
            stop.wait(every)
    except KeyboardInterrupt:
        return
    finally:
        signal.signal(signal.SIGINT, previous)


def _unreachable(exc: Exception) -> str:
    if isinstance(exc, sqlalchemy.exc.OperationalError):
        return f"cannot use the database: {exc.orig}"
    return f"cannot reach Redis: {exc}"


def gather(conn, client: redis.Redis, configured: list[str]) -> dict:
    from workers import health, heartbeat
    from workers.backlog import queue_depths, queue_sizes

    now = datetime.now(UTC)
    emails = outbox.count_by_status(conn)
    unsent, oldest = outbox.waiting(conn)
    transports = health.read(client)
    fleet = heartbeat.read(client)
    ingress, queues = queue_depths(client)

    unknown = {"state": "unknown", "error": None, "setting": None}
    report = {
        "checked_at": now.isoformat(),
        "workers": {
            "alive": fleet.alive,
            "gone": fleet.gone,
            "alive_within_seconds": heartbeat.ALIVE_WITHIN,
        },
        # Only what is configured now: a transport dropped from the list is history.
        "transports": {name: transports.get(name, unknown) for name in configured},
        "emails": emails,
        "unsent": unsent,
        "oldest_unsent_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        "stale_sending": claims.count_stale(conn, now),
        "dead_letters": dead_letters.count(conn),
        "ingress": ingress,
        "queues": queues,
        # Messages due later (retries' back-off): Dramatiq keeps them in queues of their own.
        "delayed": queue_sizes(client, ".DQ"),
        # Messages Dramatiq gave up on (also filed as dead letters, unless that
        # failed); it drops them after 7 days.
        "broker_dead_letters": queue_sizes(client, ".XQ", measure="zcard"),
    }
    report["problems"] = problems(report)
    return report


def problems(report: dict) -> list[str]:
    found = []
    if not report["workers"]["alive"] and (work := _work(report)):
        found.append(f"no worker alive while work waits: {work}; start `mailroom worker`")
    for name, state in report["transports"].items():
        if state["state"] in ("misconfigured", "failing"):
            found.append(f"transport {name} is {state['state']}")
    return found


def exit_code(report: dict) -> int:
    if not report["workers"]["alive"] and _work(report):
        return EXIT_NO_WORKER
    broken = ("misconfigured", "failing")
    if any(state["state"] in broken for state in report["transports"].values()):
        return EXIT_FAILED
    return 0


def _work(report: dict) -> str:
    """What waits for a worker, in words ("" when nothing does)."""
    parts = []
    if unsent := report["unsent"]:
        oldest = _age(report["oldest_unsent_seconds"])
        parts.append(f"{_n(unsent, 'unsent email')} (oldest asked {oldest} ago)")
    if ingress := report["queues"]["ingress"]:
        parts.append(f"{_n(ingress, 'event')} in the ingress stream")
    queued = {k: v for k, v in report["queues"].items() if k != "ingress"}
    if broker := sum(queued.values()) + sum(report["delayed"].values()):
        parts.append(f"{_n(broker, 'message')} in Dramatiq's queues")
    return ", ".join(parts)


def render(report: dict) -> list[str]:
    lines = []
    for name, state in report["transports"].items():
        line = f"transport {name}: {state['state']}"
        if state.get("error"):
            line += f": {state['error']}"
        lines.append(line)
    lines += _workers(report["workers"], bool(_work(report)))
    emails = report["emails"]
    lines.append("emails: " + (", ".join(f"{k} {v}" for k, v in sorted(emails.items())) or "none"))
    if report["unsent"]:
        lines.append(f"oldest unsent: {_age(report['oldest_unsent_seconds'])} since asked")
    if stale := report["stale_sending"]:
        lines.append(f"stale: {stale} sending past their claim (their worker is gone)")
    lines.append(f"dead letters: {report['dead_letters']}")
    lines.append("queued: " + ", ".join(f"{k} {v}" for k, v in report["queues"].items()))
    lines.append("delayed: " + ", ".join(f"{k} {v}" for k, v in report["delayed"].items()))
    xq = report["broker_dead_letters"]
    lines.append("broker dead-letter sets: " + ", ".join(f"{k} {v}" for k, v in xq.items()))
    lines += [f"problem: {problem}" for problem in report["problems"]]
    return lines


def _workers(fleet: dict, work_waits: bool) -> list[str]:
    alive, gone = fleet["alive"], fleet["gone"]
    if alive:
        lines = [f"workers: {len(alive)} alive"]
        rows = [["HOST", "PID", "LAST BEAT", "IN FLIGHT", "THREADS", "UP", "VERSION"]]
        lines += ["  " + line for line in _columns(rows + [_row(w) for w in alive])]
    else:
        within = _age(fleet["alive_within_seconds"])
        lines = [f"workers: no worker alive (none beat in the last {within})"]
        if not work_waits:
            lines[0] += "; nothing waits"
    if gone:
        last = gone[0]
        lines.append(
            f"gone: {len(gone)} stopped beating in the last hour without stopping cleanly "
            f"(latest {last.get('host')} pid {last.get('pid')}, "
            f"{_age(last['last_beat_seconds'])} ago)"
        )
    return lines


def _row(worker: dict) -> list:
    # A record another version of mailroom wrote may lack a field: "?" then.
    shown = {key: worker.get(key, "?") for key in ("host", "pid", "in_flight", "threads")}
    beat = worker["last_beat_seconds"]
    try:
        up = _age(_seconds_since(worker["started_at"], worker["beat_at"]) + beat)
    except (KeyError, TypeError, ValueError):
        up = "?"
    return [shown["host"], shown["pid"], f"{_age(beat)} ago", shown["in_flight"],
            shown["threads"], up, worker.get("version", "?")]  # fmt: skip


def _columns(rows: list[list]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(*rows, strict=True)]
    return [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def _seconds_since(start: str, end: str) -> float:
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _age(seconds: float | None) -> str:
    """3s, 4m12s, 2h05m, 3d04h."""
    seconds = int(seconds or 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if not minutes:
        return f"{seconds}s"
    if not hours:
        return f"{minutes}m{seconds % 60:02d}s"
    if not days:
        return f"{hours}h{minutes % 60:02d}m"
    return f"{days}d{hours % 24:02d}h"
