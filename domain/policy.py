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
