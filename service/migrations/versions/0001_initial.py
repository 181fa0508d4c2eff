"""The schema of sigmalab 0.1.0 as created by ``metadata.create_all`` before migrations existed.

Revision ID: 0001
Revises:
Create Date: 2026-12-01

Frozen: later changes are new revisions, never edits of this one. A database made by the
0.1.0 server (tables but no ``alembic_version``) is stamped at this revision, then upgraded.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("max_active_jobs", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_table(
        "jobs",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("owner", sa.String(16), sa.ForeignKey("tokens.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(32)),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("error_type", sa.String(32)),
        sa.Column("error_message", sa.Text),
        sa.Column("progress", sa.JSON),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("cancel_requested", sa.String(16)),
        sa.Column("cancel_requested_at", sa.Float),
        sa.Column("timeout_s", sa.Float),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("worker", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("artifact_path", sa.String(500)),
        sa.Column("artifact_sha256", sa.String(64)),
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
    )
    op.create_index("ix_jobs_status_seq", "jobs", ["status", "seq"])
    op.create_table(
        "job_logs",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_job_logs_job_id", "job_logs", ["job_id"])
    op.create_table(
        "campaigns",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("owner", sa.String(16), sa.ForeignKey("tokens.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fire_cursor", sa.Float, nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_campaigns_owner_idempotency_key"),
    )
    op.create_table(
        "campaign_runs",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("fire_time", sa.Float, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.String(16)),
        sa.Column("analyze_job", sa.String(32)),
        sa.Column("propose_job", sa.String(32)),
        sa.Column("propose_version", sa.Integer),
        sa.Column("round", sa.Integer),
        sa.Column("n_measured", sa.Integer),
        sa.Column("n_told", sa.Integer),
        sa.Column("proposal_ids", sa.JSON),
        sa.Column("best", sa.JSON),
        sa.Column("pareto", sa.JSON),
        sa.Column("message", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.UniqueConstraint("campaign_id", "fire_time", name="uq_campaign_runs_fire"),
    )
    op.create_index("ix_campaign_runs_status", "campaign_runs", ["status"])
    op.create_table(
        "campaign_measurements",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("batch", sa.String(100), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("recipes", sa.JSON, nullable=False),
        sa.Column("n_files", sa.Integer, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.UniqueConstraint("campaign_id", "batch", name="uq_campaign_measurements_batch"),
    )
    op.create_table(
        "campaign_proposals",
        sa.Column("campaign_id", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("predicted", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("batch", sa.String(100)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("measured_at", sa.Float),
    )
