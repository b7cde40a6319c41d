"""Use case: deliver one email: claim it, issue its secret, render, send, record.

One attempt per call, holding no thread in sleeps: a transient failure
schedules the next attempt with the broker's back-off (``rt.dispatch``), until
the email's deadline.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from dramatiq.common import compute_backoff
from sqlalchemy.exc import InterfaceError, OperationalError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from domain import suppression, tokens, verp
from domain.errors import PermanentError, RenderError, TransientError, TransportConfigError
from domain.flows import link_for
from domain.messages import build_message, message_id_for
from domain.vocabulary import Purpose, Reason, Suppressed
from workers import issuing, outcomes
from workers.db import autocommit
from workers.logs import get_logger
from workers.runtime import Runtime
from workers.store import claims, dead_letters, outbox
from workers.store.claims import Claim

#: How long a claim lasts unless renewed.  A live process renews its claims every
#: ``workers.claims.RENEW_EVERY``; a killed one frees its mail this long after
#: its last renewal, for the sweeper to hand to a live process.
CLAIM_LEASE = timedelta(seconds=15)
#: Seconds a delivery waits out an unreachable database before giving its email
#: up to a later sweep (the lease keeper renews the claim meanwhile, once it can).
DATABASE_PATIENCE = 30

log = get_logger("mailroom.pipeline")


@dataclass(frozen=True)
class Delivery:
    """How a delivery attempt ended: sent, retrying, failed, suppressed or skipped."""

    status: str


class Planned(NamedTuple):
    """What intake knew of an email it queued for this process: all its new
    secret's digests are bound to (in ``issuing.new_secret``'s order), so the
    secret can be stored by the statement that begins the first attempt."""

    challenge_id: uuid.UUID | None
    app: str
    kind: str
    recipient: str


def deliver_email(
    rt: Runtime, email_id: uuid.UUID, *, held: int | None = None, planned: Planned | None = None
) -> Delivery:
    """Make one attempt at an email: claimed now, or (``held``: its attempts when
    this process took it) already held by this process; ``planned``: as intake
    queued it, for its first attempt."""
    rt.holds.add(email_id)  # its lease is renewed for as long as this runs
    try:
        return _attempt(rt, email_id, held, planned)
    finally:
        rt.holds.discard(email_id)


#: Runs a database step again while the database is unreachable (a restart, a
#: failover), for up to ``DATABASE_PATIENCE``: above all the record of a mail
#: already sent, which, given up, would send it twice.  (Its state is per thread.)
_patiently = Retrying(
    retry=retry_if_exception_type((OperationalError, InterfaceError)),
    wait=wait_exponential(multiplier=0.1, max=2),
    stop=stop_after_delay(DATABASE_PATIENCE),
    reraise=True,
)


def _take(rt: Runtime, email_id: uuid.UUID, held: int | None, now: datetime):
    with autocommit(rt.engine) as conn:
        if held is None:
            return claims.claim(conn, email_id, rt.claimant, now, CLAIM_LEASE)
        return claims.begin_attempt(conn, email_id, rt.claimant, held, now)


def _take_first(rt: Runtime, email_id: uuid.UUID, now: datetime, digests: dict):
    with autocommit(rt.engine) as conn:
        return claims.begin_first_attempt(conn, email_id, rt.claimant, now, digests)


def _attempt(
    rt: Runtime, email_id: uuid.UUID, held: int | None, planned: Planned | None
) -> Delivery:
    now = rt.clock()
    # Each step stands on its own (a claim that outlives its worker lapses; a
    # secret issued for a mail that never left is replaced by the next), so
    # these statements commit one by one instead of paying for a transaction.
    # The first attempt at a challenge's mail stores its secret in the
    # statement that begins it; any other finds the challenge from its row.
    issued = held == 0 and planned is not None and planned.challenge_id is not None
    secret = None
    if issued:
        secret, digests = issuing.new_secret(rt, *planned)
        email, live = _patiently(lambda: _take_first(rt, email_id, now, digests))
        secret = secret if live else None
    else:
        email = _patiently(lambda: _take(rt, email_id, held, now))
    if email is None:
        log.info("email.skipped", email_id=str(email_id), why="already done or in flight")
        return Delivery("skipped")
    claim = claims.claim_of(email)
    #: Attempts before this one; their mail may have reached the user.
    earlier = email.attempts - 1
    app = rt.apps.for_source(email.app)
    refusal = _refusal(email, app, now, earlier)
    blocked = None if refusal else suppression.blocking(email.suppressed_for, kind=email.kind)
    if blocked is not None:
        return _suppress(rt, email, claim, blocked)
    if refusal is None and not issued and email.challenge_id is not None:
        with autocommit(rt.engine) as conn:
            secret = issuing.issue(rt, conn, email, keep_previous=earlier > 0)
    if refusal is None and email.challenge_id is not None and secret is None:
        # A newer request, a revocation or a use came first: its code is moot.
        return _suppress(rt, email, claim, Suppressed.SUPERSEDED)
    if refusal is not None:
        return _dead_letter_now(rt, email, claim, *refusal, attempted=False)

    try:
        message = _compose(rt, app, email, secret, now)
    except RenderError as exc:
        return _dead_letter_now(rt, email, claim, Reason.RENDER_ERROR, str(exc), attempted=False)
    except Exception as exc:  # a broken override or catalog, say: rendering again won't help
        error = f"{type(exc).__name__}: {exc}"
        return _dead_letter_now(rt, email, claim, Reason.RENDER_ERROR, error, attempted=False)

    started = time.perf_counter()
    try:
        receipt = rt.transport.send(
            message,
            sender=app.from_address,
            recipient=email.recipient,
            return_path=_return_path(rt, email),
        )
    except TransportConfigError as exc:
        took = time.perf_counter() - started
        return _dead_letter_now(rt, email, claim, Reason.MISCONFIGURED, str(exc), took=took)
    except PermanentError as exc:
        took = time.perf_counter() - started
        return _dead_letter_now(rt, email, claim, Reason.REJECTED, str(exc), took=took)
    except TransientError as exc:
        return _retry_later(rt, email, claim, str(exc), took=time.perf_counter() - started)
    except BaseException:
        with autocommit(rt.engine) as conn:
            claims.release_claim(conn, email.id, claim, rt.clock())
        raise

    took = time.perf_counter() - started
    transport = receipt.transport or rt.transport.name

    def record_sent() -> bool:
        with autocommit(rt.engine) as conn:
            return claims.mark_sent(
                conn,
                email.id,
                claim=claim,
                now=rt.clock(),
                message_id=message["Message-ID"],
                provider_id=receipt.provider_id,
                transport=transport,
            )

    recorded = _patiently(record_sent)
    if not recorded:
        # This process stalled past its lease (no renewal reached the database)
        # and another took the email over: it may go out twice.
        log.warning("email.claim_lapsed", email_id=str(email.id), kind=email.kind)
    outcomes.sent(
        rt,
        email,
        transport=transport,
        duration=took,
        message_id=message["Message-ID"],
        provider_id=receipt.provider_id,
        destination=receipt.destination,
        now=rt.clock(),
    )
    return Delivery("sent")


def _refusal(email, app, now: datetime, earlier: int) -> tuple[Reason, str] | None:
    """Why a claimed email must not be sent at all, if it must not."""
    if now > email.deadline:
        if email.last_error:
            return Reason.EXPIRED_BEFORE_DELIVERY, email.last_error
        if earlier:
            why = (
                "an attempt was cut off (its worker stopped) and the deadline passed before another"
            )
            return Reason.EXPIRED_BEFORE_DELIVERY, why
        return Reason.EXPIRED_BEFORE_DELIVERY, "the deadline passed before the first attempt"
    if app is None:
        return Reason.UNKNOWN_SOURCE, f"source {email.app!r} is no longer a configured app"
    return None


def _return_path(rt: Runtime, email) -> str | None:
    if rt.settings.bounce_domain is None:
        return None
    return verp.return_path(email.id, rt.verp_keys[rt.key_id], rt.settings.bounce_domain)


def _suppress(rt: Runtime, email, claim: Claim, reason: Suppressed) -> Delivery:
    with autocommit(rt.engine) as conn:
        claims.suppress(conn, email.id, claim, reason)
    outcomes.suppressed(rt, email, reason=reason)
    return Delivery("suppressed")


def _compose(rt: Runtime, app, email, secret: tokens.Secret | None, now: datetime):
    context = {**dict(email.context), **app.branding(email.app)}
    if secret is not None:
        purpose = Purpose(email.kind)
        minutes = int(rt.policy.ttl[purpose].total_seconds() // 60)
        context.update(
            code=secret.code,
            link=link_for(app, purpose, secret.token),
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
        message_id=message_id_for(app.from_address, key=f"{email.id}.mailroom"),
        date=now,
        kind=email.kind,
        app=email.app,
        dkim=app.dkim,
    )


def _retry_later(rt: Runtime, email, claim: Claim, error: str, *, took: float) -> Delivery:
    _, delay_ms = compute_backoff(
        email.attempts - 1,
        factor=int(rt.settings.retry_min_backoff * 1000),
        max_backoff=int(rt.settings.retry_max_backoff * 1000),
    )
    now = rt.clock()
    due = now + timedelta(milliseconds=delay_ms)
    if due > email.deadline:
        reason = Reason.EXPIRED_BEFORE_DELIVERY
        return _dead_letter_now(rt, email, claim, reason, error, took=took)
    with autocommit(rt.engine) as conn:
        claims.schedule_retry(conn, email.id, claim=claim, error=error, next_attempt_at=due)
    outcomes.retrying(
        rt, email, transport=rt.transport.name, duration=took, error=error, retry_in=delay_ms / 1000
    )
    # Lost with Redis, say, the retry is still due in the outbox: the sweeper
    # takes it once it is overdue.
    rt.dispatch.delivery(email.id, delay_ms=delay_ms)
    return Delivery("retrying")


def _dead_letter_now(
    rt: Runtime,
    email,
    claim: Claim,
    reason: Reason,
    error: str,
    *,
    attempted: bool = True,
    took: float | None = None,
) -> Delivery:
    """File the email as dead; ``took``: the send that failed, if one did."""
    with rt.engine.begin() as conn:
        filed = dead_letters.file_email(
            conn, email.id, reason=reason, error=error, now=rt.clock(), claim=claim,
            attempted=attempted,
        )  # fmt: skip
    outcomes.dead_lettered(
        rt,
        filed.email if filed else email,
        reason=reason,
        error=error,
        failed_id=filed.id if filed else None,
        transport=rt.transport.name if took is not None else None,
        duration=took,
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
            now=rt.clock(),
        )
    if filed is None:
        return None
    outcomes.dead_lettered(
        rt, filed.email, reason=Reason.RETRIES_EXHAUSTED, error=error, failed_id=filed.id
    )
    return filed.id
