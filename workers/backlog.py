"""What waits in Redis and the database, as gauges read at each metrics scrape.

These are the fleet's values, not the host's: every host's endpoint reports
the same ones (aggregate them with ``max``, not ``sum``).
"""

from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine

from workers import ingress
from workers.actors import EVENTS_QUEUE, MAIL_QUEUE
from workers.broker import NAMESPACE
from workers.logs import get_logger
from workers.redisconn import connect
from workers.store import outbox
from workers.store.dead_letters import count_by_reason

#: Seconds a scrape waits on Redis for the backlog gauges.
SCRAPE_TIMEOUT = 2.0

log = get_logger("mailroom.metrics")


def queue_sizes(client, suffix: str = "", measure: str = "llen") -> dict[str, int]:
    """Dramatiq's queues by name (``suffix`` ``.DQ``: their delay queues; ``.XQ``,
    measured with ``zcard``: the messages it gave up on)."""
    command = getattr(client, measure)
    return {q: command(f"{NAMESPACE}:{q}{suffix}") for q in (EVENTS_QUEUE, MAIL_QUEUE)}


def queue_depths(client) -> tuple[dict[str, int], dict[str, int]]:
    """The ingress stream's backlog (``unread``, ``pending``), and what waits in
    each queue: ``ingress`` (both of those), then Dramatiq's."""
    stream = ingress.backlog(client)
    return stream, {"ingress": stream["unread"] + stream["pending"], **queue_sizes(client)}


def reader(redis_url: str, engine: Engine) -> Callable[[], dict]:
    """Reads the backlog over its own connections."""
    client = connect(
        redis_url, socket_timeout=SCRAPE_TIMEOUT, socket_connect_timeout=SCRAPE_TIMEOUT
    )

    def read() -> dict:
        _, queues = queue_depths(client)
        with engine.connect() as conn:
            waiting, oldest = outbox.waiting(conn)
            dead = count_by_reason(conn)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        return {
            "queues": queues,
            "emails_waiting": waiting,
            "oldest_age_seconds": max(0.0, age),
            "dead_letters": dead,
        }

    return read


class Backlog:
    """A Prometheus collector of the gauges ``read`` returns."""

    def __init__(self, read: Callable[[], dict]) -> None:
        self.read = read

    def collect(self):
        up = GaugeMetricFamily("mailroom_backlog_up", "1 when this scrape could read the backlog.")
        try:
            backlog = self.read()
        except Exception as exc:  # a scrape must answer even with Redis or the database down
            log.warning("metrics.backlog_unread", error=f"{type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "mailroom_queue_depth",
            "Messages waiting: `ingress` in the event stream (unread or being taken in), "
            "`events` and `mail` in Dramatiq's queues.",
            labels=["queue"],
        )
        for queue, size in backlog["queues"].items():
            depth.add_metric([queue], size)
        yield depth
        yield _gauge(
            "mailroom_emails_waiting",
            "Emails in the outbox not yet sent (queued or sending).",
            backlog["emails_waiting"],
        )
        yield _gauge(
            "mailroom_oldest_queued_email_age_seconds",
            "Age of the oldest email not yet sent, from its request; 0 when none waits.",
            backlog["oldest_age_seconds"],
        )
        dead = GaugeMetricFamily(
            "mailroom_dead_letters",
            "Dead letters nobody replayed or discarded yet, by reason.",
            labels=["reason"],
        )
        for reason, count in backlog["dead_letters"].items():
            dead.add_metric([reason], count)
        yield dead


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge
