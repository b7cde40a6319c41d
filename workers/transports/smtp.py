"""The ``smtp`` transport: smtplib with STARTTLS or implicit TLS, AUTH and a timeout.

Reply classes decide retries: 4xx and connection failures are transient, 5xx
permanent.
"""

import smtplib
import ssl
from email.message import EmailMessage

from domain.errors import PermanentError, TransientError
from workers.transports import Receipt


def classify(code: int, text: str) -> TransientError | PermanentError:
    """An SMTP reply as one of our errors: 4xx transient, 5xx permanent."""
    error_class = PermanentError if 500 <= code < 600 else TransientError
    return error_class(f"SMTP {code} {text}".strip())


def _reply_text(raw) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


class SMTPTransport:
    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 15.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.tls_context = tls_context or ssl.create_default_context()

    @classmethod
    def from_settings(cls, settings) -> "SMTPTransport":
        return cls(
            settings.smtp_host,
            settings.effective_smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout,
        )

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            client = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.tls_context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                client.starttls(context=self.tls_context)
        if self.username:
            client.login(self.username, self.password or "")
        return client

    def send(self, message: EmailMessage, *, sender: str, recipient: str) -> Receipt:
        try:
            client = self._connect()
            try:
                client.send_message(message, from_addr=sender, to_addrs=[recipient])
            finally:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise classify(code, _reply_text(text)) from exc
        except smtplib.SMTPResponseException as exc:
            raise classify(exc.smtp_code, _reply_text(exc.smtp_error)) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"SMTP server {self.host}: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise TransientError(f"SMTP {self.host}:{self.port} unreachable: {detail}") from exc
        return Receipt(provider_id=None, destination=f"{self.host}:{self.port}")

    def close(self) -> None:
        pass
