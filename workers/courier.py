"""This process's own delivery threads, and the keeper of the claims it holds.

Intake creates each email held by the process that accepted it (``claimed_by``)
and hands it to the ``Courier``, which makes the first attempt right here: no
broker round trip stands between the stream and the send.  The ``Keeper``
renews the lease of every email the process is working on, so a live process
keeps its mail and a killed one loses it within ``CLAIM_LEASE``, for the
sweeper to hand to a live process.  Retries and replays go through the broker.
"""

import queue
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from workers.db import autocommit
from workers.logs import get_logger
from workers.runtime import Holds
from workers.store import claims

#: Seconds between two renewals of this process's leases (three fit in a lease).
RENEW_EVERY = 5.0
#: Emails waiting for a courier thread beyond which intake stops reading the
#: stream, so that an idle process takes the entries instead.
BACKLOG_LIMIT = 200
#: Seconds a stopping courier waits for its threads to finish the mail in hand.
STOP_TIMEOUT = 30.0

log = get_logger("mailroom.courier")

_STOP = object()


class Courier:
    """Threads that each take (email id, attempts when taken, what intake planned
    for it or None) and attempt it."""

    def __init__(
        self, attempt: Callable[[uuid.UUID, int, object], object], holds: Holds, threads: int
    ) -> None:
        self.attempt = attempt
        self.holds = holds
        self.queue: queue.Queue = queue.Queue()
        self.size = threads
        self.threads: list[threading.Thread] = []

    def put(self, email_id: uuid.UUID, held: int, planned: object = None) -> None:
        self.holds.add(email_id)
        self.queue.put((email_id, held, planned))

    def room(self) -> int:
        return max(0, BACKLOG_LIMIT - self.queue.qsize())

    def wait_for_room(self, stopping: threading.Event) -> None:
        while not self.room() and not stopping.wait(0.05):
            pass

    def run_pending(self) -> int:
        """Attempt everything waiting, in the calling thread (unit tests)."""
        done = 0
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return done
            self._attempt(*item)
            done += 1

    def start(self) -> None:
        self.threads = [
            threading.Thread(target=self._work, name=f"mailroom-courier-{n}", daemon=True)
            for n in range(self.size)
        ]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        # What is still waiting is left held: the keeper hands it back at the end.
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        for _ in self.threads:
            self.queue.put(_STOP)

    def join(self, timeout: float | None = STOP_TIMEOUT) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def _work(self) -> None:
        while (item := self.queue.get()) is not _STOP:
            self._attempt(*item)

    def _attempt(self, email_id: uuid.UUID, held: int, planned: object) -> None:
        try:
            self.attempt(email_id, held, planned)
        except Exception:
            # The database went away mid-attempt, say: the email's lease lapses
            # and the sweeper hands it out again.
            log.exception("courier.attempt_failed", email_id=str(email_id))
        finally:
            self.holds.discard(email_id)


class Keeper(threading.Thread):
    """Renews this process's leases; on stop, hands back what it still holds."""

    def __init__(
        self,
        engine: Engine,
        claimant: str,
        holds: Holds,
        clock: Callable[[], datetime],
        lease: timedelta,
    ) -> None:
        super().__init__(name="mailroom-keeper", daemon=True)
        self.engine = engine
        self.claimant = claimant
        self.holds = holds
        self.clock = clock
        self.lease = lease
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.wait(RENEW_EVERY):
            ids = self.holds.snapshot()
            if not ids:
                continue
            try:
                with autocommit(self.engine) as conn:
                    claims.renew(conn, self.claimant, ids, self.clock() + self.lease)
            except Exception as exc:
                log.warning("claims.renewal_failed", held=len(ids), error=str(exc))
        self.hand_back()

    def hand_back(self) -> None:
        """Make what this process still holds due at once for the others."""
        try:
            with autocommit(self.engine) as conn:
                returned = claims.release_all(conn, self.claimant, self.clock() - self.lease)
        except Exception as exc:  # the leases lapse on their own
            log.warning("claims.hand_back_failed", error=str(exc))
            return
        if returned:
            log.info("claims.handed_back", emails=returned)
