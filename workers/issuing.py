"""Issuing a challenge's secret at send time: a fresh code and link token, and
the keyed digests that are all the database ever keeps of them."""

import uuid

from domain import tokens
from domain.addresses import address_key
from domain.vocabulary import RULES, Purpose
from workers.runtime import Runtime
from workers.store import challenges


def new_secret(
    rt: Runtime, challenge_id: uuid.UUID, app: str, kind: str, recipient: str
) -> tuple[tokens.Secret, dict]:
    """A fresh secret for a challenge's mail, and its digests (``challenges.digests``).
    A challenge's mail is of its purpose's kind and goes to the address the
    secret is bound to."""
    purpose = Purpose(kind)
    secret = tokens.new_secret(with_code=RULES[purpose].has_code, code_length=rt.policy.code_length)
    pepper = rt.peppers[rt.key_id]
    code_hash = None
    if secret.code is not None:
        code_hash = tokens.code_digest(
            pepper,
            key_id=rt.key_id,
            app=app,
            purpose=purpose,
            challenge_id=str(challenge_id),
            email=address_key(recipient),
            code=secret.code,
        )
    digests = challenges.digests(
        challenge_id,
        code_hash=code_hash,
        token_hash=tokens.token_digest(pepper, key_id=rt.key_id, token=secret.token),
        key_id=rt.key_id,
        ttl=rt.policy.ttl[purpose].total_seconds(),
    )
    return secret, digests


def issue(rt: Runtime, conn, email, *, keep_previous: bool) -> tokens.Secret | None:
    """A fresh secret for this send; its digests replace the previous ones, or
    with ``keep_previous`` stand beside them (see ``store_secret_digests``).
    None when its challenge is no longer live."""
    secret, digests = new_secret(rt, email.challenge_id, email.app, email.kind, email.recipient)
    live = challenges.store_secret_digests(conn, digests, keep_previous=keep_previous)
    return secret if live else None
