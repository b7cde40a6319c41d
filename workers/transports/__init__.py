"""Transports hand a built message to the outside world.

Each backend lives in its own module and raises only ``TransientError`` or
``PermanentError`` from ``domain.errors``, so retries and dead letters are
decided in one place whatever the backend.
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


class Transport(Protocol):
    name: str

    def send(self, message: EmailMessage, *, sender: str, recipient: str) -> Receipt: ...

    def close(self) -> None: ...


def make_transport(settings) -> Transport:
    if settings.transport == "smtp":
        from workers.transports.smtp import SMTPTransport

        return SMTPTransport.from_settings(settings)
    from workers.transports.file import FileTransport

    return FileTransport(settings.outbox_dir)
