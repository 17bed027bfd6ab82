"""The scorecard site: a folder a reader opens from file:// or any static web server.

SITE/listing.jsonl            one line per certification (harness/scorecard/listing.py)
SITE/listing.schema.json      its schema, for readers who process the listing
SITE/index.html               every certification: filters (kept in the URL query) and sorting
SITE/chains/<family>-<name>.html   one chain across versions, with a capacity / p99 trend
SITE/compare.html?a=…&b=…     two certifications side by side
SITE/runs/<digest[:16]>/      each signed folder copied whole: its report, results and signature
SITE/keys/<key id>.pub        the public key the folders were checked against

The pages are jinja2 templates (reports/scorecard/*.j2, autoescape on) sharing the run
report's styles and zh / en switch. Vendor strings reach script only as JSON inside
<script type="application/json"> with `<`, `>` and `&` escaped, are read with JSON.parse and
shown with textContent; they become file names only through `chain_slug`, which refuses
anything but a short lowercase name.

The site is built in a sibling folder and swapped in at the end, so a failed build leaves
the previous site as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from cryptography.hazmat.primitives import serialization
from markupsafe import Markup

from harness import paths, signing, validation
from harness.errors import InfraError, InputError
from harness.model import SEVERITIES
from harness.report.html import bilingual, fmt, verdict_class
from harness.scorecard import collect, listing

LISTING = "listing.jsonl"
TEMPLATES = ("index.html.j2", "chain.html.j2", "compare.html.j2")
SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,47}")
GRADES = ("A", "B", "C", "F")


@dataclass
class Built:
    """What `build` wrote: the site folder, its listing lines and the folders it skipped."""

    out: Path
    lines: list[dict[str, Any]]
    skipped: list[collect.Skipped] = field(default_factory=list)
    duplicates: list[Path] = field(default_factory=list)


def chain_slug(family: Any, name: Any) -> str:
    """The chain page's file name: `<family>-<name>` when both are short lowercase names,
    else a hash of the two (a vendor's string never becomes a path component unchecked)."""
    if isinstance(family, str) and isinstance(name, str) and SAFE_NAME.fullmatch(family) \
            and SAFE_NAME.fullmatch(name) and ".." not in family + name:
        return f"{family}-{name}"
    return "chain-" + hashlib.sha256(json.dumps([family, name]).encode()).hexdigest()[:16]


def chain_pages(lines: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(family, name) → chains/<slug>.html, with hashed names wherever two chains would
    share a name (family "a-b" name "c" and family "a" name "b-c")."""
    keys = sorted({(e["chain"]["family"], e["chain"]["name"]) for e in lines})
    slugs = {k: chain_slug(*k) for k in keys}
    taken: dict[str, int] = {}
    for slug in slugs.values():
        taken[slug] = taken.get(slug, 0) + 1
    return {k: f"chains/{s if taken[s] == 1 else chain_slug(None, list(k))}.html" for k, s in slugs.items()}


def script_json(value: Any) -> Markup:
    """JSON for a <script type="application/json"> block: `</script>`, `<!--` and `&` cannot
    end or alter the block, whatever the strings hold."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return Markup(text)


# ---------------------------------------------------------------- building

def prepare_out(out: Path) -> None:
    """Refuse to overwrite anything but an empty folder or a previous scorecard."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(str(out), None, "a folder for the site (empty, or a previous scorecard)")
    if out.is_dir() and any(out.iterdir()) and not (out / LISTING).is_file():
        raise InputError(str(out), None, "an empty folder or a previous scorecard (with listing.jsonl); "
                         "it holds other files, which a scorecard build would replace")


def build(roots: list[Path], out: Path, key: Path, skip_invalid: bool = False) -> Built:
    """Check every certification folder under `roots` and write the site into `out`."""
    trusted = signing.load_public(key)
    prepare_out(out)
    found = collect.find(roots)
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "runs").mkdir(parents=True)
    try:
        built = Built(out=out, lines=[])
        details: dict[str, Any] = {}
        for number, folder in enumerate(found):
            copy = staging / "runs" / f".incoming-{number}"
            try:
                # A FIFO would block the copy, a link would pull in another folder: refused
                # before copying. Then the copy is checked, not the original: what is
                # published is exactly what was checked.
                _, strange = signing.signed_files(folder)
                if strange:
                    raise InputError(str(folder), None, f"tampered: {strange[0]} is a link or a special "
                                     "file, not a signed file")
                shutil.copytree(folder, copy, symlinks=True)
                cert = collect.check(copy, trusted, origin=folder)
                target = staging / "runs" / listing.prefix(cert.digest)
                if target.exists():
                    built.duplicates.append(folder)
                    shutil.rmtree(copy)
                    continue
                entry = listing.line(cert)
            except InputError as exc:
                shutil.rmtree(copy, ignore_errors=True)
                if not skip_invalid:
                    raise InputError(None, None, _one_line(exc, folder)) from None
                built.skipped.append(collect.Skipped(folder, _one_line(exc, folder)))
                continue
            except OSError as exc:
                shutil.rmtree(copy, ignore_errors=True)
                raise InfraError(f"cannot copy {folder} into the site: {exc}") from None
            os.replace(copy, target)
            built.lines.append(entry)
            details[listing.prefix(cert.digest)] = listing.requirement_verdicts(cert.results)
        built.lines.sort(key=lambda e: (e["date"] or "", e["started_at"] or "", e["digest"]), reverse=True)
        listing.write(staging / LISTING, built.lines)
        shutil.copy(validation.SCHEMA_DIR / f"{listing.SCHEMA}.schema.json", staging / "listing.schema.json")
        pem = trusted.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        (staging / "keys").mkdir()
        (staging / "keys" / f"{signing.key_id(trusted)}.pub").write_bytes(pem)
        write_pages(staging, built.lines, details)
        _swap(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return built


def _one_line(exc: InputError, folder: Path, limit: int = 600) -> str:
    """The refusal as one line naming the folder; a vendor's string quoted in it (a schema
    error shows the value) cannot add lines or run to megabytes."""
    text = " ".join(str(exc).split())
    text = text if str(folder) in text else f"{folder}: {text}"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _swap(staging: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- pages

def _environment() -> jinja2.Environment:
    folder = paths.home() / "reports"
    if not (folder / "scorecard" / "index.html.j2").is_file():
        raise InfraError(f"scorecard templates are missing from {folder / 'scorecard'} "
                         "(set BCTEST_HOME to the bctest checkout that holds reports/)")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             finalize=lambda v: "-" if v is None else v)
    env.filters.update(fmt=fmt, bilingual=bilingual, vclass=verdict_class, script_json=script_json)
    return env


def write_pages(site: Path, lines: list[dict[str, Any]], details: dict[str, Any]) -> None:
    env = _environment()
    pages = chain_pages(lines)
    rows = [{**e, "prefix": listing.prefix(e["digest"]),
             "chain_page": pages[(e["chain"]["family"], e["chain"]["name"])]} for e in lines]
    common = {"severities": SEVERITIES, "categories": listing.CATEGORIES, "verdicts": listing.VERDICTS,
              "count": len(rows)}

    def options(pick: Any) -> list[str]:
        return sorted({v for v in map(pick, rows) if isinstance(v, str)})

    filters = {"vendor": options(lambda e: e["vendor"]["name"]),
               "family": options(lambda e: e["chain"]["family"]),
               "consensus": options(lambda e: e["chain"]["consensus"]),
               "grade": [g for g in GRADES if any(e["grade"] == g for e in rows)]}
    _write(site / "index.html", env.get_template("scorecard/index.html.j2").render(
        rows=rows, filters=filters, root="", **common))
    _write(site / "compare.html", env.get_template("scorecard/compare.html.j2").render(
        rows=rows, details=details, root="", **common))
    (site / "chains").mkdir(exist_ok=True)
    for key, page in pages.items():
        history = sorted((r for r in rows if (r["chain"]["family"], r["chain"]["name"]) == key),
                         key=lambda r: (r["started_at"] or "", r["digest"]))
        _write(site / page, env.get_template("scorecard/chain.html.j2").render(
            rows=history, family=key[0], name=key[1], trends=trends(history), root="../",
            previous=_previous(history), **common))


def _previous(history: list[dict[str, Any]]) -> dict[str, str]:
    """Each certification's predecessor of the same vendor (for "compare with previous")."""
    before: dict[str, str] = {}
    last: dict[str, str] = {}
    for row in history:
        vendor = row["vendor"]["name"]
        if vendor in last:
            before[row["prefix"]] = last[vendor]
        last[vendor] = row["prefix"]
    return before


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- trend charts

WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 520, 220, 56, 16, 14, 46
COLOURS = ("#2f5b8a", "#b42318", "#1a7f37", "#8a5a00", "#6e40c9", "#0f766e")


def trends(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Geometry of the capacity and p99 trend charts (inline SVG drawn by chain.html.j2):
    one point per certification in time order, one line per vendor."""
    charts = []
    for key, label, unit, pick in (
            ("capacity", {"en": "Capacity", "zh": "容量"}, "tx/s", lambda r: r["capacity"]["value"]),
            ("latency", {"en": "Latency p99", "zh": "p99 时延"}, "ms", lambda r: r["latency_p99_ms"])):
        values = [pick(r) for r in history]
        known = [v for v in values if isinstance(v, (int, float))]
        top = max(known, default=0) or 1.0
        top = _nice(top)
        inner_w, inner_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
        step = inner_w / max(len(history) - 1, 1)
        xs = [PAD_LEFT + (i * step if len(history) > 1 else inner_w / 2) for i in range(len(history))]
        vendors = list(dict.fromkeys(r["vendor"]["name"] for r in history))
        series = []
        for number, vendor in enumerate(vendors):
            points = [{"x": round(xs[i], 1), "y": round(PAD_TOP + inner_h * (1 - v / top), 1),
                       "value": v, "version": r["chain"]["version"], "prefix": r["prefix"]}
                      for i, (r, v) in enumerate(zip(history, values, strict=True))
                      if r["vendor"]["name"] == vendor and isinstance(v, (int, float))]
            series.append({"vendor": vendor, "colour": COLOURS[number % len(COLOURS)], "points": points,
                           "path": " ".join(f"{p['x']},{p['y']}" for p in points)})
        ticks = [{"y": round(PAD_TOP + inner_h * (1 - f), 1), "label": fmt(top * f, 0)} for f in (0, 0.5, 1)]
        labels = [{"x": round(x, 1), "text": _short(r["chain"]["version"])}
                  for x, r in zip(xs, history, strict=True)]
        charts.append({"id": key, "label": label, "unit": unit, "series": series, "ticks": ticks,
                       "labels": labels, "empty": not known, "width": WIDTH, "height": HEIGHT,
                       "left": PAD_LEFT, "right": WIDTH - PAD_RIGHT, "top": PAD_TOP,
                       "bottom": HEIGHT - PAD_BOTTOM})
    return charts


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above `value` (a round axis top)."""
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return value


def _short(text: str, limit: int = 14) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
