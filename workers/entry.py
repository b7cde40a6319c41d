"""One worker process: ``python -m workers.entry --threads N``, started by the
supervisor (``mailroom worker``), never by hand.

It runs the Dramatiq worker (retries, replays, notices) and, beside it, the
ingress bridge, the courier, the sweeper and the lease keeper.  SIGTERM, SIGINT
or SIGHUP stop it gracefully: intake stops, the mail in hand is finished, what
waits is handed back to the others.  It also stops should its supervisor die.
"""

import argparse
import os
import signal
import sys
import threading

import dramatiq

from workers.bootstrap import build_runtime, install
from workers.logs import configure_logging, get_logger
from workers.settings import load_settings

#: Milliseconds the broker's threads get to finish the message in hand on stop.
BROKER_STOP_MS = 30_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.entry")
    parser.add_argument("--threads", type=int, default=8)
    threads = parser.parse_args(argv).threads

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopping.set())
    supervisor = os.getppid()

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    log = get_logger("mailroom.worker")
    runtime = install(build_runtime(settings, threads=threads))
    # What Dramatiq's own command does first (its metrics start counting here).
    runtime.broker.emit_after("process_boot")
    worker = dramatiq.Worker(runtime.broker, worker_threads=threads)
    worker.start()
    log.info("worker.started", pid=os.getpid(), threads=threads, claimant=runtime.claimant)
    while not stopping.wait(0.5):
        if os.getppid() != supervisor:
            log.warning("worker.orphaned", pid=os.getpid())
            break
    log.info("worker.stopping", pid=os.getpid())
    worker.stop(timeout=BROKER_STOP_MS)
    runtime.close()
    log.info("worker.stopped", pid=os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
