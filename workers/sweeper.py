"""The sweeper: finds mail that should be moving and is not, and enqueues it again.

Two cases: an email committed but never enqueued (the process died between the
commit and the send), and an email claimed by a worker that died mid-send (its
lease lapsed).  Delivery is idempotent, so a duplicate enqueue costs nothing.
"""

import threading

from domain.policy import STALE_QUEUED_AFTER
from workers import store
from workers.logs import get_logger

#: Seconds between two sweeps.
SWEEP_INTERVAL = 30.0
#: Emails enqueued again per sweep at most.
SWEEP_BATCH = 500

log = get_logger("mailroom.sweeper")


def sweep(rt) -> int:
    with rt.sessions.begin() as session:
        ids = store.due_emails(session, rt.clock(), STALE_QUEUED_AFTER, SWEEP_BATCH)
    for email_id in ids:
        rt.enqueue_delivery(email_id)
    if ids:
        log.warning("sweeper.requeued", emails=len(ids))
    return len(ids)


class Sweeper(threading.Thread):
    def __init__(self, rt, interval: float = SWEEP_INTERVAL) -> None:
        super().__init__(name="mailroom-sweeper", daemon=True)
        self.rt = rt
        self.interval = interval
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                sweep(self.rt)
            except Exception:
                log.exception("sweeper.error")
