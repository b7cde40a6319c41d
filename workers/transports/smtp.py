"""The ``smtp`` transport, and the SMTP session the ``gmail`` transport rides on.

One connection per worker thread, kept open and reused: checked with NOOP
after SMTP_IDLE_CHECK of idleness, dropped after a 421 or a broken pipe (a
stale connection is replaced and the mail tried once more at once).  TLS
verifies certificates against the system's CAs plus MAILROOM_SMTP_CA_FILE.

Replies decide retries: 4xx (421, 450, 451, 452...) and connection failures
are transient, 5xx permanent; refused credentials or an untrusted certificate
are configuration errors (permanent, but failover may try another transport).
"""

import copy
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from email.message import Message

from domain.addresses import ascii_address
from domain.errors import ConfigError, PermanentError, TransientError, TransportConfigError
from domain.messages import as_bytes
from workers.dkim import signed
from workers.transports.base import Receipt

NAME = "smtp"

REQUIRED = ("MAILROOM_SMTP_HOST",)

HINT = (
    "check MAILROOM_SMTP_HOST, MAILROOM_SMTP_PORT, MAILROOM_SMTP_SECURITY and that the "
    "server is up and reachable from here"
)

#: An SMTP connection idle this long (30 seconds) is checked with NOOP before it is reused.
SMTP_IDLE_CHECK = timedelta(seconds=30)

#: The relay's own id for an accepted message, in its reply to DATA: Postfix's
#: ``250 2.0.0 Ok: queued as 4Zb3Kq1xyz``, Exim's ``250 OK id=1abcDE-0001Xy-2Z``.
QUEUE_ID = re.compile(rb"(?:queued as|\bid=)\s*([A-Za-z0-9][\w.\-]{2,63})", re.IGNORECASE)

#: Port for each MAILROOM_SMTP_SECURITY mode when MAILROOM_SMTP_PORT is unset.
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


def check(settings) -> None:
    if settings.smtp_username and not settings.smtp_password:
        raise ConfigError("MAILROOM_SMTP_PASSWORD", "is required with MAILROOM_SMTP_USERNAME")
    check_ca_file(settings)


def check_ca_file(settings) -> None:
    """MAILROOM_SMTP_CA_FILE, if set, must be there (``gmail`` uses it too)."""
    if settings.smtp_ca_file is not None and not settings.smtp_ca_file.is_file():
        raise ConfigError(
            "MAILROOM_SMTP_CA_FILE", f"{settings.smtp_ca_file} is not a readable file"
        )


def from_settings(settings) -> "SMTPTransport":
    login = None
    if settings.smtp_username:
        login = password_login(settings.smtp_username, settings.smtp_password or "")
    return SMTPTransport(
        settings.smtp_host,
        settings.effective_smtp_port,
        security=settings.smtp_security,
        login=login,
        timeout=settings.smtp_timeout,
        ca_file=settings.smtp_ca_file,
        helo_name=helo_name(settings),
        dkim=True,
    )


def helo_name(settings) -> str:
    """The name to greet with: MAILROOM_SMTP_HELO_NAME, else this host's FQDN
    (never smtplib's fallback, an address literal that spam filters frown on)."""
    return settings.smtp_helo_name or socket.getfqdn()


class _Client(smtplib.SMTP):
    """Keeps the server's reply to DATA, which names its queue id."""

    data_reply = b""

    def data(self, msg):
        code, reply = super().data(msg)
        self.data_reply = reply
        return code, reply


class _TLSClient(_Client, smtplib.SMTP_SSL):
    pass


def queue_id(reply: bytes) -> str | None:
    found = QUEUE_ID.search(reply or b"")
    return found.group(1).decode("ascii") if found else None


def classify(code: int, text: str) -> TransientError | PermanentError:
    """An SMTP reply as one of our errors: 5xx permanent, anything else transient."""
    error_class = PermanentError if 500 <= code < 600 else TransientError
    return error_class(f"SMTP {code} {text}".strip())


#: Session-level 5xx replies and the setting they point at.
SESSION_SETTINGS = {530: "MAILROOM_SMTP_USERNAME", 535: "MAILROOM_SMTP_PASSWORD"}


def _text(raw) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def tls_context(ca_file=None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=str(ca_file))
    return context


#: Authenticates an open session: user name and password, or an OAuth2 bearer.
Login = Callable[[smtplib.SMTP, bool], None]


def password_login(username: str, password: str) -> Login:
    def login(client: smtplib.SMTP, _retry: bool) -> None:
        client.login(username, password)

    return login


class SMTPTransport:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        login: Login | None = None,
        timeout: float = 15.0,
        ca_file=None,
        helo_name: str | None = None,
        name: str = NAME,
        credential_setting: str = "MAILROOM_SMTP_PASSWORD",
        dkim: bool = False,
    ) -> None:
        """``dkim``: sign with the sending app's keys (a plain relay; Gmail signs itself)."""
        self.name = name
        self.host = host
        self.port = port
        self.security = security
        self.login = login
        self.timeout = timeout
        self.tls = tls_context(ca_file)
        self.helo_name = helo_name
        self.credential_setting = credential_setting
        self.dkim = dkim
        self.idle_check = SMTP_IDLE_CHECK.total_seconds()
        self._local = threading.local()
        self._open: set[smtplib.SMTP] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ connections

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            client = _TLSClient(
                self.host, self.port, self.helo_name, timeout=self.timeout, context=self.tls
            )
        else:
            client = _Client(self.host, self.port, self.helo_name, timeout=self.timeout)
        try:
            client.ehlo()
            if self.security == "starttls":
                client.starttls(context=self.tls)
                client.ehlo()
            if self.login is not None:
                try:
                    self.login(client, False)
                except smtplib.SMTPAuthenticationError:
                    self.login(client, True)  # a cached token may have just expired
        except BaseException:
            client.close()
            raise
        with self._lock:
            self._open.add(client)
        return client

    def _session(self) -> tuple[smtplib.SMTP, bool]:
        """This thread's connection (checked if idle) and whether it was reused."""
        client = getattr(self._local, "client", None)
        if client is not None and time.monotonic() - self._local.used > self.idle_check:
            try:
                alive = client.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                alive = False
            if not alive:
                self._drop()
                client = None
        if client is not None:
            return client, True
        self._local.client = self._connect()
        self._local.used = time.monotonic()
        return self._local.client, False

    def _drop(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with self._lock:
                self._open.discard(client)
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def close(self) -> None:
        with self._lock:
            clients, self._open = list(self._open), set()
        for client in clients:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    # ------------------------------------------------------------ sending

    def send(
        self, message: Message, *, sender: str, recipient: str, return_path: str | None = None
    ) -> Receipt:
        for _ in range(2):
            reused = False
            try:
                client, reused = self._session()
                outgoing, envelope_to = self._internationalize(client, message, recipient)
                self._transmit(client, outgoing, return_path or sender, envelope_to)
                self._local.used = time.monotonic()
                return Receipt(
                    provider_id=queue_id(client.data_reply),
                    destination=f"{self.host}:{self.port}",
                    transport=self.name,
                )
            except smtplib.SMTPServerDisconnected as exc:
                self._drop()
                if reused:
                    continue  # the kept connection had gone stale: once more, freshly
                raise TransientError(f"SMTP {self.host}:{self.port} disconnected: {exc}") from exc
            except smtplib.SMTPAuthenticationError as exc:
                self._drop()
                if exc.smtp_code < 500:  # 454: try again later
                    raise classify(exc.smtp_code, _text(exc.smtp_error)) from exc
                raise TransportConfigError(
                    self.credential_setting,
                    f"SMTP {self.host} refused the credentials: "
                    f"{exc.smtp_code} {_text(exc.smtp_error)}",
                ) from exc
            except (
                smtplib.SMTPSenderRefused,
                smtplib.SMTPConnectError,
                smtplib.SMTPHeloError,
            ) as exc:
                # Refused before any recipient: every mail would be, so it is
                # the set-up (sender, authentication, this host) that is wrong.
                self._after_refusal(exc.smtp_code)
                if exc.smtp_code < 500:
                    raise classify(exc.smtp_code, _text(exc.smtp_error)) from exc
                setting = SESSION_SETTINGS.get(exc.smtp_code, "MAILROOM_SMTP_HOST")
                if isinstance(exc, smtplib.SMTPSenderRefused) and exc.smtp_code != 530:
                    setting = "MAILROOM_MAIL_FROM"
                raise TransportConfigError(
                    setting,
                    f"SMTP {self.host} refused the session: "
                    f"{exc.smtp_code} {_text(exc.smtp_error)}",
                ) from exc
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                self._after_refusal(code)
                raise classify(code, _text(text)) from exc
            except smtplib.SMTPResponseException as exc:
                self._after_refusal(exc.smtp_code)
                raise classify(exc.smtp_code, _text(exc.smtp_error)) from exc
            except smtplib.SMTPNotSupportedError as exc:
                self._drop()
                raise TransportConfigError(
                    "MAILROOM_SMTP_SECURITY", f"SMTP {self.host}: {exc}"
                ) from exc
            except ssl.SSLCertVerificationError as exc:
                self._drop()
                raise TransportConfigError(
                    "MAILROOM_SMTP_CA_FILE",
                    f"the certificate of {self.host} is not trusted: {exc.verify_message}",
                ) from exc
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                detail = str(exc) or type(exc).__name__
                raise TransientError(f"SMTP {self.host}:{self.port} unreachable: {detail}") from exc
        raise TransientError(f"SMTP {self.host}:{self.port} keeps dropping the connection")

    def _after_refusal(self, code: int) -> None:
        # 421: the server is closing the session.  Otherwise the session is
        # still good for the next mail once the failed transaction is reset.
        if code == 421:
            self._drop()
            return
        try:
            self._local.client.rset()
        except (smtplib.SMTPException, OSError, AttributeError):
            self._drop()

    def _transmit(self, client: smtplib.SMTP, message: Message, sender: str, recipient: str):
        """``SMTP.send_message``, flattening the message once, as built, and signing
        those very bytes."""
        options: list[str] = []
        if not (sender + recipient).isascii():
            if not client.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError("the server does not offer SMTPUTF8")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        data = as_bytes(message, smtputf8=bool(options))
        if self.dkim:
            data = signed(message, data)
        client.sendmail(sender, [recipient], data, mail_options=options)

    def _internationalize(self, client, message: Message, recipient: str):
        """Use SMTPUTF8 where the server offers it; else the address's ASCII form."""
        if recipient.isascii() or client.has_extn("smtputf8"):
            return message, recipient
        ascii_form = ascii_address(recipient)
        if ascii_form is None:
            raise PermanentError(
                f"{recipient!r} has a non-ASCII local part and SMTP {self.host} "
                "does not offer SMTPUTF8"
            )
        outgoing = copy.deepcopy(message)
        outgoing.replace_header("To", ascii_form)
        return outgoing, ascii_form
