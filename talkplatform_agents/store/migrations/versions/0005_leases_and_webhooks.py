"""Bot dispatch leases (one service dispatches a missing bot, however many see it missing)
and the webhook events already handled (a replayed webhook is recognised by its id).

Revision ID: 0005_leases_and_webhooks
Revises: 0004_meeting_version
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005_leases_and_webhooks"
down_revision = "0004_meeting_version"
branch_labels = None
depends_on = None

TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)


def upgrade() -> None:
    op.create_table(
        "bot_leases",
        sa.Column("room", sa.String(128), primary_key=True),
        sa.Column("agent_name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("identity", sa.String(128), nullable=False, server_default=""),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("dispatches", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_events_received_at", "webhook_events")
    op.drop_table("webhook_events")
    op.drop_table("bot_leases")
