"""Use case: take in what a provider or a returned report says of sent mail.

Whatever reported it (``workers.api_ses``, ``mailroom bounces``), a report is
recorded on its email once (a report delivered twice changes nothing), earns
the suppression the policy says (``domain.suppression``), and is told to the
apps on the outcome stream.
"""

from dataclasses import dataclass

from domain.addresses import lookup_key
from domain.feedback import Report
from domain.suppression import SOFT_BOUNCE_WINDOW, Suppression, after_feedback
from domain.vocabulary import Feedback
from workers import metrics, outcomes
from workers.logs import get_logger
from workers.runtime import Runtime
from workers.store import outbox, suppressions

log = get_logger("mailroom.feedback")


@dataclass(frozen=True)
class Recorded:
    email_id: str
    #: False: this was already known of the email (the report came twice).
    fresh: bool
    suppression: Suppression | None


def record(rt: Runtime, report: Report) -> Recorded | None:
    """Record ``report``; None when it names no email of ours (logged and counted)."""
    now = rt.clock()
    settings = rt.settings
    suppression = None
    with rt.engine.begin() as conn:
        email = _email_of(conn, report)
        if email is None:
            return None
        fresh = suppressions.note_feedback(conn, email.id, report.feedback, report.detail, now)
        if fresh:
            recent = ()
            if report.feedback == Feedback.SOFT_BOUNCED and settings.soft_bounce_limit:
                since = now - SOFT_BOUNCE_WINDOW
                recent = suppressions.recent_feedback(
                    conn, email.recipient_key, since, settings.soft_bounce_limit
                )
            suppression = after_feedback(
                report.feedback,
                app=email.app,
                now=now,
                bounce_days=settings.suppress_bounced_days,
                soft_limit=settings.soft_bounce_limit,
                recent=recent,
            )
            if suppression is not None:
                suppressions.put(
                    conn,
                    email.recipient_key,
                    suppression,
                    source=report.source,
                    detail=report.detail,
                    email_id=email.id,
                    now=now,
                )
    if fresh:
        outcomes.reported(rt, email, report, suppression)
    else:
        log.info(
            "feedback.repeated", email_id=str(email.id), feedback=str(report.feedback),
            source=str(report.source),
        )  # fmt: skip
    return Recorded(str(email.id), fresh, suppression)


def _key(address: str) -> str | None:
    try:
        return lookup_key(address)
    except ValueError:
        return None


def _email_of(conn, report: Report):
    email = None
    if report.email_id is not None:
        email = outbox.get(conn, report.email_id)
    elif report.provider_id:
        email = outbox.get_by_provider_id(conn, report.provider_id)
    if email is not None and email.sent_at is None:
        email = None  # only mail handed over can bounce: a report of another is forged
    if email is not None and report.recipient and _key(report.recipient) != email.recipient_key:
        email = None
    if email is None:
        metrics.REPORTS_UNMATCHED.labels(report.source).inc()
        log.warning(
            "feedback.unmatched",
            source=str(report.source),
            feedback=str(report.feedback),
            email_id=str(report.email_id) if report.email_id else None,
            provider_id=report.provider_id,
        )
    return email
