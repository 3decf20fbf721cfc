from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from talkplatform_agents.bots.recorder.manifest import (
    FileResult,
    RecordingManifest,
    render_name,
)
from talkplatform_agents.bots.recorder.storage import LocalStorage, RecordingStorage
from talkplatform_agents.errors import Invalid, NotFound

T0 = 1_700_000_000_000_000_000


def _manifest() -> RecordingManifest:
    manifest = RecordingManifest("rec_1", "meeting-42", T0)
    manifest.start_part(T0)
    manifest.add_file(
        FileResult(
            "meeting-42-TR_a.ogg", T0 + 5, track_sid="TR_a", identity="alice", name="Alice",
            kind="audio", source="microphone", offset_ns=5,
        )
    )  # fmt: skip
    return manifest


def test_round_trips_in_egress_shape() -> None:
    manifest = _manifest()
    manifest.file_results[0].size = 1234
    manifest.finish(T0 + 10**10)
    data = json.loads(manifest.to_json())
    assert data["egress_id"] == "rec_1" and data["status"] == "EGRESS_COMPLETE"
    assert data["ended_at"] == T0 + 10**10 and data["error"] == ""
    info = data["file_results"][0]
    assert {"filename", "started_at", "ended_at", "duration", "size", "location"} <= set(info)
    assert info["offset_ns"] == 5 and info["source"] == "microphone"
    assert data["parts"] == [{"part": 1, "started_at": T0, "ended_at": T0 + 10**10}]
    assert RecordingManifest.from_json(manifest.to_json()) == manifest


def test_reads_protobuf_style_numbers_and_ignores_unknown_keys() -> None:
    data = json.loads(_manifest().to_json())
    data["started_at"] = str(T0)  # protobuf JSON writes int64 as a string
    data["file_results"][0]["size"] = "77"
    data["source_type"] = "EGRESS_SOURCE_TYPE_SDK"
    manifest = RecordingManifest.from_dict(data)
    assert manifest.started_at == T0 and manifest.file_results[0].size == 77


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(status="RUNNING"),
        lambda d: d.update(started_at="soon"),
        lambda d: d.pop("egress_id"),
        lambda d: d["file_results"][0].update(kind="text"),
        lambda d: d["file_results"][0].update(size=-1),
        lambda d: d["file_results"][0].pop("filename"),
        lambda d: d.update(file_results=["x"]),
        lambda d: d.update(room_name=7),
    ],
)
def test_malformed_manifests_are_invalid(change: object) -> None:
    data = json.loads(_manifest().to_json())
    change(data)  # type: ignore[operator]
    with pytest.raises(Invalid):
        RecordingManifest.from_dict(data)


def test_not_json_is_invalid() -> None:
    with pytest.raises(Invalid, match="JSON"):
        RecordingManifest.from_json("{nope")


def test_parts_and_failure() -> None:
    manifest = _manifest()
    # The first recorder was killed: its part never ended. The next one starts part 2.
    assert manifest.start_part(T0 + 50) == 2
    manifest.finish(T0 + 90, error="No space left on device")
    assert manifest.status == "EGRESS_FAILED" and manifest.error.startswith("No space")
    assert [(p.part, p.ended_at) for p in manifest.parts] == [(1, 0), (2, T0 + 90)]
    with pytest.raises(Invalid, match="already"):
        manifest.add_file(FileResult("meeting-42-TR_a.ogg", T0))


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "manifest.json"
    first = _manifest()
    first.write(path)
    assert RecordingManifest.load(path) == first
    second = _manifest()
    second.finish(T0 + 1)

    def crash(*_args: object) -> None:
        raise OSError("killed mid-rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        second.write(path)
    monkeypatch.undo()
    assert RecordingManifest.load(path) == first  # the old one, whole
    assert os.listdir(tmp_path) == ["manifest.json"]  # no temporary left behind
    second.write(path)
    assert RecordingManifest.load(path).status == "EGRESS_COMPLETE"


def test_render_name_fills_egress_templates() -> None:
    when = datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC)
    name = render_name(
        "{room_name}-{publisher_identity}-{track_id}-{time}",
        room_name="standup", track_id="TR_x", publisher_identity="bob", time=when,
        extension=".ogg",
    )  # fmt: skip
    assert name == "standup-bob-TR_x-2024-03-05T070809.ogg"
    local = when.astimezone(timezone(timedelta(hours=2)))
    assert render_name("{time}", time=local) == "2024-03-05T070809"  # always UTC
    assert render_name("a.ogg", extension="ogg") == "a.ogg"


@pytest.mark.parametrize(
    ("template", "identity"),
    [
        ("{publisher_identity}.ogg", "../../etc/passwd"),
        ("{publisher_identity}.ogg", ".."),
        ("../{room_name}/x", "bob"),
        ("/abs/{publisher_identity}", "bob"),
        ("{publisher_identity}", "a\\..\\b\x00c"),
        ("{publisher_identity}", "\n"),
        ("", ""),
    ],
)
def test_a_rendered_name_never_escapes_the_directory(
    template: str, identity: str, tmp_path: Path
) -> None:
    name = render_name(template, room_name="r", publisher_identity=identity)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    storage = LocalStorage(tmp_path)
    path = storage.path_for("rec_1", name)  # the storage accepts it as a plain name
    assert path.parent == tmp_path / "rec_1"


def test_render_name_keeps_long_names_within_limits() -> None:
    name = render_name("{publisher_identity}", publisher_identity="é" * 500, extension=".webm")
    assert name.endswith(".webm") and len(name.encode()) <= 200


def test_local_storage(tmp_path: Path) -> None:
    storage: RecordingStorage = LocalStorage(tmp_path)
    path = storage.path_for("rec_1", "a.ogg")
    path.write_bytes(b"ogg")
    _manifest().write(storage.path_for("rec_1", "manifest.json"))
    (tmp_path / "rec_1" / ".manifest.json.1.tmp").write_text("half")
    assert storage.list("rec_1") == ["a.ogg", "manifest.json"]
    assert storage.list("rec_unknown") == []
    assert storage.exists("rec_1", "a.ogg") and not storage.exists("rec_1", "b.ogg")
    with storage.open("rec_1", "a.ogg") as f:
        assert f.read() == b"ogg"
    with pytest.raises(NotFound):
        storage.open("rec_1", "b.ogg")
    with pytest.raises(NotFound):
        storage.open("rec_2", "a.ogg")


@pytest.mark.parametrize(
    "name", ["../rec_2/a.ogg", "..", ".", "", "a/b", "a\\b", ".hidden", "x\x00", "é" * 200]
)
def test_local_storage_rejects_traversal(name: str, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    for call in (storage.path_for, storage.open, storage.exists):
        with pytest.raises(Invalid):
            call("rec_1", name)
        with pytest.raises(Invalid):
            call(name, "a.ogg")
    with pytest.raises(Invalid):
        storage.list(name)
