"""SQLAlchemy models. Each change to them comes with an Alembic migration."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, func
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["Base", "Meeting", "MeetingMember"]


# MySQL/MariaDB DATETIME drops fractions of a second unless told otherwise; keep
# microseconds so a value reads back as it was written, on every backend.
Timestamp = (
    DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)


class Base(DeclarativeBase):
    pass


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    members: Mapped[list[MeetingMember]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan"
    )


class MeetingMember(Base):
    """A user's standing role in a meeting. Users without a row join as participants."""

    __tablename__ = "meeting_members"

    meeting_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())

    meeting: Mapped[Meeting] = relationship(back_populates="members")
