"""One canonical log line, one count and one stream record per email outcome.

Every line about an email's fate carries the same fields, so an operator can
follow one email (``email_id``), one event (``event_id``) or one recipient
(``to_tag``: a short keyed hash of the address, never the address) through
the logs: ``email.sent``, ``email.retrying``, ``email.dead_lettered`` and
``email.suppressed``.  The apps follow the same outcomes on the stream
``mailroom:outcomes`` (``workers.outcome_stream``), appended once the outcome
is committed.
"""

import uuid
from datetime import datetime

from domain.addresses import mask_address, recipient_tag
from domain.fates import REPORTED, Fate, record
from domain.feedback import Report
from domain.suppression import Suppression
from domain.vocabulary import Feedback, Reason
from workers import metrics
from workers.logs import get_logger
from workers.runtime import Runtime
from workers.store import event_views

log = get_logger("mailroom.pipeline")


def _fields(rt: Runtime, email) -> dict:
    return {
        "event_id": str(email.event_id) if email.event_id else None,
        "email_id": str(email.id),
        "app": email.app,
        "kind": email.kind,
        "to": mask_address(email.recipient),
        "to_tag": recipient_tag(rt.peppers[rt.key_id], email.recipient),
        "attempt": email.attempts,
    }


def _publish(
    rt: Runtime,
    email,
    status: Fate,
    *,
    reason: str | None = None,
    transport: str | None = None,
    at: datetime | None = None,
) -> None:
    if rt.outcome_stream is None:  # MAILROOM_OUTCOMES_MAXLEN=0
        return
    rt.outcome_stream.append(
        record(
            event_id=email.event_id,
            email_id=email.id,
            app=email.app,
            kind=email.kind,
            status=status,
            reason=reason,
            transport=transport,
            attempt=email.attempts,
            at=at or rt.clock(),
        )
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def sent(
    rt: Runtime,
    email,
    *,
    transport: str,
    duration: float,
    message_id: str,
    provider_id: str | None,
    destination: str | None,
    now: datetime,
) -> None:
    metrics.EMAILS_SENT.labels(email.app, email.kind, transport).inc()
    metrics.SEND_DURATION.labels(transport, "sent").observe(duration)
    asked = email.requested_at or email.created_at
    latency = max(0.0, (now - asked).total_seconds())
    metrics.DELIVERY_LATENCY.labels(email.app, email.kind).observe(latency)
    log.info(
        "email.sent",
        **_fields(rt, email),
        outcome="sent",
        transport=transport,
        duration_ms=_ms(duration),
        latency_ms=_ms(latency),
        message_id=message_id,
        provider_id=provider_id,
        destination=destination,
    )
    _publish(rt, email, Fate.SENT, transport=transport, at=now)


def retrying(
    rt: Runtime, email, *, transport: str, duration: float, error: str, retry_in: float
) -> None:
    metrics.EMAILS_RETRIED.labels(email.app, email.kind, transport).inc()
    metrics.SEND_DURATION.labels(transport, "failed").observe(duration)
    log.warning(
        "email.retrying",
        **_fields(rt, email),
        outcome="retrying",
        transport=transport,
        duration_ms=_ms(duration),
        error=error,
        retry_in_seconds=round(retry_in, 1),
    )
    _publish(rt, email, Fate.DEFERRED, transport=transport)


def dead_lettered(
    rt: Runtime,
    email,
    *,
    reason: Reason,
    error: str,
    failed_id: int | None,
    transport: str | None = None,
    duration: float | None = None,
) -> None:
    metrics.EMAILS_DEAD_LETTERED.labels(email.app, email.kind, transport or "", reason).inc()
    if duration is not None:
        metrics.SEND_DURATION.labels(transport or "", "refused").observe(duration)
    if reason == Reason.EXPIRED_BEFORE_DELIVERY and email.challenge_id is not None:
        metrics.CODES_EXPIRED.labels(email.app, email.kind).inc()
    log.error(
        "email.dead_lettered",
        **_fields(rt, email),
        outcome="dead_lettered",
        reason=reason,
        transport=transport,
        duration_ms=_ms(duration),
        error=error,
        failed_id=failed_id,
    )
    if failed_id is not None:  # else another process held it: that one tells its fate
        _publish(rt, email, Fate.DEAD_LETTERED, reason=reason, transport=transport)


def suppressed(rt: Runtime, email, *, reason: str) -> None:
    metrics.EMAILS_SUPPRESSED.labels(email.app, email.kind, reason).inc()
    log.info("email.suppressed", **_fields(rt, email), outcome="suppressed", reason=reason)
    _publish(rt, email, Fate.SUPPRESSED, reason=reason)


def suppressed_at_intake(rt: Runtime, event_ids: list[uuid.UUID]) -> None:
    """Tell the apps of the mail the gate suppressed as these events were taken
    in (intake counts and logs it with its event), once that is committed.

    Never raises: the intake is done, and its rows are the truth.
    """
    if not event_ids or rt.outcome_stream is None:
        return
    try:
        with rt.engine.connect() as conn:
            emails = event_views.suppressed_at_intake(conn, event_ids)
    except Exception as exc:  # the database went away since the commit, say
        log.warning("outcome.unpublished", event_ids=[str(i) for i in event_ids], error=str(exc))
        metrics.OUTCOMES_UNPUBLISHED.labels(Fate.SUPPRESSED).inc(len(event_ids))
        return
    for email in emails:
        _publish(rt, email, Fate.SUPPRESSED, reason=email.suppressed_reason, at=email.created_at)


def reported(rt: Runtime, email, report: Report, suppression: Suppression | None) -> None:
    """A provider or a returned report said what became of a sent email:
    ``email.bounced``, ``email.soft_bounced``, ``email.complained`` or
    ``email.delivered``, and the suppression it earned."""
    metrics.EMAILS_REPORTED.labels(email.app, email.kind, report.feedback, report.source).inc()
    level = log.info if report.feedback == Feedback.DELIVERED else log.warning
    level(
        f"email.{report.feedback}",
        **_fields(rt, email),
        outcome=str(report.feedback),
        reason=report.reason,
        source=str(report.source),
        detail=report.detail,
        provider_id=email.provider_id,
        suppressed=f"{suppression.reason}:{suppression.scope}" if suppression else None,
    )
    if suppression is not None:
        metrics.ADDRESSES_SUPPRESSED.labels(suppression.reason, suppression.scope).inc()
    _publish(
        rt,
        email,
        REPORTED[report.feedback],
        reason=report.reason,
        transport=email.transport,
        at=report.at,
    )
