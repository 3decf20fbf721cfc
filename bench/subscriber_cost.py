"""What one livekit.rtc subscriber costs, with and without a VideoStream / AudioStream
(groundwork for light load-test subscribers, issue 19): does the SDK decode a subscribed
track that nothing reads? (It does: libwebrtc decodes every subscribed track.)

    .venv/bin/python bench/subscriber_cost.py [--hold 30] [--reps 2]

In a fresh network namespace with the real livekit-server (bench/_common.run_in_local_stack,
no bot worker). Two publisher processes (spawned: a light pre-encoded one, and an SDK tone):
  room V: 1280x720 30 fps VP8 pre-encoded (load's --pre-encoded --no-simulcast, 1.7 Mbps cap)
  room A: the marked tone only (48 kHz Opus)
Each mode runs a fresh spawned subscriber process that only subscribes; after it has its
track and a settle, its utime+stime are read from /proc/<pid>/stat over --hold seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing as mp
import os
import time
from typing import Any

from _common import report, run_in_local_stack

from talkplatform_agents.harness import Stack
from talkplatform_agents.lk import Credentials, Role, mint_token

TICK = os.sysconf("SC_CLK_TCK")
MODES = ["none", "video", "video+stream", "audio", "audio+stream"]


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


# ---------------------------------------------------------------- publisher (spawned)


def publisher_main(url: str, token: str, video: bool, ready: Any, stop: Any) -> None:
    from talkplatform_agents.synthetic.load.light import LightPublisher
    from talkplatform_agents.synthetic.load.members import MemberPlan
    from talkplatform_agents.synthetic.load.runner import light_media
    from talkplatform_agents.synthetic.load.spec import LoadSpec, MediaOptions
    from talkplatform_agents.synthetic.probes import MarkerLog

    media = MediaOptions(
        simulcast=False, pre_encoded=video, audio=not video, switch_layers=False,
        width=1280, height=720, fps=30, max_bitrate=1_700_000,
    )  # fmt: skip

    async def body() -> None:
        plan = MemberPlan("pub-v" if video else "pub-a", "", "publisher", token, 0.0, tag=1)
        if not video:
            from talkplatform_agents.synthetic.audio import ToneConfig
            from talkplatform_agents.synthetic.client import RoomClient

            pub: Any = RoomClient("pub-a", lambda what, exc: print("pub-a", what, exc))
            await pub.join(url, token, auto_subscribe=False, timeout_s=15)
            await pub.publish_tone("tone", ToneConfig(tag=1), MarkerLog())
            stop_pub = pub.leave
        else:
            light = light_media(LoadSpec(url=url, media=media))
            assert light is not None
            pub = LightPublisher(url, plan, media, 15, MarkerLog(), light, 1)
            await pub.start()
            stop_pub = pub.stop
        ready.set()
        await asyncio.to_thread(stop.wait)  # the parent's (a process) Event
        await stop_pub()

    asyncio.run(body())


# --------------------------------------------------------------- subscriber (spawned)


def subscriber_main(url: str, token: str, mode: str, q: Any, stop: Any) -> None:
    from livekit import rtc

    async def inbound(room: rtc.Room) -> dict[str, Any]:
        stats = await room.get_rtc_stats()
        out: dict[str, Any] = {}
        for e in [*stats.publisher_stats, *stats.subscriber_stats]:
            if e.WhichOneof("stats") == "inbound_rtp":
                r = e.inbound_rtp
                out[r.stream.kind] = {
                    "packets": r.received.packets_received,
                    "bytes": r.inbound.bytes_received,
                    "frames_received": r.inbound.frames_received,
                    "frames_decoded": r.inbound.frames_decoded,
                    "decode_time_s": round(r.inbound.total_decode_time, 3),
                    "decoder": r.inbound.decoder_implementation,
                    "size": f"{r.inbound.frame_width}x{r.inbound.frame_height}",
                    "samples_received": r.inbound.total_samples_received,
                    "concealed": r.inbound.concealed_samples,
                    "jb_emitted": r.inbound.jitter_buffer_emitted_count,
                }
        return out

    async def body() -> None:
        room = rtc.Room()
        got = asyncio.Event()
        frames = [0]
        tasks: list[asyncio.Task[None]] = []

        async def read_video(track: rtc.Track) -> None:
            async for _ev in rtc.VideoStream(track):
                frames[0] += 1

        async def read_audio(track: rtc.Track) -> None:
            async for _ev in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
                frames[0] += 1

        def on_track(track: rtc.Track, *_: Any) -> None:
            if mode == "video+stream":
                tasks.append(asyncio.ensure_future(read_video(track)))
            elif mode == "audio+stream":
                tasks.append(asyncio.ensure_future(read_audio(track)))
            got.set()

        room.on("track_subscribed", on_track)
        await room.connect(url, token, rtc.RoomOptions(auto_subscribe=mode != "none"))
        if mode == "none":
            await asyncio.sleep(2)  # the publisher's track is announced, not subscribed
        else:
            await asyncio.wait_for(got.wait(), 20)
        await asyncio.sleep(5)  # settle: DTLS, first keyframe, jitter buffers
        f0, s0 = frames[0], await inbound(room)
        q.put(("ready", None))
        await asyncio.to_thread(stop.wait)
        f1, s1 = frames[0], await inbound(room)
        remote = [
            (p.identity, [(t.kind, t.subscribed) for t in p.track_publications.values()])
            for p in room.remote_participants.values()
        ]
        q.put(("done", {"frames_read": f1 - f0, "stats_before": s0, "stats_after": s1,
                        "remote": remote}))  # fmt: skip
        for t in tasks:
            t.cancel()
        await room.disconnect()

    asyncio.run(body())


# ------------------------------------------------------------------------- parent


def run(stack: Stack, hold: float, reps: int) -> list[dict[str, Any]]:
    s = stack.child_settings
    creds = Credentials(s.livekit_api_key, s.livekit_api_secret.get_secret_value())
    url = s.livekit_url
    tag = int(time.time())

    def tok(room: str, ident: str) -> str:
        return mint_token(creds, identity=ident, name=ident, room=room,
                          role=Role.PARTICIPANT, ttl=dt.timedelta(hours=1)).jwt  # fmt: skip

    ctx = mp.get_context("spawn")
    pstop = ctx.Event()
    pubs = []
    for video in (True, False):
        room = f"sub-cost-{'v' if video else 'a'}-{tag}"
        ready = ctx.Event()
        p = ctx.Process(target=publisher_main,
                        args=(url, tok(room, "pub-" + room), video, ready, pstop))  # fmt: skip
        p.start()
        if not ready.wait(120):
            raise RuntimeError("publisher not ready")
        pubs.append(p)
    server_pid = stack.process("livekit-server").pid
    assert server_pid is not None
    rows = []
    try:
        for rep in range(reps):
            for mode in MODES:
                room = f"sub-cost-{'a' if mode.startswith('audio') else 'v'}-{tag}"
                q, stop = ctx.Queue(), ctx.Event()
                token = tok(room, f"sub-{mode}-{rep}")
                sub = ctx.Process(target=subscriber_main, args=(url, token, mode, q, stop))
                sub.start()
                kind, _ = q.get(timeout=90)
                assert kind == "ready"
                assert sub.pid is not None
                c0, srv0, pub0 = cpu_s(sub.pid), cpu_s(server_pid), [cpu_s(p.pid) for p in pubs]  # type: ignore[arg-type]
                t0 = time.monotonic()
                time.sleep(hold)
                c1, srv1, pub1 = cpu_s(sub.pid), cpu_s(server_pid), [cpu_s(p.pid) for p in pubs]  # type: ignore[arg-type]
                elapsed = time.monotonic() - t0
                nthreads = threads(sub.pid)
                stop.set()
                kind, info = q.get(timeout=60)
                sub.join(30)
                per_min = 60 / elapsed
                row = {
                    "rep": rep + 1,
                    "mode": mode,
                    "sub_cpu_s_per_min": round((c1 - c0) * per_min, 2),
                    "server_cpu_s_per_min": round((srv1 - srv0) * per_min, 2),
                    "pub_v_cpu_s_per_min": round((pub1[0] - pub0[0]) * per_min, 2),
                    "pub_a_cpu_s_per_min": round((pub1[1] - pub0[1]) * per_min, 2),
                    "sub_threads": nthreads,
                    "hold_s": round(elapsed, 1),
                    **info,
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        pstop.set()
        for p in pubs:
            p.join(30)
            if p.is_alive():
                p.kill()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hold", type=float, default=30)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    out: list[dict[str, Any]] = []

    async def body(stack: Stack) -> None:
        out.extend(await asyncio.to_thread(run, stack, args.hold, args.reps))

    run_in_local_stack(body, agents=())

    def mean(mode: str) -> float:
        values = [r["sub_cpu_s_per_min"] for r in out if r["mode"] == mode]
        return sum(values) / len(values)

    # The baseline, in the same run: a subscriber joined with nothing subscribed.
    base = mean("none")
    summary = {f"{mode} / none": round(mean(mode) / base, 2) for mode in MODES[1:]}
    # The inbound-stats snapshots (nested) were printed as each mode ran; the table keeps
    # the figures.
    rows = [{k: v for k, v in r.items() if not isinstance(v, dict | list)} for r in out]
    report("subscriber_cost", rows, summary, width=200)


if __name__ == "__main__":
    main()
