"""A browser's way into a meeting, beside the SDK's in the same run: from opening the
meeting's page to the host's first video frame on screen.

    .venv/bin/python bench/web_join.py [--rounds 8]

Inside a fresh network namespace: the real livekit-server, token service and bots, and
Debian's chromium driven by playwright (one browser; a fresh context, so a cold page, per
round). A host (a Python synthetic participant) publishes a 320x180 camera in a meeting
without a waiting room. Per round, interleaved so that drift on a shared machine hits both:

- browser: ``page.goto('/app/meeting/<id>')`` until a tile's ``<video>`` has the host's
  frame (``videoWidth > 0``): the page and its bundle, the sign-in check, ``GET`` the
  meeting, the token request, the LiveKit connection, the subscription, the first decoded
  frame; with the page's own split (navigation to script start, and to the token answer);
- SDK (the baseline): the token request, then a ``livekit.rtc`` participant's join until its
  first video frame from the host.

The ratio is what the page costs on top of a client that needs no page. Also the bundle's
size on the wire (the meeting page's script and stylesheet, uncompressed: the service sends
them as they are).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, run_in_local_stack

from talkplatform_agents.harness import Stack
from talkplatform_agents.harness.browser import CHROMIUM, chromium_args
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant, percentile


def _progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


class _Api:
    def __init__(self, stack: Stack) -> None:
        self.settings = stack.child_settings
        self.http = httpx.AsyncClient(base_url=self.settings.api_url, timeout=30)

    def jwt(self, user: str) -> str:
        return mint_app_token(self.settings.app_jwt_secret.get_secret_value(), user, user, 900)

    async def post(self, path: str, user: str, body: dict[str, Any]) -> dict[str, Any]:
        auth = {"Authorization": f"Bearer {self.jwt(user)}"}
        reply = await self.http.post(path, json=body, headers=auth)
        reply.raise_for_status()
        return dict(reply.json())


async def _until(probe: Any, timeout_s: float) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (value := probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    return value


async def _browser_round(browser: Browser, api: _Api, mid: str) -> dict[str, float]:
    user = f"web-{uuid.uuid4().hex[:6]}"
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800}, permissions=["camera", "microphone"]
    )
    try:
        page = await context.new_page()
        started = time.perf_counter()
        await page.goto(f"{api.settings.api_url}/app/meeting/{mid}#token={api.jwt(user)}")
        await page.wait_for_function(
            "() => [...document.querySelectorAll('.tile:not([data-local]) video')]"
            ".some((v) => v.videoWidth > 0)",
            polling="raf",
            timeout=60_000,
        )
        total = (time.perf_counter() - started) * 1000
        timing: dict[str, float] = await page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const token = performance.getEntriesByType('resource')
                .find((r) => r.name.endsWith('/api/v1/livekit/token'));
              return {script: nav ? nav.domInteractive : 0,
                      token: token ? token.responseEnd : 0};
            }"""
        )
        return {"total": total, **timing}
    finally:
        await context.close()


async def _sdk_round(api: _Api, mid: str) -> float:
    user = f"sdk-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    grant = await api.post("/api/v1/livekit/token", user, {"meetingId": mid})
    config = ParticipantConfig(
        url=grant["wsUrl"], token=grant["token"], publish_audio=False, publish_video=False
    )
    async with SyntheticParticipant(config) as guest:
        await _until(lambda: any(v.first_frame_at for v in guest.video_probes.values()), 60)
    return (time.perf_counter() - started) * 1000


async def _bundle_kb(api: _Api) -> float:
    sizes = 0
    for name in ("meeting.js", "app.css"):
        reply = await api.http.get(f"/app/assets/{name}")
        reply.raise_for_status()
        sizes += len(reply.content)
    return sizes / 1024


async def _bench(stack: Stack, rounds: int) -> None:
    api = _Api(stack)
    host = f"host-{uuid.uuid4().hex[:6]}"
    made = await api.post("/api/v1/meetings", host, {"title": "bench", "settings": {}})
    mid = str(made["id"])
    grant = await api.post("/api/v1/livekit/token", host, {"meetingId": mid})
    config = ParticipantConfig(url=grant["wsUrl"], token=grant["token"], publish_audio=False)
    async with SyntheticParticipant(config), async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(api.settings.api_url)
        )
        try:
            await _browser_round(browser, api, mid)  # warm-up: the first page load compiles
            await _sdk_round(api, mid)
            pages: list[dict[str, float]] = []
            sdk: list[float] = []
            for i in range(rounds):
                pages.append(await _browser_round(browser, api, mid))
                sdk.append(await _sdk_round(api, mid))
                _progress(f"round {i + 1}: page {pages[-1]['total']:.0f} ms, sdk {sdk[-1]:.0f} ms")
        finally:
            await browser.close()
    kb = await _bundle_kb(api)
    await api.http.aclose()
    totals = [p["total"] for p in pages]
    rows = [
        {"path": "page: open → host's first frame on screen", "n": len(totals),
         "p50_ms": percentile(totals, 50), "p95_ms": percentile(totals, 95)},
        {"path": "  of which: navigation → page interactive", "n": len(pages),
         "p50_ms": percentile([p["script"] for p in pages], 50),
         "p95_ms": percentile([p["script"] for p in pages], 95)},
        {"path": "  of which: navigation → token answered", "n": len(pages),
         "p50_ms": percentile([p["token"] for p in pages], 50),
         "p95_ms": percentile([p["token"] for p in pages], 95)},
        {"path": "SDK: token request → host's first frame", "n": len(sdk),
         "p50_ms": percentile(sdk, 50), "p95_ms": percentile(sdk, 95)},
    ]  # fmt: skip
    report(
        "web_join",
        rows,
        {
            "page_over_sdk_p50": (percentile(totals, 50) or 0) / (percentile(sdk, 50) or 1),
            "meeting_bundle_kb": round(kb, 1),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    run_in_local_stack(lambda stack: _bench(stack, args.rounds))


if __name__ == "__main__":
    main()
