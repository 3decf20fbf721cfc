"""Blocked words: whole words, any case, rejected or masked."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FilterResult", "WordFilter"]


@dataclass(frozen=True)
class FilterResult:
    text: str  # masked when the filter masks
    found: tuple[str, ...]  # the blocked words found, lower-case


class WordFilter:
    def __init__(self, words: tuple[str, ...] | list[str]) -> None:
        cleaned = sorted({w.strip().casefold() for w in words if w.strip()}, key=len, reverse=True)
        # Longest first, so "badword" masks whole before "bad" could; \b keeps "class" safe
        # from "ass". Words may hold any characters: they are escaped.
        self._pattern = (
            re.compile(
                r"(?<!\w)(" + "|".join(re.escape(w) for w in cleaned) + r")(?!\w)", re.IGNORECASE
            )
            if cleaned
            else None
        )

    def check(self, text: str) -> FilterResult:
        if self._pattern is None:
            return FilterResult(text, ())
        found: list[str] = []

        def mask(match: re.Match[str]) -> str:
            found.append(match.group(0).casefold())
            return "*" * len(match.group(0))

        masked = self._pattern.sub(mask, text)
        return FilterResult(masked, tuple(dict.fromkeys(found)))
