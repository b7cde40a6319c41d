"""What an admin's replay of a dead letter may send without being told to
(``--force``): the rules, as pure functions of a dead letter's facts.

A replay sends a fresh code or link with a new delivery window, so it would
happily mail a sign-up code to someone who asked for it yesterday.  The age
limits keep a replay to requests the user is plausibly still waiting for.
"""

from dataclasses import dataclass
from datetime import timedelta

from domain.flows import FlowPolicy
from domain.policy import NOTICE_DELIVERY_WINDOW
from domain.vocabulary import Purpose, Reason

#: Kinds whose mail answers a user waiting at a screen: a code or a short-lived
#: link.  Everything else (invitations, security notices) keeps for a day.
TIME_BOUND_KINDS = frozenset(
    {Purpose.SIGNUP, Purpose.LOGIN, Purpose.EMAIL_CHANGE, Purpose.PASSWORD_RESET}
)

#: The kind of mail an event type asks for, for the dead letters of events
#: that never became mail (an email change also sends a notice: the code decides).
EVENT_KINDS = {
    "user.signup_requested": Purpose.SIGNUP,
    "login.code_requested": Purpose.LOGIN,
    "email.change_requested": Purpose.EMAIL_CHANGE,
    "password.reset_requested": Purpose.PASSWORD_RESET,
    "invite.created": Purpose.INVITE,
    "password.changed": "password_changed",
    "email.changed": "email_changed",
}


class Skip:
    """Why a replay leaves a dead letter alone (unless forced)."""

    TOO_OLD = "too_old"
    REJECTED = "rejected"
    LOCKED = "locked"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class ReplayLimits:
    """How old a request may be for its mail to be replayed without ``--force``."""

    codes: timedelta = timedelta(hours=1)
    notices: timedelta = timedelta(hours=24)

    def max_age(self, kind: str | None) -> timedelta:
        # Unknown kind (an event that could not be read): the stricter limit.
        if kind is None or kind in TIME_BOUND_KINDS:
            return self.codes
        return self.notices


def delivery_window(kind: str, policy: FlowPolicy) -> timedelta:
    """How long a replayed mail has to arrive, counted from its replay: as long
    as a fresh request's (``domain.flows``), not what was left of the old one's
    (a request taken in late, after an outage, had only minutes left)."""
    if kind in {purpose.value for purpose in Purpose}:
        return min(policy.ttl[Purpose(kind)], NOTICE_DELIVERY_WINDOW)
    return NOTICE_DELIVERY_WINDOW


def kind_of(kind: str | None, event_type: str | None) -> str | None:
    """The kind of mail a dead letter stands for, when it can be told."""
    if kind:
        return kind
    found = EVENT_KINDS.get(event_type or "")
    return str(found) if found else None


def skip_reason(
    *,
    kind: str | None,
    reason: str,
    age: timedelta,
    limits: ReplayLimits,
    gate_says: str | None = None,
) -> str | None:
    """None to replay; otherwise the first rule the dead letter breaks.

    ``gate_says``: what the send gate would decide now (rate limit, locked
    address), as ``domain.flows.gate`` returns it.
    """
    if reason == Reason.REJECTED:
        return Skip.REJECTED  # the address said no: sending again will bounce again
    if age > limits.max_age(kind):
        return Skip.TOO_OLD
    if gate_says is not None:
        return str(gate_says)
    return None


#: Age buckets of ``failed summary``: (label, upper bound).
AGE_BUCKETS = (
    ("<1h", timedelta(hours=1)),
    ("1h-24h", timedelta(hours=24)),
    ("1d-7d", timedelta(days=7)),
    (">7d", None),
)


def age_bucket(age: timedelta) -> str:
    for label, bound in AGE_BUCKETS:
        if bound is None or age < bound:
            return label
    raise AssertionError("unreachable")


def short_age(age: timedelta) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h``: an age a person reads at a glance."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
