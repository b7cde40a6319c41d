"""auth flows and verification api

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: A challenge not consumed, revoked or superseded.
LIVE = "consumed_at IS NULL AND revoked_at IS NULL AND superseded_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "address_guards",
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app", "purpose", "email"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index("ix_challenges_user", "challenges", ["app", "user_id"])
    # One live pending change per user, one live claim per new address.
    op.create_index(
        "uq_challenges_change_user",
        "challenges",
        ["app", "user_id"],
        unique=True,
        postgresql_where=sa.text(f"purpose = 'email_change' AND {LIVE}"),
        sqlite_where=sa.text(f"purpose = 'email_change' AND {LIVE}"),
    )
    op.create_index(
        "uq_challenges_change_address",
        "challenges",
        ["app", "new_email_key"],
        unique=True,
        postgresql_where=sa.text(f"purpose = 'email_change' AND {LIVE}"),
        sqlite_where=sa.text(f"purpose = 'email_change' AND {LIVE}"),
    )
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suppressed_reason", sa.String(length=32), nullable=True))
    op.create_index(
        "ix_emails_recipient_recent",
        "emails",
        ["app", "recipient_key", "kind", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_emails_recipient_recent", table_name="emails")
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_column("suppressed_reason")
    op.drop_index("uq_challenges_change_address", table_name="challenges")
    op.drop_index("uq_challenges_change_user", table_name="challenges")
    op.drop_index("ix_challenges_user", table_name="challenges")
    op.drop_table("api_keys")
    op.drop_table("address_guards")
