"""VERP return paths: each mail's own bounce address, ``bounces+<id>@domain``.

The id is the email's id and a keyed MAC of it, so a bounce names its email
without mailroom keeping anything per mail, and nobody can make up the
address of a mail that was never sent (to suppress someone else's address
with a forged bounce).  Base32, lower case: local parts are matched without
regard to case by many relays.
"""

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Iterable

#: The local part's prefix; the relay's recipient delimiter must be ``+``.
PREFIX = "bounces+"
#: Bytes of MAC kept: 80 bits.
MAC_BYTES = 10


def key_for(pepper: bytes) -> bytes:
    """The MAC key, derived from a token pepper (kept apart from its other uses)."""
    return hmac.new(pepper, b"mailroom verp return path", hashlib.sha256).digest()


def _mac(key: bytes, raw: bytes) -> bytes:
    return hmac.new(key, raw, hashlib.sha256).digest()[:MAC_BYTES]


def return_path(email_id: uuid.UUID, key: bytes, domain: str) -> str:
    raw = email_id.bytes + _mac(key, email_id.bytes)
    local = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    return f"{PREFIX}{local}@{domain}"


def email_id_of(address: str, keys: Iterable[bytes], domain: str) -> uuid.UUID | None:
    """The email a return path names, if one of ``keys`` made it for ``domain``."""
    local, at, host = address.strip().strip("<>").rpartition("@")
    if not at or host.lower() != domain.lower() or not local.lower().startswith(PREFIX):
        return None
    encoded = local[len(PREFIX) :].upper()
    try:
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16 + MAC_BYTES:
        return None
    body, mac = raw[:16], raw[16:]
    if any(hmac.compare_digest(_mac(key, body), mac) for key in keys):
        return uuid.UUID(bytes=body)
    return None
