"""LOG_FORMAT=json: one JSON object a line, with the room a line is tagged with."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.logs import JsonFormatter, room_of


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("talkplatform.test", logging.WARNING, __file__, 1, msg, args,
                               exc_info)  # fmt: skip
    record.__dict__.update(extra)
    return record


def test_a_line_is_one_json_object_with_its_args_applied() -> None:
    line = JsonFormatter("host-0").format(
        _record("[%s] %s joined (%d)", "meeting-0123abcd", "bob", 3, job_id="AJ_1")
    )
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["message"] == "[meeting-0123abcd] bob joined (3)"
    assert doc["level"] == "WARNING"
    assert doc["logger"] == "talkplatform.test"
    assert doc["room"] == "meeting-0123abcd"
    assert doc["process"] == "host-0"
    assert doc["job_id"] == "AJ_1"  # a caller's extra
    assert doc["time"].endswith("+00:00")
    assert "exc_info" not in doc


def test_a_traceback_stays_in_its_line() -> None:
    doc = json.loads(JsonFormatter().format(_record("failed: %r", object(), exc=True)))
    assert "ValueError: boom" in doc["exc_info"]
    assert "room" not in doc and "process" not in doc


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_an_extra_that_json_refuses_never_loses_the_line() -> None:
    cycle: list[object] = [1]
    cycle.append(cycle)
    line = JsonFormatter().format(
        _record(
            "[%s] handled",
            "meeting-abc",
            job_id="AJ_1",
            by_pair={("a", 1): "x"},  # a key JSON cannot hold
            cycle=cycle,
            odd=_Unprintable(),
            path=Path("/tmp/x"),  # str() of what JSON cannot hold, as ever
        )
    )
    doc = json.loads(line)
    assert (doc["message"], doc["room"]) == ("[meeting-abc] handled", "meeting-abc")
    assert doc["job_id"] == "AJ_1" and doc["path"] == "/tmp/x"  # the rest as they were
    assert doc["by_pair"] == "{('a', 1): 'x'}"
    assert doc["cycle"] == "[1, [...]]"
    assert doc["odd"] == "<_Unprintable: not representable>"


@pytest.mark.parametrize(
    ("message", "room"),
    [
        ("[meeting-abc] x", "meeting-abc"),
        ("[meeting-abc-lobby] x", "meeting-abc-lobby"),
        ("[greenroom-alice] x", "greenroom-alice"),
        ("[meeting-abc]", "meeting-abc"),
        ("[greenroom-echo] draining", None),  # an agent's name, not a room
        ("[room-host] task x failed", None),  # a task set's name
        ("[0123abcd] could not remove", None),  # a meeting id
        ("meeting-abc joined", None),
        ("[] x", None),
        ("[meeting-" + "a" * 300 + "] x", None),
    ],
)
def test_the_room_is_read_from_the_tag(message: str, room: str | None) -> None:
    assert room_of(message) == room


def test_the_setting_is_text_or_json() -> None:
    env = {"_env_file": None}
    assert Settings(**env).log_format == "text"  # type: ignore[arg-type]
    assert Settings(**env, LOG_FORMAT="json").log_format == "json"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        Settings(**env, LOG_FORMAT="xml")  # type: ignore[arg-type]
    assert Settings(**env, LOG_FORMAT="json").child_env()["LOG_FORMAT"] == "json"  # type: ignore[arg-type]


def test_the_cli_logs_json_when_asked() -> None:
    code = (
        "import logging\n"
        "from talkplatform_agents.cli.main import setup_logging\n"
        "from talkplatform_agents.config import Settings\n"
        "setup_logging(Settings(_env_file=None))\n"
        "logging.getLogger('talkplatform_agents.x').info('[%s] hello', 'meeting-42')\n"
    )
    env = {"LOG_FORMAT": "json", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(d["message"], d["room"]) for d in lines] == [("[meeting-42] hello", "meeting-42")]
