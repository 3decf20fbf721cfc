"""Indexes for the bot leases' hot statements: every bot process renews its leases by
holder (twice a second) and every service sweeps them by expiry. Without them each is a
full scan of the table, and on InnoDB the renewals' scans lock rows they do not change, so
renewals from many worker machines would queue behind each other.

Revision ID: 0008_lease_indexes
Revises: 0007_transcriptions
"""

from alembic import op

revision = "0008_lease_indexes"
down_revision = "0007_transcriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bot_leases_holder", "bot_leases", ["holder"])
    op.create_index("ix_bot_leases_expires_at", "bot_leases", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_bot_leases_expires_at", table_name="bot_leases")
    op.drop_index("ix_bot_leases_holder", table_name="bot_leases")
