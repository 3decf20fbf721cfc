"""Recordings (UC-11): one row per recording of a meeting room, at most one running per
meeting (a unique column that holds the meeting id while it runs).

Revision ID: 0006_recordings
Revises: 0005_leases_and_webhooks
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006_recordings"
down_revision = "0005_leases_and_webhooks"
branch_labels = None
depends_on = None

TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("seen_at", TIMESTAMP, nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("running_meeting", sa.String(64), nullable=True),
        sa.UniqueConstraint("running_meeting", name="uq_recordings_running_meeting"),
    )
    op.create_index("ix_recordings_meeting_id", "recordings", ["meeting_id"])


def downgrade() -> None:
    # The index goes with the table (MariaDB refuses to drop it alone: the foreign key).
    op.drop_table("recordings")
