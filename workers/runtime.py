"""The ``Runtime``: every live part a use case needs, as one typed value.

A leaf: it names the parts' types and imports nothing that could import it
back.  ``workers.bootstrap`` builds it; entry points hand it down; use cases,
middleware and threads receive it (or the parts they call) as arguments.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import dramatiq
from sqlalchemy import Engine

from domain.apps import Directory
from domain.flows import FlowPolicy
from workers.health import TransportHealth
from workers.rendering import Renderer
from workers.settings import Settings
from workers.transports.base import Transport


def utcnow() -> datetime:
    return datetime.now(UTC)


class Dispatch(Protocol):
    """Hands work to the workers (the broker in production, a stub in tests)."""

    def event(self, raw: str, rejected: str | None = None) -> None: ...

    def delivery(self, email_id: uuid.UUID) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    redis_url: str
    #: Key id -> pepper; ``key_id`` names the one new secrets use.
    peppers: dict[str, bytes]
    key_id: str
    policy: FlowPolicy
    engine: Engine
    #: Runs the actors (a Redis broker; Dramatiq's ``StubBroker`` in unit tests).
    broker: dramatiq.Broker
    dispatch: Dispatch
    transport: Transport
    renderer: Renderer
    health: TransportHealth | None
    apps: Directory
    clock: Callable[[], datetime] = utcnow

    def close(self) -> None:
        self.transport.close()
        if self.health is not None:
            self.health.close()
        self.broker.close()
        self.engine.dispose()
