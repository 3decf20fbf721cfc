"""Transcriptions (UC-11): one row per transcription of a meeting room, at most one running
per meeting (as recordings), and their final segments, keyed by the transcriber's segment
id so that storing one twice stores it once.

Revision ID: 0007_transcriptions
Revises: 0006_recordings
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007_transcriptions"
down_revision = "0006_recordings"
branch_labels = None
depends_on = None

TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)
LONG_TEXT = (
    sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql").with_variant(mysql.MEDIUMTEXT(), "mariadb")
)


def upgrade() -> None:
    op.create_table(
        "transcriptions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("seen_at", TIMESTAMP, nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("running_meeting", sa.String(64), nullable=True),
        sa.UniqueConstraint("running_meeting", name="uq_transcriptions_running_meeting"),
    )
    op.create_index("ix_transcriptions_meeting_id", "transcriptions", ["meeting_id"])
    op.create_table(
        "transcript_segments",
        sa.Column(
            "transcription_id",
            sa.String(64),
            sa.ForeignKey("transcriptions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column(
            "meeting_id",
            sa.String(64),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("speaker_identity", sa.String(128), nullable=False),
        sa.Column("speaker_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("track_sid", sa.String(64), nullable=False, server_default=""),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("words", LONG_TEXT, nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_transcript_segments_meeting_start",
        "transcript_segments",
        ["meeting_id", "start_ms"],
    )


def downgrade() -> None:
    # Indexes go with their tables (MariaDB refuses to drop one alone: the foreign keys).
    op.drop_table("transcript_segments")
    op.drop_table("transcriptions")
