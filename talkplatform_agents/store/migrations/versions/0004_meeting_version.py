"""A version on each meeting, bumped by every change to the meeting or its members' roles:
a process that caches a meeting checks it to know its copy is current.

Revision ID: 0004_meeting_version
Revises: 0003_waiting_room
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_meeting_version"
down_revision = "0003_waiting_room"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("version")
