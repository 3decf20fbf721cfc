"""Phone dial-in (UC-08): each meeting's PIN and its SIP dispatch rule.

Revision ID: 0013_dial_ins
Revises: 0012_calendar_fixes
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0013_dial_ins"
down_revision = "0012_calendar_fixes"
branch_labels = None
depends_on = None

TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)


def upgrade() -> None:
    op.create_table(
        "dial_ins",
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("pin", sa.String(16), nullable=False, unique=True),
        sa.Column("rule_id", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dial_ins")
