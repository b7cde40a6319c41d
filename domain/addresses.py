"""Address validation, normalization and masking (no DNS: deliverability is not checked)."""

import base64
import hashlib
import hmac

from email_validator import EmailNotValidError, validate_email

#: Longest address accepted, in characters (RFC 5321 path limit less the brackets).
MAX_ADDRESS_LENGTH = 254


def normalize_address(value: str) -> str:
    """Return the normalized form of a bare mailbox address or raise ``ValueError``.

    Display names, quoted local parts, domain literals, reserved domains and
    RFC 2047 encoded words are refused: each is a way to smuggle something into
    a header or to reach a host that is not on the public internet.
    """
    if len(value) > MAX_ADDRESS_LENGTH:
        raise ValueError(f"address is longer than {MAX_ADDRESS_LENGTH} characters")
    if "=?" in value:
        raise ValueError("encoded words are not allowed in an address")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized


def ascii_address(address: str) -> str | None:
    """The address with its domain in IDNA (``ü@bücher.de`` has none: its local
    part is not ASCII), for servers that do not offer SMTPUTF8."""
    try:
        return validate_email(address, check_deliverability=False).ascii_email
    except EmailNotValidError:
        return None


def address_key(address: str) -> str:
    """The form addresses are compared and bound in: mailbox providers ignore case,
    so ``Ada@Example.com`` and ``ada@example.com`` are one recipient."""
    return address.lower()


def lookup_key(value: str) -> str:
    """The ``address_key`` of an address someone typed or a report named, to
    look mail up by (``ValueError`` if it is none): normalized first, so an
    international domain in its ASCII form finds the Unicode one mailroom keeps."""
    return address_key(normalize_address(value.strip()))


def mask_address(address: str) -> str:
    """``jane@example.com`` -> ``j***@example.com``: enough to recognise, not to harvest."""
    local, sep, domain = address.rpartition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"


def recipient_tag(pepper: bytes, recipient: str) -> str:
    """Eight characters that tell recipients apart without revealing them
    (listings, log lines): keyed (HMAC-SHA256 under the token pepper), so a
    list of known addresses cannot be hashed to find who is who.  Base32, not
    hex: six hex digits may all be decimal and read as a verification code."""
    digest = hmac.new(pepper, address_key(recipient).encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:5]).decode().lower()
