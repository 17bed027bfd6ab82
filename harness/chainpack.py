"""Chain pack manifests: chains/<name>/chain.yaml (see docs/chain-pack.md)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import packpolicy, paths
from harness.errors import InputError
from harness.validation import load_and_validate

# The share of nodes that must hold a transaction before it counts as committed. The test
# center's by consensus kind: a pack may raise it (a stricter claim), never lower it (a
# vendor could otherwise count a tx as committed when one node of many held it).
DEFAULT_COMMIT_SHARE = {"single": 1.0, "bft": 1.0, "cft": 1.0, "pow": 0.5}


@dataclass(frozen=True)
class ChainPack:
    name: str
    version: str
    family: str
    consensus: str
    folder: Path
    manifest: Path
    image_tag: str
    build: dict[str, Any] | None
    tarball: Path | None
    ports: dict[str, int]
    chain_id: int
    readiness_probe: str
    readiness_timeout: float
    progress_blocks: int
    resources: dict[str, Any]
    capabilities: list[str]
    command: list[str] | None
    params: dict[str, Any]
    options: dict[str, Any]
    commit_share: float
    min_nodes: int
    max_nodes: int | None
    data_dir: str | None = None     # where the node keeps its ledger (the disk fault's target)
    reference: bool = False         # one of the test center's own packs (chains/ of this checkout)
    # Three-tier roles the nodes can take (harness/topology.py): role -> what such a node runs as
    roles: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def fault_tolerance(self, nodes: int) -> int:
        """How many faulty nodes the consensus kind tolerates at this size."""
        if self.consensus == "bft":
            return (nodes - 1) // 3
        if self.consensus == "cft":
            return (nodes - 1) // 2
        return 0

    def manifest_hash(self) -> str:
        return hashlib.sha256(self.manifest.read_bytes()).hexdigest()


def resolve(reference: str, relative_to: Path | None = None) -> Path:
    """A pack reference is a folder path (relative to the suite) or a name under chains/."""
    candidates = []
    if relative_to is not None:
        candidates.append(relative_to / reference)
    candidates += [Path(reference), paths.home() / "chains" / reference]
    for candidate in candidates:
        try:
            if (candidate / "chain.yaml").is_file():
                return candidate.resolve()
            if candidate.name == "chain.yaml" and candidate.is_file():
                return candidate.parent.resolve()
        except (OSError, ValueError):  # a name too long, a NUL byte: not a path to anything
            continue
    known = sorted(p.parent.name for p in (paths.home() / "chains").glob("*/chain.yaml"))
    raise InputError(None, None, f"chain pack '{reference}' not found: expected a folder with "
                     f"chain.yaml or one of: {', '.join(known) or '(none installed)'}")


def load(folder: Path) -> ChainPack:
    manifest = folder / "chain.yaml"
    doc = load_and_validate(manifest, "chainpack")
    consensus = doc["consensus"]
    image = doc["image"]
    try:
        packpolicy.check_tree(folder, folder, str(manifest))
        tarball, build = _image_sources(folder, manifest, image)
    except (OSError, ValueError) as exc:  # a path the OS cannot even look up
        raise InputError(str(manifest), "image", f"not a usable path ({exc})") from None
    reference = is_reference(folder)
    packpolicy.check_tag(image["tag"], doc["name"], reference,
                         creates=tarball is not None or build is not None, file=str(manifest))
    if tarball is not None:
        packpolicy.check_tarball(tarball, image["tag"], str(manifest))
    min_nodes = consensus.get("min_nodes", 1)
    max_nodes = consensus.get("max_nodes", 1 if consensus["kind"] == "single" else None)
    if max_nodes is not None and min_nodes > max_nodes:
        raise InputError(str(manifest), "consensus.min_nodes",
                         f"expected at most max_nodes ({max_nodes}), got {min_nodes}")
    readiness = doc.get("readiness", {})
    kind = consensus["kind"]
    return ChainPack(
        name=doc["name"],
        version=doc["version"],
        family=doc["family"],
        consensus=kind,
        folder=folder,
        manifest=manifest,
        image_tag=image["tag"],
        build=build,
        tarball=tarball,
        ports=dict(doc["ports"]),
        chain_id=doc.get("chain_id", 1337),
        readiness_probe=readiness.get("probe", "adapter"),
        readiness_timeout=float(readiness.get("timeout", 60)),
        progress_blocks=readiness.get("progress_blocks", 0),
        resources=doc.get("resources", {}),
        capabilities=doc.get("capabilities", []),
        command=doc.get("command"),
        params=doc.get("params", {}),
        options=doc.get("options", {}),
        commit_share=commit_share(consensus, kind, manifest),
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        data_dir=doc.get("data_dir"),
        reference=reference,
        roles=dict(doc.get("roles", {})),
        raw=doc,
    )


def is_reference(folder: Path) -> bool:
    """The test center's own packs are the folders of this checkout's chains/ (links resolved):
    only they may name images in the bctest/ namespace."""
    try:
        return folder.resolve().parent == (paths.home() / "chains").resolve()
    except (OSError, RuntimeError):
        return False


def _image_sources(folder: Path, manifest: Path, image: dict[str, Any]) -> tuple[Path | None, dict | None]:
    """The tarball path and build spec of a pack, each checked to exist inside the pack."""
    file = str(manifest)
    tarball = None
    if "tarball" in image:
        tarball = packpolicy.resolve_inside(folder, image["tarball"], file, "image.tarball")
        if not tarball.is_file():
            raise InputError(file, "image.tarball", f"file {tarball} does not exist")
    build = image.get("build")
    if build is not None:
        context = packpolicy.resolve_inside(folder, build.get("context", "."), file, "image.build.context")
        if not context.is_dir():
            raise InputError(file, "image.build.context", f"folder {context} does not exist")
        # Inside the context, not only the pack: docker-py reads a Dockerfile outside the
        # context from the host and sends it along.
        dockerfile = packpolicy.resolve_inside(context, build.get("dockerfile", "Dockerfile"), file,
                                               "image.build.dockerfile")
        if not dockerfile.is_file():
            raise InputError(file, "image.build.dockerfile", f"file {dockerfile} does not exist")
        for index, artifact in enumerate(build.get("artifacts", [])):
            field = f"image.build.artifacts[{index}]"
            packpolicy.check_artifact(artifact, file, field)
            packpolicy.resolve_inside(context, artifact["dest"], file, f"{field}.dest")
    return tarball, build


def commit_share(consensus: dict, kind: str, manifest: Path) -> float:
    floor = DEFAULT_COMMIT_SHARE[kind]
    share = consensus.get("commit_share", floor)
    if share < floor:
        raise InputError(str(manifest), "consensus.commit_share",
                         f"at least {floor:g} for a {kind} chain (the test center's commit threshold; "
                         f"a pack may only raise it), got {share:g}")
    return float(share)
