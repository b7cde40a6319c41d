"""Fixtures: real Redis, PostgreSQL and SMTP servers, and a running mailroom worker.

The servers start once per session on loopback ports; every test gets empty
tables and an empty Redis.
"""

import io
import json
import logging
import uuid
from datetime import UTC, datetime

import dramatiq
import pytest
import redis
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from domain.errors import VerificationFailed
from tests.peers import SESServer
from tests.servers import PostgresServer, RedisServer, SMTPSink, wait_until
from workers import bootstrap, db
from workers.logs import configure_logging
from workers.settings import load_settings
from workers.store.tables import Base, Challenge, Email, FailedEmail

TOKEN_SECRET = "test-pepper-0123456789abcdef0123456789"
BASE_URL = "https://app.example.com"


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_url(postgres_server):
    url = postgres_server.create_database("mailroom_test")
    db.upgrade(load_settings({"DATABASE_URL": url}).sqlalchemy_url)
    return url


@pytest.fixture(scope="session")
def smtp_sink_server():
    sink = SMTPSink(enable_SMTPUTF8=False)
    yield sink
    sink.stop()


@pytest.fixture
def smtp_sink(smtp_sink_server):
    smtp_sink_server.reset()
    yield smtp_sink_server
    smtp_sink_server.reset()


@pytest.fixture
def redis_client(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def clean_db(pg_url):
    engine = db.make_engine(load_settings({"DATABASE_URL": pg_url}).sqlalchemy_url)
    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return pg_url


def base_env(redis_url: str, database_url: str, smtp_port: int) -> dict:
    return {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "MAILROOM_TRANSPORT": "smtp",
        "MAILROOM_SMTP_HOST": "127.0.0.1",
        "MAILROOM_SMTP_PORT": str(smtp_port),
        "MAILROOM_SMTP_SECURITY": "none",
        "MAILROOM_SMTP_TIMEOUT": "5",
        "MAILROOM_MAIL_FROM": "Notes <no-reply@notes.example.com>",
        "MAILROOM_PUBLIC_BASE_URL": BASE_URL,
        "MAILROOM_TOKEN_SECRET": TOKEN_SECRET,
        "MAILROOM_RETRY_MIN_BACKOFF": "0.2",
        "MAILROOM_RETRY_MAX_BACKOFF": "2",
        "MAILROOM_WEBHOOK_MIN_BACKOFF": "0.2",
        "MAILROOM_WEBHOOK_MAX_BACKOFF": "2",
        "LOG_FORMAT": "json",
        # Tests that scrape metrics choose a free port: two workers on one
        # machine (parallel runs, a leftover) would fight over the default.
        "MAILROOM_METRICS_PORT": "0",
    }


@pytest.fixture(scope="module")
def ses_server():
    """moto's server, speaking SES (the tests' local AWS endpoint)."""
    server = SESServer()
    yield server
    server.stop()


@pytest.fixture
def env(redis_client, clean_db, smtp_sink, redis_server):
    return base_env(redis_server.url, clean_db, smtp_sink.port)


class Mailroom:
    """A real worker (Dramatiq on Redis, PostgreSQL, SMTP) running in this process."""

    def __init__(self, environ: dict, *, start_worker: bool = True) -> None:
        self.log = io.StringIO()
        settings = load_settings(environ)
        configure_logging("json", "DEBUG", stream=self.log)
        # aiosmtpd (the tests' SMTP server, not mailroom) logs every envelope.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.rt = bootstrap.install(bootstrap.build_runtime(settings))
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.worker = None
        if start_worker:
            self.start()

    def start(self) -> None:
        self.worker = dramatiq.Worker(self.rt.broker, worker_threads=4, worker_timeout=100)
        self.worker.start()

    def stop_worker(self) -> None:
        """Stop consuming (its ingress bridge too); the runtime stays usable."""
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
            self.worker = None

    def stop(self) -> None:
        self.stop_worker()
        self.redis.close()
        self.rt.close()

    def publish(self, event: dict | str) -> None:
        """What a foreign producer does: one XADD of plain JSON."""
        raw = event if isinstance(event, str) else json.dumps(event)
        self.redis.xadd("mailroom:events", {"event": raw})

    def rows(self, model, *where):
        with Session(self.rt.engine) as session:
            return list(session.scalars(select(model).where(*where)))

    def emails(self) -> list[Email]:
        return self.rows(Email)

    def challenges(self) -> list[Challenge]:
        return self.rows(Challenge)

    def failed(self) -> list[FailedEmail]:
        return self.rows(FailedEmail)

    def wait_for_failed(self, count: int = 1, timeout: float = 15.0) -> list[FailedEmail]:
        return wait_until(
            lambda: (rows := self.failed()) and len(rows) >= count and rows,
            timeout,
            what=f"{count} dead letter(s)",
        )

    def wait_for_status(self, status: str, count: int = 1, timeout: float = 15.0):
        return wait_until(
            lambda: len(rows := self.rows(Email, Email.status == status)) >= count and rows,
            timeout,
            what=f"{count} email(s) {status}",
        )

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.strip()]


@pytest.fixture
def make_mailroom(env):
    started = []

    def start(start_worker: bool = True, **overrides) -> Mailroom:
        mailroom = Mailroom({**env, **overrides}, start_worker=start_worker)
        started.append(mailroom)
        return mailroom

    yield start
    for mailroom in started:
        mailroom.stop()
        # Shown by pytest when the test failed: the worker's own account.
        print(mailroom.log.getvalue())


@pytest.fixture
def mailroom(make_mailroom):
    return make_mailroom()


def make_event(type_: str = "user.signup_requested", data: dict | None = None, **envelope):
    data = data if data is not None else {"email": "ada@example.com", "name": "Ada"}
    return {
        "version": 1,
        "id": str(uuid.uuid4()),
        "type": type_,
        "source": "notes",
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": data,
        **envelope,
    }


def reset(exists=True, email="ada@example.com", user="u1"):
    data = {"email": email, "account_exists": exists}
    if exists:
        data["user_id"] = user
    return make_event("password.reset_requested", data)


def invite(existing=False, **extra):
    data = {
        "invite_id": "inv-1",
        "email": "grace@example.com",
        "inviter_name": "Ada",
        "workspace_id": "w-1",
        "workspace_name": "Engines",
        "role": "editor",
        "existing_user": existing,
        **extra,
    }
    return make_event("invite.created", data)


def failure(call, *args) -> str:
    with pytest.raises(VerificationFailed) as caught:
        call(*args)
    return caught.value.code


def change(user="u1", current="ada@example.com", new="ada@example.org"):
    return make_event(
        "email.change_requested",
        {"user_id": user, "current_email": current, "new_email": new, "name": "Ada"},
    )
