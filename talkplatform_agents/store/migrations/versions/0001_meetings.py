"""Meetings and their members' roles.

Revision ID: 0001_meetings
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001_meetings"
down_revision = None
branch_labels = None
depends_on = None

# Microsecond precision on MySQL/MariaDB too (their DATETIME defaults to whole seconds).
TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_meetings_created_by", "meetings", ["created_by"])
    op.create_table(
        "meeting_members",
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("meeting_members")
    op.drop_index("ix_meetings_created_by", table_name="meetings")
    op.drop_table("meetings")
