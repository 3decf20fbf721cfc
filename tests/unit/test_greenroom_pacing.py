"""The green room's pacing: the newest-frame slot and the blur rate governor, without a room."""

from __future__ import annotations

import threading
import time

import pytest

from talkplatform_agents.bots.greenroom.pacing import NewestSlot, RateGovernor


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
