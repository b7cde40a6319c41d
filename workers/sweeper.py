"""The sweeper: finds mail that should be moving and is not, and enqueues it again.

Two cases: an email committed but never enqueued (the process died between the
commit and the send), and an email claimed by a worker that died mid-send (its
lease lapsed).  Delivery is idempotent, so a duplicate enqueue costs nothing.
"""

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from workers.logs import get_logger
from workers.runtime import Dispatch
from workers.store import outbox

#: Seconds between two sweeps.
SWEEP_INTERVAL = 30.0
#: Emails enqueued again per sweep at most.
SWEEP_BATCH = 500
#: A queued email not picked up for this long is enqueued again.
STALE_QUEUED_AFTER = timedelta(minutes=2)

log = get_logger("mailroom.sweeper")


def sweep(engine: Engine, dispatch: Dispatch, now: datetime) -> int:
    with engine.begin() as conn:
        ids = outbox.due(conn, now, STALE_QUEUED_AFTER, SWEEP_BATCH)
    for email_id in ids:
        dispatch.delivery(email_id)
    if ids:
        log.warning("sweeper.requeued", emails=len(ids))
    return len(ids)


class Sweeper(threading.Thread):
    def __init__(
        self,
        engine: Engine,
        dispatch: Dispatch,
        clock: Callable[[], datetime],
        interval: float = SWEEP_INTERVAL,
    ) -> None:
        super().__init__(name="mailroom-sweeper", daemon=True)
        self.engine = engine
        self.dispatch = dispatch
        self.clock = clock
        self.interval = interval
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                sweep(self.engine, self.dispatch, self.clock())
            except Exception:
                log.exception("sweeper.error")
