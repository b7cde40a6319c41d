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

#: How long a signup code and link stay valid once mailed.
SIGNUP_TTL = timedelta(minutes=5)

#: How long after an event a security notice is still worth sending.
NOTICE_DELIVERY_WINDOW = timedelta(hours=24)

#: In-process retry delays for a transient send failure, in seconds (tenacity).
QUICK_RETRY_DELAYS = (1, 2, 4)

#: A delivery claim lasts this long; a worker killed mid-send frees it when it lapses.
SEND_LEASE = timedelta(minutes=2)

#: A queued email not picked up for this long is enqueued again by the sweeper.
STALE_QUEUED_AFTER = timedelta(minutes=2)

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

    ALL = (INVALID_EVENT, REJECTED, RETRIES_EXHAUSTED, EXPIRED_BEFORE_DELIVERY, RENDER_ERROR)
