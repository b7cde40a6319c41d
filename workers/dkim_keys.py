"""DKIM key files: read and checked at start-up, or made by ``mailroom dkim keygen``.

A key file holds one unencrypted private key in PEM (PKCS#8 or, for RSA, the
traditional ``RSA PRIVATE KEY``); an Ed25519 key may also be dkimpy's base64
of its 32 raw bytes.  ``cryptography`` is imported when a key is read or made.
"""

import base64
import binascii
import os
from dataclasses import replace
from pathlib import Path

from domain.dkim import ED25519, RSA, SigningKey
from domain.errors import ConfigError

#: The setting every key-file problem points at (its apps-file key says which file).
SETTING = "MAILROOM_APPS_FILE"
#: Shortest RSA key accepted, in bits: RFC 8301 forbids signing with less.
MIN_RSA_BITS = 1024
#: Size of the RSA keys ``mailroom dkim keygen`` makes, in bits (RFC 8301's advice;
#: 4096-bit keys do not fit most DNS providers' TXT records).
RSA_BITS = 2048
#: Permissions of a key file ``mailroom dkim keygen`` writes: its owner reads it.
KEY_FILE_MODE = 0o600
#: Bytes of a raw Ed25519 private key (RFC 8032).
ED25519_RAW = 32


def read_key(key: SigningKey) -> SigningKey:
    """``key`` with its private half read from ``key.file``; a ``ConfigError``
    naming its apps-file key when the file is missing, unreadable or not a key of
    its kind."""
    try:
        data = Path(key.file).read_bytes()
    except FileNotFoundError:
        raise _problem(key, "does not exist (`mailroom dkim keygen` makes one)") from None
    except OSError as exc:
        raise _problem(key, f"cannot be read: {exc.strerror or exc}") from None
    private = _parse(key, data)
    return replace(key, private=_der(private))


def _parse(key: SigningKey, data: bytes):
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if key.kind == ED25519 and b"-----BEGIN" not in data:
        return _raw_ed25519(key, data)
    try:
        private = load_pem_private_key(data, password=None)
    except TypeError:  # cryptography's word for a key that needs a password
        raise _problem(key, "is encrypted: give mailroom an unencrypted key") from None
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise _problem(key, f"is not {_kind_words(key.kind)} private key in PEM") from None
    if key.kind == RSA and isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < MIN_RSA_BITS:
            raise _problem(
                key,
                f"is a {private.key_size}-bit RSA key: DKIM needs at least {MIN_RSA_BITS} "
                f"bits ({RSA_BITS} advised)",
            )
        return private
    if key.kind == ED25519 and isinstance(private, ed25519.Ed25519PrivateKey):
        return private
    raise _problem(key, f"is not {_kind_words(key.kind)} private key")


def _raw_ed25519(key: SigningKey, data: bytes):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != ED25519_RAW:
        raise _problem(key, "is not an Ed25519 private key in PEM or base64")
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw)


def _problem(key: SigningKey, what: str) -> ConfigError:
    return ConfigError(SETTING, f"{key.source}: {key.file} {what}")


def _kind_words(kind: str) -> str:
    return "an RSA" if kind == RSA else "an Ed25519"


def _der(private) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_text(kind: str, private) -> str:
    """The ``p=`` of the DNS record: an RSA key's SubjectPublicKeyInfo (as
    OpenDKIM publishes it), an Ed25519 key's 32 raw bytes (RFC 8463), in base64."""
    from cryptography.hazmat.primitives import serialization

    public = private.public_key()
    if kind == ED25519:
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return base64.b64encode(raw).decode("ascii")


def new_key(kind: str):
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if kind == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def write_key(path: Path, private) -> None:
    """Write ``private`` to a new file only its owner can read; ``FileExistsError``
    when one is there (a key in use is never replaced)."""
    from cryptography.hazmat.primitives import serialization

    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
