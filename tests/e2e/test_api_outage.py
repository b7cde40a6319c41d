"""The API in an outage, for real: a PostgreSQL that stops under it, one that
refuses, one that hangs, a Redis that refuses.  Calls answer 503 JSON, /readyz
fails within its budget, /healthz stays 200, and no URL's password leaks.

None of these touch the session's shared servers: each test gets its own
server, or a dead address.
"""

import socket
import sqlite3
import time

import httpx
import pytest

from tests.servers import ApiServer, PostgresServer, free_port
from workers import db
from workers.settings import load_settings
from workers.store import apikeys

PASSWORD = "pw-never-shown-4242"
BODY = {"purpose": "signup", "email": "ada@example.com", "code": "123456"}
UNAVAILABLE_DB = {"error": "unavailable", "detail": "database"}


@pytest.fixture
def serve(make_mailroom):
    """An API over a runtime whose settings ``overrides`` change."""
    servers = []

    def start(**overrides) -> tuple:
        mailroom = make_mailroom(start_worker=False, **overrides)
        servers.append(ApiServer(mailroom.rt))
        return mailroom, servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def black_hole():
    """A port that takes TCP connections and never says a word: a hung server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def assert_outage(mailroom, api, detail: str) -> None:
    answer = api.call("POST", "/v1/codes/verify", "mrk_any", json=BODY)
    assert (answer.status_code, answer.json()) == (503, {"error": "unavailable", "detail": detail})
    assert int(answer.headers["retry-after"]) > 0
    ready = api.call("GET", "/readyz", None)
    assert (ready.status_code, ready.json()) == (503, {"error": "unavailable", "detail": detail})
    assert api.call("GET", "/healthz", None).json() == {"status": "ok"}
    for text in (answer.text, ready.text, mailroom.log.getvalue()):
        assert PASSWORD not in text


def test_a_refused_database(serve):
    url = f"postgresql://mailroom:{PASSWORD}@127.0.0.1:{free_port()}/x?connect_timeout=2"
    mailroom, api = serve(DATABASE_URL=url)
    assert_outage(mailroom, api, "database")
    [logged] = [line for line in mailroom.log_lines() if line["event"] == "api.unavailable"]
    assert (logged["dependency"], logged["route"]) == ("database", "/v1/codes/verify")
    assert "Connection refused" in logged["reason"]


def test_a_database_that_stops_under_the_api(serve):
    server = PostgresServer()
    running = True
    try:
        url = server.create_database("mailroom_outage")
        db.upgrade(load_settings({"DATABASE_URL": url}).sqlalchemy_url)
        mailroom, api = serve(DATABASE_URL=url)
        with mailroom.rt.engine.begin() as conn:
            key = apikeys.create(conn, "notes", mailroom.rt.clock())[1]
        assert api.call("POST", "/v1/codes/verify", key, json=BODY).json() == {"error": "invalid"}
        assert api.call("GET", "/readyz", None).status_code == 200
        server.stop()  # immediate: the pool's connections die with it
        running = False
        for _ in range(2):  # a broken pooled connection, then a refused new one
            answer = api.call("POST", "/v1/codes/verify", key, json=BODY)
            assert (answer.status_code, answer.json()) == (503, UNAVAILABLE_DB)
        ready = api.call("GET", "/readyz", None)
        assert (ready.status_code, ready.json()) == (503, UNAVAILABLE_DB)
        assert api.call("GET", "/healthz", None).status_code == 200
    finally:
        if running:
            server.stop()


def test_readiness_answers_in_time_when_the_database_hangs(serve, black_hole):
    # No connect_timeout in the URL: the probe brings its own.
    mailroom, api = serve(DATABASE_URL=f"postgresql://mailroom:{PASSWORD}@127.0.0.1:{black_hole}/x")
    began = time.monotonic()
    ready = httpx.get(f"{api.url}/readyz", timeout=10)
    assert time.monotonic() - began < 2.5
    assert (ready.status_code, ready.json()) == (503, UNAVAILABLE_DB)
    assert httpx.get(f"{api.url}/healthz", timeout=1).status_code == 200
    [logged] = [line for line in mailroom.log_lines() if line["event"] == "api.not_ready"]
    assert (logged["check"], logged["error"]) == ("database", "timeout")


def test_a_refused_redis(serve):
    mailroom, api = serve(REDIS_URL=f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0")
    ready = api.call("GET", "/readyz", None)
    assert (ready.status_code, ready.json()) == (503, {"error": "unavailable", "detail": "redis"})
    assert PASSWORD not in ready.text and PASSWORD not in mailroom.log.getvalue()


def test_readiness_on_sqlite_does_not_wait_behind_a_writer(serve, tmp_path):
    # `mailroom dev`'s embedded database: a writer holds the file's lock.
    path = tmp_path / "mailroom.db"
    mailroom, api = serve(DATABASE_URL=f"sqlite:///{path}")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")  # as mailroom leaves the file
    writer.execute("BEGIN IMMEDIATE")
    try:
        began = time.monotonic()
        assert api.call("GET", "/readyz", None).status_code == 200
        assert time.monotonic() - began < 1
    finally:
        writer.execute("ROLLBACK")
        writer.close()
