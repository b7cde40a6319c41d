"""Use case: the verification API for apps: check a typed code, consume or peek
at a link token, revoke challenges.

Python apps call a ``Verifier`` directly; ``workers.api`` serves the same calls
over HTTP.  Every answer that is not a success is one of ``invalid``,
``expired``, ``locked`` or ``rate_limited``, whether or not the address or
account exists.
"""

import re
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection

from domain import tokens
from domain.addresses import address_key, mask_address, normalize_address
from domain.errors import VerificationFailed
from domain.flows import UsedChallenge, after_use
from domain.policy import ADDRESS_COOLDOWN, MAX_ATTEMPTS, MAX_CONSECUTIVE_FAILURES
from domain.vocabulary import CODE_PURPOSES, RULES, Purpose, Revokes, Verdict
from workers.logs import get_logger
from workers.runtime import Runtime
from workers.store import challenges, guards, outbox, suppressions
from workers.store.tables import Challenge

#: What a link token looks like (URL-safe base64); anything else is invalid at once.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")

log = get_logger("mailroom.verification")


@dataclass(frozen=True)
class Verified:
    """What a successful check returns to the app."""

    challenge_id: str
    purpose: Purpose
    user_id: str | None
    #: The address the code or link was mailed to (for a change: the new one).
    email: str
    old_email: str | None = None
    new_email: str | None = None
    invite: dict | None = None
    expires_at: datetime | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _verified(challenge: Challenge, expires_at=None) -> Verified:
    changing = challenge.purpose == Purpose.EMAIL_CHANGE
    return Verified(
        challenge_id=str(challenge.id),
        purpose=Purpose(challenge.purpose),
        user_id=challenge.user_id,
        email=challenge.new_email or challenge.email,
        old_email=challenge.email if changing else None,
        new_email=challenge.new_email if changing else None,
        invite=dict(challenge.data) if challenge.purpose == Purpose.INVITE else None,
        expires_at=expires_at,
    )


#: A verification's answer, the success it carries and the notices to enqueue.
Answer = tuple[Verdict, Verified | None, list[uuid.UUID]]


class Verifier:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    # ------------------------------------------------------------ codes

    def verify_code(self, app: str, purpose: str, email: str, code: str) -> Verified:
        """Check a typed code; on success the challenge is used up."""
        if purpose not in CODE_PURPOSES:
            raise VerificationFailed(Verdict.INVALID)
        try:
            address = address_key(normalize_address(email))
        except ValueError:
            raise VerificationFailed(Verdict.INVALID) from None
        verdict, verified, notices = self._verify_code(app, Purpose(purpose), address, code)
        self._enqueue(notices)
        log.info(
            "verification.code",
            app=app,
            purpose=purpose,
            to=mask_address(address),
            outcome=verdict,
        )
        if verified is None:
            raise VerificationFailed(verdict)
        return verified

    def _verify_code(self, app: str, purpose: Purpose, address: str, code: str) -> Answer:
        now = self.rt.clock()
        with self.rt.engine.begin() as conn:
            if guards.is_locked(conn, app, purpose, address, now):
                return Verdict.RATE_LIMITED, None, []
            challenge = challenges.latest_live(conn, app, purpose, address)
            if challenge is None or challenge.code_hash is None:
                failures = self._failed(conn, app, purpose, address, now)
                # Without a challenge, answer as if there were one: locked after
                # as many wrong codes, so the answers do not reveal which is which.
                return (Verdict.LOCKED if failures > MAX_ATTEMPTS else Verdict.INVALID), None, []
            counted = challenges.count_attempt(conn, challenge.id, MAX_ATTEMPTS)
            if counted is None:
                self._failed(conn, app, purpose, address, now)
                return Verdict.LOCKED, None, []
            # The code of the mail before is still good when that mail may have
            # arrived (its send's outcome was unknown), until its own expiry.
            secrets = [(challenge.code_hash, challenge.key_id, counted.expired)]
            if challenge.prev_code_hash is not None:
                secrets.append(
                    (challenge.prev_code_hash, challenge.prev_key_id, counted.prev_expired)
                )
            matched = [
                expired
                for digest, key_id, expired in secrets
                if self._code_matches(digest, key_id, app, purpose, challenge.id, address, code)
            ]
            if not matched:
                self._failed(conn, app, purpose, address, now)
                return self._unless_undelivered(conn, challenge, Verdict.INVALID), None, []
            if all(matched):
                return self._unless_undelivered(conn, challenge, Verdict.EXPIRED), None, []
            consumed = challenges.consume(conn, challenge.id)
            if consumed is None:
                return Verdict.INVALID, None, []
            guards.clear(conn, app, purpose, address, now)
            return Verdict.OK, _verified(consumed), self._after_use(conn, consumed, now)

    @staticmethod
    def _unless_undelivered(conn: Connection, challenge: Challenge, verdict: Verdict) -> Verdict:
        """``undeliverable`` when the code's mail never reached its user: the app
        can say so instead of "wrong code"."""
        undelivered = suppressions.undelivered(conn, challenge.id)
        return Verdict.UNDELIVERABLE if undelivered else verdict

    def _code_matches(self, digest, key_id, app, purpose, challenge_id, address, code) -> bool:
        pepper = self.rt.peppers.get(key_id)
        expected = (
            tokens.code_digest(
                pepper,
                key_id=key_id,
                app=app,
                purpose=purpose,
                challenge_id=str(challenge_id),
                email=address,
                code=code,
            )
            if pepper is not None and code.isdigit()
            else ""
        )
        return tokens.digests_match(digest, expected)

    def _failed(self, conn: Connection, app: str, purpose: str, address: str, now) -> int:
        """Count a wrong code against the address; past the cap it cools down."""
        failures, cooling = guards.count_failure(
            conn,
            app,
            purpose,
            address,
            now,
            limit=MAX_CONSECUTIVE_FAILURES,
            cooldown=ADDRESS_COOLDOWN,
        )
        if cooling:
            log.warning("verification.address_cooling_down", app=app, to=mask_address(address))
        return failures

    # ------------------------------------------------------------ tokens

    def consume_token(self, app: str, purpose: str, token: str) -> Verified:
        """Use a link token once; a second use, or any other token, is invalid."""
        verdict, verified, notices = self._token(app, purpose, token, consume=True)
        self._enqueue(notices)
        log.info("verification.token", app=app, purpose=purpose, outcome=verdict)
        if verified is None:
            raise VerificationFailed(verdict)
        return verified

    def peek_token(self, app: str, purpose: str, token: str) -> Verified:
        """What a link token is for, without using it (landing pages, mail scanners)."""
        verdict, verified, _ = self._token(app, purpose, token, consume=False)
        if verified is None:
            raise VerificationFailed(verdict)
        return verified

    def _token(self, app: str, purpose: str, token: str, *, consume: bool) -> Answer:
        if purpose not in set(Purpose) or not TOKEN_SHAPE.match(token or ""):
            return Verdict.INVALID, None, []
        purpose = Purpose(purpose)
        digests = [
            tokens.token_digest(pepper, key_id=key_id, token=token)
            for key_id, pepper in self.rt.peppers.items()
        ]
        now = self.rt.clock()
        with self.rt.engine.begin() as conn:
            if consume:
                consumed = challenges.consume_token(conn, app, purpose, digests)
                if consumed is not None:
                    notices = self._after_use(conn, consumed, now)
                    return Verdict.OK, _verified(consumed), notices
            found = challenges.find_token(conn, app, purpose, digests)
            if found is None or not found[1]:
                return Verdict.INVALID, None, []
            challenge, _, fresh = found
            if not fresh:
                return Verdict.EXPIRED, None, []
            return Verdict.OK, _verified(challenge, challenge.expires_at), []

    # ------------------------------------------------------------ shared

    def _after_use(self, conn: Connection, challenge: Challenge, now) -> list[uuid.UUID]:
        """Carry out what using a challenge sets off; returns emails to enqueue after commit."""
        purpose = Purpose(challenge.purpose)
        # Only a notice needs the name and locale the secret was mailed with.
        mail = (
            outbox.first_of_challenge(conn, challenge.id) if RULES[purpose].notice_on_use else None
        )
        consequences = after_use(
            UsedChallenge(
                purpose=purpose,
                email=challenge.email,
                new_email=challenge.new_email,
                user_name=mail.context.get("name") if mail else None,
                locale=mail.locale if mail else "en",
            ),
            now,
        )
        if consequences.revoke != Revokes.NOTHING:
            scope = purpose if consequences.revoke == Revokes.SAME_PURPOSE else None
            challenges.revoke_user(conn, challenge.app, challenge.user_id, scope, now)
        return [
            outbox.add_email(conn, challenge.event_id, challenge.app, spec, now)
            for spec in consequences.notices
        ]

    def _enqueue(self, email_ids: list[uuid.UUID]) -> None:
        for email_id in email_ids:
            self.rt.dispatch.delivery(email_id)

    # ------------------------------------------------------------ revocation

    def revoke_challenge(self, app: str, challenge_id: str) -> int:
        try:
            key = uuid.UUID(challenge_id)
        except ValueError:
            return 0
        with self.rt.engine.begin() as conn:
            return challenges.revoke(conn, app, key, self.rt.clock())

    def revoke_user(self, app: str, user_id: str, purpose: str | None = None) -> int:
        with self.rt.engine.begin() as conn:
            return challenges.revoke_user(conn, app, user_id, purpose, self.rt.clock())
