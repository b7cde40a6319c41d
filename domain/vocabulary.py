"""mailroom's core vocabulary, each word defined once.

Purposes carry one rules table (``RULES``); the statuses and reasons are the
values the database stores and the CLI, API and logs show.  Every enum is a
``StrEnum``, so a member is its own stored string.
"""

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class Purpose(StrEnum):
    """What a challenge (a code and/or a link) proves."""

    SIGNUP = "signup"
    LOGIN = "login"
    EMAIL_CHANGE = "email_change"
    PASSWORD_RESET = "password_reset"  # noqa: S105 (a purpose, not a password)
    INVITE = "invite"


class Subject(StrEnum):
    """What counts as "the same thing asked again": a new challenge supersedes the
    live one with the same subject."""

    #: The address the secret goes to.
    ADDRESS = "address"
    #: The user (one pending change per user).
    USER = "user"
    #: The invitation (``data.invite_id``).
    INVITE = "invite"


class Revokes(StrEnum):
    """What using a challenge revokes of the same user's other live challenges."""

    NOTHING = "nothing"
    SAME_PURPOSE = "same_purpose"
    ALL = "all"


@dataclass(frozen=True)
class PurposeRules:
    #: The mail carries a typed code besides the link.
    has_code: bool
    #: Where the link lands by default, below the app's public base URL (an app or a
    #: setting may move it: ``App.link_paths``).
    link_path: str
    #: How long the code and link stay valid unless settings say otherwise.
    default_ttl: timedelta
    same_subject: Subject
    #: What a successful use revokes.
    revokes_on_use: Revokes = Revokes.NOTHING
    #: The notice a successful use sends to the account's old address, if any.
    notice_on_use: str | None = None


RULES: dict[Purpose, PurposeRules] = {
    Purpose.SIGNUP: PurposeRules(
        has_code=True,
        link_path="/verify-email",
        default_ttl=timedelta(minutes=5),
        same_subject=Subject.ADDRESS,
    ),
    Purpose.LOGIN: PurposeRules(
        has_code=True,
        link_path="/login/verify",
        default_ttl=timedelta(minutes=5),
        same_subject=Subject.ADDRESS,
    ),
    Purpose.EMAIL_CHANGE: PurposeRules(
        has_code=True,
        link_path="/verify-email-change",
        default_ttl=timedelta(minutes=5),
        same_subject=Subject.USER,
        revokes_on_use=Revokes.ALL,
        notice_on_use="email_changed",
    ),
    Purpose.PASSWORD_RESET: PurposeRules(
        has_code=False,
        link_path="/reset-password",
        default_ttl=timedelta(hours=1),
        same_subject=Subject.ADDRESS,
        revokes_on_use=Revokes.SAME_PURPOSE,
    ),
    Purpose.INVITE: PurposeRules(
        has_code=False,
        link_path="/invite/accept",
        default_ttl=timedelta(days=7),
        same_subject=Subject.INVITE,
    ),
}

#: Purposes whose mail carries a typed code besides the link.
CODE_PURPOSES = tuple(p for p in Purpose if RULES[p].has_code)


class EmailStatus(StrEnum):
    """Where an email in the outbox stands (``emails.status``)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


#: Email statuses from which nothing more will happen.
FINAL_STATUSES = (EmailStatus.SENT, EmailStatus.FAILED, EmailStatus.SUPPRESSED)


class Suppressed(StrEnum):
    """Why a mail was deliberately not sent (``emails.suppressed_reason``)."""

    #: Too many wrong codes for this address: it is cooling down.
    LOCKED = "locked"
    #: Too many mails of this kind to this recipient lately.
    RATE_LIMITED = "rate_limited"
    #: A newer request, a revocation or a use came before this mail left.
    SUPERSEDED = "superseded"
    #: Mail to the address bounced: it is suppressed for every app (``mailroom suppression``).
    BOUNCED = "bounced"
    #: Its owner reported this app's mail as spam: suppressed for this app.
    COMPLAINED = "complained"
    #: An admin suppressed the address (``mailroom suppression add``).
    MANUAL = "manual"


class DeadLetterStatus(StrEnum):
    """What became of a dead letter (``failed_emails.status``)."""

    DEAD = "dead"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


class Reason(StrEnum):
    """Why an email or event was dead-lettered (``failed_emails.reason``)."""

    #: The event failed validation; nothing was sent.
    INVALID_EVENT = "invalid_event"
    #: The provider refused the message for good (SMTP 5xx).
    REJECTED = "rejected"
    #: Transient failures outlasted every retry.
    RETRIES_EXHAUSTED = "retries_exhausted"
    #: The code would have expired before it could arrive; not sent.
    EXPIRED_BEFORE_DELIVERY = "expired_before_delivery"
    #: The template failed to render.
    RENDER_ERROR = "render_error"
    #: Every transport is set up wrong (credentials, sender domain, certificate).
    MISCONFIGURED = "misconfigured"
    #: The event's source is not a configured app, and there is no default app.
    UNKNOWN_SOURCE = "unknown_source"


class Verdict(StrEnum):
    """The answers of the verification API; the failures never tell whether an
    account or an address exists."""

    OK = "ok"
    INVALID = "invalid"
    EXPIRED = "expired"
    LOCKED = "locked"
    RATE_LIMITED = "rate_limited"
    #: The challenge's mail bounced or was suppressed: the user never got it.
    UNDELIVERABLE = "undeliverable"


class Feedback(StrEnum):
    """What a provider or a returned report said of mail already handed over
    (``emails.feedback``)."""

    #: It will never arrive (no such mailbox, domain): a hard bounce.
    BOUNCED = "bounced"
    #: It did not arrive this time (mailbox full, greylisted too long, undetermined).
    SOFT_BOUNCED = "soft_bounced"
    #: Its recipient reported it as spam.
    COMPLAINED = "complained"
    #: The receiving server accepted it (SES ``Delivery``, a DSN's ``delivered``).
    DELIVERED = "delivered"
