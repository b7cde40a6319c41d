"""DKIM signatures (RFC 6376, RFC 8463) over the bytes a transport hands a relay.

Signing happens last, on the message exactly as it is sent (after a transport
has rewritten ``To`` for a server without SMTPUTF8, say): the ``smtp`` and
``file`` transports sign; SES and Gmail sign with their own keys.  Header and
body are canonicalized "relaxed", which survives the refolding some relays do.

The arithmetic is OpenSSL's (``cryptography``): an RSA-2048 signature costs
about 0.3 ms there against 8 ms in dkimpy's pure Python, and a worker signs
every mail.  The tests verify what this writes with dkimpy.
"""

import base64
import functools
import hashlib
import re
import time
from email.message import Message

from domain.dkim import ED25519, SIGNED_HEADERS, Dkim, SigningKey
from domain.errors import TransportConfigError
from workers.dkim_keys import SETTING

#: Longest line of a DKIM-Signature field we write, in characters (RFC 5322's "SHOULD").
FOLD_AT = 78
#: How many loaded keys are kept, parsed, per process (one or two per app).
KEYS_KEPT = 64

_WSP = re.compile(rb"[ \t]+")
_FOLDS = re.compile(rb"\r\n(?=[ \t])")


def signed(message: Message, data: bytes) -> bytes:
    """``data`` (``message`` as sent) with a DKIM-Signature field atop for each key
    of the app that sends it; unchanged when that app signs nothing."""
    dkim = getattr(message, "dkim", None)
    return data if dkim is None else sign(data, dkim)


def sign(data: bytes, dkim: Dkim) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    fields = _fields(head)
    present = [_name(field) for field in fields]
    wanted = [name.lower() for name in SIGNED_HEADERS]
    names = [name for name in wanted for _ in range(present.count(name) + 1) if name in present]
    stamp = int(time.time())
    body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest()).decode()
    signatures = b"".join(
        _signature(key, dkim.domain, fields, names, body_hash, stamp) for key in dkim.keys
    )
    return signatures + data


def _signature(key: SigningKey, domain, fields, names, body_hash: str, stamp: int) -> bytes:
    tags = [
        "v=1;", f"a={key.algorithm};", "c=relaxed/relaxed;", f"d={domain};",
        f"s={key.selector};", f"t={stamp};", "h=" + " : ".join(names) + ";",
        f"bh={body_hash};", "b=",
    ]  # fmt: skip
    header = _fold("DKIM-Signature:", [word for tag in tags for word in tag.split(" ")])
    # The signature covers the chosen fields, then this one with b= empty and
    # without its line break (RFC 6376 3.7).
    signed_data = b"".join(_relaxed_header(f) for f in _chosen(fields, names))
    signed_data += _relaxed_header(header.encode())[:-2]
    try:
        signature = _sign(key, signed_data)
    except Exception as exc:  # a key that loaded at start-up: this is no mail's fault
        raise TransportConfigError(SETTING, f"{key.source}: DKIM signing failed: {exc}") from exc
    value = base64.b64encode(signature).decode()
    # b= may be folded anywhere: a verifier drops its value, whitespace and all.
    width = FOLD_AT - 1
    chunks = [value[i : i + width] for i in range(0, len(value), width)]
    return (header + "".join(f"\r\n {chunk}" for chunk in chunks) + "\r\n").encode()


def _fold(start: str, words: list[str]) -> str:
    lines, line = [], start
    for word in words:
        if len(line) + 1 + len(word) > FOLD_AT:
            lines.append(line)
            line = ""
        line += " " + word
    return "\r\n".join([*lines, line])


def _fields(head: bytes) -> list[bytes]:
    """The header block's fields, each whole (folds and all, no final CRLF)."""
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields


def _chosen(fields: list[bytes], names: list[str]) -> list[bytes]:
    """Each name's instances from the bottom up; a name listed more often than its
    field appears chooses nothing the extra times (RFC 6376 5.4.2)."""
    left: dict[str, list[bytes]] = {}
    for field in fields:
        left.setdefault(_name(field), []).append(field)
    return [left[name].pop() for name in names if left.get(name)]


def _name(field: bytes) -> str:
    return field.partition(b":")[0].strip().lower().decode("latin-1")


def _relaxed_header(field: bytes) -> bytes:
    name, _, value = field.partition(b":")
    value = _WSP.sub(b" ", _FOLDS.sub(b"", value)).strip(b" ")
    return name.strip().lower() + b":" + value + b"\r\n"


def _relaxed_body(body: bytes) -> bytes:
    lines = [_WSP.sub(b" ", line).rstrip(b" ") for line in body.split(b"\r\n")]
    while lines and not lines[-1]:
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


def _sign(key: SigningKey, data: bytes) -> bytes:
    private = _loaded(key.private)
    if key.kind == ED25519:
        # RFC 8463: Ed25519 signs the SHA-256 of the data, not the data.
        return private.sign(hashlib.sha256(data).digest())
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return private.sign(data, padding.PKCS1v15(), hashes.SHA256())


@functools.lru_cache(maxsize=KEYS_KEPT)
def _loaded(private: bytes):
    # Parsed once per process: checking an RSA key's numbers takes milliseconds.
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    return load_der_private_key(private, password=None)
