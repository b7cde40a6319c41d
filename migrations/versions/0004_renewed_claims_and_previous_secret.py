"""Renewed delivery claims (emails.claimed_by), the previous secret of a
challenge whose mail may have arrived (challenges.prev_*), and the indexes
retention's deletes need on the columns that refer to events and emails.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("emails") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
    with op.batch_alter_table("challenges") as batch:
        batch.add_column(sa.Column("prev_code_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("prev_token_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("prev_key_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("prev_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_challenges_prev_token_hash", ["prev_token_hash"])
    op.create_index("ix_emails_event", "emails", ["event_id"])
    op.create_index("ix_challenges_event", "challenges", ["event_id"])
    op.create_index("ix_failed_emails_email", "failed_emails", ["email_id"])


def downgrade() -> None:
    op.drop_index("ix_failed_emails_email", "failed_emails")
    op.drop_index("ix_challenges_event", "challenges")
    op.drop_index("ix_emails_event", "emails")
    with op.batch_alter_table("challenges") as batch:
        batch.drop_index("ix_challenges_prev_token_hash")
        for column in ("prev_expires_at", "prev_key_id", "prev_token_hash", "prev_code_hash"):
            batch.drop_column(column)
    with op.batch_alter_table("emails") as batch:
        batch.drop_column("claimed_by")
