"""Use case: one message returned to a VERP return path, taken in.

Whoever received it (``mailroom bounces serve`` over SMTP or LMTP, ``mailroom
bounces ingest`` from a Maildir) hands over its bytes and envelope recipients;
its reports are read (``domain.dsn``) and each recorded (``workers.feedback``).
One log line per message, ``bounce.received``, says what came of it.  A
database that cannot be reached raises: the caller leaves the message to be
tried again.
"""

from dataclasses import dataclass
from typing import Literal

from domain import dsn, verp
from workers import metrics
from workers.feedback import record
from workers.logs import get_logger
from workers.runtime import Runtime

log = get_logger("mailroom.bounces")

#: Where a returned message came from, for the log.
Via = Literal["smtp", "lmtp", "maildir"]


@dataclass(frozen=True)
class Handled:
    """What came of one returned message."""

    #: Reports recorded for the first time.
    recorded: int = 0
    #: Reports already recorded (the same report delivered again).
    repeated: int = 0
    #: Reports naming no email of ours, or another recipient than its own.
    unmatched: int = 0
    #: Why the message held no report (not a report, a broken one), if it held none.
    ignored: str | None = None

    def as_dict(self) -> dict:
        return {
            "recorded": self.recorded,
            "repeated": self.repeated,
            "unmatched": self.unmatched,
            "ignored": self.ignored,
        }


def is_return_path(rt: Runtime, address: str) -> bool:
    """Whether ``address`` is a return path mailroom made (RCPT checks it)."""
    domain = rt.settings.bounce_domain
    return (
        domain is not None and verp.email_id_of(address, rt.verp_keys.values(), domain) is not None
    )


def take_in(rt: Runtime, raw: bytes, envelope_recipients: list[str], *, via: Via) -> Handled:
    """Read ``raw`` and record what it reports."""
    returned = dsn.read(
        raw, envelope_recipients, keys=rt.verp_keys.values(), domain=rt.settings.bounce_domain or ""
    )
    recorded = repeated = unmatched = 0
    if returned.kind is not None and returned.email_id is None:
        # A report for an address we never made: counted like any report naming
        # no email (``workers.feedback`` counts those that name one of another).
        metrics.REPORTS_UNMATCHED.labels(returned.kind).inc()
        unmatched += 1
    for report in returned.reports:
        result = record(rt, report)
        if result is None:
            unmatched += 1
        elif result.fresh:
            recorded += 1
        else:
            repeated += 1
    handled = Handled(recorded, repeated, unmatched, returned.ignored)
    log.info(
        "bounce.received",
        via=via,
        kind=str(returned.kind) if returned.kind else None,
        email_id=str(returned.email_id) if returned.email_id else None,
        size_bytes=len(raw),
        **handled.as_dict(),
    )
    return handled
