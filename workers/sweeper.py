"""The sweeper: finds mail that should be moving and is not, and sends it here.

Two cases: an email whose holder died (its lease lapsed: the process was killed
before, during or after its attempt), and a queued email nobody picked up once
due (its broker message was lost with Redis, say).  The sweeper takes such
emails for its own process and hands them to the courier: recovery needs
PostgreSQL and a live worker, not the broker.  Delivery is idempotent, so
taking one that was only slow costs an attempt that finds it done.
"""

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from workers.courier import Courier
from workers.db import autocommit
from workers.delivery import CLAIM_LEASE
from workers.logs import get_logger
from workers.store import claims

#: Seconds between two sweeps.  With ``CLAIM_LEASE`` this bounds recovery: the
#: mail of a killed process is sent again at most lease + interval after it died.
SWEEP_INTERVAL = 5.0
#: Emails taken per sweep at most (fewer when the courier is busy).
SWEEP_BATCH = 200
#: A queued email not picked up this long after it was due is taken by a sweep.
STALE_QUEUED_AFTER = timedelta(seconds=10)

log = get_logger("mailroom.sweeper")


def sweep(engine: Engine, claimant: str, courier: Courier, now: datetime) -> int:
    limit = min(SWEEP_BATCH, courier.room())
    if not limit:
        return 0
    with autocommit(engine) as conn:
        taken = claims.take_due(
            conn, claimant, now, stale_after=STALE_QUEUED_AFTER, lease=CLAIM_LEASE, limit=limit
        )
    for email_id, attempts in taken:
        courier.put(email_id, attempts)
    if taken:
        log.warning("sweeper.took_over", emails=len(taken))
    return len(taken)


class Sweeper(threading.Thread):
    def __init__(
        self,
        engine: Engine,
        claimant: str,
        courier: Courier,
        clock: Callable[[], datetime],
        interval: float = SWEEP_INTERVAL,
    ) -> None:
        super().__init__(name="mailroom-sweeper", daemon=True)
        self.engine = engine
        self.claimant = claimant
        self.courier = courier
        self.clock = clock
        self.interval = interval
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        # At once, then every interval: a restarted worker sends what the
        # stopped one handed back without waiting a whole interval.
        while not self.stopping.is_set():
            try:
                sweep(self.engine, self.claimant, self.courier, self.clock())
            except Exception as exc:
                log.warning("sweeper.error", error=f"{type(exc).__name__}: {exc}")
            self.stopping.wait(self.interval)
