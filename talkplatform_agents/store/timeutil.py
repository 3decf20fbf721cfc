"""Time values as the store hands them back."""

from __future__ import annotations

import datetime as dt

__all__ = ["aware"]


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite and MariaDB hand back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
