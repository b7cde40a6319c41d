"""The configured transports in order, each behind a circuit breaker.

A transport that fails transiently, is set up wrong, or whose circuit is open
hands the mail to the next one.  A permanent refusal of the message or the
recipient is final: another provider would be told the same.
"""

import time
from email.message import Message

from domain.errors import PermanentError, TransientError, TransportConfigError
from workers import metrics
from workers.logs import get_logger
from workers.transports.base import Receipt
from workers.transports.breaker import CircuitBreaker, NeverOpen

log = get_logger("mailroom.transport")


class Chain:
    def __init__(self, transports, *, health=None, clock=time.monotonic) -> None:
        self.transports = list(transports)
        #: As MAILROOM_TRANSPORT names it (``smtp``, ``ses,smtp``): whichever of
        #: them failed, a failure is the chain's.
        self.name = ",".join(self.names)
        # With a single transport there is nowhere to fail over to: every attempt
        # goes to it, and its own error is what the retries and dead letter see.
        self.breakers = {
            t.name: CircuitBreaker() if len(self.transports) > 1 else NeverOpen()
            for t in self.transports
        }
        self.last_error: dict[str, Exception] = {}
        #: Transports whose open circuit the metrics show (set on change only).
        self.shown_open: set[str] = set()
        self.health = health
        self.clock = clock

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.transports]

    def send(
        self, message: Message, *, sender: str, recipient: str, return_path: str | None = None
    ) -> Receipt:
        failures: list[tuple[str, Exception]] = []
        for transport in self.transports:
            breaker = self.breakers[transport.name]
            if not breaker.allows(self.clock()):
                last = self.last_error.get(transport.name)
                failures.append((transport.name, TransientError(f"circuit open (last: {last})")))
                continue
            try:
                receipt = transport.send(
                    message, sender=sender, recipient=recipient, return_path=return_path
                )
            except TransportConfigError as exc:
                self._failed(transport.name, breaker)
                self.last_error[transport.name] = exc
                self._report(transport.name, exc)
                failures.append((transport.name, exc))
                continue
            except PermanentError:
                self._succeeded(transport.name, breaker)  # it works; the message is refused
                raise
            except TransientError as exc:
                self._failed(transport.name, breaker)
                self.last_error[transport.name] = exc
                self._report(transport.name, exc)
                failures.append((transport.name, exc))
                continue
            self._succeeded(transport.name, breaker)
            self._report(transport.name, None)
            return receipt
        raise _combined(failures)

    def _failed(self, name: str, breaker) -> None:
        breaker.failed(self.clock())
        if breaker.is_open(self.clock()) and name not in self.shown_open:
            self.shown_open.add(name)
            metrics.CIRCUIT_OPEN.labels(name).set(1)

    def _succeeded(self, name: str, breaker) -> None:
        breaker.succeeded()
        if name in self.shown_open:
            self.shown_open.discard(name)
            metrics.CIRCUIT_OPEN.labels(name).set(0)

    def _report(self, name: str, error: Exception | None) -> None:
        if isinstance(error, TransportConfigError):
            log.error(
                "transport.misconfigured", transport=name, setting=error.setting, error=str(error)
            )
        if self.health is not None:
            self.health.report(name, error)

    def close(self) -> None:
        for transport in self.transports:
            transport.close()


def _combined(failures: list[tuple[str, Exception]]) -> Exception:
    if len(failures) == 1:
        return failures[0][1]
    text = "; ".join(f"{name}: {error}" for name, error in failures)
    if all(isinstance(error, TransportConfigError) for _, error in failures):
        first = failures[0][1]
        return TransportConfigError(first.setting, text)
    return TransientError(text)
