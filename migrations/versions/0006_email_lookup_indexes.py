"""Indexes to find mail by recipient and by time (``mailroom emails list``,
``GET /v1/emails``): ``ix_emails_recipient`` (recipient_key, created_at), as the
rate limit's index leads with the app and a support lookup may not know it;
``ix_emails_created`` (created_at), for the newest mail of any filter, and for
retention's scan of old mail.

On PostgreSQL they are built CONCURRENTLY, outside the migration's transaction:
a plain CREATE INDEX would hold every insert into the outbox (all intake) for
as long as the build of the largest table takes.  Should a build fail midway,
PostgreSQL leaves an invalid index of that name: drop it and run the upgrade again.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_emails_recipient": ["recipient_key", "created_at"],
    "ix_emails_created": ["created_at"],
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for name, columns in INDEXES.items():
            op.create_index(name, "emails", columns)
        return
    with op.get_context().autocommit_block():
        for name, columns in INDEXES.items():
            op.create_index(name, "emails", columns, postgresql_concurrently=True)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, "emails")
