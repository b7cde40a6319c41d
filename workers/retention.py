"""Retention: the purge of what mailroom no longer needs, and the thread that
runs it in every worker process.

Every process of a fleet tries on its own schedule; on PostgreSQL an advisory
lock lets one purge at a time and the others skip their turn.  The event ledger
is what makes a redelivered event a duplicate, so its retention bounds how late
a producer may publish the same event again and still be answered "duplicate".
"""

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from workers.logs import get_logger
from workers.settings import Settings
from workers.store import retention as store
from workers.store.retention import PURGE_BATCH, Cutoffs

#: Seconds between two purges by one worker process.
PURGE_INTERVAL = 3600.0
#: Seconds after a worker starts within which it first purges, drawn at random
#: (a fleet restarted more often than hourly still purges; not all at once).
FIRST_PURGE_WITHIN = 300.0

log = get_logger("mailroom.retention")


@dataclass(frozen=True)
class Retention:
    """Days each kind of row is kept; 0 keeps it forever."""

    #: Finished emails; dead letters and dead webhooks once replayed or discarded;
    #: suppressions after expiry.
    emails: int = 30
    events: int = 30
    #: After expiry.
    challenges: int = 7
    #: Dead letters and dead webhooks nobody dealt with.
    dead_letters: int = 90

    @classmethod
    def from_settings(cls, settings: Settings) -> "Retention":
        return cls(
            emails=settings.retain_emails_days,
            events=settings.retain_events_days,
            challenges=settings.retain_challenges_days,
            dead_letters=settings.retain_dead_letters_days,
        )

    def cutoffs(self, now: datetime) -> Cutoffs:
        def before(days: int) -> datetime | None:
            return now - timedelta(days=days) if days else None

        return Cutoffs(
            emails=before(self.emails),
            events=before(self.events),
            challenges=before(self.challenges),
            settled_dead_letters=before(self.emails),
            dead_letters=before(self.dead_letters),
        )


def purge(
    engine: Engine,
    now: datetime,
    retention: Retention,
    *,
    batch: int = PURGE_BATCH,
    stopping: threading.Event | None = None,
) -> dict[str, int] | None:
    """Delete what ``retention`` lets go, each batch its own transaction; the rows
    removed by table.  None when another process is purging right now.

    With ``stopping``, a purge asked to stop ends after the batch in hand.
    """
    cut = retention.cutoffs(now)
    removed = dict.fromkeys(store.DELETES, 0)
    with engine.connect() as conn:
        if not store.try_lock(conn):
            return None
        try:
            conn.commit()  # the lock outlives transactions; the batches must not wait on it
            for table, delete in store.DELETES.items():
                while not (stopping and stopping.is_set()):
                    count = delete(conn, cut, batch)
                    conn.commit()
                    removed[table] += count
                    if count < batch:
                        break
            store.unlock(conn)
            conn.commit()
        except BaseException:
            # Closing the session is what surely releases its lock.
            conn.invalidate()
            raise
    return removed


def preview(engine: Engine, now: datetime, retention: Retention) -> dict[str, int]:
    """What ``purge`` would remove now, by table; nothing is deleted."""
    with engine.connect() as conn:
        return store.count_due(conn, retention.cutoffs(now))


class Purger(threading.Thread):
    """Purges every ``interval`` seconds beside a worker, and logs what went."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        retention: Retention,
        interval: float = PURGE_INTERVAL,
        first_within: float = FIRST_PURGE_WITHIN,
    ) -> None:
        super().__init__(name="mailroom-purger", daemon=True)
        self.engine = engine
        self.clock = clock
        self.retention = retention
        self.interval = interval
        self.first_within = min(first_within, interval)
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        wait = random.uniform(0, self.first_within)  # spread a fleet started together
        while not self.stopping.wait(wait):
            wait = self.interval
            started = time.monotonic()
            try:
                removed = purge(self.engine, self.clock(), self.retention, stopping=self.stopping)
            except Exception:
                log.exception("retention.error")
                continue
            if removed is not None:
                seconds = round(time.monotonic() - started, 3)
                log.info("retention.purged", seconds=seconds, **removed)
