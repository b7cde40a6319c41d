"""Redis clients from a URL, a Sentinel-managed primary included.

``redis+sentinel://[:password@]host:port[,host:port...]/service[/db]`` asks the
Sentinels which server is the primary of ``service``; the client asks again
whenever a connection fails, so after a failover every part of mailroom
(ingress, broker, health) follows the new primary without a restart.  The
password is the primary's (and the Sentinels', when they have one).
"""

from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

#: URL schemes that name Sentinels rather than a server.
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
#: Port of a Sentinel named without one.
SENTINEL_PORT = 26379
#: Seconds to wait on a Sentinel before asking the next one.
SENTINEL_TIMEOUT = 1.0


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0] in SENTINEL_SCHEMES


def connect(url: str, **options) -> redis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://`` or Sentinel);
    ``options`` go to the client (``socket_connect_timeout``...)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    return sentinel_primary(url, **options)


def sentinel_primary(url: str, **options) -> redis.Redis:
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    password = unquote(credentials.partition(":")[2]) or None if credentials else None
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        sentinels.append((name, int(port or SENTINEL_PORT)))
    path = [segment for segment in parts.path.split("/") if segment]
    if not path or not sentinels:
        raise ValueError("a Sentinel URL names its hosts and service: redis+sentinel://h:26379/svc")
    service, db = path[0], int(path[1]) if len(path) > 1 else 0
    auth = {"password": password} if password else {}
    sentinel = Sentinel(
        sentinels,
        sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT, **auth},
        ssl=parts.scheme.startswith("rediss"),
    )
    return sentinel.master_for(service, db=db, **auth, **options)
