"""The green room's pacing: the newest-frame slot, the blur rate governor and the worker's
schedule, without a room."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from talkplatform_agents.bots.greenroom.analysis import CameraCheck
from talkplatform_agents.bots.greenroom.pacing import FrameSchedule, NewestSlot, RateGovernor


def test_slot_hands_over_the_newest_item_and_counts_the_skipped() -> None:
    slot: NewestSlot[int] = NewestSlot()
    for i in range(5):
        assert slot.put(i)
    assert slot.take() == 4
    assert slot.replaced == 4
    assert slot.put(5)
    assert slot.take() == 5
    assert slot.replaced == 4  # taken in time: nothing skipped


def test_slot_close_wakes_a_waiting_consumer_and_refuses_items() -> None:
    slot: NewestSlot[int] = NewestSlot()
    taken: list[int | None] = []
    consumer = threading.Thread(target=lambda: taken.append(slot.take()))
    consumer.start()
    slot.close()
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert taken == [None]
    assert not slot.put(1)
    assert slot.take() is None
    slot.close()  # idempotent
    assert slot.closed


def test_slot_blocks_until_an_item_arrives() -> None:
    slot: NewestSlot[str] = NewestSlot()
    taken: list[str | None] = []
    consumer = threading.Thread(target=lambda: taken.append(slot.take()))
    consumer.start()
    slot.put("frame")
    consumer.join(timeout=10)
    assert taken == ["frame"]


def test_a_paced_take_waits_for_its_time_and_gets_the_freshest_item() -> None:
    slot: NewestSlot[int] = NewestSlot()
    slot.put(1)
    not_before = time.monotonic() + 0.5
    taken: list[tuple[int | None, float]] = []
    consumer = threading.Thread(
        target=lambda: taken.append((slot.take(not_before), time.monotonic()))
    )
    consumer.start()
    slot.put(2)  # arrives while the consumer waits for its turn: it replaces 1
    consumer.join(timeout=10)
    [(item, at)] = taken
    assert item == 2
    assert at >= not_before  # never handed out early
    assert slot.replaced == 1


def test_governor_starts_at_the_ceiling_and_spaces_work_by_its_cost() -> None:
    governor = RateGovernor(max_fps=15, min_fps=1, share=0.25, smoothing=1.0)
    assert governor.cost_s is None
    assert governor.fps == pytest.approx(15)
    # Cheap work: the ceiling holds.
    assert governor.next_at(100.0, 0.01) == pytest.approx(100.0 + 1 / 15)
    # Work costing 50 ms may take a quarter of the time: one run every 200 ms.
    assert governor.next_at(100.0, 0.05) == pytest.approx(100.2)
    assert governor.fps == pytest.approx(5)
    # However slow, the preview keeps the floor's rate.
    governor.record(5.0)
    assert governor.interval_s == pytest.approx(1.0)


def test_governor_lowers_the_rate_when_work_slows_and_recovers_after() -> None:
    governor = RateGovernor(max_fps=15, min_fps=1, share=0.25, smoothing=0.3)
    for _ in range(20):
        governor.record(0.012)
    calm = governor.fps
    assert calm == pytest.approx(15)
    rates = []
    for _ in range(10):  # a busy machine: each blur takes 80 ms of wall clock
        governor.record(0.08)
        rates.append(governor.fps)
    assert rates == sorted(rates, reverse=True)  # it backs off step by step
    assert rates[-1] == pytest.approx(1 / 0.32, rel=0.05)
    for _ in range(20):
        governor.record(0.012)
    assert governor.fps == pytest.approx(calm)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_fps": 0},
        {"min_fps": 20, "max_fps": 15},
        {"share": 0},
        {"share": 1.5},
        {"smoothing": 0},
    ],
)
def test_governor_rejects_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        RateGovernor(**kwargs)


def test_governor_rejects_a_negative_cost() -> None:
    with pytest.raises(ValueError, match="negative"):
        RateGovernor().record(-0.1)


def _frozen_camera_with_slow_blur(blur_cost_s: float) -> tuple[CameraCheck, int, float]:
    """The worker's schedule driven on a simulated clock: a camera stuck on one picture at
    30 fps, blur on and costing ``blur_cost_s`` (the governor at its floor). Returns the
    camera check fed as the worker feeds it, the frames shown, and the end time."""
    camera = CameraCheck()
    governor = RateGovernor(max_fps=15, min_fps=1, share=0.25)
    schedule = FrameSchedule(sample_period_s=0.2)
    picture = np.full((18, 32), 120.0, dtype=np.float32)
    now, shown = 100.0, 0
    for frame in range(30 * 6):
        camera.frame(100.0 + frame / 30, 320, 180)
    while now < 106.0:
        sample, show = schedule.due(now)
        if sample:
            camera.sample(now, picture.copy())
        if show:
            schedule.shown(governor.next_at(now, blur_cost_s))
            now += blur_cost_s  # the thread is busy blurring meanwhile
            shown += 1
        now = max(now, schedule.wake_at(showing=True))
    return camera, shown, now


def test_a_frozen_camera_is_told_even_while_blur_runs_at_its_floor() -> None:
    # A 500 ms blur would take a quarter of the clock at 0.5 fps: the floor, 1 fps, holds.
    camera, shown, end = _frozen_camera_with_slow_blur(blur_cost_s=0.5)
    assert shown == 6  # one a second for six seconds
    # Yet the check samples on its own clock, often enough to see nothing change.
    assert camera.summary(end)["status"] == "frozen"


def test_the_schedule_wakes_for_whichever_is_due_first() -> None:
    schedule = FrameSchedule(sample_period_s=0.2)
    assert schedule.due(10.0) == (True, True)
    schedule.shown(11.0)  # blur's next turn is a second away
    assert schedule.wake_at(showing=True) == pytest.approx(10.2)
    assert schedule.due(10.2) == (True, False)  # a sample-only pass
    schedule.shown(10.3)
    assert schedule.wake_at(showing=True) == pytest.approx(10.3)
    assert schedule.wake_at(showing=False) == pytest.approx(10.4)  # passed through: samples only
    assert schedule.due(10.3) == (False, True)
    with pytest.raises(ValueError, match="positive"):
        FrameSchedule(sample_period_s=0)


def test_only_frames_with_work_due_are_wanted() -> None:
    """The event loop asks before it wakes the worker: between samples, and with no preview
    to blur or scale, frames pass by untouched."""
    schedule = FrameSchedule(sample_period_s=0.5)
    wanted = []
    for t in (10.0 + i / 15 for i in range(30)):  # two seconds of a 15 fps camera
        if schedule.wanted(t, showing=False):
            wanted.append(t)
            assert schedule.due(t) == (True, True)  # the worker takes it: a sample
    assert wanted == pytest.approx([10.0, 10.0 + 8 / 15, 10.0 + 16 / 15, 10.0 + 24 / 15])
    # The last sample was at 11.6; blurring, the governor allows the next shown frame at 12.
    schedule.shown(12.0)
    assert not schedule.wanted(11.95, showing=True)
    assert schedule.wanted(12.0, showing=True)
    assert not schedule.wanted(12.0, showing=False)  # no preview work: the sample is at 12.1
