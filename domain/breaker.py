"""A circuit breaker per transport: after BREAKER_FAILURES transient failures in
a row the transport is skipped for BREAKER_RESET, then one trial send decides.

Pure: the caller passes the time (monotonic seconds).
"""

import threading

from domain.policy import BREAKER_FAILURES, BREAKER_RESET


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
