"""Simulated speakers: the wall-clock turn schedule publishers follow, and the judgement of
how soon the SFU's active-speaker list follows it."""

from __future__ import annotations

import pytest

from talkplatform_agents.synthetic.load.speakers import (
    LOUD_GAIN,
    QUIET_GAIN,
    SpeakerFollow,
    SpeakerSchedule,
    slot_identities,
)

PUBS = ["r-pub0", "r-pub1", "r-pub2"]


def test_turns_rotate_over_the_slots_on_the_wall_clock() -> None:
    schedule = SpeakerSchedule(2.0, 3)
    # 1000 s is turn 500: slot 500 % 3 == 2.
    assert schedule.turn(1000.0) == 500 and schedule.expected(1000.0) == 2
    assert schedule.turn_start(1001.9) == 1000.0
    assert schedule.expected(1002.0) == 0 and schedule.expected(1004.5) == 1
    assert [schedule.loud(slot, 1000.5) for slot in range(3)] == [False, False, True]
    assert schedule.gain(2, 1000.5) == LOUD_GAIN and schedule.gain(0, 1000.5) == QUIET_GAIN
    assert pytest.approx(10 ** (-40 / 20)) == QUIET_GAIN  # -40 dB


def test_without_turns_everyone_is_loud() -> None:
    for schedule in (SpeakerSchedule(0.0, 3), SpeakerSchedule(2.0, 0)):
        assert not schedule.active
        assert schedule.loud(1, 1234.5) and schedule.gain(0, 99.0) == LOUD_GAIN
        with pytest.raises(ValueError, match="no speaker turns"):
            schedule.expected(1.0)
    with pytest.raises(ValueError, match=">= 0"):
        SpeakerSchedule(-1.0, 2)
    with pytest.raises(ValueError, match="publishers"):
        SpeakerSchedule(1.0, -1)


def test_slot_identities_follow_the_runner_names() -> None:
    assert slot_identities("load-ab12-0-pub0", 3) == [
        "load-ab12-0-pub0",
        "load-ab12-0-pub1",
        "load-ab12-0-pub2",
    ]
    assert slot_identities("x-pub0", 0) == []
    with pytest.raises(ValueError, match="slot-0 publisher"):
        slot_identities("x-sub0", 2)


def test_follow_times_each_turn_from_its_start() -> None:
    schedule = SpeakerSchedule(2.0, 3)
    # Turns at 1000 (pub2), 1002 (pub0), 1004 (pub1), 1006 (pub2).
    follow = SpeakerFollow(schedule, PUBS, started_at=1000.0)
    follow.observe(["r-pub1"], 1000.1)  # the previous speaker still named
    follow.observe(["r-pub2", "r-pub1"], 1000.3)  # turn 1000 followed after 300 ms
    follow.observe(["r-pub0"], 1002.45)  # 450 ms
    follow.observe(["r-pub0", "r-pub1"], 1003.0)
    # pub1's turn (1004) never named before it ended: missed.
    follow.observe(["r-pub2"], 1006.2)
    follow.finish(1006.9)  # the running turn was followed: it counts
    assert follow.follow_ms == [300.0, 450.0, 200.0]
    assert follow.missed == 1 and follow.turns == 4


def test_follow_counts_a_speaker_already_named_as_followed_at_once() -> None:
    # One publisher: loud every turn; the SFU names it once and never changes its list.
    follow = SpeakerFollow(SpeakerSchedule(1.0, 1), ["r-pub0"], started_at=100.0)
    follow.observe(["r-pub0"], 100.2)
    follow.finish(103.5)  # turns 100, 101, 102 ended; 103 runs and is already followed
    assert follow.follow_ms == [200.0, 0.0, 0.0, 0.0] and follow.missed == 0


def test_follow_skips_the_turn_under_way_and_an_unfollowed_running_one() -> None:
    follow = SpeakerFollow(SpeakerSchedule(2.0, 3), PUBS, started_at=1001.0)
    follow.observe(["r-pub2"], 1001.5)  # turn 1000 began before the watch: not judged
    follow.observe([], 1002.5)  # nobody speaking in pub0's turn
    follow.finish(1004.5)  # pub0's turn missed; pub1's (running) not followed yet: not judged
    assert follow.follow_ms == [] and follow.missed == 1 and follow.turns == 1
    follow.observe(["r-pub1"], 1005.0)  # after finish: ignored
    follow.finish(1005.0)
    assert follow.turns == 1


def test_follow_refuses_what_it_cannot_judge() -> None:
    with pytest.raises(ValueError, match="no turns"):
        SpeakerFollow(SpeakerSchedule(0.0, 3), PUBS, started_at=0.0)
    with pytest.raises(ValueError, match="2 identities for 3"):
        SpeakerFollow(SpeakerSchedule(1.0, 3), PUBS[:2], started_at=0.0)
