"""The Dramatiq broker, with only the middleware mailroom uses.

It carries retries, replays and notices; first attempts never wait on it (see
``workers.courier``), and the outbox, not the broker, is what recovery reads:
a message lost with Redis leaves its email due for the sweeper.

mailroom's own middleware (``workers.middleware``) needs the runtime, so the
bootstrap adds it once the runtime exists.
"""

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Retries, ShutdownNotifications, TimeLimit

from workers.redisconn import connect

#: Prefix of every key Dramatiq keeps in Redis (apart from the public ingress stream).
NAMESPACE = "mailroom:dq"
#: Milliseconds without a heartbeat after which Dramatiq counts a consumer as
#: dead and puts the messages it had fetched back in their queue (default 60 s).
#: A live consumer beats on every fetch, at least once a second.
HEARTBEAT_TIMEOUT_MS = 15_000
#: Broker commands per million that also run that clean-up (default 1,000).  At
#: about one fetch a second per idle consumer, 1% finds a dead one within seconds.
MAINTENANCE_CHANCE = 10_000


def make_broker(
    redis_url: str, *, min_backoff_ms: int, max_backoff_ms: int, metrics: bool = False
) -> RedisBroker:
    """``metrics``: with Dramatiq's Prometheus middleware (``workers.metrics_host``
    serves what it counts)."""
    middleware = [
        TimeLimit(),
        ShutdownNotifications(),
        Retries(min_backoff=min_backoff_ms, max_backoff=max_backoff_ms),
    ]
    if metrics:
        # Imported only here: it reads its directory's setting at import.
        from dramatiq.middleware.prometheus import Prometheus

        middleware.append(Prometheus())
    return RedisBroker(
        client=connect(redis_url),
        middleware=middleware,
        namespace=NAMESPACE,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
    )
