"""The waiting room's entries, attendance from webhooks, and the meeting room's lifecycle.

Revision ID: 0003_waiting_room
Revises: 0002_chat
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003_waiting_room"
down_revision = "0002_chat"
branch_labels = None
depends_on = None

TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("room_started_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("room_finished_at", TIMESTAMP, nullable=True))
    op.create_table(
        "waiting_entries",
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("knocked_at", TIMESTAMP, nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.create_index("ix_waiting_entries_status", "waiting_entries", ["status"])
    op.create_table(
        "attendance",
        sa.Column("participant_sid", sa.String(64), primary_key=True),
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("room", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("joined_at", TIMESTAMP, nullable=False),
        sa.Column("left_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_attendance_meeting_id", "attendance", ["meeting_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes; MariaDB refuses to drop an index a foreign key
    # needs on its own.
    op.drop_table("attendance")
    op.drop_table("waiting_entries")
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("room_finished_at")
        batch.drop_column("room_started_at")
