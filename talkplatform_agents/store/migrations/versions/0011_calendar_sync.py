"""CalDAV sync (UC-04): each user's calendar collection and the objects the sync knows.

Revision ID: 0011_calendar_sync
Revises: 0010_schedule_actions
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0011_calendar_sync"
down_revision = "0010_schedule_actions"
branch_labels = None
depends_on = None

TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)


def upgrade() -> None:
    op.create_table(
        "calendar_sync",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("collection_url", sa.String(1000), nullable=False),
        sa.Column("sync_token", sa.String(1000), nullable=True),
        sa.Column("ctag", sa.String(255), nullable=True),
        sa.Column("synced_at", TIMESTAMP, nullable=True),
    )
    op.create_table(
        "calendar_items",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("href", sa.String(512), primary_key=True),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("etag", sa.String(255), nullable=True),
        sa.Column("meeting_id", sa.String(64), nullable=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_calendar_items_meeting", "calendar_items", ["meeting_id"])


def downgrade() -> None:
    op.drop_table("calendar_items")
    op.drop_table("calendar_sync")
