"""The SMTP (or LMTP) listener ``mailroom bounces serve`` runs: what relays
return to the VERP addresses of ``MAILROOM_BOUNCE_DOMAIN``.

It takes mail for those addresses only, and only ones whose MAC holds
(``550 5.1.1`` for any other), so it is neither an open relay nor a sink for
made-up bounces.  A message is answered ``250`` once its reports are recorded,
``451`` when the database is out of reach so the relay tries again later; a
report delivered twice changes nothing, so a retry is harmless.
"""

import asyncio
import socket
import threading
import time

import sqlalchemy.exc
from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from workers.bounces import is_return_path, take_in
from workers.logs import get_logger
from workers.runtime import Runtime

log = get_logger("mailroom.bounces")

#: Largest message taken, in bytes: a bounce carries at most the mail it
#: returns, and mailroom's mail is small.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
#: Most recipients one message may have.
MAX_RECIPIENTS = 100
#: Seconds a stop waits for the messages in hand to be recorded.
STOP_GRACE = 10.0

NO_SUCH_USER = "550 5.1.1 No such user here"
TOO_MANY = "452 4.5.3 Too many recipients"
CLOSING = "421 4.3.2 Service shutting down, try again later"
TRY_LATER = "451 4.3.0 Temporary failure, try again later"
ACCEPTED = "250 2.0.0 OK"


class BounceHandler:
    """aiosmtpd's handler: RCPT checked, DATA recorded in a worker thread (the
    database calls block)."""

    def __init__(self, rt: Runtime, *, lmtp: bool) -> None:
        self.rt = rt
        self.lmtp = lmtp
        self.closing = False
        self._in_hand = 0
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.closing:
            return CLOSING
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return TOO_MANY
        if not is_return_path(self.rt, address):
            return NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self._lock:
            self._in_hand += 1
        try:
            reply = await asyncio.get_running_loop().run_in_executor(
                None, self._take_in, envelope.original_content, list(envelope.rcpt_tos)
            )
        finally:
            with self._lock:
                self._in_hand -= 1
        # LMTP answers once per recipient (RFC 2033); all share one fate here.
        return "\r\n".join([reply] * len(envelope.rcpt_tos)) if self.lmtp else reply

    def _take_in(self, raw: bytes, recipients: list[str]) -> str:
        try:
            take_in(self.rt, raw, recipients, via="lmtp" if self.lmtp else "smtp")
        except sqlalchemy.exc.DBAPIError as exc:
            log.error("bounce.deferred", error=type(exc).__name__, detail=str(exc.orig)[:200])
            return TRY_LATER
        except Exception:
            log.exception("bounce.deferred", error="unexpected")
            return TRY_LATER
        return ACCEPTED

    def idle(self) -> bool:
        with self._lock:
            return self._in_hand == 0


class BounceServer:
    """The listener on ``host:port``, in a thread of its own."""

    def __init__(self, rt: Runtime, host: str, port: int, *, lmtp: bool) -> None:
        self.handler = BounceHandler(rt, lmtp=lmtp)
        self.protocol = "lmtp" if lmtp else "smtp"
        self.controller = _Controller(
            self.handler,
            lmtp=lmtp,
            hostname=host,
            port=port,
            server_hostname=socket.gethostname(),
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
        )

    def start(self) -> None:
        self.controller.start()
        log.info(
            "bounces.listening",
            protocol=self.protocol,
            host=self.controller.hostname,
            port=self.controller.port,
        )

    def stop(self) -> None:
        """Refuse new recipients, let the messages in hand be recorded, then close."""
        self.handler.closing = True
        deadline = time.monotonic() + STOP_GRACE
        while not self.handler.idle() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.controller.stop()
        log.info("bounces.stopped", protocol=self.protocol)


class _Controller(Controller):
    def __init__(self, handler, *, lmtp: bool, **options) -> None:
        self.server_class = LMTP if lmtp else SMTP
        super().__init__(handler, **options)

    def factory(self):
        return self.server_class(self.handler, **self.SMTP_kwargs)
