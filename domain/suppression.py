"""Suppression: which addresses mail must not go to, and for how long.

The policy protects the sending domain's reputation, the way a provider would
judge it: an address whose mail hard-bounced gets nothing from any app for
``bounce_days`` (there is no mailbox to reach); an address whose owner
reported an app's mail as spam gets nothing more from that app until an admin
lifts it, except the mail the owner asked for this minute or must see to keep
the account safe (``SENT_DESPITE_COMPLAINT``); transient bounces count, and
``soft_limit`` of them in a row count as a hard bounce.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.vocabulary import Feedback, Suppressed

#: The scope of a suppression that holds for every app.
ALL_APPS = "*"

#: Kinds still sent to an address that complained about the app: a password
#: reset its owner asks for now, and the notices that tell them their account
#: changed (a hijacker must not be able to silence them by a complaint).
SENT_DESPITE_COMPLAINT = frozenset(
    {"password_reset", "password_changed", "email_changed", "email_change_notice"}
)

#: How far back transient bounces count towards ``soft_limit``.
SOFT_BOUNCE_WINDOW = timedelta(days=30)

#: Feedback that says the mail never reached its recipient.
UNDELIVERED = frozenset({Feedback.BOUNCED, Feedback.SOFT_BOUNCED})
#: Suppression reasons under which a challenge's mail never left.
NOT_SENT = frozenset({Suppressed.BOUNCED, Suppressed.COMPLAINED, Suppressed.MANUAL})


@dataclass(frozen=True)
class Suppression:
    """Mail to an address is not sent, for ``scope`` (an app id, or ``ALL_APPS``),
    until ``expires_at`` (None: until an admin lifts it)."""

    scope: str
    reason: Suppressed
    expires_at: datetime | None


def after_feedback(
    feedback: Feedback,
    *,
    app: str,
    now: datetime,
    bounce_days: int,
    soft_limit: int,
    recent: Sequence[str | None] = (),
) -> Suppression | None:
    """The suppression a report earns, if any.  ``recent``: the feedback of the
    address's latest mails, newest first, this report's mail included."""
    until = now + timedelta(days=bounce_days) if bounce_days else None
    if feedback == Feedback.BOUNCED:
        return Suppression(ALL_APPS, Suppressed.BOUNCED, until)
    if feedback == Feedback.COMPLAINED:
        return Suppression(app, Suppressed.COMPLAINED, None)
    if feedback == Feedback.SOFT_BOUNCED and soft_limit:
        streak = recent[:soft_limit]
        if len(streak) == soft_limit and all(f == Feedback.SOFT_BOUNCED for f in streak):
            return Suppression(ALL_APPS, Suppressed.BOUNCED, until)
    return None


#: Suppression reasons, strongest first: an address suppressed for several
#: reasons at once is suppressed for the first (a complaint does not stop every kind).
PRECEDENCE = (Suppressed.BOUNCED, Suppressed.MANUAL, Suppressed.COMPLAINED)


def blocking(strongest: int | None, *, kind: str) -> Suppressed | None:
    """Why mail of ``kind`` must not go out, given the strongest of the address's
    live suppressions for its app (its place in ``PRECEDENCE``; None: it has
    none), if it must not."""
    if strongest is None:
        return None
    reason = PRECEDENCE[strongest]
    if reason == Suppressed.COMPLAINED and kind in SENT_DESPITE_COMPLAINT:
        return None
    return reason
