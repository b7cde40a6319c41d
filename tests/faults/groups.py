"""``mailroom worker`` process groups under a supervisor, as systemd would run them
(``Restart=on-failure``: a master that exits is started again at once).

Each group runs in its own session, so ``os.killpg`` reaches the master and every
child; every incarnation logs (stdout and stderr) to its own file.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.commands import MAILROOM
from tests.perf.probes import process_tree

#: systemd's defaults: more than 5 starts within 10 s and the unit is left failed.
START_LIMIT_BURST = 5
START_LIMIT_INTERVAL_S = 10.0


@dataclass
class Exit:
    at: float
    code: int | None
    restarted_at: float | None = None


@dataclass
class WorkerGroup:
    name: str
    env: dict
    logdir: Path
    processes: int = 2
    threads: int = 4
    #: A host name of its own (``unshare --uts``), as a second machine would have.
    hostname: str | None = None
    #: Start the master again when it exits (a supervisor); off for a dead host.
    supervised: bool = True
    exits: list[Exit] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.master: subprocess.Popen | None = None
        self.groups: list[int] = []
        self.stopping = False
        self.lock = threading.RLock()
        self.watcher = threading.Thread(target=self._supervise, daemon=True)

    def command(self) -> list[str]:
        worker = [MAILROOM, "worker", "-p", str(self.processes), "-t", str(self.threads)]
        if self.hostname and shutil.which("unshare") and os.geteuid() == 0:
            return ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"',
                    self.hostname, *worker]  # fmt: skip
        return worker

    def start(self, wait: bool = True) -> None:
        with self.lock:
            log = self.logdir / f"{self.name}-{len(self.logs) + 1}.log"
            self.logs.append(log)
            with log.open("w") as out:
                self.master = subprocess.Popen(
                    self.command(), env={**os.environ, **self.env},
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            self.groups.append(self.master.pid)
        if not self.watcher.is_alive():
            self.watcher.start()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        """Every process's ingress bridge has started (its log line says so)."""
        log, master = self.logs[-1], self.master
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.read_text(errors="replace").count('"ingress.started"') >= self.processes:
                return
            if master.poll() is not None:  # even if the supervisor restarted it
                break
            time.sleep(0.1)
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name}: the workers did not start:\n{tail}")

    def _supervise(self) -> None:
        while not self.stopping:
            time.sleep(0.05)
            with self.lock:
                master = self.master
                if self.stopping or master is None or master.poll() is None:
                    continue
                exit_ = Exit(time.time(), master.returncode)
                self.exits.append(exit_)
                self._reap(master.pid)
                recent = [e for e in self.exits if e.at > exit_.at - START_LIMIT_INTERVAL_S]
                if not self.supervised or len(recent) > START_LIMIT_BURST:
                    self.master = None  # a dead host; or systemd's start limit hit
                    continue
                self.start(wait=False)
                exit_.restarted_at = time.time()

    def children(self) -> list[int]:
        master = self.master
        if master is None or master.poll() is not None:
            return []
        try:
            return [pid for pid in process_tree(master.pid) if pid != master.pid]
        except (FileNotFoundError, ProcessLookupError):
            return []

    def kill_child(self) -> int:
        """``kill -9`` of one worker process (not the master); its pid."""
        children = self.children()
        if not children:
            raise RuntimeError(f"{self.name}: no worker process to kill")
        os.kill(children[0], signal.SIGKILL)
        return children[0]

    def kill_all(self) -> float:
        """``kill -9`` of the master and every child at once; when it happened."""
        with self.lock:
            master = self.master
            at = time.time()
            os.killpg(master.pid, signal.SIGKILL)
            master.wait(10)
        return at

    def terminate_all(self) -> tuple[float, float, int]:
        """SIGTERM to the master and every child at once, as a container runtime
        or systemd stops a service; when it was sent, when the master exited,
        and its exit code."""
        with self.lock:
            master = self.master
            at = time.time()
            os.killpg(master.pid, signal.SIGTERM)
        code = master.wait(90)
        return at, time.time(), code

    def last_restart(self) -> float | None:
        restarts = [e.restarted_at for e in self.exits if e.restarted_at]
        return restarts[-1] if restarts else None

    @staticmethod
    def _reap(pgid: int) -> None:
        # Orphaned children of a dead master: a dead host takes them too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop every incarnation: SIGTERM (Dramatiq finishes what it holds), then
        SIGKILL whatever of the group is left."""
        with self.lock:
            self.stopping = True
            master = self.master
        if master is not None and master.poll() is None:
            try:
                os.killpg(master.pid, signal.SIGTERM)
                master.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        for pgid in self.groups:
            self._reap(pgid)
        if master is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                master.wait(5)
