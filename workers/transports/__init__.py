"""Transports hand a built message to the outside world.

Each backend lives in its own module and raises only ``TransientError``,
``PermanentError`` or ``TransportConfigError`` from ``domain.errors``, so
retries, failover and dead letters are decided in one place whatever the
backend.  ``make_transport`` returns a ``Chain`` of the configured backends.
"""

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol


@dataclass(frozen=True)
class Receipt:
    """What the transport knows about an accepted message."""

    provider_id: str | None = None
    #: Where it went, for the log line (a file path, a relay's host).
    destination: str | None = None
    #: Which transport accepted it.
    transport: str | None = None


class Transport(Protocol):
    name: str

    def send(self, message: EmailMessage, *, sender: str, recipient: str) -> Receipt: ...

    def close(self) -> None: ...


def make_backend(name: str, settings) -> Transport:
    if name == "smtp":
        from workers.transports.smtp import SMTPTransport

        return SMTPTransport.from_settings(settings)
    if name == "ses":
        from workers.transports.ses import SESTransport

        return SESTransport.from_settings(settings)
    if name == "gmail":
        from workers.transports.gmail import gmail_transport

        return gmail_transport(settings)
    from workers.transports.file import FileTransport

    return FileTransport(settings.outbox_dir)


def make_transport(settings, health=None):
    from workers.transports.chain import Chain

    return Chain([make_backend(name, settings) for name in settings.transports], health=health)
