"""The verification API for apps: check a typed code, consume or peek at a link
token, revoke challenges.

Python apps call a ``Verifier`` directly; ``workers.api`` serves the same calls
over HTTP.  Every answer that is not a success is one of ``invalid``,
``expired``, ``locked`` or ``rate_limited``, whether or not the address or
account exists.  Single use is one conditional UPDATE; expiry is compared with
the database clock.
"""

import re
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from domain import tokens
from domain.addresses import address_key, mask_address, normalize_address
from domain.errors import VerificationFailed
from domain.flows import CODE_PURPOSES, PURPOSES, email_changed_notice
from domain.policy import ADDRESS_COOLDOWN, MAX_ATTEMPTS, MAX_CONSECUTIVE_FAILURES
from workers import store
from workers.db import now_sql
from workers.logs import get_logger
from workers.models import AddressGuard, Challenge, Email

#: What a link token looks like (URL-safe base64); anything else is invalid at once.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")

log = get_logger("mailroom.verification")

INVALID = VerificationFailed.INVALID
EXPIRED = VerificationFailed.EXPIRED
LOCKED = VerificationFailed.LOCKED
RATE_LIMITED = VerificationFailed.RATE_LIMITED


@dataclass(frozen=True)
class Verified:
    """What a successful check returns to the app."""

    challenge_id: str
    purpose: str
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
    changing = challenge.purpose == "email_change"
    return Verified(
        challenge_id=str(challenge.id),
        purpose=challenge.purpose,
        user_id=challenge.user_id,
        email=challenge.new_email or challenge.email,
        old_email=challenge.email if changing else None,
        new_email=challenge.new_email if changing else None,
        invite=dict(challenge.data) if challenge.purpose == "invite" else None,
        expires_at=expires_at,
    )


def _guard(app: str, purpose: str, address: str) -> tuple:
    return (AddressGuard.app == app, AddressGuard.purpose == purpose, AddressGuard.email == address)


def _target(purpose: str):
    return Challenge.new_email_key if purpose == "email_change" else Challenge.email_key


class Verifier:
    def __init__(self, runtime) -> None:
        self.rt = runtime

    # ------------------------------------------------------------ codes

    def verify_code(self, app: str, purpose: str, email: str, code: str) -> Verified:
        """Check a typed code; on success the challenge is used up."""
        if purpose not in CODE_PURPOSES:
            raise VerificationFailed(INVALID)
        try:
            address = address_key(normalize_address(email))
        except ValueError:
            raise VerificationFailed(INVALID) from None
        outcome, verified, notices = self._verify_code(app, purpose, address, code)
        for email_id in notices:
            self.rt.enqueue_delivery(email_id)
        log.info(
            "verification.code",
            app=app,
            purpose=purpose,
            to=mask_address(address),
            outcome=outcome,
        )
        if verified is None:
            raise VerificationFailed(outcome)
        return verified

    def _verify_code(self, app, purpose, address, code):
        now = self.rt.clock()
        with self.rt.sessions.begin() as session:
            db_now = now_sql(session.bind.dialect.name)
            guard = session.get(AddressGuard, (app, purpose, address))
            if guard and guard.locked_until and guard.locked_until > now:
                return RATE_LIMITED, None, []
            challenge = session.scalars(
                select(Challenge)
                .where(
                    Challenge.app == app,
                    Challenge.purpose == purpose,
                    _target(purpose) == address,
                    *store.live_challenge(),
                )
                .order_by(Challenge.created_at.desc())
                .limit(1)
            ).first()
            if challenge is None or challenge.code_hash is None:
                failures = self._failed(session, app, purpose, address, now)
                # Without a challenge, answer as if there were one: locked after
                # as many wrong codes, so the answers do not reveal which is which.
                return (LOCKED if failures > MAX_ATTEMPTS else INVALID), None, []
            counted = session.execute(
                update(Challenge)
                .where(
                    Challenge.id == challenge.id,
                    Challenge.attempts < MAX_ATTEMPTS,
                    *store.live_challenge(),
                )
                .values(attempts=Challenge.attempts + 1)
                .returning((Challenge.expires_at <= db_now).label("expired"))
            ).first()
            if counted is None:
                self._failed(session, app, purpose, address, now)
                return LOCKED, None, []
            pepper = self.rt.peppers.get(challenge.key_id)
            expected = (
                tokens.code_digest(
                    pepper,
                    key_id=challenge.key_id,
                    app=app,
                    purpose=purpose,
                    challenge_id=str(challenge.id),
                    email=address,
                    code=code,
                )
                if pepper is not None and code.isdigit()
                else ""
            )
            if not tokens.digests_match(challenge.code_hash, expected):
                self._failed(session, app, purpose, address, now)
                return INVALID, None, []
            if counted.expired:
                return EXPIRED, None, []
            consumed = self._consume(session, (Challenge.id == challenge.id,), db_now)
            if consumed is None:
                return INVALID, None, []
            session.execute(
                update(AddressGuard)
                .where(*_guard(app, purpose, address))
                .values(failures=0, locked_until=None, updated_at=now)
            )
            notices = self._after_consume(session, consumed, now)
            return "ok", _verified(consumed), notices

    def _failed(self, session, app: str, purpose: str, address: str, now: datetime) -> int:
        """Count a wrong code against the address; past the cap it cools down."""
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        failures = session.execute(
            dialect.insert(AddressGuard)
            .values(app=app, purpose=purpose, email=address, failures=1, updated_at=now)
            .on_conflict_do_update(
                index_elements=["app", "purpose", "email"],
                set_={"failures": AddressGuard.failures + 1, "updated_at": now},
            )
            .returning(AddressGuard.failures)
        ).scalar_one()
        if failures >= MAX_CONSECUTIVE_FAILURES:
            session.execute(
                update(AddressGuard)
                .where(*_guard(app, purpose, address))
                .values(locked_until=now + ADDRESS_COOLDOWN, failures=0)
            )
            log.warning("verification.address_cooling_down", app=app, to=mask_address(address))
        return failures

    # ------------------------------------------------------------ tokens

    def consume_token(self, app: str, purpose: str, token: str) -> Verified:
        """Use a link token once; a second use, or any other token, is invalid."""
        outcome, verified, notices = self._token(app, purpose, token, consume=True)
        for email_id in notices:
            self.rt.enqueue_delivery(email_id)
        log.info("verification.token", app=app, purpose=purpose, outcome=outcome)
        if verified is None:
            raise VerificationFailed(outcome)
        return verified

    def peek_token(self, app: str, purpose: str, token: str) -> Verified:
        """What a link token is for, without using it (landing pages, mail scanners)."""
        outcome, verified, _ = self._token(app, purpose, token, consume=False)
        if verified is None:
            raise VerificationFailed(outcome)
        return verified

    def _token(self, app: str, purpose: str, token: str, *, consume: bool):
        if purpose not in PURPOSES or not TOKEN_SHAPE.match(token or ""):
            return INVALID, None, []
        digests = [
            tokens.token_digest(pepper, key_id=key_id, token=token)
            for key_id, pepper in self.rt.peppers.items()
        ]
        matches = (
            Challenge.token_hash.in_(digests),
            Challenge.app == app,
            Challenge.purpose == purpose,
        )
        now = self.rt.clock()
        with self.rt.sessions.begin() as session:
            db_now = now_sql(session.bind.dialect.name)
            if consume:
                consumed = self._consume(session, matches, db_now)
                if consumed is not None:
                    return "ok", _verified(consumed), self._after_consume(session, consumed, now)
            found = session.execute(
                select(
                    Challenge,
                    and_(*store.live_challenge()).label("live"),
                    (Challenge.expires_at > db_now).label("fresh"),
                ).where(*matches)
            ).first()
            if found is None or not found.live:
                return INVALID, None, []
            challenge, _, fresh = found
            if not fresh:
                return EXPIRED, None, []
            return "ok", _verified(challenge, challenge.expires_at), []

    # ------------------------------------------------------------ shared

    def _consume(self, session, where: tuple, db_now) -> Challenge | None:
        """Single use: of concurrent consumers, the database lets exactly one through."""
        return session.execute(
            update(Challenge)
            .where(*where, *store.live_challenge(), Challenge.expires_at > db_now)
            .values(consumed_at=db_now)
            .returning(Challenge)
        ).scalar_one_or_none()

    def _after_consume(self, session, challenge: Challenge, now: datetime) -> list[uuid.UUID]:
        """What using a challenge sets off; returns emails to enqueue after commit."""
        if challenge.purpose == "password_reset":
            store.revoke_user_challenges(
                session, challenge.app, challenge.user_id, "password_reset", now
            )
            return []
        if challenge.purpose != "email_change":
            return []
        store.revoke_user_challenges(session, challenge.app, challenge.user_id, None, now)
        mail = session.scalars(
            select(Email).where(Email.challenge_id == challenge.id).order_by(Email.created_at)
        ).first()
        spec = email_changed_notice(
            app=challenge.app,
            user_name=mail.context.get("name") if mail else None,
            locale=mail.locale if mail else "en",
            old_email=challenge.email,
            new_email=challenge.new_email,
            now=now,
        )
        return [store.add_email(session, challenge.event_id, challenge.app, spec, now)]

    # ------------------------------------------------------------ revocation

    def revoke_challenge(self, app: str, challenge_id: str) -> int:
        try:
            key = uuid.UUID(challenge_id)
        except ValueError:
            return 0
        with self.rt.sessions.begin() as session:
            return session.execute(
                update(Challenge)
                .where(Challenge.id == key, Challenge.app == app, *store.live_challenge())
                .values(revoked_at=self.rt.clock())
            ).rowcount

    def revoke_user(self, app: str, user_id: str, purpose: str | None = None) -> int:
        with self.rt.sessions.begin() as session:
            return store.revoke_user_challenges(session, app, user_id, purpose, self.rt.clock())
