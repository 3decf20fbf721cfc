"""Person segmentation and background blur on a real photograph of a person."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data

from talkplatform_agents.bots.greenroom.blur import BlurUnavailable, Segmenter, blur_background

MODEL = Path(__file__).resolve().parents[2] / "models" / "selfie_segmentation.tflite"


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter(MODEL)  # scripts/fetch-models.sh provides it; missing is a failure


def test_mask_covers_the_person_and_little_else(segmenter: Segmenter) -> None:
    image = data.astronaut()  # 512x512, Eileen Collins in front of a flag and a backdrop
    mask = segmenter.mask(image)
    assert mask.shape == image.shape[:2]
    face, torso = mask[100:180, 190:260], mask[300:450, 150:350]
    backdrop, flag = mask[0:60, 0:120], mask[0:120, 400:512]
    assert face.mean() > 0.9 and torso.mean() > 0.9
    assert backdrop.mean() < 0.05 and flag.mean() < 0.05
    # The person fills roughly half of this portrait: far from all or nothing.
    assert 0.3 < (mask > 0.5).mean() < 0.7


def test_blur_changes_the_background_and_keeps_the_person(segmenter: Segmenter) -> None:
    image = data.astronaut()
    out = blur_background(image, segmenter.mask(image))
    assert out.shape == image.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(np.int16) - image.astype(np.int16)).mean(axis=2)
    assert diff[100:180, 190:260].mean() < 1  # the face is untouched
    assert diff[0:120, 400:512].mean() > 8  # the flag is blurred
    # Blurring removes detail: the background's high frequencies drop sharply.
    edges_before = np.abs(np.diff(image[0:120, 400:512].astype(float), axis=1)).mean()
    edges_after = np.abs(np.diff(out[0:120, 400:512].astype(float), axis=1)).mean()
    assert edges_after < edges_before / 2


def test_missing_or_wrong_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BlurUnavailable, match="missing"):
        Segmenter(tmp_path / "nope.tflite")
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"not a model")
    with pytest.raises(BlurUnavailable, match="sha256"):
        Segmenter(fake)
