"""Flow decisions: what a validated event turns into (challenges and emails).

Each event type routes to one planner, a pure function of the event, the time
and the ``FlowPolicy``.  What depends on history (rate limits, locks, a pending
change of another user) is decided by ``gate`` from facts the worker reads.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from domain import suppression
from domain.addresses import address_key, mask_address
from domain.apps import App
from domain.policy import CODE_LENGTH, MAX_CODE_TTL, NOTICE_DELIVERY_WINDOW, RATE_LIMIT_SENDS
from domain.vocabulary import CODE_PURPOSES, RULES, Purpose, Revokes, Suppressed


@dataclass(frozen=True)
class FlowPolicy:
    """The configurable part of the flows (from settings)."""

    ttl: Mapping[Purpose, timedelta] = field(
        default_factory=lambda: {purpose: rules.default_ttl for purpose, rules in RULES.items()}
    )
    code_length: int = CODE_LENGTH
    #: ``notice`` or ``none``: what a reset for an unknown account sends.
    reset_unknown_account: str = "notice"

    def __post_init__(self) -> None:
        for purpose in CODE_PURPOSES:
            if self.ttl[purpose] > MAX_CODE_TTL:
                raise ValueError(f"a {purpose} code may live {MAX_CODE_TTL} at most")


@dataclass(frozen=True)
class ChallengeSpec:
    purpose: Purpose
    email: str
    user_id: str | None = None
    #: For an email change: the address being claimed (where the secret goes).
    new_email: str | None = None
    data: Mapping = field(default_factory=dict)

    @property
    def target(self) -> str:
        """The address the secret is mailed to and verified for."""
        return self.new_email or self.email


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
    """``outcome`` is recorded on the event row; ``emails`` go through ``gate``."""

    outcome: str
    emails: tuple[EmailSpec, ...] = ()
    #: Revoke this user's pending email change (a request for the current address).
    cancel_pending_change_of: str | None = None


@dataclass(frozen=True)
class SendFacts:
    """What the database knows about a recipient when a new mail is planned."""

    recent_sends: int
    address_locked: bool = False
    #: The strongest suppression of the recipient for the app (its place in
    #: ``domain.suppression.PRECEDENCE``), if any.
    suppressed_for: int | None = None


def gate(spec: EmailSpec, facts: SendFacts) -> Suppressed | None:
    """None to send; otherwise why the mail is suppressed (recorded, not an error)."""
    if (suppressed := suppression.blocking(facts.suppressed_for, kind=spec.kind)) is not None:
        return suppressed
    if spec.challenge is not None and facts.address_locked:
        return Suppressed.LOCKED
    if facts.recent_sends >= RATE_LIMIT_SENDS:
        return Suppressed.RATE_LIMITED
    return None


def _locale(data) -> str:
    # Empty: the event names none, and the app's default locale applies.
    return data.locale or ""


def _secret_mail(event, now, policy, challenge, context) -> EmailSpec:
    """The mail carrying a challenge's secret: its kind is the purpose's name and it
    goes to the address the secret is bound to (delivery relies on both)."""
    ttl = policy.ttl[challenge.purpose]
    return EmailSpec(
        kind=challenge.purpose.value,
        recipient=challenge.target,
        locale=_locale(event.data),
        # A secret that cannot arrive within its own lifetime is useless to a
        # user waiting for it: past this, it is dead-lettered, not sent.
        deadline=now + min(ttl, NOTICE_DELIVERY_WINDOW),
        context={"name": event.data.name, **context},
        challenge=challenge,
    )


def _notice_spec(kind, recipient, *, locale: str, name: str | None, now, context=None) -> EmailSpec:
    """A security notice: no secret, a day to arrive."""
    return EmailSpec(
        kind=kind,
        recipient=recipient,
        locale=locale,
        deadline=now + NOTICE_DELIVERY_WINDOW,
        context={"name": name, **(context or {})},
    )


def _notice(event, now, kind, recipient, context=None) -> EmailSpec:
    data = event.data
    return _notice_spec(
        kind, recipient, locale=_locale(data), name=getattr(data, "name", None), now=now,
        context=context,
    )  # fmt: skip


def plan_signup(event, now, policy) -> Plan:
    data = event.data
    challenge = ChallengeSpec(purpose=Purpose.SIGNUP, email=data.email, user_id=data.user_id)
    return Plan("queued", (_secret_mail(event, now, policy, challenge, {}),))


def plan_login(event, now, policy) -> Plan:
    data = event.data
    challenge = ChallengeSpec(purpose=Purpose.LOGIN, email=data.email, user_id=data.user_id)
    return Plan("queued", (_secret_mail(event, now, policy, challenge, {}),))


def same_address(a: str, b: str) -> bool:
    return address_key(a) == address_key(b)


def plan_email_change(event, now, policy) -> Plan:
    data = event.data
    if same_address(data.new_email, data.current_email):
        return Plan("cancelled", cancel_pending_change_of=data.user_id)
    challenge = ChallengeSpec(
        purpose=Purpose.EMAIL_CHANGE,
        email=data.current_email,
        new_email=data.new_email,
        user_id=data.user_id,
    )
    masked = {"new_email_masked": mask_address(data.new_email)}
    return Plan(
        "queued",
        (
            _secret_mail(event, now, policy, challenge, {}),
            _notice(event, now, "email_change_notice", data.current_email, masked),
        ),
    )


def plan_password_reset(event, now, policy) -> Plan:
    data = event.data
    if not data.account_exists:
        if policy.reset_unknown_account == "none":
            return Plan("unknown_account")
        notice = _notice(event, now, "password_reset_unknown", data.email)
        return Plan("unknown_account", (notice,))
    challenge = ChallengeSpec(
        purpose=Purpose.PASSWORD_RESET, email=data.email, user_id=data.user_id
    )
    return Plan("queued", (_secret_mail(event, now, policy, challenge, {}),))


def plan_invite(event, now, policy) -> Plan:
    data = event.data
    invite = {
        "invite_id": data.invite_id,
        "workspace_id": data.workspace_id,
        "workspace_name": data.workspace_name,
        "role": data.role,
        "inviter_name": data.inviter_name,
        "existing_user": data.existing_user,
    }
    challenge = ChallengeSpec(purpose=Purpose.INVITE, email=data.email, data=invite)
    context = {key: invite[key] for key in ("inviter_name", "workspace_name", "role")}
    context["existing_user"] = data.existing_user
    return Plan("queued", (_secret_mail(event, now, policy, challenge, context),))


def plan_password_changed(event, now, policy) -> Plan:
    return Plan("queued", (_notice(event, now, "password_changed", event.data.email),))


def plan_email_changed(event, now, policy) -> Plan:
    data = event.data
    masked = {"new_email_masked": mask_address(data.new_email)}
    return Plan("queued", (_notice(event, now, "email_changed", data.old_email, masked),))


PLANNERS: dict[str, Callable[..., Plan]] = {
    "user.signup_requested": plan_signup,
    "login.code_requested": plan_login,
    "email.change_requested": plan_email_change,
    "password.reset_requested": plan_password_reset,
    "invite.created": plan_invite,
    "password.changed": plan_password_changed,
    "email.changed": plan_email_changed,
}


def plan_event(event, now: datetime, policy: FlowPolicy | None = None) -> Plan:
    return PLANNERS[event.type](event, now, policy or FlowPolicy())


@dataclass(frozen=True)
class UsedChallenge:
    """A challenge just used up, as the verification use case read it back."""

    purpose: Purpose
    email: str
    new_email: str | None = None
    #: The name and locale of the mail that carried the secret, if it is still known.
    user_name: str | None = None
    locale: str = "en"


@dataclass(frozen=True)
class AfterUse:
    """What a successful verification sets off, for the caller to carry out."""

    #: Which of the same user's other live challenges to revoke.
    revoke: Revokes
    #: Notices to queue.
    notices: tuple[EmailSpec, ...] = ()


def after_use(used: UsedChallenge, now: datetime) -> AfterUse:
    rules = RULES[used.purpose]
    notices = ()
    if rules.notice_on_use is not None and used.new_email is not None:
        masked = {"new_email_masked": mask_address(used.new_email)}
        notices = (
            _notice_spec(rules.notice_on_use, used.email, locale=used.locale, name=used.user_name,
                   now=now, context=masked),
        )  # fmt: skip
    return AfterUse(revoke=rules.revokes_on_use, notices=notices)


def link_for(app: App, purpose: Purpose, token: str) -> str:
    """The link a mail carries, built only from the app's configuration (its base URL
    and its path for the purpose), never from anything in the event.  Real mail and
    previews both build theirs here."""
    path = app.link_paths[purpose]
    separator = "&" if "?" in path else "?"
    return f"{app.base_url.rstrip('/')}{path}{separator}{urlencode({'token': token})}"
