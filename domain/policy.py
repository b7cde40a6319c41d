"""Numbers mailroom lives by, in one place so the flows, the docs and the tests agree."""

from datetime import timedelta

#: Largest accepted event, in bytes of UTF-8 JSON.
MAX_EVENT_BYTES = 16 * 1024

#: Largest raw payload kept on a dead letter, in characters; the rest is cut.
MAX_DEAD_LETTER_PAYLOAD = 64 * 1024

#: Digits in a verification code.
CODE_LENGTH = 6

#: Bytes of randomness in a link token (256 bits).
LINK_TOKEN_BYTES = 32

#: Longest a typed code may live, whatever the settings say.
MAX_CODE_TTL = timedelta(minutes=10)

#: Wrong codes a challenge takes before it is locked.
MAX_ATTEMPTS = 5

#: Wrong codes in a row for one address, across challenges, before it must cool down.
MAX_CONSECUTIVE_FAILURES = 10

#: How long an address that hit MAX_CONSECUTIVE_FAILURES is refused.
ADDRESS_COOLDOWN = timedelta(hours=1)

#: Mails of one kind to one recipient per RATE_LIMIT_WINDOW; more are suppressed.
RATE_LIMIT_SENDS = 3

#: The sliding window of RATE_LIMIT_SENDS.
RATE_LIMIT_WINDOW = timedelta(minutes=15)

#: How long after an event a security notice is still worth sending.
NOTICE_DELIVERY_WINDOW = timedelta(hours=24)

#: In-process retry delays for a transient send failure, in seconds (tenacity).
QUICK_RETRY_DELAYS = (1, 2, 4)

#: A delivery claim lasts this long; a worker killed mid-send frees it when it lapses.
#: Longer than any one delivery can take (QUICK_RETRY_BUDGET plus a last attempt
#: of at most two transports' timeouts).
SEND_LEASE = timedelta(minutes=5)

#: Seconds after which no further quick retry starts.
QUICK_RETRY_BUDGET = 60

#: A queued email not picked up for this long is enqueued again by the sweeper.
STALE_QUEUED_AFTER = timedelta(minutes=2)

#: Transient failures in a row after which a transport's circuit opens.
BREAKER_FAILURES = 3

#: How long an open circuit skips its transport before one trial send.
BREAKER_RESET = timedelta(seconds=30)

#: An SMTP connection idle this long is checked with NOOP before it is reused.
SMTP_IDLE_CHECK = timedelta(seconds=30)

#: Where each purpose's link lands, below the public base URL.
LINK_PATHS = {
    "signup": "/verify-email",
    "login": "/login/verify",
    "email_change": "/verify-email-change",
    "password_reset": "/reset-password",
    "invite": "/invite/accept",
}


class Reason:
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

    ALL = (
        INVALID_EVENT,
        REJECTED,
        RETRIES_EXHAUSTED,
        EXPIRED_BEFORE_DELIVERY,
        RENDER_ERROR,
        MISCONFIGURED,
        UNKNOWN_SOURCE,
    )
