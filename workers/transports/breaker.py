"""A circuit breaker per transport: after BREAKER_FAILURES transient failures in
a row the transport is skipped for BREAKER_RESET, then one trial send decides.

The caller passes the time (monotonic seconds).  Locked: the worker threads
share one chain, so one breaker per transport.
"""

import threading
from datetime import timedelta

#: Transient failures in a row after which a transport's circuit opens.
BREAKER_FAILURES = 3

#: How long an open circuit skips its transport before one trial send (30 seconds).
BREAKER_RESET = timedelta(seconds=30)


class CircuitBreaker:
    def __init__(
        self, failures: int = BREAKER_FAILURES, reset_after: float = BREAKER_RESET.total_seconds()
    ) -> None:
        self.threshold = failures
        self.reset_after = reset_after
        self.failures = 0
        self.opened_at: float | None = None
        self._lock = threading.Lock()

    def allows(self, now: float) -> bool:
        """Closed, or open long enough for a trial (half-open)."""
        with self._lock:
            return self.opened_at is None or now - self.opened_at >= self.reset_after

    def is_open(self, now: float) -> bool:
        return not self.allows(now)

    def succeeded(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None

    def failed(self, now: float) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold:
                # (Re)open: a failed trial waits another full period.
                self.opened_at = now


class NeverOpen:
    """The breaker of a lone transport: with nowhere to fail over to, skipping it
    would only turn its own error into "circuit open"."""

    def allows(self, now: float) -> bool:
        return True

    def is_open(self, now: float) -> bool:
        return False

    def succeeded(self) -> None:
        pass

    def failed(self, now: float) -> None:
        pass
