"""Hostile chain packs, written into a test's tmp folder: the vendor as an adversary."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def write_pack(folder: Path, image: dict[str, Any], name: str = "evil",
               dockerfile: bool = True) -> Path:
    """A chain pack that is valid except for what `image` says. Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"name": name, "version": "1", "family": "evm", "consensus": {"kind": "single"},
           "chain_id": 31337, "image": image, "ports": {"rpc": 8545}}
    (folder / "chain.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    if dockerfile:
        (folder / "Dockerfile").write_text("ARG BASE_IMAGE=debian:bookworm-slim\nFROM ${BASE_IMAGE}\n")
    return folder


def go_build(artifact: dict[str, Any], tag: str = "bctest-vendor/evil:1") -> dict[str, Any]:
    return {"tag": tag, "build": {"dockerfile": "Dockerfile", "artifacts": [artifact]}}


def save_tar(path: Path, files: dict[str, Any]) -> Path:
    """A tar shaped like `docker save`: each name -> JSON-able content or raw bytes."""
    with tarfile.open(path, "w") as tar:
        for name, content in files.items():
            data = content if isinstance(content, bytes) else json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def manifest(*tags: str) -> list[dict[str, Any]]:
    return [{"Config": "0" * 64 + ".json", "RepoTags": list(tags), "Layers": []}]


def bctest(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
