"""SQLAlchemy tables: the event ledger, challenges, the email outbox and dead letters.

Secrets never appear here in plaintext: challenges hold keyed digests only, and
emails hold the template context without the code or link.
"""

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON()}


class EventRow(Base):
    """One row per accepted event id: the idempotency ledger."""

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(32))


#: SQL for "not consumed, revoked or superseded" (expiry is checked against the clock).
LIVE = "consumed_at IS NULL AND revoked_at IS NULL AND superseded_at IS NULL"


class Challenge(Base):
    __tablename__ = "challenges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.id"))
    app: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str] = mapped_column(String(254))
    #: ``address_key`` of ``email``: what lookups compare (case folded in Python,
    #: the same on every database).
    email_key: Mapped[str] = mapped_column(String(254))
    new_email: Mapped[str | None] = mapped_column(String(254))
    new_email_key: Mapped[str | None] = mapped_column(String(254))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(32))
    issued_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    #: The secret of the attempt before, kept when that mail may have reached the
    #: user (its outcome is unknown): it works until its own expiry.
    prev_code_hash: Mapped[str | None] = mapped_column(String(64))
    prev_token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    prev_key_id: Mapped[str | None] = mapped_column(String(32))
    prev_expires_at: Mapped[datetime | None]
    consumed_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    superseded_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_challenges_user", "app", "user_id"),
        Index("ix_challenges_event", "event_id"),
        # One live pending email change per user (and, below, one live claim
        # per new address): two concurrent requests cannot both win.
        Index(
            "uq_challenges_change_user",
            "app",
            "user_id",
            unique=True,
            postgresql_where=text(f"purpose = 'email_change' AND {LIVE}"),
            sqlite_where=text(f"purpose = 'email_change' AND {LIVE}"),
        ),
    )


class Email(Base):
    """The outbox: one row per mail to send, whatever becomes of it."""

    __tablename__ = "emails"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.id"))
    challenge_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("challenges.id"))
    app: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(35))
    recipient: Mapped[str] = mapped_column(String(254))
    recipient_key: Mapped[str] = mapped_column(String(254))
    context: Mapped[dict] = mapped_column(default=dict)
    #: queued | sending | sent | failed | suppressed
    status: Mapped[str] = mapped_column(String(16))
    #: Why a suppressed email was not sent (rate_limited, locked).
    suppressed_reason: Mapped[str | None] = mapped_column(String(32))
    #: Attempts started (a claim that sends counts one before it sends).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    #: The worker process holding a ``sending`` email, and until when: its lease
    #: keeper renews it while the process lives.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(255))
    provider_id: Mapped[str | None] = mapped_column(String(255))
    transport: Mapped[str | None] = mapped_column(String(32))
    replay_of: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    #: When the producer asked for it (its event's stream entry): delivery
    #: latency counts from here.  Unset on rows older than migration 0005.
    requested_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    #: What a provider or a returned report said of it after it was sent
    #: (``domain.vocabulary.Feedback``), when, and in the report's words.
    feedback: Mapped[str | None] = mapped_column(String(16))
    feedback_at: Mapped[datetime | None]
    feedback_detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # Finding the email an SES notification is about (its MessageId).
        Index("ix_emails_provider", "provider_id"),
        # The sweeper's scan: unfinished mail by when it is next due.
        Index("ix_emails_due", "status", "next_attempt_at"),
        Index("ix_emails_challenge", "challenge_id"),
        # Retention deletes events and challenges only once no email refers to them.
        Index("ix_emails_event", "event_id"),
        # Finding mail (`mailroom emails list`, GET /v1/emails): by recipient, or newest first.
        Index("ix_emails_recipient", "recipient_key", "created_at"),
        Index("ix_emails_created", "created_at"),
    )


class FailedEmail(Base):
    """Dead letters: what could not be sent or accepted, and what became of it."""

    __tablename__ = "failed_emails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("emails.id"))
    event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    event_type: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(32))
    recipient: Mapped[str | None] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The raw event, for dead letters that never became an email.
    payload: Mapped[str | None] = mapped_column(Text)
    #: dead | replayed | discarded
    status: Mapped[str] = mapped_column(String(16), default="dead")
    replayed_email_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    replayed_at: Mapped[datetime | None]
    discarded_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_failed_emails_status_created", "status", "created_at"),
        Index("ix_failed_emails_reason", "reason"),
        Index("ix_failed_emails_email", "email_id"),
    )


Index("ix_challenges_lookup", Challenge.app, Challenge.purpose, Challenge.email_key)
Index(
    "uq_challenges_change_address",
    Challenge.app,
    Challenge.new_email_key,
    unique=True,
    postgresql_where=text(f"purpose = 'email_change' AND {LIVE}"),
    sqlite_where=text(f"purpose = 'email_change' AND {LIVE}"),
)
# The rate limit's count: recent mail of one kind to one recipient.
Index(
    "ix_emails_recipient_recent",
    Email.app,
    Email.recipient_key,
    Email.kind,
    Email.created_at,
)


class AddressGuard(Base):
    """Wrong codes in a row per address and purpose, across challenges, and the
    cool-down they earn."""

    __tablename__ = "address_guards"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: An ``address_key``.
    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class SuppressionRow(Base):
    """An address mail must not go to, for one app or all (``scope`` ``*``)."""

    __tablename__ = "suppressions"

    #: An ``address_key``.
    address_key: Mapped[str] = mapped_column(String(254), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: bounced | complained | manual
    reason: Mapped[str] = mapped_column(String(32))
    #: What reported it: ses | dsn | arf | admin
    source: Mapped[str] = mapped_column(String(32))
    #: The report's words (an SMTP status and diagnostic), or an admin's note.
    detail: Mapped[str | None] = mapped_column(Text)
    #: The email whose report earned it.
    email_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime]
    #: None: until an admin lifts it.
    expires_at: Mapped[datetime | None]


class ApiKey(Base):
    """An app's key for the verification API; only its SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(64))
    #: The first characters of the key, to recognise it in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class FailedWebhook(Base):
    """Webhooks given up on (every attempt failed), and whether an admin sent them again."""

    __tablename__ = "failed_webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(64))
    #: The ``webhook-id`` every attempt carried (``msg_<stream entry id>``).
    webhook_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    #: The JSON body, exactly as signed.
    payload: Mapped[str] = mapped_column(Text)
    #: The last attempt's HTTP status; None: no answer (timeout, refused).
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    #: dead | replayed
    status: Mapped[str] = mapped_column(String(16), default="dead")
    replayed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_failed_webhooks_status_created", "status", "created_at"),)
