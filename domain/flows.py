"""Flow decisions: what a validated event turns into (challenges and emails).

Each event type routes to one planner.  A planner is a pure function of the event
and the current time; the worker persists what it returns in one transaction.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from domain.policy import LINK_PATHS, SIGNUP_TTL

#: The locale used when an event names none.
DEFAULT_LOCALE = "en"

#: How long each purpose's secret stays valid once mailed.
SECRET_TTL: dict[str, timedelta] = {"signup": SIGNUP_TTL}

#: Purposes whose mail carries a typed code besides the link.
CODE_PURPOSES = frozenset({"signup", "login", "email_change"})


@dataclass(frozen=True)
class ChallengeSpec:
    purpose: str
    email: str
    user_id: str | None = None
    new_email: str | None = None
    data: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class EmailSpec:
    kind: str
    recipient: str
    locale: str
    deadline: datetime
    context: Mapping
    challenge: ChallengeSpec | None = None


@dataclass(frozen=True)
class Plan:
    """``outcome`` is recorded on the event row; ``emails`` are queued for delivery."""

    outcome: str
    emails: tuple[EmailSpec, ...] = ()


def plan_signup(event, now: datetime) -> Plan:
    data = event.data
    challenge = ChallengeSpec(purpose="signup", email=data.email, user_id=data.user_id)
    email = EmailSpec(
        kind="signup",
        recipient=data.email,
        locale=data.locale or DEFAULT_LOCALE,
        # A code that cannot arrive within its own lifetime is useless to a
        # user watching the form: past this, it is dead-lettered, not sent.
        deadline=now + SECRET_TTL["signup"],
        context={"name": data.name, "app": event.source},
        challenge=challenge,
    )
    return Plan(outcome="queued", emails=(email,))


def plan_pending(event, now: datetime) -> Plan:
    """Validated and recorded; the flow that mails it lands with the auth-flows work."""
    return Plan(outcome="no_flow")


PLANNERS: dict[str, Callable[..., Plan]] = {
    "user.signup_requested": plan_signup,
    "login.code_requested": plan_pending,
    "email.change_requested": plan_pending,
    "password.reset_requested": plan_pending,
    "invite.created": plan_pending,
}


def plan_event(event, now: datetime) -> Plan:
    return PLANNERS[event.type](event, now)


def secret_ttl(purpose: str) -> timedelta:
    return SECRET_TTL[purpose]


def link_for(base_url: str, purpose: str, token: str) -> str:
    """The link is built only from configuration, never from anything in the event."""
    return f"{base_url.rstrip('/')}{LINK_PATHS[purpose]}?{urlencode({'token': token})}"
