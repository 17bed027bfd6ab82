"""The plan's three-tier network: which node sits in which zone and tier, and the links
between zones.

A suite's `topology:` lists zones in order; nodes are numbered zone by zone (node0 is the
first zone's first node). Each zone has a tier — management (national supervision),
root (province/city: the consensus participants) or application (regional full nodes
that serve clients) — and may name its parent zone. A node's role IS its tier's name; it
reaches the image as BCTEST_NODE_ROLE, its zone as BCTEST_ZONE.

`links:` give the egress profile between two tiers or two zones (a zone pair overrides a
tier pair); harness/faults/links.py applies them for the whole run. Pure: imported by the
suite loader and by the judge (from the History header) alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputError

TIERS = ("management", "root", "application")
# Where each tier draws in the report, top to bottom, and the role's meaning in words.
TIER_TITLES = {"management": "national management", "root": "province/city root",
               "application": "regional application"}
ZONE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
RATE = re.compile(r"^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit)$")


@dataclass(frozen=True)
class Zone:
    name: str
    tier: str
    nodes: tuple[int, ...]          # node indexes, consecutive
    parent: str | None = None


@dataclass(frozen=True)
class LinkProfile:
    """One direction's egress shaping: each end delays/limits/drops what it sends across."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate: str | None = None         # tc rate, e.g. 10mbit
    loss: float = 0.0               # share of packets dropped

    def describe(self) -> str:
        parts = []
        if self.delay_ms:
            parts.append(f"{self.delay_ms:g} ms" + (f" ± {self.jitter_ms:g}" if self.jitter_ms else ""))
        if self.rate:
            parts.append(self.rate)
        if self.loss:
            parts.append(f"{self.loss * 100:g} % loss")
        return ", ".join(parts) or "unshaped"

    def as_dict(self) -> dict[str, Any]:
        return {"delay_ms": self.delay_ms, "jitter_ms": self.jitter_ms, "rate": self.rate,
                "loss": self.loss}


@dataclass(frozen=True)
class Link:
    between: tuple[str, str]        # two tier names or two zone names, as the suite wrote them
    profile: LinkProfile


@dataclass(frozen=True)
class Topology:
    zones: tuple[Zone, ...]
    links: tuple[Link, ...] = ()
    _by_node: dict[int, Zone] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_node.update({i: zone for zone in self.zones for i in zone.nodes})

    @property
    def count(self) -> int:
        return sum(len(zone.nodes) for zone in self.zones)

    def zone(self, name: str) -> Zone:
        for zone in self.zones:
            if zone.name == name:
                return zone
        raise KeyError(name)

    def zone_of(self, index: int) -> Zone:
        return self._by_node[index]

    def role_of(self, index: int) -> str:
        return self._by_node[index].tier

    def roles(self) -> tuple[str, ...]:
        """Each node's role, by node index."""
        return tuple(self.role_of(i) for i in range(self.count))

    def used_tiers(self) -> tuple[str, ...]:
        return tuple(t for t in TIERS if any(z.tier == t for z in self.zones))

    def tier_nodes(self, tier: str) -> tuple[int, ...]:
        return tuple(i for zone in self.zones if zone.tier == tier for i in zone.nodes)

    def descendants(self, name: str) -> tuple[str, ...]:
        """The zone and every zone below it (by `parent`), in suite order."""
        found = {name}
        changed = True
        while changed:
            changed = False
            for zone in self.zones:
                if zone.parent in found and zone.name not in found:
                    found.add(zone.name)
                    changed = True
        return tuple(z.name for z in self.zones if z.name in found)

    def nodes_in(self, selector: str) -> tuple[int, ...]:
        """`zone:<name>` (the zone and the zones below it), `tier:<name>`, or a bare zone or
        tier name. KeyError for a name that is neither."""
        kind, _, name = selector.partition(":") if ":" in selector else ("", "", selector)
        if kind in ("tier", "") and name in TIERS:
            return self.tier_nodes(name)
        if kind in ("zone", "") and any(z.name == name for z in self.zones):
            names = set(self.descendants(name))
            return tuple(sorted(i for z in self.zones if z.name in names for i in z.nodes))
        raise KeyError(selector)

    def profile(self, source: int, destination: int) -> LinkProfile | None:
        """The egress profile of node `source` towards node `destination`: the link naming
        both zones, else the one naming both tiers; None inside a zone or with no link."""
        a, b = self.zone_of(source), self.zone_of(destination)
        if a.name == b.name:
            return None
        for link in self.links:
            if set(link.between) == {a.name, b.name}:
                return link.profile
        for link in self.links:   # a tier pair; [application, application]: between two regions
            if link.between[0] in TIERS and set(link.between) == {a.tier, b.tier}:
                return link.profile
        return None

    def header(self) -> dict[str, Any]:
        """The History header's `topology` part (JSON)."""
        return {"zones": [{"name": z.name, "tier": z.tier, "parent": z.parent, "nodes": list(z.nodes)}
                          for z in self.zones],
                "links": [{"between": list(link.between), **link.profile.as_dict()}
                          for link in self.links],
                "roles": list(self.roles())}

    @staticmethod
    def from_header(doc: dict[str, Any]) -> Topology:
        zones = tuple(Zone(name=z["name"], tier=z["tier"], nodes=tuple(z["nodes"]), parent=z.get("parent"))
                      for z in doc.get("zones", []))
        links = tuple(Link(between=tuple(link["between"]), profile=LinkProfile(
            delay_ms=float(link.get("delay_ms") or 0), jitter_ms=float(link.get("jitter_ms") or 0),
            rate=link.get("rate"), loss=float(link.get("loss") or 0))) for link in doc.get("links", []))
        return Topology(zones=zones, links=links)


def parse(doc: dict[str, Any], file: str) -> Topology:
    """The suite's `topology:` (its shape checked by the schema; here what the schema cannot)."""
    zones: list[Zone] = []
    names: set[str] = set()
    next_index = 0
    for n, entry in enumerate(doc["zones"]):
        where = f"topology.zones[{n}]"
        name = entry["name"]
        if not ZONE_NAME.match(name) or name in TIERS:
            raise InputError(file, f"{where}.name", "a zone name of lower-case letters, digits and '-' "
                             f"(at most 32, not a tier name), got {name!r}")
        if name in names:
            raise InputError(file, f"{where}.name", f"a name no other zone has; '{name}' is used twice")
        parent = entry.get("parent")
        if parent is not None and parent not in names:
            raise InputError(file, f"{where}.parent", f"a zone listed before this one; '{parent}' is not")
        names.add(name)
        count = int(entry["nodes"])
        zones.append(Zone(name=name, tier=entry["tier"], parent=parent,
                          nodes=tuple(range(next_index, next_index + count))))
        next_index += count
    if not any(zone.tier == "root" for zone in zones):
        raise InputError(file, "topology.zones", "at least one zone of tier 'root' (the consensus "
                         "participants; a transaction is committed when the root nodes hold it)")
    links = []
    for n, entry in enumerate(doc.get("links", [])):
        where = f"topology.links[{n}]"
        between = tuple(entry["between"])
        for k, end in enumerate(between):
            if end not in TIERS and end not in names:
                raise InputError(file, f"{where}.between[{k}]", f"a tier ({', '.join(TIERS)}) or a zone "
                                 f"of this topology, got {end!r}")
        if (between[0] in TIERS) != (between[1] in TIERS):
            raise InputError(file, f"{where}.between", "two tiers or two zones, not one of each")
        if between[0] == between[1] and between[0] not in TIERS:
            raise InputError(file, f"{where}.between", "two different zones (inside a zone nothing "
                             "is shaped)")
        rate = entry.get("rate")
        if rate is not None and not RATE.match(rate):
            raise InputError(file, f"{where}.rate", f"a tc rate like 10mbit, got {rate!r}")
        profile = LinkProfile(delay_ms=float(entry.get("delay_ms", 0)),
                              jitter_ms=float(entry.get("jitter_ms", 0)), rate=rate,
                              loss=float(entry.get("loss", 0)))
        if profile.jitter_ms > profile.delay_ms:
            raise InputError(file, f"{where}.jitter_ms", f"at most delay_ms ({profile.delay_ms:g}), got "
                             f"{profile.jitter_ms:g}")
        if profile == LinkProfile():
            raise InputError(file, where, "at least one of delay_ms, rate, loss")
        for m, earlier in enumerate(links):
            if set(earlier.between) == set(between):
                raise InputError(file, f"{where}.between", f"a pair no other link names; "
                                 f"links[{m}] names it already")
        links.append(Link(between=between, profile=profile))   # type: ignore[arg-type]
    return Topology(zones=tuple(zones), links=tuple(links))
