"""The Dramatiq broker, with only the middleware mailroom uses.

mailroom's own middleware (``workers.middleware``) needs the runtime, so the
bootstrap adds it once the runtime exists.
"""

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, Retries, ShutdownNotifications, TimeLimit

#: Prefix of every key Dramatiq keeps in Redis (apart from the public ingress stream).
NAMESPACE = "mailroom:dq"


def make_broker(redis_url: str, *, min_backoff_ms: int, max_backoff_ms: int) -> RedisBroker:
    middleware = [
        TimeLimit(),
        ShutdownNotifications(),
        Retries(min_backoff=min_backoff_ms, max_backoff=max_backoff_ms),
        CurrentMessage(),
    ]
    return RedisBroker(url=redis_url, middleware=middleware, namespace=NAMESPACE)
