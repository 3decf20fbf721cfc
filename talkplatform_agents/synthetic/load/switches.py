"""Verifying simulcast layer switches at a subscriber: ask LOW, MEDIUM, HIGH in turn, and
see the received picture get smaller, larger, then full size. Shared by the decoding
subscriber (sizes from decoded frames) and the light one (sizes from key frame headers)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from typing import Protocol

from talkplatform_agents.synthetic.load.report import LayerSwitch

__all__ = ["SizeSource", "verify_switches"]

_SETTLE_S = 1.5
_RESEND_S = 4.0


class SizeSource(Protocol):
    """The received picture size, and an event set whenever it changes."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def size_changed(self) -> asyncio.Event: ...


async def verify_switches(
    probe: SizeSource,
    ask: Callable[[str], None],
    full_width: int,
    timeout_s: float,
    switches: list[LayerSwitch],
    errors: list[str],
) -> None:
    """Request LOW, MEDIUM, HIGH in turn (``ask``); each must change the received size
    (down, up, up to ``full_width``). Appends each outcome to ``switches``, and a failed one
    to ``errors`` too (the rest are then skipped)."""
    try:
        await asyncio.wait_for(probe.size_changed.wait(), timeout_s)
    except TimeoutError:
        switches.append(LayerSwitch("low", False, None, 0, 0))
        errors.append(f"layer switches not tried: no picture size seen in {timeout_s:.0f}s")
        return
    # Settle on the top layer first: bandwidth estimation may not have reached it yet.
    ask("high")
    with contextlib.suppress(TimeoutError):
        await _wait_for(probe, lambda w: w >= full_width, timeout_s)
    for quality in ("low", "medium", "high"):
        before = probe.width
        wanted = _smaller_than(before) if quality == "low" else _larger_than(before)
        asked = time.perf_counter()
        ask(quality)
        try:
            await _wait_for(probe, wanted, timeout_s, resend=functools.partial(ask, quality))
        except TimeoutError:
            switches.append(LayerSwitch(quality, False, None, probe.width, probe.height))
            size = f"{probe.width}x{probe.height}"
            errors.append(f"layer switch to {quality} not seen in {timeout_s:.0f}s (still {size})")
            return
        # The SFU may pass through a layer on its way (HIGH to MEDIUM to LOW): the switch
        # is done when the size has held still for a moment.
        changed_at, width, height = await _settled(probe, _SETTLE_S, down=quality == "low")
        ms = round((changed_at - asked) * 1000, 2)
        switches.append(LayerSwitch(quality, True, ms, width, height))


def _smaller_than(width: int) -> Callable[[int], bool]:
    return lambda w: w < width


def _larger_than(width: int) -> Callable[[int], bool]:
    return lambda w: w > width


async def _settled(probe: SizeSource, quiet_s: float, *, down: bool) -> tuple[float, int, int]:
    """The last size the switch reached, and when: further steps the same way count (the
    SFU may pass through a layer); a step back is the SFU's own later choice (congestion)
    and ends the switch."""
    changed_at, width, height = time.perf_counter(), probe.width, probe.height
    while True:
        probe.size_changed.clear()
        try:
            async with asyncio.timeout(quiet_s):
                await probe.size_changed.wait()
        except TimeoutError:
            return changed_at, width, height
        if (probe.width < width) != down or probe.width == width:
            return changed_at, width, height
        changed_at, width, height = time.perf_counter(), probe.width, probe.height


async def _wait_for(
    probe: SizeSource,
    wanted: Callable[[int], bool],
    timeout_s: float,
    resend: Callable[[], None] | None = None,
) -> None:
    """Until the received width is ``wanted``. A busy SFU or publisher can miss a layer
    request (its key frame never comes): ``resend`` it every few seconds, as clients do."""
    async with asyncio.timeout(timeout_s):
        while not wanted(probe.width):
            probe.size_changed.clear()
            try:
                async with asyncio.timeout(_RESEND_S):
                    await probe.size_changed.wait()
            except TimeoutError:
                if resend is not None:
                    resend()
