"""Background blur with real person segmentation: MediaPipe's selfie-segmentation model
(Apache-2.0), run offline by OpenCV's TFLite importer.

The model file is fetched by ``scripts/fetch-models.sh`` (pinned wheel, checked sha256,
only the model extracted). Without it, blur is unavailable and says so; nothing else is.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from talkplatform_agents.errors import TalkPlatformError

__all__ = ["MODEL_SHA256", "BlurUnavailable", "Segmenter", "blur_background"]

logger = logging.getLogger(__name__)

MODEL_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
_INPUT = 256  # the model's square input

Image = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.float32]


class BlurUnavailable(TalkPlatformError, RuntimeError):
    """The segmentation model is missing or unreadable; the message says which file."""


class Segmenter:
    """Person probability per pixel: 1 on the person, 0 on the background."""

    def __init__(self, model_path: Path) -> None:
        if not model_path.is_file():
            raise BlurUnavailable(
                f"segmentation model {model_path} is missing (scripts/fetch-models.sh)"
            )
        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            raise BlurUnavailable(f"segmentation model {model_path} has sha256 {digest}")
        self._lock = threading.Lock()
        try:
            self._net = cv2.dnn.readNetFromTFLite(str(model_path))
        except cv2.error as exc:
            raise BlurUnavailable(f"OpenCV cannot load {model_path}: {exc}") from exc

    def mask(self, rgb: Image) -> Mask:
        """The person mask at the frame's own size. Thread-safe (runs in worker threads)."""
        blob = cv2.dnn.blobFromImage(rgb, 1 / 255.0, (_INPUT, _INPUT), swapRB=False)
        with self._lock:  # a cv2.dnn net holds its input: one inference at a time
            self._net.setInput(blob)
            out = self._net.forward().reshape(_INPUT, _INPUT).astype(np.float32)
        height, width = rgb.shape[:2]
        return np.asarray(cv2.resize(out, (width, height), interpolation=cv2.INTER_LINEAR))


def blur_background(rgb: Image, mask: Mask, strength: int = 21) -> Image:
    """Keep the person sharp and blur the rest, blending along the mask's soft edge."""
    # Blurring a quarter-size copy is far cheaper and looks the same once scaled back.
    height, width = rgb.shape[:2]
    small = cv2.resize(rgb, (max(width // 4, 1), max(height // 4, 1)), interpolation=cv2.INTER_AREA)
    kernel = max(strength // 4 * 2 + 1, 3)
    blurred = cv2.resize(cv2.GaussianBlur(small, (kernel, kernel), 0), (width, height))
    alpha = mask[:, :, None]
    return (rgb * alpha + blurred * (1.0 - alpha)).astype(np.uint8)
