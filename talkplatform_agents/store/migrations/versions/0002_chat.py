"""Meeting chat: messages (with edits, deletions, replies, private recipients), reactions,
chat mutes, and who has been in the meeting room (readers of its history).

Revision ID: 0002_chat
Revises: 0001_meetings
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002_chat"
down_revision = "0001_meetings"
branch_labels = None
depends_on = None

# Microsecond precision on MySQL/MariaDB too (their DATETIME defaults to whole seconds).
TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)
# SQLite only autoincrements an INTEGER PRIMARY KEY; MariaDB gets a 64-bit key.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _meeting_fk() -> sa.Column[str]:
    return sa.Column(
        "meeting_id",
        sa.String(64),
        sa.ForeignKey("meetings.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "chat_messages",
        # The store's order of arrival: history pages by it.
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        _meeting_fk(),
        # The client's id: unique per meeting, so a redelivery is a no-op.
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("sender_identity", sa.String(128), nullable=False),
        sa.Column("sender_name", sa.String(200), nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reply_to", sa.String(128), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("edited_at", TIMESTAMP, nullable=True),
        sa.Column("edit_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.Column("deleted_by", sa.String(128), nullable=True),
        sa.UniqueConstraint("meeting_id", "message_id", name="uq_chat_messages_meeting_message"),
    )
    op.create_index("ix_chat_messages_meeting_seq", "chat_messages", ["meeting_id", "seq"])
    op.create_table(
        "chat_recipients",
        sa.Column(
            "message_seq",
            SEQ,
            sa.ForeignKey("chat_messages.seq", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("identity", sa.String(128), primary_key=True),
    )
    op.create_index("ix_chat_recipients_identity", "chat_recipients", ["identity"])
    op.create_table(
        "chat_reactions",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        _meeting_fk(),
        sa.Column("reaction_id", sa.String(128), nullable=False),
        sa.Column("sender_identity", sa.String(128), nullable=False),
        sa.Column("emoji", sa.String(64), nullable=False),
        sa.Column("target_message_id", sa.String(128), nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("meeting_id", "reaction_id", name="uq_chat_reactions_meeting_reaction"),
    )
    op.create_index(
        "ix_chat_reactions_meeting_target", "chat_reactions", ["meeting_id", "target_message_id"]
    )
    op.create_table(
        "chat_mutes",
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("identity", sa.String(128), primary_key=True),
        sa.Column("muted_by", sa.String(128), nullable=False),
        sa.Column("muted_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "chat_participants",
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("identity", sa.String(128), primary_key=True),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chat_participants")
    op.drop_table("chat_mutes")
    op.drop_index("ix_chat_reactions_meeting_target", table_name="chat_reactions")
    op.drop_table("chat_reactions")
    op.drop_index("ix_chat_recipients_identity", table_name="chat_recipients")
    op.drop_table("chat_recipients")
    op.drop_index("ix_chat_messages_meeting_seq", table_name="chat_messages")
    op.drop_table("chat_messages")
