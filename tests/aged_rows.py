"""Rows of every kind, state and age, for the retention tests on SQLite and PostgreSQL.

Each scenario is one story (an event, its challenge, its emails, a dead letter;
or a suppression; or a dead webhook) named by a label; ``KEPT`` says which of its
rows the default retention (30 days for emails and events, and for suppressions
after expiry; 7 after expiry for challenges; 90 for dead letters and webhooks,
30 after a replay) keeps.  A row's id is its primary key, a tuple when composite.
"""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select

from workers.store.tables import (
    Challenge,
    Email,
    EventRow,
    FailedEmail,
    FailedWebhook,
    SuppressionRow,
)

#: In the order a purge reports them.
TABLES = {
    "failed_emails": FailedEmail.__table__,
    "emails": Email.__table__,
    "challenges": Challenge.__table__,
    "events": EventRow.__table__,
    "suppressions": SuppressionRow.__table__,
    "failed_webhooks": FailedWebhook.__table__,
}

#: Labels of the rows the default retention keeps, by table.
KEPT = {
    "failed_emails": {"dead", "just_discarded", "invalid_dead"},
    "emails": {"dead", "just_discarded", "recent", "stuck_queued", "stuck_sending",
               "two_emails_replay"},
    "challenges": {"dead", "just_discarded", "recent", "stuck_queued", "live_invite",
                   "recently_expired", "two_emails"},
    "events": {"dead", "just_discarded", "recent", "stuck_queued", "stuck_sending",
               "live_invite", "recently_expired", "ledger_recent", "two_emails"},
    "suppressions": {"same_address_for_all_apps", "recently_expired", "until_lifted", "live"},
    "failed_webhooks": {"dead_recent", "replayed_recent"},
}  # fmt: skip


class Builder:
    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        #: table -> label -> id
        self.ids: dict[str, dict[str, object]] = {name: {} for name in TABLES}

    def ago(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    def event(self, label: str, days: float) -> uuid.UUID:
        event_id = self.ids["events"][label] = uuid.uuid4()
        self.conn.execute(
            insert(TABLES["events"]).values(
                id=event_id, type="user.signup_requested", source="notes",
                occurred_at=self.ago(days), received_at=self.ago(days), outcome="accepted",
            )
        )  # fmt: skip
        return event_id

    def challenge(
        self, label: str, event_id, days: float, expires: datetime | None, **ended
    ) -> uuid.UUID:
        challenge_id = self.ids["challenges"][label] = uuid.uuid4()
        self.conn.execute(
            insert(TABLES["challenges"]).values(
                id=challenge_id, event_id=event_id, app="notes", purpose="signup",
                email=f"{label}@example.com", email_key=f"{label}@example.com",
                token_hash=uuid.uuid4().hex if expires else None,
                issued_at=self.ago(days) if expires else None, expires_at=expires,
                attempts=0, data={}, created_at=self.ago(days), **ended,
            )
        )  # fmt: skip
        return challenge_id

    def email(self, label: str, event_id, challenge_id, status: str, days: float) -> uuid.UUID:
        email_id = self.ids["emails"][label] = uuid.uuid4()
        self.conn.execute(
            insert(TABLES["emails"]).values(
                id=email_id, event_id=event_id, challenge_id=challenge_id, app="notes",
                kind="signup", locale="en", recipient=f"{label}@example.com",
                recipient_key=f"{label}@example.com", context={}, status=status, attempts=1,
                deadline=self.ago(days) + timedelta(minutes=5), next_attempt_at=self.ago(days),
                lease_until=self.ago(days) if status == "sending" else None,
                created_at=self.ago(days),
                sent_at=self.ago(days) if status == "sent" else None,
            )
        )  # fmt: skip
        return email_id

    def dead_letter(self, label: str, email_id, status: str, days: float, **settled) -> None:
        self.ids["failed_emails"][label] = self.conn.execute(
            insert(TABLES["failed_emails"])
            .values(
                email_id=email_id, reason="rejected", error="SMTP 550", attempts=1,
                status=status, created_at=self.ago(days), **settled,
            )
            .returning(TABLES["failed_emails"].c.id)
        ).scalar_one()  # fmt: skip

    def suppression(
        self, label: str, address: str, scope: str, days: float, expires: datetime | None
    ) -> None:
        self.ids["suppressions"][label] = (address, scope)
        self.conn.execute(
            insert(TABLES["suppressions"]).values(
                address_key=address, scope=scope, reason="bounced", source="dsn",
                created_at=self.ago(days), expires_at=expires,
            )
        )  # fmt: skip

    def webhook(self, label: str, status: str, days: float, **replayed) -> None:
        self.ids["failed_webhooks"][label] = self.conn.execute(
            insert(TABLES["failed_webhooks"])
            .values(
                app="notes", webhook_id=f"msg_{label}", url="https://notes.example.com/hook",
                payload="{}", last_status=500, last_error="HTTP 500", attempts=8,
                status=status, created_at=self.ago(days), **replayed,
            )
            .returning(TABLES["failed_webhooks"].c.id)
        ).scalar_one()  # fmt: skip

    def story(
        self, label: str, days: float, status: str, *, expires_in: float | None = 0.01, **ended
    ) -> tuple:
        """An event, a challenge mailed ``days`` ago (``expires_in`` days after
        that, None if never mailed) and one email in ``status``."""
        event_id = self.event(label, days)
        expires = None if expires_in is None else self.ago(days - expires_in)
        challenge_id = self.challenge(label, event_id, days, expires, **ended)
        return event_id, challenge_id, self.email(label, event_id, challenge_id, status, days)


def build(conn: Connection, now: datetime) -> dict[str, dict[str, object]]:
    """Insert every scenario; table -> label -> id."""
    b = Builder(conn, now)
    b.story("done", 40, "sent", consumed_at=b.ago(40))
    b.story("recent", 10, "sent", consumed_at=b.ago(10))
    b.story("live_invite", 40, "sent", expires_in=41)  # still valid tomorrow
    b.story("recently_expired", 35, "sent", expires_in=30)  # expired 5 days ago
    b.story("superseded_unmailed", 40, "suppressed", expires_in=None, superseded_at=b.ago(40))
    b.story("stuck_queued", 40, "queued", expires_in=None)
    stuck = b.event("stuck_sending", 40)
    b.email("stuck_sending", stuck, None, "sending", 40)
    limited = b.event("rate_limited", 40)
    b.email("rate_limited", limited, None, "suppressed", 40)
    b.event("ledger_only", 40)
    b.event("ledger_recent", 20)

    _, _, email = b.story("dead", 40, "failed")
    b.dead_letter("dead", email, "dead", 40)
    _, _, email = b.story("discarded", 40, "failed")
    b.dead_letter("discarded", email, "discarded", 40, discarded_at=b.ago(35))
    _, _, email = b.story("just_discarded", 40, "failed")
    b.dead_letter("just_discarded", email, "discarded", 40, discarded_at=b.ago(2))
    _, _, email = b.story("ancient_dead", 100, "failed")
    b.dead_letter("ancient_dead", email, "dead", 100)
    b.dead_letter("invalid_dead", None, "dead", 40)
    b.dead_letter("invalid_ancient", None, "dead", 100)
    b.dead_letter("invalid_replayed", None, "replayed", 40, replayed_at=b.ago(40))

    # A replayed copy of an old mail keeps the challenge and event they share.
    event_id, challenge_id, _ = b.story("two_emails", 40, "sent")
    b.email("two_emails_replay", event_id, challenge_id, "sent", 10)

    # One address, two scopes: only the expired one of the pair goes.
    b.suppression("expired_long_ago", "gone@example.com", "notes", 70, b.ago(40))
    b.suppression("same_address_for_all_apps", "gone@example.com", "*", 70, None)
    b.suppression("recently_expired", "lapsed@example.com", "notes", 70, b.ago(5))
    b.suppression("until_lifted", "blocked@example.com", "*", 400, None)
    b.suppression("live", "cooling@example.com", "notes", 100, b.ago(-5))

    b.webhook("dead_old", "dead", 100)
    b.webhook("dead_recent", "dead", 40)
    b.webhook("replayed_old", "replayed", 40, replayed_at=b.ago(35))
    b.webhook("replayed_recent", "replayed", 40, replayed_at=b.ago(2))
    return b.ids


def remaining(conn: Connection, ids: dict[str, dict[str, object]]) -> dict[str, set[str]]:
    """The labels whose rows are still there, by table."""
    left = {}
    for name, table in TABLES.items():
        keys = list(table.primary_key.columns)
        rows = conn.execute(select(*keys))
        present = {row[0] if len(keys) == 1 else tuple(row) for row in rows}
        left[name] = {label for label, row_id in ids[name].items() if row_id in present}
    return left


def gone_counts(ids: dict[str, dict[str, object]]) -> dict[str, int]:
    """How many rows of each table the default retention removes."""
    return {name: len(set(ids[name]) - KEPT[name]) for name in TABLES}
