"""Retry backoff, artifact time to live, campaign quotas, idempotency digests, run compaction.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("not_before", sa.Float))
        batch.add_column(sa.Column("purged_at", sa.Float))
        batch.create_index("ix_jobs_owner_status", ["owner", "status"])
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(
            sa.Column("max_active_campaigns", sa.Integer, nullable=False, server_default="10")
        )
    with op.batch_alter_table("campaigns") as batch:
        # Campaigns created before this revision have no digest: a replay of their key is
        # accepted as before.
        batch.add_column(sa.Column("body_sha256", sa.String(64)))
        batch.add_column(sa.Column("compacted", sa.JSON))
