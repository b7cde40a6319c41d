"""Settings of what comes back after sending: bounces, complaints, suppression
and the apps' webhooks (``Settings`` inherits them; ``workers.settings`` tells
how settings are read)."""

from typing import Literal

from pydantic import BaseModel, Field, NonNegativeInt, PositiveFloat, PositiveInt


def setting(default=None, *, env: str, doc: str):
    """A setting read from environment variable ``env``, documented by ``doc``."""
    return Field(default, validation_alias=env, description=doc)


#: Where Amazon SNS serves its signing certificates (``sns.<region>.amazonaws.com``):
#: a region's shape only, since ``sns.s3.amazonaws.com`` is anyone's S3 bucket ``sns``.
SNS_CERT_HOSTS = r"sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?"


class FeedbackSettings(BaseModel):
    bounce_domain: str | None = setting(
        env="MAILROOM_BOUNCE_DOMAIN",
        doc="Domain of the return path each mail gets on plain relays, "
        "`bounces+<opaque id>@DOMAIN`: its MX (or a transport map) must lead to "
        "`mailroom bounces serve`. Unset: the return path is the sender, and no bounce "
        "comes back to mailroom (SES reports through SNS either way).",
    )
    bounces_host: str = setting(
        "127.0.0.1",
        env="MAILROOM_BOUNCES_HOST",
        doc="Interface `mailroom bounces serve` listens on.",
    )
    bounces_port: int = setting(
        2525, env="MAILROOM_BOUNCES_PORT", doc="Port of `mailroom bounces serve`."
    )
    bounces_protocol: Literal["smtp", "lmtp"] = setting(
        "smtp",
        env="MAILROOM_BOUNCES_PROTOCOL",
        doc="`smtp` or `lmtp`: what `mailroom bounces serve` speaks.",
    )
    suppress_bounced_days: NonNegativeInt = setting(
        30,
        env="MAILROOM_SUPPRESS_BOUNCED_DAYS",
        doc="Days an address whose mail hard-bounced stays suppressed, for every app; "
        "`0`: until an admin lifts it.",
    )
    soft_bounce_limit: NonNegativeInt = setting(
        3,
        env="MAILROOM_SOFT_BOUNCE_LIMIT",
        doc="Transient bounces in a row (no delivery between) after which an address is "
        "suppressed as if it had hard-bounced; `0`: never.",
    )
    sns_topic_arns: str | None = setting(
        env="MAILROOM_SNS_TOPIC_ARNS",
        doc="Comma list of the SNS topics whose SES notifications "
        "`POST /v1/providers/ses/notifications` accepts. Unset: it refuses every "
        "notification (any AWS account can sign one for a topic of its own).",
    )
    sns_cert_hosts: str = setting(
        SNS_CERT_HOSTS,
        env="MAILROOM_SNS_CERT_HOSTS",
        doc="Host names (a regular expression matched whole) SNS signing certificates "
        "are fetched from, over HTTPS only.",
    )
    webhook_timeout: PositiveFloat = setting(
        10.0, env="MAILROOM_WEBHOOK_TIMEOUT", doc="Seconds a webhook receiver has to answer."
    )
    webhook_attempts: PositiveInt = setting(
        10,
        env="MAILROOM_WEBHOOK_ATTEMPTS",
        doc="Attempts at a webhook, with exponential back-off, before it is dead-lettered.",
    )
    webhook_min_backoff: PositiveFloat = setting(
        5.0,
        env="MAILROOM_WEBHOOK_MIN_BACKOFF",
        doc="Seconds before a webhook's second attempt; each wait doubles, with jitter.",
    )
    webhook_max_backoff: PositiveFloat = setting(
        3600.0,
        env="MAILROOM_WEBHOOK_MAX_BACKOFF",
        doc="Longest wait between a webhook's attempts, seconds.",
    )

    @property
    def sns_topics(self) -> frozenset[str]:
        return frozenset(
            arn.strip() for arn in (self.sns_topic_arns or "").split(",") if arn.strip()
        )
