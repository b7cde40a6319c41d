"""The one place that wires mailroom's dependencies together.

``build_runtime`` turns settings into live parts (engine, broker, transport,
renderer); ``install`` makes a runtime the one actors use in this process.
Nothing here runs at import.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dramatiq
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from domain.apps import Directory
from domain.errors import ConfigError
from domain.flows import FlowPolicy
from workers import embedded
from workers.actors import Actors, declare
from workers.apps import load_directory
from workers.broker import make_broker
from workers.db import make_engine, make_sessionmaker
from workers.health import TransportHealth
from workers.rendering import Renderer
from workers.settings import Settings
from workers.transports import Transport, make_transport


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    redis_url: str
    #: Key id -> pepper; ``key_id`` names the one new secrets use.
    peppers: dict[str, bytes]
    key_id: str
    policy: FlowPolicy
    engine: Engine
    sessions: sessionmaker[Session]
    broker: dramatiq.Broker
    actors: Actors
    transport: Transport
    renderer: Renderer
    health: TransportHealth
    apps: Directory
    clock: Callable[[], datetime] = utcnow

    def enqueue_event(self, raw: str, rejected: str | None = None) -> None:
        self.actors.handle_event.send(raw, rejected)

    def enqueue_delivery(self, email_id: uuid.UUID) -> None:
        self.actors.deliver.send(str(email_id))

    def close(self) -> None:
        self.transport.close()
        self.health.close()
        self.broker.close()
        self.engine.dispose()


def redis_url_for(settings: Settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    url = embedded.find(settings.state_dir)
    if url is None:
        raise ConfigError(
            "REDIS_URL", "is not set and no `mailroom dev` is running here to provide one"
        )
    return url


def peppers_for(settings: Settings) -> dict[str, bytes]:
    current = settings.token_secret or embedded.token_secret(settings.state_dir)
    peppers = {settings.token_key_id: current.encode()}
    for key_id, secret in settings.old_secrets:
        peppers.setdefault(key_id, secret.encode())
    return peppers


def policy_for(settings: Settings) -> FlowPolicy:
    return FlowPolicy(
        ttl={
            "signup": timedelta(minutes=settings.signup_ttl),
            "login": timedelta(minutes=settings.login_ttl),
            "email_change": timedelta(minutes=settings.email_change_ttl),
            "password_reset": timedelta(minutes=settings.reset_ttl),
            "invite": timedelta(days=settings.invite_ttl),
        },
        code_length=settings.code_length,
        reset_unknown_account=settings.reset_unknown_account,
    )


def build_runtime(
    settings: Settings, *, redis_url: str | None = None, transport: Transport | None = None
) -> Runtime:
    redis_url = redis_url or redis_url_for(settings)
    health = TransportHealth(redis_url)
    if settings.database_url is None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    broker = make_broker(
        redis_url,
        min_backoff_ms=int(settings.retry_min_backoff * 1000),
        max_backoff_ms=int(settings.retry_max_backoff * 1000),
    )
    return Runtime(
        settings=settings,
        redis_url=redis_url,
        peppers=peppers_for(settings),
        key_id=settings.token_key_id,
        policy=policy_for(settings),
        engine=engine,
        sessions=make_sessionmaker(engine),
        broker=broker,
        actors=declare(broker),
        transport=transport or make_transport(settings, health=health),
        health=health,
        renderer=Renderer(overrides=settings.templates_dir),
        apps=load_directory(settings),
    )


_current: Runtime | None = None


def install(runtime: Runtime) -> Runtime:
    global _current
    _current = runtime
    dramatiq.set_broker(runtime.broker)
    return runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no mailroom runtime installed in this process")
    return _current
