"""Scheduled meetings (UC-04): one row per meeting with a time, a zone and maybe an RRULE.

Revision ID: 0009_schedules
Revises: 0008_lease_indexes
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009_schedules"
down_revision = "0008_lease_indexes"
branch_labels = None
depends_on = None

TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)


def upgrade() -> None:
    op.create_table(
        "meeting_schedules",
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("start_local", sa.String(32), nullable=False),
        sa.Column("end_local", sa.String(32), nullable=False),
        sa.Column("rrule", sa.String(1000), nullable=True),
        sa.Column("exdates", sa.Text(), nullable=False),
        sa.Column("overrides", sa.Text(), nullable=False),
        sa.Column("attendees", sa.Text(), nullable=False),
        sa.Column("organizer_email", sa.String(320), nullable=True),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("ends_at", TIMESTAMP, nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cancelled_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_meeting_schedules_span", "meeting_schedules", ["starts_at", "ends_at"])


def downgrade() -> None:
    op.drop_table("meeting_schedules")
