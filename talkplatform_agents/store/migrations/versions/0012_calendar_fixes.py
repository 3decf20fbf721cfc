"""The scheduler's ``settled`` statement (every pass) filters schedule_actions by
occurrence_at and status: an index on them, so that it is no full scan of the table.

Revision ID: 0012_calendar_fixes
Revises: 0011_calendar_sync
"""

from alembic import op

revision = "0012_calendar_fixes"
down_revision = "0011_calendar_sync"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_schedule_actions_occurrence_status", "schedule_actions", ["occurrence_at", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_schedule_actions_occurrence_status", table_name="schedule_actions")
