"""The worker master (``mailroom worker``): starts the worker processes, replaces
any that dies, and stops them all gracefully on a signal.

Dramatiq's own master shuts every process down when one dies (the OOM killer's
``kill -9`` of one child stopped the whole fleet on that host); this one starts
a new process in its place at once, or after a growing pause when processes die
right after starting (a crash loop), so the others keep serving throughout.
"""

import os
import signal
import subprocess
import sys
import threading
import time

from workers import metrics_host
from workers.logs import get_logger

#: Seconds the processes get to stop after SIGTERM before they are killed: the
#: mail in hand takes at most one transport timeout (MAILROOM_SMTP_TIMEOUT).
SHUTDOWN_TIMEOUT = 60.0
#: A process that dies within this many seconds of starting counts as crashing.
CRASH_WINDOW = 10.0
#: Longest pause, in seconds, before restarting a crashing process.
MAX_RESTART_DELAY = 30.0
#: How often, in seconds, the master looks at its processes.
POLL_INTERVAL = 0.2

log = get_logger("mailroom.supervisor")


class _Slot:
    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.crashes = 0
        self.restart_at = 0.0

    def start(self) -> None:
        command = [sys.executable, "-m", "workers.entry", "--threads", str(self.threads)]
        self.process = subprocess.Popen(command)
        self.started = time.monotonic()
        log.info("supervisor.process_started", pid=self.process.pid)

    def check(self, now: float) -> None:
        """Restart the process if it has died (once its pause is over)."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return
            metrics_host.process_gone(self.process.pid)
            crashed = now - self.started < CRASH_WINDOW
            self.crashes = self.crashes + 1 if crashed else 0
            delay = min(MAX_RESTART_DELAY, 2 ** (self.crashes - 1)) if self.crashes else 0
            log.error(
                "supervisor.process_died",
                pid=self.process.pid,
                exit_code=code,
                restart_in_seconds=delay,
            )
            self.process, self.restart_at = None, now + delay
        if now >= self.restart_at:
            self.start()


def supervise(processes: int, threads: int) -> int:
    stopping = threading.Event()

    def stop(signum, _frame) -> None:
        log.info("supervisor.stopping", signal=signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    slots = [_Slot(threads) for _ in range(processes)]
    for slot in slots:
        slot.start()
    while not stopping.wait(POLL_INTERVAL):
        for slot in slots:
            slot.check(time.monotonic())
    return _stop_all([slot.process for slot in slots if slot.process is not None])


def _stop_all(children: list[subprocess.Popen]) -> int:
    for child in children:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT
    killed = 0
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("supervisor.process_killed", pid=child.pid, after_seconds=SHUTDOWN_TIMEOUT)
            child.kill()
            child.wait()
            killed += 1
    log.info("supervisor.stopped", processes=len(children), killed=killed)
    return 1 if killed else 0
