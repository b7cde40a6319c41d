"""What every transport is: the ``Transport`` a backend builds, the ``Receipt`` it
returns, and the ``Backend`` spec each backend module declares.

A leaf: it imports no backend, the chain or the registry, so all of them can
import it without a cycle.
"""

from dataclasses import dataclass
from email.message import Message
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

    def send(
        self, message: Message, *, sender: str, recipient: str, return_path: str | None = None
    ) -> Receipt:
        """Send ``message``; ``return_path``: where bounces go, for transports
        that choose the envelope sender (SMTP); others have their own ways."""

    def close(self) -> None: ...


class Backend(Protocol):
    """What a backend module declares beside its code (the module is the spec).

    Everything here is cheap to import: a backend loads its client library
    (boto3, google-auth) only in ``from_settings``, so validating settings
    against every backend costs no more than the standard library.
    """

    #: Its name in MAILROOM_TRANSPORT.
    NAME: str
    #: Settings (environment names) it cannot work without.
    REQUIRED: tuple[str, ...]
    #: What to check when sending through it fails (`mailroom send-test`).
    HINT: str

    def check(self, settings) -> None:
        """Raise ``ConfigError`` for a setting it cannot work with."""

    def from_settings(self, settings) -> Transport:
        """The transport, built from validated settings."""
