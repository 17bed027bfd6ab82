"""The report's Topology section of a run with a topology (docs/topology.md, "Report"): the
picture's layout, the per-zone and per-link tables, and the structure checkers' evidence
as sentences a tester can quote, in English and Chinese.

The picture is an inline SVG drawn by reports/report.html.j2 from the layout made here:
tiers as rows top to bottom (management, root, application), zones as labelled boxes
holding their nodes (circles coloured by role), lines between related zones labelled with
the link profile ("20 ms ± 2") and the RTT the link shaper measured. A zone that a fault
cut is drawn dashed red, with the fault and its window. Only numbers are computed here;
every string reaches the page through jinja2's autoescape (zone names are schema-limited to
[a-z0-9-], but results.json is judged as hostile input anyway).
"""

from __future__ import annotations

from typing import Any

from harness.topology import TIERS, Topology

TIER_LABELS = {"management": ("Management (national)", "管理节点（国家级）"),
               "root": ("Root (province / city)", "根节点（省 / 市级）"),
               "application": ("Application (regional)", "应用节点（区域级）")}
ROLE_COLOURS = {"management": "#8250df", "root": "#2f5b8a", "application": "#1a7f37"}
LEFT = 170          # room for the tier labels
TOP = 56            # above the first row: room for arcs between zones of one row
ROW = 210           # from one row's top to the next: room for the link labels between
BOX_H = 80
NODE_STEP = 46      # px per node in a zone box
GAP = 40            # between zone boxes of a row
CHAR = 7.4          # px per character of a zone name (12 px bold)
MAX_NODES_DRAWN = 12   # a larger zone draws this many circles and "+N"


def _text(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def _ms(value: Any, digits: int = 1) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:,.{digits}f} ms"


def _s(ms: Any) -> str:
    return "-" if not isinstance(ms, (int, float)) else f"{ms / 1000:,.3f} s"


def _g(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _topology(doc: dict[str, Any]) -> Topology | None:
    try:
        return Topology.from_header(doc)
    except (KeyError, TypeError, ValueError):
        return None


def _node_names(results: dict[str, Any], count: int) -> list[str]:
    nodes = results.get("nodes") or []
    return [str(nodes[i].get("name") or f"node{i}") if i < len(nodes) else f"node{i}" for i in range(count)]


def _faulted(results: dict[str, Any], names: list[str]) -> list[tuple[dict[str, Any], set[int]]]:
    """Applied faults with the node indexes they acted on (results.json names them node<i>)."""
    index = {name: i for i, name in enumerate(names)} | {f"node{i}": i for i in range(len(names))}
    out = []
    for fault in results.get("faults") or []:
        if not isinstance(fault.get("start"), (int, float)):
            continue
        hit = {index[n] for n in fault.get("nodes") or [] if isinstance(n, str) and n in index}
        if hit:
            out.append((fault, hit))
    return out


def _measured(applied: Any) -> dict[frozenset[str], list[float]]:
    """Unordered zone pair -> the RTT p50s the link shaper measured (one per direction)."""
    found: dict[frozenset[str], list[float]] = {}
    pairs = applied.get("pairs") if isinstance(applied, dict) else None
    for pair in pairs if isinstance(pairs, list) else []:
        if not isinstance(pair, dict):
            continue
        rtt = pair.get("rtt_ms")
        p50 = rtt.get("p50") if isinstance(rtt, dict) else None
        if isinstance(p50, (int, float)) and not isinstance(p50, bool):
            found.setdefault(frozenset((str(pair.get("from")), str(pair.get("to")))), []).append(float(p50))
    return found


def _rtt(values: list[float] | None) -> str | None:
    """'RTT 41.3 ms', or both directions' when they differ ('RTT 41.3 / 44.0 ms')."""
    if not values:
        return None
    shown = sorted({f"{v:,.1f}" for v in values}, key=lambda text: float(text.replace(",", "")))
    return "RTT " + " / ".join(shown) + " ms"


def _drawn(topology: Topology, a: str, b: str) -> bool:
    """Whether the picture draws a line between zones a and b (the tables list every pair):
    a parent and its child, a pair a link names, or an upper row's zone and a lower row's
    zone without a parent (it hangs off every zone of the tier above)."""
    za, zb = topology.zone(a), topology.zone(b)
    if za.parent == b or zb.parent == a:
        return True
    if any(set(link.between) == {a, b} for link in topology.links):
        return True
    rows = [t for t in TIERS if t in topology.used_tiers()]
    ia, ib = rows.index(za.tier), rows.index(zb.tier)
    if abs(ia - ib) != 1:
        return False
    lower = za if ia > ib else zb
    return lower.parent is None


def link_rows(topology: Topology, applied: Any) -> list[dict[str, Any]]:
    """Every zone pair with a profile (as the topology resolves it), with the measured RTT."""
    measured = _measured(applied)
    rows = []
    zones = topology.zones
    for n, za in enumerate(zones):
        for zb in zones[n + 1:]:
            profile = topology.profile(za.nodes[0], zb.nodes[0]) if za.nodes and zb.nodes else None
            if profile is None:
                continue
            rows.append({"a": za.name, "b": zb.name, "profile": profile.describe(),
                         "rtt": _rtt(measured.get(frozenset((za.name, zb.name)))),
                         "drawn": _drawn(topology, za.name, zb.name)})
    return rows


def _spread(box: dict[str, Any], others: list[float]) -> list[float]:
    """x of each line's end on one side of `box`, in the order of the other ends' x: lines
    leaving one box apart, so that neither they nor their labels pile up."""
    order = sorted(range(len(others)), key=lambda k: others[k])
    xs = [0.0] * len(others)
    for rank, k in enumerate(order):
        xs[k] = box["x"] + box["w"] * (rank + 1) / (len(others) + 1)
    return xs


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _lines(boxes: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The drawn links: a path, and a label placed along it where no other label is."""
    down: dict[str, list[int]] = {}   # box name -> the lines leaving its bottom
    up: dict[str, list[int]] = {}     # box name -> the lines entering its top
    ends = []
    for k, row in enumerate(rows):
        a, b = boxes[row["a"]], boxes[row["b"]]
        upper, lower = (a, b) if a["y"] <= b["y"] else (b, a)
        ends.append((upper, lower))
        if upper["y"] != lower["y"]:
            down.setdefault(upper["name"], []).append(k)
            up.setdefault(lower["name"], []).append(k)
    x_top: dict[int, float] = {}
    x_bottom: dict[int, float] = {}
    for name, ks in down.items():
        x_top.update(zip(ks, _spread(boxes[name], [ends[k][1]["cx"] for k in ks]), strict=True))
    for name, ks in up.items():
        x_bottom.update(zip(ks, _spread(boxes[name], [ends[k][0]["cx"] for k in ks]), strict=True))
    placed: list[tuple[float, float, float, float]] = [
        (b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"]) for b in boxes.values()]
    out = []
    for k, row in enumerate(rows):
        upper, lower = ends[k]
        rtt = row["rtt"]
        lw = max(len(row["profile"]), len(rtt or "")) * 6.0 + 12
        lh = 30 if rtt else 17
        if upper["y"] == lower["y"]:   # one row: an arc above the two boxes
            (x1, x2), top = sorted((upper["cx"], lower["cx"])), upper["y"]
            lift = 24 + 8 * min(4, (x2 - x1) / 300)
            path = f"M {x1:.1f} {top:.1f} Q {(x1 + x2) / 2:.1f} {top - 2 * lift:.1f} {x2:.1f} {top:.1f}"
            candidates = [((x1 + x2) / 2, top - lift + 4)]
        else:
            x1, y1, x2, y2 = x_top[k], upper["y"] + upper["h"], x_bottom[k], lower["y"]
            path = f"M {x1:.1f} {y1:.1f} L {x2:.1f} {y2:.1f}"
            candidates = [(x1 + (x2 - x1) * f, y1 + (y2 - y1) * f) for f in (0.5, 0.3, 0.7, 0.2, 0.8)]
        for lx, ly in candidates:
            rect = (lx - lw / 2, ly - 12, lx + lw / 2, ly - 12 + lh)
            if not any(_overlaps(rect, other) for other in placed):
                break
        else:
            lx, ly = candidates[0]
            rect = (lx - lw / 2, ly - 12, lx + lw / 2, ly - 12 + lh)
        placed.append(rect)
        out.append({"path": path, "lx": lx, "ly": ly, "lw": lw, "lh": lh, "label": row["profile"],
                    "rtt": rtt, "a": row["a"], "b": row["b"]})
    return out


def layout(results: dict[str, Any]) -> dict[str, Any] | None:
    """Coordinates and labels of the topology picture; None when the run had no topology."""
    doc = results.get("topology")
    topology = _topology(doc) if isinstance(doc, dict) else None
    if topology is None or not topology.zones:
        return None
    names = _node_names(results, topology.count)
    faulted = _faulted(results, names)
    rows = [t for t in TIERS if t in topology.used_tiers()]
    widths = {z.name: max(120.0, len(z.name) * CHAR + 24,
                          min(len(z.nodes), MAX_NODES_DRAWN + 1) * NODE_STEP + 16) for z in topology.zones}
    row_width = {t: sum(widths[z.name] for z in topology.zones if z.tier == t)
                 + GAP * (sum(1 for z in topology.zones if z.tier == t) - 1) for t in rows}
    width = LEFT + max(row_width.values()) + 24
    height = TOP + ROW * (len(rows) - 1) + BOX_H + 44
    boxes: dict[str, dict[str, Any]] = {}
    tiers = []
    for r, tier in enumerate(rows):
        y = TOP + ROW * r
        en, zh = TIER_LABELS[tier]
        tiers.append({"tier": tier, "y": y + BOX_H / 2, "label": _text(en, zh)})
        x = LEFT + (width - 24 - LEFT - row_width[tier]) / 2
        for zone in (z for z in topology.zones if z.tier == tier):
            w = widths[zone.name]
            shown = zone.nodes[:MAX_NODES_DRAWN]
            start = x + (w - len(shown) * NODE_STEP) / 2 + NODE_STEP / 2
            cuts = [(f, hit) for f, hit in faulted if set(zone.nodes) and set(zone.nodes) <= hit]
            boxes[zone.name] = {
                "name": zone.name, "tier": tier, "x": x, "y": y, "w": w, "h": BOX_H,
                "cx": x + w / 2, "colour": ROLE_COLOURS[tier], "parent": zone.parent,
                "nodes": [{"name": names[i], "cx": start + k * NODE_STEP, "cy": y + 42,
                           "faulted": any(i in hit for _, hit in faulted)} for k, i in enumerate(shown)],
                "more": len(zone.nodes) - len(shown),
                "cut": [{"id": str(f.get("id")), "action": str(f.get("action")),
                         "start": f.get("start"), "end": f.get("end")} for f, _ in cuts],
            }
            x += w + GAP
    lines = _lines(boxes, [row for row in link_rows(topology, doc.get("links_applied")) if row["drawn"]])
    return {"width": round(width), "height": round(height), "tiers": tiers,
            "zones": list(boxes.values()), "lines": lines,
            "legend": [{"tier": t, "colour": ROLE_COLOURS[t], "label": _text(*TIER_LABELS[t])} for t in rows]}


def zone_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-zone table: tier, nodes, submitted, committed, latency p50 / p99 (measure)."""
    zones = results.get("zones")
    if not isinstance(zones, dict):
        return []
    rows = []
    for name, figures in zones.items():
        if not isinstance(figures, dict):
            continue
        latency = figures.get("latency") if isinstance(figures.get("latency"), dict) else {}
        rows.append({"name": str(name), "tier": figures.get("tier"), "parent": figures.get("parent"),
                     "nodes": ", ".join(str(n) for n in figures.get("nodes") or []),
                     "submitted": figures.get("submitted"), "committed": figures.get("committed"),
                     "p50": latency.get("p50"), "p99": latency.get("p99")})
    return rows


def _checker(results: dict[str, Any], check_id: str) -> dict[str, Any] | None:
    return next((c for c in results.get("checkers") or [] if isinstance(c, dict) and c.get("id") == check_id),
                None)


def supervision_sentences(results: dict[str, Any]) -> list[dict[str, str]]:
    found = _checker(results, "supervision")
    e = (found or {}).get("evidence") or {}
    if not found or "completeness" not in e:
        return []
    lag = e.get("lag_ms") or {}
    who = ", ".join(str(n) for n in e.get("management_nodes") or [])
    share = e.get("completeness")
    share_text = "-" if not isinstance(share, (int, float)) else f"{share:.2%}"
    bound = _g(e.get("bound"))
    out = [_text(
        f"The management tier ({who}) held {e.get('held', 0):,} of {e.get('pairs', 0):,} committed "
        f"transaction copies by the end of the run ({share_text}). After each commit on the root tier "
        f"it had the transaction within p50 {_s(lag.get('p50'))}, p99 {_s(lag.get('p99'))}, max "
        f"{_s(lag.get('max'))} (bound {bound} s; {e.get('late', 0):,} later than the bound).",
        f"管理层（{who}）在运行结束前持有已上链交易 {e.get('held', 0):,} / {e.get('pairs', 0):,} 份"
        f"（{share_text}）。相对根节点层上链时间的滞后：p50 {_s(lag.get('p50'))}，p99 {_s(lag.get('p99'))}，"
        f"最大 {_s(lag.get('max'))}（上限 {bound} s；超过上限 {e.get('late', 0):,} 笔）。")]
    out.append(_text(
        f"Missing after the bound: {e.get('missing_count', 0):,}; not yet due when the run stopped "
        f"watching: {e.get('pending_count', 0):,}; left out of the lag because a fault cut the node: "
        f"{e.get('excluded_during_faults', 0):,}; seen only in the final read: "
        f"{e.get('held_in_final_read_only', 0):,}.",
        f"超过上限仍缺失：{e.get('missing_count', 0):,} 笔；"
        f"运行停止观察时尚未到期：{e.get('pending_count', 0):,} 笔；"
        f"因故障隔离该节点而未计入滞后：{e.get('excluded_during_faults', 0):,} 笔；仅在最终读取中可见："
        f"{e.get('held_in_final_read_only', 0):,} 笔。"))
    for missing in (e.get("missing") or [])[:3]:
        out.append(_text(f"Missing: tx {missing.get('tx')} ({missing.get('id')}), committed at "
                         f"{missing.get('committed_at')} s, never reached {missing.get('node')}.",
                         f"缺失：交易 {missing.get('tx')}（{missing.get('id')}），"
                         f"于 {missing.get('committed_at')} s "
                         f"上链，始终未到达 {missing.get('node')}。"))
    return out


def freshness_sentences(results: dict[str, Any]) -> list[dict[str, str]]:
    found = _checker(results, "freshness")
    e = (found or {}).get("evidence") or {}
    nodes = e.get("nodes")
    if not found or not isinstance(nodes, dict):
        return []
    bound = _g(e.get("bound"))
    out = []
    for name, n in nodes.items():
        if not isinstance(n, dict):
            continue
        lag = n.get("lag_ms") or {}
        caught = n.get("caught_up")
        en_end = {True: "caught up", False: "had NOT caught up",
                  None: "could not be compared"}.get(caught, "-")
        zh_end = {True: "已追上", False: "未追上", None: "无法比较"}.get(caught, "-")
        recover_en = recover_zh = ""
        for r in n.get("recoveries") or []:
            after = r.get("caught_up_after_s")
            recover_en += (f" After {r.get('fault')} healed at {r.get('healed_at')} s it reached the root "
                           f"tier's height {r.get('root_height')} "
                           + (f"{after} s later." if after is not None else "never (while watched)."))
            recover_zh += (f" {r.get('fault')} 于 {r.get('healed_at')} s 恢复后，"
                           + (f"{after} s 内追上根节点层高度 {r.get('root_height')}。" if after is not None
                              else f"（观察期内）始终未追上根节点层高度 {r.get('root_height')}。"))
        out.append(_text(
            f"{name} ({n.get('zone')}) followed the root tier over {n.get('samples', 0):,} blocks: lag "
            f"p50 {_s(lag.get('p50'))}, p99 {_s(lag.get('p99'))}, max {_s(lag.get('max'))} (bound "
            f"{bound} s); {n.get('excluded', 0):,} blocks during faults on it left out; it ended at height "
            f"{n.get('tip')} and {en_end} (root tier at {e.get('root_tip_at_settle')} when the settle "
            f"began).{recover_en}",
            f"{name}（{n.get('zone')}）跟随根节点层共 {n.get('samples', 0):,} 个区块："
            f"滞后 p50 {_s(lag.get('p50'))}，"
            f"p99 {_s(lag.get('p99'))}，最大 {_s(lag.get('max'))}（上限 {bound} s）；故障期间的 "
            f"{n.get('excluded', 0):,} 个区块未计入；结束时高度 {n.get('tip')}，{zh_end}"
            f"（收尾开始时根节点层高度 "
            f"{e.get('root_tip_at_settle')}）。{recover_zh}"))
    return out


def cut_zones(results: dict[str, Any]) -> dict[str, list[str]]:
    """fault id -> the zones whose every node the fault acted on (for the fault table)."""
    doc = results.get("topology")
    topology = _topology(doc) if isinstance(doc, dict) else None
    if topology is None:
        return {}
    names = _node_names(results, topology.count)
    out: dict[str, list[str]] = {}
    for fault, hit in _faulted(results, names):
        zones = [z.name for z in topology.zones if z.nodes and set(z.nodes) <= hit]
        if zones:
            out[str(fault.get("id"))] = zones
    return out


def view(results: dict[str, Any]) -> dict[str, Any] | None:
    """Everything the Topology section shows; None when the run had no topology."""
    picture = layout(results)
    if picture is None:
        return None
    doc = results["topology"]
    topology = _topology(doc)
    applied = doc.get("links_applied") if isinstance(doc.get("links_applied"), dict) else None
    links = link_rows(topology, applied) if topology else []
    checkers = {c: _checker(results, c) for c in ("supervision", "freshness")}
    return {"svg": picture, "zones": zone_rows(results), "links": links, "cuts": cut_zones(results),
            "method": str(applied.get("method")) if applied and applied.get("method") else None,
            "figures": {k: doc.get(k) for k in ("supervision_completeness", "supervision_lag_p99_ms",
                                                "application_lag_p99_ms")},
            "supervision": {"verdict": (checkers["supervision"] or {}).get("verdict"),
                            "why": (checkers["supervision"] or {}).get("why"),
                            "sentences": supervision_sentences(results)} if checkers["supervision"] else None,
            "freshness": {"verdict": (checkers["freshness"] or {}).get("verdict"),
                          "why": (checkers["freshness"] or {}).get("why"),
                          "sentences": freshness_sentences(results)} if checkers["freshness"] else None}

