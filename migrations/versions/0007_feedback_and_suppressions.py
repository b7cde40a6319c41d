"""What came back after sending: each email's feedback (a bounce, a complaint,
a delivery report) and the suppression list it feeds.

``suppressions`` holds one row per address and scope (an app id, or ``*`` for
every app); ``ix_emails_provider`` finds an email by its provider's id (SES's
MessageId), built CONCURRENTLY on PostgreSQL for the reason 0006 gives.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("address_key", sa.String(254), primary_key=True),
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("email_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("emails") as batch:
        batch.add_column(sa.Column("feedback", sa.String(16), nullable=True))
        batch.add_column(sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("feedback_detail", sa.Text(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        op.create_index("ix_emails_provider", "emails", ["provider_id"])
        return
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_emails_provider", "emails", ["provider_id"], postgresql_concurrently=True
        )


def downgrade() -> None:
    op.drop_index("ix_emails_provider", "emails")
    with op.batch_alter_table("emails") as batch:
        batch.drop_column("feedback_detail")
        batch.drop_column("feedback_at")
        batch.drop_column("feedback")
    op.drop_table("suppressions")
