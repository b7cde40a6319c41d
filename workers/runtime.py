"""The ``Runtime``: every live part a use case needs, as one typed value.

A leaf: it names the parts' types and imports nothing that could import it
back.  ``workers.bootstrap`` builds it; entry points hand it down; use cases,
middleware and threads receive it (or the parts they call) as arguments.
"""

import os
import secrets
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Protocol

import dramatiq
from sqlalchemy import Engine

from domain import verp
from domain.apps import Directory
from domain.flows import FlowPolicy
from workers.health import TransportHealth
from workers.outcome_stream import OutcomeStream
from workers.rendering import Renderer
from workers.settings import Settings
from workers.transports.base import Transport


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_claimant() -> str:
    """This process's name on the emails it holds: unique across hosts and restarts."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


class Dispatch(Protocol):
    """Hands work to the workers (the broker and this process's courier)."""

    def event(self, raw: str, rejected: str | None = None) -> None: ...

    def delivery(self, email_id: uuid.UUID, delay_ms: int | None = None) -> bool:
        """To any worker, through the broker (after ``delay_ms``); False when the
        broker could not take it (the email stays due for the sweeper)."""

    def attempt(self, email_id: uuid.UUID, held: int) -> None:
        """To this process's courier: an email it holds, with ``held`` attempts made."""


class Holds:
    """The emails this process is working on, whose leases its keeper renews."""

    def __init__(self) -> None:
        self._counts: Counter[uuid.UUID] = Counter()
        self._lock = threading.Lock()

    def add(self, email_id: uuid.UUID) -> None:
        with self._lock:
            self._counts[email_id] += 1

    def discard(self, email_id: uuid.UUID) -> None:
        with self._lock:
            self._counts[email_id] -= 1
            if self._counts[email_id] <= 0:
                del self._counts[email_id]

    def snapshot(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._counts)


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
    #: This process's name on the emails it holds (``emails.claimed_by``).
    claimant: str = field(default_factory=new_claimant)
    holds: Holds = field(default_factory=Holds)
    #: Where the apps read what became of their mail; None: not published.
    outcome_stream: OutcomeStream | None = None

    @cached_property
    def verp_keys(self) -> dict[str, bytes]:
        """Each pepper's VERP key (``domain.verp``), derived once: old ones too,
        so mail sent before a rotation still bounces home."""
        return {key_id: verp.key_for(pepper) for key_id, pepper in self.peppers.items()}

    def close(self) -> None:
        self.transport.close()
        if self.health is not None:
            self.health.close()
        if self.outcome_stream is not None:
            self.outcome_stream.close()
        self.broker.close()
        self.engine.dispose()
