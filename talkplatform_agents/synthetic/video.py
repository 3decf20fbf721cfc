"""A moving test pattern whose top rows carry the frame number and capture time as a
barcode, and the decoder that reads them back from a received frame.

Pure numpy, no LiveKit. Three rows of 32 cells: the frame counter, the low 32 bits of the
capture time in milliseconds, and their XOR with a constant as a check, so a frame mangled
by the codec is rejected rather than misread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FrameMarker", "PatternGenerator", "decode_marker"]

_BITS = 32
_ROWS = 3
_BLACK, _WHITE = 16, 235
_MIN_CELL = 4  # px: smaller cells do not survive a low-bitrate encode
# Mixed into the check word so that a plain black or white frame never passes as a marker.
_CHECK_SALT = 0xA5C3_5A3C

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class FrameMarker:
    frame: int
    capture_ms: int  # low 32 bits of the capture time in ms since the epoch


class PatternGenerator:
    """RGBA frames of ``width`` x ``height``: scrolling colour bars, a moving box, a barcode."""

    def __init__(self, width: int, height: int) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"frames must be at least 16x16, got {width}x{height}")
        cell_w, cell_h = width // _BITS, height // 18
        if cell_w < _MIN_CELL or cell_h < _MIN_CELL:
            raise ValueError(f"{width}x{height} is too small for the barcode (min 128x72)")
        self.width, self.height = width, height
        self._cell_w, self._cell_h = cell_w, cell_h
        bars = np.array(
            [[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
             [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]],
            dtype=np.uint8,
        )  # fmt: skip
        columns = np.repeat(bars, -(-2 * width // len(bars)), axis=0)[: 2 * width]
        self._bars = np.broadcast_to(columns, (height, 2 * width, 3))

    def frame(self, index: int, capture_ms: int) -> Image:
        img = np.empty((self.height, self.width, 4), dtype=np.uint8)
        shift = (index * 4) % self.width
        img[:, :, :3] = self._bars[:, shift : shift + self.width]
        img[:, :, 3] = 255
        self._draw_box(img, index)
        self._draw_barcode(img, FrameMarker(index & 0xFFFFFFFF, capture_ms & 0xFFFFFFFF))
        return img

    def _draw_box(self, img: Image, index: int) -> None:
        size = max(self.height // 6, 8)
        top = self._cell_h * (_ROWS + 1)
        span_x, span_y = self.width - size, max(self.height - size - top, 1)
        x = (index * 7) % (2 * span_x)
        y = (index * 5) % (2 * span_y)
        x = x if x < span_x else 2 * span_x - x
        y = top + (y if y < span_y else 2 * span_y - y)
        img[y : y + size, x : x + size, :3] = 128

    def _draw_barcode(self, img: Image, marker: FrameMarker) -> None:
        words = (marker.frame, marker.capture_ms, marker.frame ^ marker.capture_ms ^ _CHECK_SALT)
        band = img[: self._cell_h * _ROWS, : self._cell_w * _BITS, :3]
        bits = _bits(words)  # (rows, 32)
        cells = np.where(bits, _WHITE, _BLACK).astype(np.uint8)
        band[:] = np.repeat(np.repeat(cells, self._cell_h, 0), self._cell_w, 1)[:, :, None]


def decode_marker(rgba: Image) -> FrameMarker | None:
    """Read the barcode of a received frame (RGBA or RGB, any size the pattern supports).
    None when the check word does not match: the frame was damaged or is not ours."""
    height, width = rgba.shape[:2]
    cell_w, cell_h = width // _BITS, height // 18
    if cell_w < 2 or cell_h < 2:
        return None
    luma = rgba[: cell_h * _ROWS, : cell_w * _BITS, :3].astype(np.float32).mean(axis=2)
    # Sample each cell's centre, away from edges that the codec blurs.
    ys = (np.arange(_ROWS) * cell_h + cell_h // 2)[:, None]
    xs = (np.arange(_BITS) * cell_w + cell_w // 2)[None, :]
    bits = luma[ys, xs] > (_BLACK + _WHITE) / 2
    weights = 1 << np.arange(_BITS - 1, -1, -1, dtype=np.uint64)
    frame, capture, check = (int(v) for v in (bits.astype(np.uint64) * weights).sum(axis=1))
    if frame ^ capture ^ _CHECK_SALT != check:
        return None
    return FrameMarker(frame=frame, capture_ms=capture)


def _bits(words: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    shifts = np.arange(_BITS - 1, -1, -1, dtype=np.uint64)
    values = np.array(words, dtype=np.uint64)[:, None]
    return ((values >> shifts) & np.uint64(1)).astype(bool)
