"""The ``file`` transport: one ``.eml`` per email, for development and demos."""

import os
import tempfile
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

from domain.errors import TransientError
from domain.messages import as_bytes
from workers.dkim import signed
from workers.transports.base import Receipt

NAME = "file"

#: Nothing: MAILROOM_OUTBOX_DIR has a default and is created on the first mail.
REQUIRED: tuple[str, ...] = ()

HINT = "check that MAILROOM_OUTBOX_DIR is writable"


def check(settings) -> None:
    """Nothing to check before a send: a directory it cannot write fails that send."""


def from_settings(settings) -> "FileTransport":
    return FileTransport(settings.outbox_dir)


class FileTransport:
    name = NAME

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def send(
        self, message: Message, *, sender: str, recipient: str, return_path: str | None = None
    ) -> Receipt:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        local_id = message["Message-ID"].strip("<>").partition("@")[0]
        target = self.directory / f"{stamp}-{local_id}.eml"
        data = signed(message, as_bytes(message))  # signed as a relay would get it, to inspect
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed, so a reader never sees half a message.
            fd, partial = tempfile.mkstemp(dir=self.directory, suffix=".part")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(partial, target)
        except OSError as exc:
            raise TransientError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return Receipt(destination=str(target), transport=self.name)

    def close(self) -> None:
        pass
