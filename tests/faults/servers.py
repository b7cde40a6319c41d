"""Servers a fault can hit: Redis (restartable on its port, AOF as the README
recommends, optionally a Sentinel-managed primary and replica), PostgreSQL
(restart, postmaster ``kill -9``) and an SMTP sink that can go down, refuse
recipients with 550 or stall in DATA.

Built on ``tests/servers.py``: its ``PostgresServer`` and ``SMTPSink`` are reused
as they are; only what a fault needs is added here.
"""

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path

import redis

from tests.servers import PostgresServer, SMTPSink, _pg_bin, free_port, wait_until


class FaultRedis:
    """``redis-server`` on a fixed port and directory, with ``appendonly yes`` and
    ``appendfsync everysec``: stopped, killed and started again on the same port."""

    def __init__(self, workdir: Path, *, replica_of: int | None = None) -> None:
        self.port = free_port()
        self.dir = workdir / f"redis-{self.port}"
        self.dir.mkdir(parents=True)
        self.replica_of = replica_of
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.log = self.dir / "redis.log"
        self.start()

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--logfile", str(self.log),
        ]  # fmt: skip
        if self.replica_of:
            command += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        wait_until(self.pings, 20, what=f"redis-server on {self.port}")

    def pings(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return bool(client.ping()) and client.info("persistence")["loading"] == 0
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """A clean shutdown: Redis writes its AOF and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
        self.process = None

    def kill(self) -> None:
        """``kill -9``: what was not yet fsynced (up to a second) is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def wipe(self) -> None:
        """Forget every byte on disk: the next start is an empty Redis."""
        for child in self.dir.iterdir():
            if child != self.log:
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    def close(self) -> None:
        self.kill()


class Sentinel:
    """One Redis Sentinel (quorum 1) watching ``primary``: fails over within seconds."""

    SERVICE = "mailroom"

    def __init__(self, workdir: Path, primary: FaultRedis) -> None:
        self.port = free_port()
        self.dir = workdir / f"sentinel-{self.port}"
        self.dir.mkdir(parents=True)
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"logfile {self.dir / 'sentinel.log'}\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
            f"sentinel failover-timeout {self.SERVICE} 5000\n"
            f"sentinel parallel-syncs {self.SERVICE} 1\n"
        )
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until(lambda: self.primary_port() == primary.port, 20, what="the sentinel")

    def primary_port(self) -> int | None:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                found = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)
            return int(found[1]) if found else None
        except redis.RedisError:
            return None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.SERVICE}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class FaultPostgres(PostgresServer):
    """``tests.servers.PostgresServer`` that can be restarted or lose its postmaster."""

    def _options(self) -> str:
        # postmaster.opts holds the command line of the running server; pg_ctl
        # start needs it back (pg_ctl restart reads it by itself).
        words = shlex.split((self.data / "postmaster.opts").read_text())
        options, skip = [], False
        for word in words[1:]:
            if skip:
                skip = False
            elif word == "-D":
                skip = True
            else:
                options.append(word)
        return shlex.join(options)

    def _ctl(self, *args: str) -> None:
        # -l always: a postmaster started without it writes to pg_ctl's stdout,
        # keeping the captured pipe open forever.
        subprocess.run(
            [*self.prefix, _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
             *args],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def restart_fast(self) -> None:
        self._ctl("-m", "fast", "-w", "restart")

    def kill_postmaster(self) -> str:
        """``kill -9`` of the postmaster; returns the options to start it with again."""
        options = self._options()
        os.kill(self.pid(), signal.SIGKILL)
        return options

    def start_again(self, options: str, timeout: float = 30) -> None:
        """Start after a crash: the orphaned backends must notice first, so retry."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._ctl("-o", options, "-w", "start")
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


class FaultSink(SMTPSink):
    """``tests.servers.SMTPSink`` whose handler can refuse chosen recipients (550 at
    RCPT) or stall in DATA.  A stalled mail counts as delivered from the moment its
    data is complete, as with a real MTA that has queued it before its 250 is
    written: a client that dies meanwhile never learns it was delivered."""

    def __init__(self) -> None:
        #: Recipients answered ``550`` at RCPT TO.
        self.refuse: set[str] = set()
        #: (address, time) of every refused RCPT.
        self.refused: list[tuple[str, float]] = []
        #: Seconds every DATA waits before its 250, while ``stall_until`` is ahead.
        self.stall_s = 0.0
        self.stall_until = 0.0
        #: Mails inside a stall right now.
        self.in_data = 0
        super().__init__(handler_class=_FaultHandler, enable_SMTPUTF8=False)

    def arrivals(self) -> list:
        with self.lock:
            return list(self.messages)


class _FaultHandler:
    def __init__(self, sink: FaultSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.sink.refuse:
            with self.sink.lock:
                self.sink.refused.append((address.lower(), time.time()))
            return "550 5.1.1 <" + address + ">: Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        parsed.envelope_to = [rcpt.lower() for rcpt in envelope.rcpt_tos]
        parsed.arrived = time.time()
        with self.sink.lock:
            self.sink.messages.append(parsed)
        if time.time() < self.sink.stall_until:
            self.sink.in_data += 1
            try:
                await asyncio.sleep(self.sink.stall_s)
            finally:
                self.sink.in_data -= 1
        return "250 2.0.0 OK queued"


def workdir(name: str) -> Path:
    """A fresh directory for one scenario's servers (their logs stay in the artifacts)."""
    return Path(tempfile.mkdtemp(prefix=f"mailroom-fault-{name}-"))
