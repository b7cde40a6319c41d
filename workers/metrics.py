"""What each worker process counts for Prometheus.

Under ``mailroom worker`` and ``mailroom dev`` each process keeps these values
in files that the host's one endpoint sums (``workers.metrics_host``); without
that (unit tests, ``mailroom serve``) they count in memory and nobody serves them.
"""

from prometheus_client import Counter, Gauge, Histogram

_EMAIL = ("app", "kind")

EMAILS_SENT = Counter(
    "mailroom_emails_sent_total", "Emails a transport accepted.", [*_EMAIL, "transport"]
)
EMAILS_DEAD_LETTERED = Counter(
    "mailroom_emails_dead_lettered_total",
    "Emails given up on and filed in failed_emails.",
    [*_EMAIL, "transport", "reason"],
)
EMAILS_SUPPRESSED = Counter(
    "mailroom_emails_suppressed_total",
    "Emails deliberately not sent (rate limit, locked address, superseded code).",
    [*_EMAIL, "reason"],
)
EMAILS_RETRIED = Counter(
    "mailroom_emails_retried_total",
    "Attempts that failed for now and were scheduled again.",
    [*_EMAIL, "transport"],
)
EMAILS_REPORTED = Counter(
    "mailroom_email_feedback_total",
    "Reports on sent mail: bounced, soft_bounced, complained, delivered.",
    [*_EMAIL, "feedback", "source"],
)
ADDRESSES_SUPPRESSED = Counter(
    "mailroom_addresses_suppressed_total",
    "Addresses put on the suppression list, by reason and scope (`*`: every app).",
    ["reason", "scope"],
)
REPORTS_UNMATCHED = Counter(
    "mailroom_feedback_unmatched_total",
    "Reports naming no email mailroom knows (or another recipient than its own).",
    ["source"],
)
CODES_EXPIRED = Counter(
    "mailroom_codes_expired_before_delivery_total",
    "Emails carrying a code or link whose deadline passed before one was sent.",
    list(_EMAIL),
)
OUTCOMES_UNPUBLISHED = Counter(
    "mailroom_outcomes_unpublished_total",
    "Email outcomes Redis did not take onto mailroom:outcomes (the emails table has them).",
    ["status"],
)
EVENTS_ACCEPTED = Counter(
    "mailroom_events_accepted_total", "Events taken in from the stream.", ["app", "type"]
)
EVENTS_DUPLICATE = Counter(
    "mailroom_events_duplicate_total",
    "Events whose id was already taken in (a producer's retry): nothing new was sent.",
    ["type"],
)
EVENTS_REFUSED = Counter(
    "mailroom_events_refused_total", "Events dead-lettered instead of taken in.", ["reason"]
)
SEND_DURATION = Histogram(
    "mailroom_send_duration_seconds",
    "Time a transport took to accept or refuse one email.",
    ["transport", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERY_LATENCY = Histogram(
    "mailroom_delivery_latency_seconds",
    "From the producer's publish (its stream entry) to the transport's acceptance.",
    list(_EMAIL),
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
CIRCUIT_OPEN = Gauge(
    "mailroom_transport_circuit_open",
    "1 while a transport's circuit breaker skips it in some live worker process.",
    ["transport"],
    multiprocess_mode="livemax",
)
WEBHOOK_ATTEMPTS = Counter(
    "mailroom_webhook_attempts_total",
    "Attempts at apps' webhooks, by outcome: sent, retrying, gone (410), dead_lettered.",
    ["app", "outcome"],
)
WEBHOOKS_RELAYED = Counter(
    "mailroom_webhooks_relayed_total",
    "Outcomes taken from mailroom:outcomes and queued for an app's webhook.",
    ["app"],
)
