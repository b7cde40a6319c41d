"""The two use cases behind the actors: accept an event, deliver an email.

Both take the wired ``Runtime`` and plain values, so they run the same under
Dramatiq, in tests and from the CLI.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

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
from domain.errors import (
    InvalidEvent,
    PermanentError,
    RenderError,
    TransientError,
    TransportConfigError,
)
from domain.events import parse_event, redact
from domain.flows import CODE_PURPOSES, gate, link_for, plan_event
from domain.messages import build_message, message_id_for
from domain.policy import QUICK_RETRY_BUDGET, QUICK_RETRY_DELAYS, SEND_LEASE, Reason
from workers import store
from workers.logs import get_logger
from workers.models import Email

log = get_logger("mailroom.pipeline")


def accept_event(rt, raw: str, *, rejected: str | None = None) -> None:
    """Validate, deduplicate, plan and persist one event; then queue its mail.

    ``rejected`` is set by the ingress bridge when the entry could not even be
    read as text; such an event is dead-lettered like any invalid one.
    """
    now = rt.clock()
    try:
        if rejected:
            raise InvalidEvent(rejected)
        event = parse_event(raw)
    except InvalidEvent as exc:
        _refuse_event(rt, raw, Reason.INVALID_EVENT, str(exc), now)
        return
    if rt.apps.for_source(event.source) is None:
        error = f"source {event.source!r} is not a configured app and no default app is set"
        _refuse_event(rt, raw, Reason.UNKNOWN_SOURCE, error, now, event)
        return

    plan = plan_event(event, now, rt.policy)
    with rt.sessions.begin() as session:
        if not store.record_event(session, event, plan.outcome, now):
            log.info("event.duplicate", event_id=str(event.id), type=event.type)
            return
        outcome, queued, suppressed = _apply_plan(session, event, plan, now)
        if outcome != plan.outcome:
            store.set_outcome(session, event.id, outcome)
    # After commit: a crash before these sends is recovered by the sweeper.
    for email_id in queued:
        rt.enqueue_delivery(email_id)
    log.info(
        "event.accepted",
        event_id=str(event.id),
        type=event.type,
        source=event.source,
        outcome=outcome,
        emails=len(queued),
        suppressed=suppressed or None,
    )


def _refuse_event(rt, raw: str, reason: str, error: str, now, event=None) -> None:
    """Dead-letter an event at once (never retried), keeping its raw content."""
    with rt.sessions.begin() as session:
        failed_id = store.dead_letter_event(
            session,
            redact(raw),
            reason=reason,
            error=error,
            now=now,
            event_id=event.id if event else None,
            event_type=event.type if event else None,
        )
    log.warning("event.refused", reason=reason, error=error, failed_id=failed_id)


def _apply_plan(session, event, plan, now) -> tuple[str, list[uuid.UUID], list[str]]:
    """Persist a plan: challenges opened, mail queued or suppressed by the gate."""
    app = event.source
    if plan.cancel_pending_change_of:
        store.revoke_user_challenges(
            session, app, plan.cancel_pending_change_of, "email_change", now
        )
    queued, suppressed = [], []
    for spec in plan.emails:
        store.serialize_recipient(session, app, spec.recipient)
        reason = gate(spec, store.send_facts(session, app, spec, now))
        if reason is not None:
            store.add_email(session, event.id, app, spec, now, suppressed_reason=reason)
            suppressed.append(f"{spec.kind}:{reason}")
            continue
        challenge_id = None
        if spec.challenge is not None:
            challenge_id = store.open_challenge(session, app, event.id, spec.challenge, now)
            if challenge_id is None:
                # Another user's live change holds the address: nothing is sent.
                return "refused:address_claimed", [], suppressed
        queued.append(store.add_email(session, event.id, app, spec, now, challenge_id=challenge_id))
    if suppressed and not queued:
        return f"suppressed:{suppressed[0].partition(':')[2]}", [], suppressed
    return plan.outcome, queued, suppressed


@dataclass(frozen=True)
class Delivery:
    """How a delivery attempt ended; ``retry_after_ms`` asks the broker to try again."""

    status: str
    retry_after_ms: int | None = None


def deliver_email(rt, email_id: uuid.UUID, *, retries: int = 0) -> Delivery:
    now = rt.clock()
    with rt.sessions.begin() as session:
        claimed = store.claim_email(session, email_id, now, SEND_LEASE)
        if claimed is None:
            log.info("email.skipped", email_id=str(email_id), why="already done or in flight")
            return Delivery("skipped")
        email = claimed.email
        if now > email.deadline:
            return _dead_letter(
                rt,
                session,
                email,
                Reason.EXPIRED_BEFORE_DELIVERY,
                email.last_error or "the deadline passed before the first attempt",
                attempts=0,
            )
        app = rt.apps.for_source(email.app)
        if app is None:
            return _dead_letter(
                rt,
                session,
                email,
                Reason.UNKNOWN_SOURCE,
                f"source {email.app!r} is no longer a configured app",
                attempts=0,
            )
        secret = _issue_secret(rt, session, claimed)
        if claimed.challenge is not None and secret is None:
            # A newer request, a revocation or a use came first: its code is moot.
            store.suppress_email(session, email.id, "superseded")
            log.info("email.suppressed", email_id=str(email.id), kind=email.kind, why="superseded")
            return Delivery("suppressed")

    try:
        message = _compose(rt, app, email, claimed.challenge, secret, now)
    except RenderError as exc:
        return _dead_letter_now(rt, email, Reason.RENDER_ERROR, str(exc), attempts=0)
    except Exception as exc:  # a broken override or catalog, say: rendering again won't help
        error = f"{type(exc).__name__}: {exc}"
        return _dead_letter_now(rt, email, Reason.RENDER_ERROR, error, attempts=0)

    sender = app.from_address
    attempts = 0

    def send_once():
        nonlocal attempts
        attempts += 1
        return rt.transport.send(message, sender=sender, recipient=email.recipient)

    try:
        receipt = _quick_retries()(send_once)
    except TransportConfigError as exc:
        return _dead_letter_now(rt, email, Reason.MISCONFIGURED, str(exc), attempts=attempts)
    except PermanentError as exc:
        return _dead_letter_now(rt, email, Reason.REJECTED, str(exc), attempts=attempts)
    except TransientError as exc:
        return _retry_later(rt, email, str(exc), attempts=attempts, retries=retries)
    except BaseException:
        with rt.sessions.begin() as session:
            store.release_claim(session, email.id, email.lease_until, rt.clock())
        raise

    sent_at = rt.clock()
    with rt.sessions.begin() as session:
        recorded = store.mark_sent(
            session,
            email.id,
            claim=email.lease_until,
            now=sent_at,
            attempts=attempts,
            message_id=message["Message-ID"],
            provider_id=receipt.provider_id,
            transport=receipt.transport or rt.transport.name,
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
        transport=receipt.transport or rt.transport.name,
        attempts=email.attempts + attempts,
        destination=receipt.destination,
    )
    return Delivery("sent")


def _quick_retries() -> Retrying:
    return Retrying(
        retry=retry_if_exception_type(TransientError),
        wait=wait_exponential(multiplier=QUICK_RETRY_DELAYS[0], max=QUICK_RETRY_DELAYS[-1]),
        # Well inside the claim (SEND_LEASE), so no other worker sends meanwhile.
        stop=stop_after_attempt(len(QUICK_RETRY_DELAYS) + 1) | stop_after_delay(QUICK_RETRY_BUDGET),
        reraise=True,
    )


def _issue_secret(rt, session, claimed) -> tokens.Secret | None:
    """A fresh secret for this send; its digests replace the previous ones.

    None when the mail has no challenge, or its challenge is no longer live.
    """
    challenge = claimed.challenge
    if challenge is None:
        return None
    secret = tokens.new_secret(
        with_code=challenge.purpose in CODE_PURPOSES, code_length=rt.policy.code_length
    )
    pepper = rt.peppers[rt.key_id]
    code_hash = None
    if secret.code is not None:
        code_hash = tokens.code_digest(
            pepper,
            key_id=rt.key_id,
            app=challenge.app,
            purpose=challenge.purpose,
            challenge_id=str(challenge.id),
            email=address_key(challenge.new_email or challenge.email),
            code=secret.code,
        )
    live = store.store_secret_digests(
        session,
        challenge.id,
        code_hash=code_hash,
        token_hash=tokens.token_digest(pepper, key_id=rt.key_id, token=secret.token),
        key_id=rt.key_id,
        ttl_seconds=rt.policy.ttl[challenge.purpose].total_seconds(),
    )
    return secret if live else None


def _compose(rt, app, email, challenge, secret: tokens.Secret | None, now: datetime):
    context = {**dict(email.context), **app.branding(email.app)}
    if secret is not None:
        purpose = challenge.purpose
        minutes = int(rt.policy.ttl[purpose].total_seconds() // 60)
        context.update(
            code=secret.code,
            link=link_for(app.base_url, purpose, secret.token),
            ttl_minutes=minutes,
            ttl_days=minutes // 1440,
        )
    rendered = rt.renderer.render(email.kind, email.locale, context, app=app)
    sender = app.from_address
    return build_message(
        sender=sender,
        sender_name=app.from_name or app.product(email.app),
        recipient=email.recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id_for(sender),
        date=now,
    )


def _retry_later(rt, email, error: str, *, attempts: int, retries: int) -> Delivery:
    settings = rt.settings
    _, delay_ms = compute_backoff(
        retries,
        factor=int(settings.retry_min_backoff * 1000),
        max_backoff=int(settings.retry_max_backoff * 1000),
    )
    now = rt.clock()
    due = now.timestamp() + delay_ms / 1000
    if due > email.deadline.timestamp():
        return _dead_letter_now(rt, email, Reason.EXPIRED_BEFORE_DELIVERY, error, attempts=attempts)
    with rt.sessions.begin() as session:
        store.schedule_retry(
            session,
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


def _dead_letter_now(rt, email, reason: str, error: str, *, attempts: int) -> Delivery:
    with rt.sessions.begin() as session:
        return _dead_letter(rt, session, email, reason, error, attempts=attempts)


def _dead_letter(rt, session, email, reason: str, error: str, *, attempts: int) -> Delivery:
    failed_id = store.dead_letter_email(
        session,
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
        failed_id=failed_id,
    )
    return Delivery("failed")


def dead_letter_exhausted(rt, email_id: uuid.UUID, error: str) -> None:
    """Broker retries ran out (seen by the dead-letter middleware).

    The email's own last error (the SMTP reply, say) says more than the broker's.
    """
    with rt.sessions.begin() as session:
        email = session.get(Email, email_id)
        error = (email.last_error if email else None) or error
        failed_id = store.dead_letter_email(
            session,
            email_id,
            reason=Reason.RETRIES_EXHAUSTED,
            error=error,
            attempts=0,
            now=rt.clock(),
        )
    if failed_id is not None:
        log.error(
            "email.dead_lettered",
            email_id=str(email_id),
            reason=Reason.RETRIES_EXHAUSTED,
            error=error,
            failed_id=failed_id,
        )
