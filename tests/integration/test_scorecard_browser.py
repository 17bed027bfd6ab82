"""The scorecard site in a real browser: headless Chromium over the DevTools protocol (the
helpers of test_report_browser.py), every page opened from file://.

The site is built by the real CLI from the signed fixtures plus a folder whose vendor
strings attack the pages. The test drives the filters as a reader does and counts the rows
left, reloads the page and expects the URL query to bring the same view back, follows every
link the pages show (files and anchors exist), switches to Chinese, checks that no page
logs an error, runs a vendor's script or opens a dialog, and checks the screenshots: the
right size, not blank, and the table, chart and highlight regions hold what they should.
"""

from __future__ import annotations

import asyncio
import base64
import html.parser
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import matplotlib.image
import numpy as np
import pytest

from tests.integration.conftest import bctest
from tests.integration.test_report_browser import TIMEOUT, Chromium, DevTools, chromium_binary
from tests.unit.test_scorecard import HOSTILE, signed_fixtures

WIDTH, HEIGHT = 1280, 900
ROWS = "document.querySelectorAll('#compare tbody tr{}').length"
VISIBLE = "Array.from(document.querySelectorAll('#certs tbody tr')).filter(r => !r.hidden).length"
HREFS = "Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"


class Page:
    """One tab: navigate, evaluate, click, screenshot."""

    def __init__(self, cdp: DevTools, session: str) -> None:
        self.cdp, self.session = cdp, session

    async def open(self, url: str) -> None:
        loaded = self.cdp.expect("Page.loadEventFired")
        navigation = await self.cdp.send("Page.navigate", {"url": url}, self.session)
        assert "errorText" not in navigation, navigation
        await asyncio.wait_for(loaded, TIMEOUT)

    async def reload(self) -> None:
        loaded = self.cdp.expect("Page.loadEventFired")
        await self.cdp.send("Page.reload", {"ignoreCache": True}, self.session)
        await asyncio.wait_for(loaded, TIMEOUT)

    async def js(self, expression: str) -> Any:
        return await self.cdp.evaluate(expression, self.session)

    async def choose(self, select: str, value: str) -> None:
        """Pick a value as a reader's click would: set it and fire the change event."""
        await self.js(f"(() => {{ const s = document.querySelector({json.dumps(select)}); "
                      f"s.value = {json.dumps(value)}; "
                      "s.dispatchEvent(new Event('change', {bubbles: true})); })()")

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        at = await self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                           "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                           "return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()")
        for kind in ("mousePressed", "mouseReleased"):
            await self.cdp.send("Input.dispatchMouseEvent", {"type": kind, "x": at["x"], "y": at["y"],
                                                             "button": "left", "clickCount": 1}, self.session)

    async def shot(self, selector: str | None = None) -> np.ndarray:
        """A PNG screenshot (of the page's top, or of one element), checked as a PNG and
        returned as pixels."""
        await self.js("window.scrollTo(0, 0)")
        if selector:
            box = await self.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                                ".getBoundingClientRect(); return {x: r.x + scrollX, y: r.y + scrollY, "
                                "width: r.width, height: r.height}; })()")
        else:
            box = {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT}
        assert box["width"] > 50 and box["height"] > 20, (selector, box)
        reply = await self.cdp.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "clip": {**box, "scale": 1}}, self.session)
        png = base64.b64decode(reply["data"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(io.BytesIO(png))[..., :3]
        assert abs(pixels.shape[1] - round(box["width"])) <= 1
        assert abs(pixels.shape[0] - round(box["height"])) <= 1
        return pixels


def not_blank(pixels: np.ndarray, least_ink: float = 0.02) -> None:
    ink = np.any(pixels < 0.9, axis=-1).mean()   # share of pixels that are not near-white
    assert pixels.std() > 0.05 and least_ink < ink < 0.7, (pixels.std(), ink)


def share_near(pixels: np.ndarray, colour: str, tolerance: float = 0.06) -> float:
    """The share of pixels within `tolerance` of an #rrggbb colour."""
    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return float(np.all(np.abs(pixels - rgb) < tolerance, axis=-1).mean())


class Ids(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name == "id" and value)


def ids_of(path: Path) -> set[str]:
    parser = Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.ids


def resolves(href: str, site: Path) -> str | None:
    """None when a link from the site points at a file (and anchor) inside it; else why not."""
    parts = urlsplit(href)
    if parts.scheme != "file":
        return f"{href}: not a file of the site"
    target = Path(unquote(parts.path))
    if not target.is_file():
        return f"{href}: no such file"
    if site.resolve() not in target.resolve().parents:
        return f"{href}: outside the site"
    if parts.fragment and target.suffix == ".html" and parts.fragment not in ids_of(target):
        return f"{href}: no element with id {parts.fragment!r}"
    return None


async def browse(ws_url: str, site: Path, shots: Path) -> dict[str, Any]:
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
            page, found = Page(cdp, session), {"hrefs": set()}
            index = (site / "index.html").as_uri()

            # -------------------------------------------------- index: filters and the URL
            await page.open(index)
            found["all"] = await page.js(VISIBLE)
            found["shown_all"] = await page.js("document.getElementById('shown-count').textContent")
            pixels = await page.shot()
            matplotlib.image.imsave(shots / "index.png", pixels)
            not_blank(pixels)
            table = await page.shot("#certs")
            not_blank(table, least_ink=0.05)
            found["grade_F_red"] = share_near(await page.shot("#certs"), "#fdecea")   # the F badge
            found["hrefs"].update(await page.js(HREFS))

            await page.choose("#f-vendor", "acme")
            found["acme"] = await page.js(VISIBLE)
            found["acme_url"] = await page.js("location.search")
            await page.reload()
            found["acme_reloaded"] = await page.js(VISIBLE)
            found["acme_select_reloaded"] = await page.js("document.getElementById('f-vendor').value")
            # the hostile vendor as a filter value: one row, and the URL brings it back intact
            hostile = await page.js("Array.from(document.querySelectorAll('#f-vendor option'))"
                                    ".map(o => o.value).find(v => v.startsWith('<script>'))")
            await page.choose("#f-vendor", hostile)
            found["hostile"] = await page.js(VISIBLE)
            await page.reload()
            found["hostile_reloaded"] = await page.js(VISIBLE)
            found["hostile_value"] = await page.js("document.getElementById('f-vendor').value")
            await page.choose("#f-vendor", "")
            await page.choose("#f-family", "evm")
            found["evm"] = await page.js(VISIBLE)
            await page.choose("#f-grade", "C")
            found["evm_C"] = await page.js(VISIBLE)
            await page.click("#f-clear")
            found["cleared"] = await page.js(VISIBLE)
            await page.choose("#f-consensus", "bft")
            found["bft"] = await page.js(VISIBLE)
            await page.click("#f-clear")
            await page.js("(() => { const f = document.getElementById('f-from'); f.value = '2026-11-24'; "
                          "f.dispatchEvent(new Event('input', {bubbles: true})); "
                          "const t = document.getElementById('f-to'); t.value = '2026-11-28'; "
                          "t.dispatchEvent(new Event('change', {bubbles: true})); })()")
            found["dates"] = await page.js(VISIBLE)
            found["dates_url"] = await page.js("location.search")

            # a shared link opens the same view
            await page.open(index + "?grade=F&sort=capacity&dir=asc")
            found["shared_F"] = await page.js(VISIBLE)
            await page.open(index + "?sort=capacity&dir=desc")
            found["by_capacity"] = await page.js(
                "Array.from(document.querySelectorAll('#certs tbody tr')).map(r => "
                "JSON.parse(document.getElementById('listing').textContent)[+r.dataset.i].capacity.value)")
            await page.click("#certs th[data-key='capacity'] button")   # a second click: ascending
            found["by_capacity_asc"] = await page.js(
                "Array.from(document.querySelectorAll('#certs tbody tr')).map(r => "
                "JSON.parse(document.getElementById('listing').textContent)[+r.dataset.i].capacity.value)")
            found["sort_url"] = await page.js("location.search")

            # two ticked rows make the compare link
            await page.open(index)
            boxes = await page.js(
                "Array.from(document.querySelectorAll('#certs input.pick')).map(b => b.value)")
            await page.click(f"#row-{boxes[0]} input.pick")
            await page.click(f"#row-{boxes[1]} input.pick")
            found["compare_href"] = await page.js("document.getElementById('compare-link').href")

            # -------------------------------------------------- Chinese
            found["heading_en"] = await page.js("document.getElementById('certifications-heading').innerText")
            await page.click("label[for='lang-zh']")
            found["heading_zh"] = await page.js("document.getElementById('certifications-heading').innerText")
            found["zh_url"] = await page.js("location.search")
            await page.reload()
            found["zh_reloaded"] = await page.js("document.getElementById('lang-zh').checked")
            found["heading_zh_reloaded"] = await page.js(
                "document.getElementById('certifications-heading').innerText")
            zh = await page.shot("#certs")
            not_blank(zh, least_ink=0.05)
            matplotlib.image.imsave(shots / "index-zh.png", await page.shot())

            # -------------------------------------------------- chain pages and compare
            found["chain_pages"] = {}
            for chain in sorted((site / "chains").glob("*.html")):
                await page.open(chain.as_uri())
                found["hrefs"].update(await page.js(HREFS))
                found["chain_pages"][chain.name] = await page.js(
                    "document.querySelectorAll('#chart-capacity circle').length")
            await page.open((site / "chains" / "evm-anvil.html").as_uri())
            chart = await page.shot("#chart-capacity svg")
            matplotlib.image.imsave(shots / "chain-anvil.png", await page.shot())
            found["chart_line"] = share_near(chart, "#2f5b8a", 0.08)
            found["compare_from_chain"] = await page.js(
                "Array.from(document.querySelectorAll('a')).filter(a => a.href.includes('compare.html?'))"
                ".map(a => a.href)")

            await page.open(found["compare_href"])
            found["compare_rows"] = await page.js(ROWS.format(""))
            found["compare_diff"] = await page.js(ROWS.format(".diff"))
            found["hrefs"].update(await page.js(HREFS))
            compare = await page.shot("#compare")
            not_blank(compare, least_ink=0.03)
            found["diff_highlight"] = share_near(compare, "#fff4d6", 0.03)
            matplotlib.image.imsave(shots / "compare.png", await page.shot())
            await page.choose("#pick-b", boxes[0])   # the same one twice: nothing differs
            found["same_diff"] = await page.js(ROWS.format(".diff"))
            found["same_url"] = await page.js("location.search")
            await page.open(found["compare_from_chain"][0])
            found["chain_compare_rows"] = await page.js(ROWS.format(""))
            found["chain_compare_picked"] = await page.js(
                "[document.getElementById('pick-a').value, document.getElementById('pick-b').value]")

            await asyncio.sleep(0.2)  # late console messages
            found["problems"] = cdp.problems()
            found["dialogs"] = [e for e in cdp.events if e.get("method") == "Page.javascriptDialogOpening"]
            return found
        finally:
            cdp.reader.cancel()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chromium_binary()
    folder = tmp_path_factory.mktemp("scorecard-browser")
    root, public = signed_fixtures(folder, hostile=True)
    done = bctest("scorecard", "build", str(root), "--out", str(folder / "site"), "--key", str(public),
                  timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "site"


def test_scorecard_site_in_chromium(site: Path, tmp_path: Path) -> None:
    browser = Chromium(chromium_binary(), tmp_path / "profile")
    try:
        found = asyncio.run(browse(browser.ws_url, site, site))
    finally:
        browser.close()
    lines = [json.loads(t) for t in (site / "listing.jsonl").read_text(encoding="utf-8").splitlines()]

    assert found["problems"] == [], found["problems"]
    assert found["dialogs"] == [], "a vendor's string ran as script"
    # filters change the visible rows, and the URL keeps them
    assert found["all"] == 6 and found["shown_all"] == "6"
    assert found["acme"] == 2 and "vendor=acme" in found["acme_url"]
    assert found["acme_reloaded"] == 2 and found["acme_select_reloaded"] == "acme"
    assert found["hostile"] == 1 and found["hostile_reloaded"] == 1 and found["hostile_value"] == HOSTILE
    assert found["evm"] == 3 and found["evm_C"] == 1 and found["cleared"] == 6
    assert found["bft"] == 2   # globex's cometbft and the hostile folder (consensus bft)
    assert found["dates"] == 3, found   # globex 11-25, acme 1.8.0 11-27, initech 11-28 (inclusive)
    assert "from=2026-11-24" in found["dates_url"] and "to=2026-11-28" in found["dates_url"]
    assert found["shared_F"] == 1
    capacities = [c for c in found["by_capacity"] if c is not None]
    assert capacities == sorted(capacities, reverse=True) and found["by_capacity"][-1] is None
    ascending = [c for c in found["by_capacity_asc"] if c is not None]
    assert ascending == sorted(ascending) and "dir=asc" in found["sort_url"]
    # the switch to Chinese, kept in the URL too
    assert found["heading_en"].strip() == "Certifications" and found["heading_zh"].strip() == "认证"
    assert "lang=zh" in found["zh_url"] and found["zh_reloaded"]
    assert found["heading_zh_reloaded"].strip() == "认证"
    # every link resolves: files inside the site, anchors that exist
    broken = [why for href in sorted(found["hrefs"]) if (why := resolves(href, site))]
    assert broken == [] and len(found["hrefs"]) > 30, broken
    for line in lines:
        assert any(h.endswith(line["links"]["report"]) for h in found["hrefs"])
    # chain pages: a point per certification; compare: rows, differences highlighted
    assert found["chain_pages"]["evm-anvil.html"] == 2 and len(found["chain_pages"]) == 5
    assert found["chart_line"] > 0.002, found["chart_line"]   # the trend line is drawn
    assert found["compare_rows"] > 30 and found["compare_diff"] >= 5
    assert found["diff_highlight"] > 0.05, found["diff_highlight"]
    assert found["same_diff"] == 0 and "a=" in found["same_url"] and "b=" in found["same_url"]
    assert found["chain_compare_rows"] > 30 and len(set(found["chain_compare_picked"])) == 2
    # the F grade is shown in its colour
    assert found["grade_F_red"] > 0.0002, found["grade_F_red"]
    assert HOSTILE in [line["vendor"]["name"] for line in lines]
    for name in ("index.png", "index-zh.png", "chain-anvil.png", "compare.png"):
        assert (site / name).stat().st_size > 10_000
