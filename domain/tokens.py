"""Verification secrets: generation and keyed hashing.

Only digests are ever stored.  A code digest is bound to the key, app, purpose,
challenge and address, so a code for one of them never verifies for another.
"""

import hmac
import secrets
from dataclasses import dataclass
from hashlib import sha256

from domain.policy import CODE_LENGTH, LINK_TOKEN_BYTES


@dataclass(frozen=True)
class Secret:
    """What goes into one mail: shown to the user once, then only its digests remain."""

    code: str | None
    token: str


def new_code(length: int = CODE_LENGTH) -> str:
    return f"{secrets.randbelow(10**length):0{length}d}"


def new_link_token() -> str:
    return secrets.token_urlsafe(LINK_TOKEN_BYTES)


def new_secret(*, with_code: bool, code_length: int = CODE_LENGTH) -> Secret:
    return Secret(code=new_code(code_length) if with_code else None, token=new_link_token())


def code_digest(
    pepper: bytes, *, key_id: str, app: str, purpose: str, challenge_id: str, email: str, code: str
) -> str:
    message = "\x1f".join(("code-v1", key_id, app, purpose, challenge_id, email, code))
    return hmac.new(pepper, message.encode(), sha256).hexdigest()


def token_digest(pepper: bytes, *, key_id: str, token: str) -> str:
    message = "\x1f".join(("token-v1", key_id, token))
    return hmac.new(pepper, message.encode(), sha256).hexdigest()


def digests_match(expected: str, candidate: str) -> bool:
    return hmac.compare_digest(expected.encode(), candidate.encode())


#: Marks a mailroom API key, so secret scanners and people recognise one.
API_KEY_PREFIX = "mrk_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_digest(key: str) -> str:
    # A 256-bit random key needs no slow hash: SHA-256 cannot be reversed for it.
    return sha256(key.encode()).hexdigest()
