"""The unit layer: use cases on SQLite, Dramatiq's StubBroker and a recording
transport.  No server is started; each test gets a fresh database file."""

import io
import json
import logging
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries, ShutdownNotifications, TimeLimit
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.errors import DeliveryError
from domain.messages import as_bytes
from workers import db, intake
from workers.actors import EVENTS_QUEUE, MAIL_QUEUE
from workers.bootstrap import build_runtime
from workers.logs import configure_logging
from workers.runtime import Runtime
from workers.settings import load_settings
from workers.store.tables import Base, Email
from workers.transports.base import Receipt

TOKEN_SECRET = "unit-pepper-0123456789abcdef0123456789"
BASE_URL = "https://app.example.com"


class RecordingTransport:
    """Accepts every message and keeps it, or raises what a test tells it to."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        #: Raised by the next sends instead of accepting (a DeliveryError, say).
        self.fail_with: DeliveryError | None = None
        self.attempts = 0

    def send(
        self, message: Message, *, sender: str, recipient: str, return_path: str | None = None
    ) -> Receipt:
        self.attempts += 1
        if self.fail_with is not None:
            raise self.fail_with
        # What a server would receive: the wire bytes, read back.
        self.sent.append(message_from_bytes(as_bytes(message), policy=policy.default))
        return Receipt(destination="memory", transport=self.name)

    def close(self) -> None:
        pass


class Unit:
    """A runtime wired as in production, minus the servers."""

    def __init__(self, rt: Runtime, transport: RecordingTransport, log: io.StringIO) -> None:
        self.rt = rt
        self.transport = transport
        self.log = log
        self.worker: dramatiq.Worker | None = None

    def drain(self) -> None:
        """Run every queued message (and those they queue) to the end."""
        if self.worker is None:  # one worker per test, started on first use
            self.worker = dramatiq.Worker(self.rt.broker, worker_threads=1, worker_timeout=20)
            self.worker.start()
        for _ in range(10):
            self.rt.dispatch.courier.run_pending()  # first attempts, held by this "process"
            for queue in (EVENTS_QUEUE, MAIL_QUEUE):
                self.rt.broker.join(queue, fail_fast=False)
            waiting = self.rt.dispatch.courier.queue.qsize()
            if not waiting and not any(q.qsize() for q in self.rt.broker.queues.values()):
                break
        self.worker.join()

    def accept_unsent(self, event: dict) -> list:
        """Accept an event and leave its mail held for this process's courier,
        unattempted (as if the process died right after the commit)."""
        before = {email.id for email in self.rows(Email)}
        intake.accept_event(self.rt, json.dumps(event))
        while not self.rt.dispatch.courier.queue.empty():
            self.rt.dispatch.courier.queue.get_nowait()
        return [email for email in self.rows(Email) if email.id not in before]

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.rt.close()

    def rows(self, model, *where) -> list:
        """Rows of a table, as the ORM reads them."""
        with Session(self.rt.engine) as session:
            return list(session.scalars(select(model).where(*where)))

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.strip()]


@pytest.fixture
def unit(tmp_path):
    settings = load_settings(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'mailroom.db'}",
            "MAILROOM_STATE_DIR": str(tmp_path / "state"),
            "MAILROOM_TOKEN_SECRET": TOKEN_SECRET,
            "MAILROOM_MAIL_FROM": "Notes <no-reply@notes.example.com>",
            "MAILROOM_PUBLIC_BASE_URL": BASE_URL,
            "MAILROOM_RETRY_MIN_BACKOFF": "0.01",
            "MAILROOM_RETRY_MAX_BACKOFF": "0.05",
            # The unit runtime contacts no Redis: outcomes are not published.
            "MAILROOM_OUTCOMES_MAXLEN": "0",
        }
    )
    Base.metadata.create_all(db.make_engine(settings.sqlalchemy_url))
    log = io.StringIO()
    configure_logging("json", "DEBUG", stream=log)
    logging.getLogger("dramatiq").setLevel(logging.WARNING)
    broker = StubBroker(
        middleware=[TimeLimit(), ShutdownNotifications(), Retries(min_backoff=10, max_backoff=50)]
    )
    broker.emit_after("process_boot")
    transport = RecordingTransport()
    rt = build_runtime(
        settings,
        redis_url="redis://127.0.0.1:9/0",  # never contacted: no health, no ingress here
        transport=transport,
        broker=broker,
        background=False,
    )
    unit = Unit(rt, transport, log)
    yield unit
    unit.close()
