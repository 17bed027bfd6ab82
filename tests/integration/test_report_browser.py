"""report.html in a real browser: headless Chromium, driven over the DevTools protocol.

Each page (a single run with requirements, checkers and faults; a campaign) is opened from
file://, must load without a console error, an uncaught exception or a failed request,
show every chart, switch to Chinese when the 中文 label is clicked, and leave a full-page
screenshot next to it (report.png).

The single run is a stored CometBFT fault run when one is at hand (BCTEST_REPORT_RUN, by
default /tmp/r1), otherwise the sample anvil run with faults and checkers added; either
is re-judged by `bctest report`, against standards/reliability.yaml when it loads.

Without Chromium the tests skip with the reason, unless BCTEST_REQUIRE_DOCKER=1 (CI, via
scripts/test): then they fail. scripts/setup installs Debian's chromium.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import matplotlib.image
import numpy as np
import pytest

from harness.report import html
from tests.unit.test_report_campaign import build_campaign
from tests.unit.test_report_html import SAMPLE, judged
from tests.unit.test_topology_judge import topology_run

ROOT = Path(__file__).resolve().parents[2]
STORED_RUN = Path(os.environ.get("BCTEST_REPORT_RUN", "/tmp/r1"))
STANDARD = ROOT / "standards" / "reliability.yaml"
WIDTH, HEIGHT = 1280, 900            # the viewport, CSS pixels at scale 1: the screenshot's width
MAX_SHOT_HEIGHT = 16_000             # Chromium cannot capture taller surfaces
TIMEOUT = 30.0


# ------------------------------------------------------------------ the browser

def chromium_binary() -> str:
    for name in (os.environ.get("BCTEST_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    reason = "chromium is not installed (scripts/setup installs Debian's chromium)"
    if os.environ.get("BCTEST_REQUIRE_DOCKER") == "1":
        pytest.fail(f"BCTEST_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


class Chromium:
    """A headless Chromium in its own process group, with a throwaway profile."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.log: list[str] = []
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
             "--disable-gpu", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
             "--force-device-scale-factor=1", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, errors="replace", start_new_session=True)
        found = threading.Event()
        self.ws_url = ""

        def drain() -> None:  # keep reading stderr, or a chatty browser blocks on a full pipe
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line.rstrip())
                match = re.search(r"DevTools listening on (ws://\S+)", line)
                if match and not found.is_set():
                    self.ws_url = match.group(1)
                    found.set()

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + TIMEOUT
        while not found.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError("chromium did not print its DevTools address:\n" + "\n".join(self.log))

    def close(self) -> None:
        """Kill the browser and its helpers (the process group this test started)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


class DevTools:
    """The Chrome DevTools protocol over one websocket; page commands go to a flat session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict[str, Any]] = []
        self.waiters: list[tuple[str, asyncio.Future]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future and not future.done():
                    if "error" in data:
                        future.set_exception(RuntimeError(f"CDP error: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
                continue
            self.events.append(data)
            for method, future in list(self.waiters):
                if data.get("method") == method and not future.done():
                    future.set_result(data.get("params", {}))
                    self.waiters.remove((method, future))

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        return await asyncio.wait_for(future, TIMEOUT)

    def expect(self, method: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiters.append((method, future))
        return future

    async def evaluate(self, expression: str, session: str) -> Any:
        reply = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                     "awaitPromise": True}, session)
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries and failed requests so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(f"console.error: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url')})")
            elif method == "Network.loadingFailed":
                found.append(f"request failed: {params.get('errorText')} ({params.get('requestId')})")
        return found


HEADING = "document.querySelector('#summary h2').innerText"
IMAGES = "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"
HIDDEN = ("Array.from(document.querySelectorAll('main [lang=\"{lang}\"]'))"
          ".filter(e => getComputedStyle(e).display !== 'none').length")
LABEL = ("(() => { const r = document.querySelector('label[for=\"lang-zh\"]').getBoundingClientRect();"
         " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()")


async def inspect(ws_url: str, page: Path, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Open `page`, check it, switch it to Chinese and screenshot it (English) as report.png;
    `extra` names more expressions to evaluate in English (their values come back too)."""
    async with aiohttp.ClientSession() as client, client.ws_connect(ws_url, max_msg_size=0) as ws:
        cdp = DevTools(ws)
        try:
            target = await cdp.send("Target.createTarget", {"url": "about:blank"})
            session = (await cdp.send("Target.attachToTarget", {"targetId": target["targetId"],
                                                                "flatten": True}))["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                await cdp.send(f"{domain}.enable", session=session)
            await cdp.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT,
                                                                  "deviceScaleFactor": 1, "mobile": False},
                           session)
            loaded = cdp.expect("Page.loadEventFired")
            navigation = await cdp.send("Page.navigate", {"url": page.as_uri()}, session)
            assert "errorText" not in navigation, navigation
            await asyncio.wait_for(loaded, TIMEOUT)

            found: dict[str, Any] = {"images": await cdp.evaluate(IMAGES, session)}
            found["heading_en"] = await cdp.evaluate(HEADING, session)
            found["visible_zh_in_en"] = await cdp.evaluate(HIDDEN.replace("{lang}", "zh"), session)
            for name, expression in (extra or {}).items():
                found[name] = await cdp.evaluate(expression, session)

            size = (await cdp.send("Page.getLayoutMetrics", session=session))["cssContentSize"]
            height = min(int(size["height"]), MAX_SHOT_HEIGHT)
            shot = await cdp.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}}, session)
            found["png"] = base64.b64decode(shot["data"])
            found["page_height"] = size["height"]

            # switch language as a reader does: a real mouse click on the 中文 label
            at = await cdp.evaluate(LABEL, session)
            for kind in ("mousePressed", "mouseReleased"):
                await cdp.send("Input.dispatchMouseEvent", {"type": kind, "x": at["x"], "y": at["y"],
                                                            "button": "left", "clickCount": 1}, session)
            found["heading_zh"] = await cdp.evaluate(HEADING, session)
            found["visible_en_in_zh"] = await cdp.evaluate(HIDDEN.replace("{lang}", "en"), session)
            found["visible_zh_in_zh"] = await cdp.evaluate(HIDDEN.replace("{lang}", "zh"), session)
            await asyncio.sleep(0.2)  # late console messages
            found["problems"] = cdp.problems()
            return found
        finally:
            cdp.reader.cancel()


def check_page(page: Path, profile: Path, images: int, extra: dict[str, str] | None = None) -> dict[str, Any]:
    browser = Chromium(chromium_binary(), profile)
    try:
        found = asyncio.run(inspect(browser.ws_url, page, extra))
    finally:
        browser.close()

    assert found["problems"] == [], found["problems"]
    assert len(found["images"]) == images, found["images"]
    for image in found["images"]:
        assert image["complete"] and image["width"] > 0, image
    assert re.fullmatch(r"1\s*Summary", found["heading_en"].strip()), found["heading_en"]
    assert re.fullmatch(r"1\s*摘要", found["heading_zh"].strip()), found["heading_zh"]
    assert found["visible_zh_in_en"] == 0 and found["visible_en_in_zh"] == 0
    assert found["visible_zh_in_zh"] > 50

    png = found["png"]
    (page.parent / "report.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == WIDTH and height == min(int(found["page_height"]), MAX_SHOT_HEIGHT) > HEIGHT
    pixels = matplotlib.image.imread(io.BytesIO(png))
    assert pixels.shape[:2] == (height, width)
    ink = np.any(pixels[..., :3] < 0.9, axis=-1).mean()  # share of pixels that are not near-white
    assert pixels[..., :3].std() > 0.05 and 0.02 < ink < 0.6, (pixels[..., :3].std(), ink)
    return found


# ------------------------------------------------------------------ the pages

def _bctest_report(folder: Path) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "harness.cli", "report", str(folder)]
    if STANDARD.is_file():
        from harness.errors import InputError
        from harness.standards import catalogue
        try:
            catalogue.load(STANDARD)
            args += ["--standard", str(STANDARD)]
        except InputError as exc:
            warnings.warn(f"{STANDARD} does not load ({exc}); requirements come from a fixture", stacklevel=2)
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def single_run(folder: Path) -> Path:
    """A run folder re-judged by `bctest report`, then given whatever the page must show and
    the run lacks (faults, checkers, requirements)."""
    stored = STORED_RUN if (STORED_RUN / "history.jsonl").is_file() else SAMPLE
    shutil.copytree(stored, folder)
    for leftover in ("results.json", "report.html", "report.png"):
        (folder / leftover).unlink(missing_ok=True)
    done = _bctest_report(folder)
    assert done.returncode in (0, 1, 4), done.stdout + done.stderr
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    patched = copy.deepcopy(results)
    if not patched.get("faults"):
        patched["faults"] = [{"id": "kill-f", "action": "kill", "nodes": ["node0"], "start": 3.0, "end": 4.5,
                              "status": "healed", "method": "docker kill (SIGKILL), then docker start"}]
    if not patched.get("checkers"):
        patched["checkers"] = [{"id": "safety", "verdict": "pass", "why": None, "evidence": {"forks": []}}]
    if not patched.get("requirements"):
        patched.update(judged({"pressure-4": "history.jsonl", "bft-threshold": "history.jsonl",
                               "crash-restart": None}))
    if patched != results:
        html.write_run(folder / "report.html", patched, folder)
    return folder / "report.html"


def test_single_run_report_in_chromium(tmp_path: Path) -> None:
    chromium_binary()
    page = single_run(tmp_path / "run")
    text = page.read_text(encoding="utf-8")
    assert 'id="fault-log"' in text and 'id="checkers"' in text and 'class="req r-' in text
    check_page(page, tmp_path / "profile", images=3)


def test_campaign_report_in_chromium(tmp_path: Path) -> None:
    chromium_binary()
    folder = tmp_path / "campaign"
    folder.mkdir()
    campaign = build_campaign(folder)
    html.write_campaign(folder / "report.html", campaign, folder)
    check_page(folder / "report.html", tmp_path / "profile", images=0)
    # and a case report it links to opens as cleanly
    check_page(folder / "cases" / "bft-threshold" / "report.html", tmp_path / "profile-case", images=3)


# What the topology picture shows, measured in the page as laid out (CSS pixels).
ZONES = """Array.from(document.querySelectorAll('#topology-svg g.zone')).map(g => {
  const box = g.querySelector('rect.zone-box').getBoundingClientRect();
  const name = g.querySelector('text.zone-name');
  const label = name.getBoundingClientRect();
  return {zone: g.dataset.zone, name: name.textContent, cut: g.classList.contains('zone-cut'),
          w: box.width, h: box.height, shown: getComputedStyle(g).display !== 'none',
          inside: label.left >= box.left && label.right <= box.right && label.top >= box.top
                  && label.bottom <= box.bottom,
          nodes: Array.from(g.querySelectorAll('circle.node')).map(c => c.getBoundingClientRect().width)};
})"""
LINKS = """Array.from(document.querySelectorAll('#topology-svg g.link-label')).map(g =>
  ({between: g.dataset.between, text: Array.from(g.querySelectorAll('text')).map(t => t.textContent),
    w: g.getBoundingClientRect().width}))"""
TIERS = """Array.from(document.querySelectorAll('#topology-svg text.tier-label'))
  .filter(t => getComputedStyle(t).display !== 'none').map(t => t.textContent)"""
SVG_SIZE = "(() => { const r = document.querySelector('#topology-svg').getBoundingClientRect(); " \
           "return {w: r.width, h: r.height}; })()"


def test_topology_report_in_chromium(tmp_path: Path) -> None:
    """A three-tier run (a hand-built History re-judged by `bctest report`): the picture's zone
    boxes are laid out with their names and nodes inside, the link labels carry profile and
    measured RTT, the cut region is marked, and the page passes every check of a run page."""
    chromium_binary()
    folder = tmp_path / "topology-run"
    topology_run(folder)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert '<section id="topology">' in text and '<svg id="topology-svg"' in text
    found = check_page(folder / "report.html", tmp_path / "profile", images=3,
                       extra={"zones": ZONES, "links": LINKS, "tiers": TIERS, "svg": SVG_SIZE})
    zones = {z["zone"]: z for z in found["zones"]}
    assert list(zones) == ["national", "province-a", "region-1", "region-2"], zones
    for name, zone in zones.items():
        assert zone["name"] == name and zone["shown"] and zone["inside"], zone
        assert zone["w"] > 60 and zone["h"] > 40 and all(w > 10 for w in zone["nodes"]), zone
    assert [len(zones[z]["nodes"]) for z in zones] == [1, 2, 1, 1]
    assert zones["region-1"]["cut"] and not zones["region-2"]["cut"]
    links = {link["between"]: link["text"] for link in found["links"]}
    assert links == {"province-a national": ["40 ms", "RTT 80.9 ms"],
                     "province-a region-1": ["20 ms ± 2", "RTT 41.2 ms"],
                     "province-a region-2": ["20 ms ± 2"]}, links
    assert found["tiers"] == ["Management (national)", "Root (province / city)", "Application (regional)"]
    assert 300 < found["svg"]["w"] <= WIDTH and found["svg"]["h"] > 300, found["svg"]
