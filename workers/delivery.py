"""Use case: deliver one email: claim it, issue its secret, render, send, record.

Retries happen at two levels: a few quick ones inside the attempt (tenacity),
then the broker's, with back-off, until the email's deadline.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from dramatiq.common import compute_backoff
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from domain import tokens
from domain.addresses import address_key, mask_address
from domain.errors import PermanentError, RenderError, TransientError, TransportConfigError
from domain.flows import link_for
from domain.messages import build_message, message_id_for
from domain.vocabulary import RULES, Purpose, Reason, Suppressed
from workers.db import autocommit
from workers.logs import get_logger
from workers.runtime import Runtime
from workers.store import challenges, dead_letters, outbox

#: In-process retry delays for a transient send failure, in seconds (tenacity).
QUICK_RETRY_DELAYS = (1, 2, 4)
#: Seconds after which no further quick retry starts.
QUICK_RETRY_BUDGET = 60
#: A delivery claim lasts this long; a worker killed mid-send frees it when it lapses.
#: Longer than any one delivery can take (QUICK_RETRY_BUDGET plus a last attempt
#: of at most two transports' timeouts).
SEND_LEASE = timedelta(minutes=5)

log = get_logger("mailroom.pipeline")


@dataclass(frozen=True)
class Delivery:
    """How a delivery attempt ended; ``retry_after_ms`` asks the broker to try again."""

    status: str
    retry_after_ms: int | None = None


def deliver_email(rt: Runtime, email_id: uuid.UUID, *, retries: int = 0) -> Delivery:
    now = rt.clock()
    # Each step stands on its own (a claim that outlives its worker lapses; a
    # secret issued for a mail that never left is replaced by the next), so
    # these statements commit one by one instead of paying for a transaction.
    with autocommit(rt.engine) as conn:
        email = outbox.claim(conn, email_id, now, SEND_LEASE)
        if email is None:
            log.info("email.skipped", email_id=str(email_id), why="already done or in flight")
            return Delivery("skipped")
        app = rt.apps.for_source(email.app)
        refusal = _refusal(email, app, now)
        secret = None if refusal else _issue_secret(rt, conn, email)
        if refusal is None and email.challenge_id is not None and secret is None:
            # A newer request, a revocation or a use came first: its code is moot.
            outbox.suppress(conn, email.id, Suppressed.SUPERSEDED)
            log.info("email.suppressed", email_id=str(email.id), kind=email.kind, why="superseded")
            return Delivery("suppressed")
    if refusal is not None:
        return _dead_letter_now(rt, email, *refusal, attempts=0)

    try:
        message = _compose(rt, app, email, secret, now)
    except RenderError as exc:
        return _dead_letter_now(rt, email, Reason.RENDER_ERROR, str(exc), attempts=0)
    except Exception as exc:  # a broken override or catalog, say: rendering again won't help
        error = f"{type(exc).__name__}: {exc}"
        return _dead_letter_now(rt, email, Reason.RENDER_ERROR, error, attempts=0)

    attempts = 0

    def send_once():
        nonlocal attempts
        attempts += 1
        return rt.transport.send(message, sender=app.from_address, recipient=email.recipient)

    def failed_once(state) -> None:
        log.info(
            "email.attempt_failed",
            email_id=str(email.id),
            kind=email.kind,
            attempt=state.attempt_number,
            error=str(state.outcome.exception()),
            retry_in_seconds=round(state.upcoming_sleep, 1),
        )

    try:
        receipt = _quick_retries(failed_once)(send_once)
    except TransportConfigError as exc:
        return _dead_letter_now(rt, email, Reason.MISCONFIGURED, str(exc), attempts=attempts)
    except PermanentError as exc:
        return _dead_letter_now(rt, email, Reason.REJECTED, str(exc), attempts=attempts)
    except TransientError as exc:
        return _retry_later(rt, email, str(exc), attempts=attempts, retries=retries)
    except BaseException:
        with autocommit(rt.engine) as conn:
            outbox.release_claim(conn, email.id, email.lease_until, rt.clock())
        raise

    transport = receipt.transport or rt.transport.name
    with autocommit(rt.engine) as conn:
        recorded = outbox.mark_sent(
            conn,
            email.id,
            claim=email.lease_until,
            now=rt.clock(),
            attempts=attempts,
            message_id=message["Message-ID"],
            provider_id=receipt.provider_id,
            transport=transport,
        )
    if not recorded:
        # Our claim lapsed while the mail was in flight and another worker took
        # the email over: it may go out twice. SEND_LEASE is meant to prevent this.
        log.warning("email.claim_lapsed", email_id=str(email.id), kind=email.kind)
    log.info(
        "email.sent",
        email_id=str(email.id),
        kind=email.kind,
        to=mask_address(email.recipient),
        transport=transport,
        attempts=email.attempts + attempts,
        destination=receipt.destination,
    )
    return Delivery("sent")


def _refusal(email, app, now: datetime) -> tuple[Reason, str] | None:
    """Why a claimed email must not be sent at all, if it must not."""
    if now > email.deadline:
        return (
            Reason.EXPIRED_BEFORE_DELIVERY,
            email.last_error or "the deadline passed before the first attempt",
        )
    if app is None:
        return Reason.UNKNOWN_SOURCE, f"source {email.app!r} is no longer a configured app"
    return None


def _quick_retries(before_sleep) -> Retrying:
    return Retrying(
        before_sleep=before_sleep,
        retry=retry_if_exception_type(TransientError),
        wait=wait_exponential(multiplier=QUICK_RETRY_DELAYS[0], max=QUICK_RETRY_DELAYS[-1]),
        # Well inside the claim (SEND_LEASE), so no other worker sends meanwhile.
        stop=stop_after_attempt(len(QUICK_RETRY_DELAYS) + 1) | stop_after_delay(QUICK_RETRY_BUDGET),
        reraise=True,
    )


def _issue_secret(rt: Runtime, conn, email) -> tokens.Secret | None:
    """A fresh secret for this send; its digests replace the previous ones.

    A challenge's mail is of its purpose's kind and goes to the address the
    secret is bound to, so the email row says all the digests need.  None when
    the mail has no challenge, or its challenge is no longer live.
    """
    if email.challenge_id is None:
        return None
    purpose = Purpose(email.kind)
    secret = tokens.new_secret(with_code=RULES[purpose].has_code, code_length=rt.policy.code_length)
    pepper = rt.peppers[rt.key_id]
    code_hash = None
    if secret.code is not None:
        code_hash = tokens.code_digest(
            pepper,
            key_id=rt.key_id,
            app=email.app,
            purpose=purpose,
            challenge_id=str(email.challenge_id),
            email=address_key(email.recipient),
            code=secret.code,
        )
    live = challenges.store_secret_digests(
        conn,
        email.challenge_id,
        code_hash=code_hash,
        token_hash=tokens.token_digest(pepper, key_id=rt.key_id, token=secret.token),
        key_id=rt.key_id,
        ttl_seconds=rt.policy.ttl[purpose].total_seconds(),
    )
    return secret if live else None


def _compose(rt: Runtime, app, email, secret: tokens.Secret | None, now: datetime):
    context = {**dict(email.context), **app.branding(email.app)}
    if secret is not None:
        purpose = Purpose(email.kind)
        minutes = int(rt.policy.ttl[purpose].total_seconds() // 60)
        context.update(
            code=secret.code,
            link=link_for(app.base_url, purpose, secret.token),
            ttl_minutes=minutes,
            ttl_days=minutes // 1440,
        )
    rendered = rt.renderer.render(email.kind, email.locale, context, app=app)
    return build_message(
        sender=app.from_address,
        sender_name=app.from_name or app.product(email.app),
        recipient=email.recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id_for(app.from_address),
        date=now,
    )


def _retry_later(rt: Runtime, email, error: str, *, attempts: int, retries: int) -> Delivery:
    _, delay_ms = compute_backoff(
        retries,
        factor=int(rt.settings.retry_min_backoff * 1000),
        max_backoff=int(rt.settings.retry_max_backoff * 1000),
    )
    now = rt.clock()
    due = now.timestamp() + delay_ms / 1000
    if due > email.deadline.timestamp():
        return _dead_letter_now(rt, email, Reason.EXPIRED_BEFORE_DELIVERY, error, attempts=attempts)
    with autocommit(rt.engine) as conn:
        outbox.schedule_retry(
            conn,
            email.id,
            claim=email.lease_until,
            attempts=attempts,
            error=error,
            next_attempt_at=datetime.fromtimestamp(due, now.tzinfo),
        )
    log.warning(
        "email.retrying",
        email_id=str(email.id),
        kind=email.kind,
        to=mask_address(email.recipient),
        error=error,
        attempts=email.attempts + attempts,
        retry_in_seconds=round(delay_ms / 1000, 1),
    )
    return Delivery("retrying", retry_after_ms=delay_ms)


def _dead_letter_now(rt: Runtime, email, reason: Reason, error: str, *, attempts: int) -> Delivery:
    with rt.engine.begin() as conn:
        filed = dead_letters.file_email(
            conn,
            email.id,
            reason=reason,
            error=error,
            attempts=attempts,
            now=rt.clock(),
            claim=email.lease_until,
        )
    log.error(
        "email.dead_lettered",
        email_id=str(email.id),
        kind=email.kind,
        to=mask_address(email.recipient),
        reason=reason,
        error=error,
        attempts=email.attempts + attempts,
        failed_id=filed.id if filed else None,
    )
    return Delivery("failed")


def dead_letter_exhausted(rt: Runtime, email_id: uuid.UUID, error: str) -> int | None:
    """Broker retries ran out (seen by the dead-letter middleware).

    Files nothing while another worker holds a live claim on the email: that
    duplicate delivery is sending it and will record what became of it.  The
    email's own last error (the SMTP reply, say) says more than the broker's.
    """
    with rt.engine.begin() as conn:
        email = outbox.get(conn, email_id)
        error = (email.last_error if email else None) or error
        filed = dead_letters.file_email(
            conn,
            email_id,
            reason=Reason.RETRIES_EXHAUSTED,
            error=error,
            attempts=0,
            now=rt.clock(),
        )
    if filed is None:
        return None
    log.error(
        "email.dead_lettered",
        email_id=str(email_id),
        kind=filed.email.kind,
        to=mask_address(filed.email.recipient),
        reason=Reason.RETRIES_EXHAUSTED,
        error=error,
        failed_id=filed.id,
    )
    return filed.id
