"""Signed webhooks: each outcome an app wants, POSTed to its URL the Standard
Webhooks way (https://www.standardwebhooks.com).

The body is ``{"type": "email.<status>", "timestamp": <the record's at>, "data":
<the outcome record>}``, built once and sent unchanged on every attempt; the
headers are ``webhook-id`` (stable across attempts: a receiver dedupes on it),
``webhook-timestamp`` (this attempt's, in unix seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the
secret's decoded bytes).
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from domain.fates import Fate

#: What every Standard Webhooks secret starts with.
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
#: Fewest random bytes a secret must carry (192 bits).
MIN_SECRET_BYTES = 24
#: What the secret should look like, in words (for error messages).
SECRET_RULE = (
    f"must be {SECRET_PREFIX}<base64 of at least {MIN_SECRET_BYTES} random bytes> "
    f"(python -c \"import base64,os; print('{SECRET_PREFIX}' + "
    f'base64.b64encode(os.urandom(32)).decode())")'
)
#: A ``webhook-id`` is this followed by the outcome's stream entry id.
ID_PREFIX = "msg_"


@dataclass(frozen=True)
class Webhook:
    """Where one app's outcomes go, and the key that signs them."""

    url: str
    #: The secret's decoded bytes: never shown (the repr leaves it out).
    secret: bytes = field(repr=False)
    #: The statuses sent; None: every one, those added later too.
    events: frozenset[str] | None = None

    def wants(self, status: str) -> bool:
        return self.events is None or status in self.events


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot receive webhooks, in words; None if it can.  Plain
    http only to this machine: outcomes must not cross a network unencrypted."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute https URL"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return "must be https (http only for localhost, 127.0.0.0/8 or [::1])"
    if parts.fragment or "#" in url:
        return "must have no fragment"
    if parts.username or parts.password:
        return "must carry no user or password (the signature authenticates mailroom)"
    return None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decode_secret(value: str) -> bytes:
    """The key bytes of a ``whsec_`` secret; ValueError (``SECRET_RULE``) otherwise."""
    if not value.startswith(SECRET_PREFIX):
        raise ValueError(SECRET_RULE)
    encoded = value.removeprefix(SECRET_PREFIX)
    try:
        # The padding may be left out, as other Standard Webhooks libraries allow.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(SECRET_RULE) from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(SECRET_RULE)
    return key


def events_problem(events: Iterable[str]) -> str | None:
    unknown = sorted(set(events) - {str(fate) for fate in Fate})
    if unknown:
        known = ", ".join(str(fate) for fate in Fate)
        return f"unknown status {', '.join(unknown)} (known: {known})"
    return None


def webhook_id(entry_id: str) -> str:
    """The ``webhook-id`` of the outcome at stream entry ``entry_id``."""
    return ID_PREFIX + entry_id


def body(record: dict) -> str:
    """The JSON body sent for one outcome record (compact: signed byte for byte)."""
    payload = {"type": f"email.{record['status']}", "timestamp": record["at"], "data": record}
    return json.dumps(payload, separators=(",", ":"))


def signature(secret: bytes, msg_id: str, timestamp: int, content: str) -> str:
    signed = f"{msg_id}.{timestamp}.{content}".encode()
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: bytes, msg_id: str, timestamp: int, content: str) -> dict[str, str]:
    """The headers of one attempt at ``content``, made at unix second ``timestamp``."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, content),
    }
