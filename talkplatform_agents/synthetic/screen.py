"""Screen-share test content: a page of small black text on white (what slides and code
look like), with the frame barcode on top, and the check that a received frame is still
readable: its text area compared with the page the receiver renders itself.

Pure numpy and OpenCV, no LiveKit.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from talkplatform_agents.synthetic.video import PatternGenerator

__all__ = ["ScreenPattern", "luma_psnr"]

_TEXT = (
    "async def on_track_subscribed(track, publication, participant): "
    "layer = publication.simulcasted and VIDEO_QUALITY_HIGH or None; "
    "frames, markers, freezes = 0, 0, 0  # the quick brown fox jumps over the lazy dog "
    "0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz {}[]()<>=+-*/"
)
_WORDS = _TEXT.split(" ")
READABLE_PSNR_DB = 24.0  # measured: full-size VP8/H.264 text stays above ~30 dB


class ScreenPattern:
    """RGBA frames of a static text page whose top band carries the frame barcode."""

    def __init__(self, width: int, height: int) -> None:
        self._barcode = PatternGenerator(width, height)  # validates the size
        self.width, self.height = width, height
        self.text_top = (height // 18) * 4  # below the barcode rows
        self._page = _render_page(width, height, self.text_top)

    def frame(self, index: int, capture_ms: int) -> npt.NDArray[np.uint8]:
        img = self._page.copy()
        band = self._barcode.frame(index, capture_ms)[: self.text_top]
        img[: self.text_top] = band
        return img

    def reference_luma(self) -> npt.NDArray[np.float32]:
        """The text area's luma as a BT.601 limited-range encoder sees it (I420's Y)."""
        rgb = self._page[self.text_top :, :, :3].astype(np.float32)
        luma: npt.NDArray[np.float32] = (
            16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255
        )
        return luma

    def readability_db(self, y_plane: npt.NDArray[np.uint8]) -> float | None:
        """PSNR of a received frame's text area against the page; None for another size."""
        if y_plane.shape != (self.height, self.width):
            return None
        return luma_psnr(y_plane[self.text_top :].astype(np.float32), self.reference_luma())


def luma_psnr(received: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]) -> float:
    mse = float(np.mean((received - reference) ** 2))
    return 99.0 if mse < 1e-6 else 10 * float(np.log10(255.0**2 / mse))


def _render_page(width: int, height: int, top: int) -> npt.NDArray[np.uint8]:
    img = np.full((height, width, 4), 255, dtype=np.uint8)
    scale = max(height / 1800, 0.3)  # about 10 px glyphs at 1080p: small text, like a slide
    line_h = max(int(32 * scale), 8)
    words, y, i = _WORDS, top + line_h, 0
    while y < height - 4:
        x, line = 4, list[str]()
        while True:
            word = words[i % len(words)]
            (w, _), _ = cv2.getTextSize(
                " ".join([*line, word]), cv2.FONT_HERSHEY_PLAIN, scale * 1.6, 1
            )
            if w > width - 8 and line:
                break
            line.append(word)
            i += 1
        cv2.putText(
            img,
            " ".join(line),
            (x, y),
            cv2.FONT_HERSHEY_PLAIN,
            scale * 1.6,
            (0, 0, 0, 255),
            1,
            cv2.LINE_AA,
        )
        y += line_h
    return img
