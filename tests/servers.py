"""Throwaway Redis, PostgreSQL and SMTP servers on loopback, for the test suite.

Redis and PostgreSQL are the real Debian servers (``tests/run.sh`` installs them
when absent); the SMTP server is aiosmtpd in-process.
"""

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import jsonschema
import redis
import uvicorn
from aiosmtpd.controller import Controller

from workers.api import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: run the suite with `bash tests/run.sh`")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mailroom-redis-")
        self.process = subprocess.Popen(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), what="redis-server to answer")
        client.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def _pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: run the suite with `bash tests/run.sh`")
    return found


def _version_key(path: str):
    return [int(p) if p.isdigit() else p for p in Path(path).parts]


class PostgresServer:
    """A private cluster in a temporary directory; PostgreSQL refuses to run as
    root, so as root it runs as the ``postgres`` user the Debian package creates."""

    def __init__(self, *settings: str) -> None:
        """``settings`` are extra ``name=value`` server settings."""
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mailroom-pg-"))
        self.data = self.dir / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "mailroom",
                  "--no-sync", "-E", "UTF8")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        ) + "".join(f" -c {setting}" for setting in settings)
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "log"), "-w", "start")  # fmt: skip
        self.admin_url = f"postgresql://mailroom@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        subprocess.run([*self.prefix, *command], check=True, capture_output=True)

    def pid(self) -> int:
        """The postmaster's process id."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://mailroom@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class SMTPSink:
    """An SMTP server that keeps what it accepts; it can refuse, or go down and up."""

    def __init__(self, handler_class=None, **controller_options) -> None:
        self.port = free_port()
        self.handler_class = handler_class or _Handler
        self.controller_options = controller_options
        #: NOOP commands received (idle-connection checks).
        self.noops = 0
        self.messages: list = []
        #: What was refused while ``reply`` was set, to compare with later mail.
        self.rejected: list = []
        #: When set, every DATA is answered with this reply instead of 250.
        self.reply: str | None = None
        self.lock = threading.Lock()
        self.controller: Controller | None = None
        self.start()

    def start(self) -> None:
        self.controller = Controller(
            self.handler_class(self),
            hostname="127.0.0.1",
            port=self.port,
            **self.controller_options,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.rejected.clear()
        self.reply = None
        if self.controller is None:
            self.start()

    def wait_for(self, count: int = 1, timeout: float = 15.0) -> list:
        wait_until(lambda: len(self.messages) >= count, timeout, what=f"{count} message(s)")
        with self.lock:
            return list(self.messages)


class _Handler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        parsed.raw = envelope.original_content  # the bytes as received (DKIM checks them)
        parsed.envelope_from = envelope.mail_from
        parsed.envelope_to = list(envelope.rcpt_tos)
        parsed.mail_options = list(envelope.mail_options)
        parsed.peer = session.peer
        parsed.helo = session.host_name
        parsed.login = getattr(session, "auth_data", None)
        parsed.arrived = time.time()
        reply = self.sink.reply
        with self.sink.lock:
            (self.sink.rejected if reply else self.sink.messages).append(parsed)
        if reply:
            if reply.startswith("421"):
                self.sink.reply = None  # one 421, then back to normal
            return reply
        await asyncio.sleep(0)
        return "250 2.0.0 OK queued"

    async def handle_NOOP(self, server, session, envelope, arg):
        self.sink.noops += 1
        return "250 OK"


class ApiServer:
    def __init__(self, runtime) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(runtime), host="127.0.0.1", port=self.port, log_config=None, workers=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, what="the API server")
        self.url = f"http://127.0.0.1:{self.port}"
        self.spec = httpx.get(f"{self.url}/openapi.json").json()
        self.seen: set[tuple[str, str, str]] = set()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def call(self, method: str, path: str, key: str | None, template: str | None = None, **kw):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)
        self.conforms(method, template or path, response)
        return response

    def conforms(self, method: str, template: str, response) -> None:
        """The response is one the OpenAPI document declares, with a body of its schema."""
        operation = self.spec["paths"][template][method.lower()]
        declared = operation["responses"].get(str(response.status_code))
        assert declared, f"{method} {template} answered {response.status_code}, not declared"
        schema = declared["content"]["application/json"]["schema"]
        jsonschema.validate(response.json(), {**schema, "components": self.spec["components"]})
        self.seen.add((method.lower(), template, str(response.status_code)))
