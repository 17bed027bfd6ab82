"""Integration tests run real chain nodes in a real Docker Engine.

Without an engine they skip with the reason, unless BCTEST_REQUIRE_DOCKER=1 (set by
scripts/test, which CI runs): then a missing engine is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def docker_client():
    from harness.errors import InfraError
    from harness.runtime.docker import connect

    try:
        return connect()
    except InfraError as exc:
        if os.environ.get("BCTEST_REQUIRE_DOCKER") == "1":
            pytest.fail(f"BCTEST_REQUIRE_DOCKER=1 but {exc}")
        pytest.skip(f"no Docker Engine: {exc}")


def chain_image(client, name: str) -> str:
    """Build (or reuse) a reference chain's image before a timed run needs it: a cold
    build (go install of geth or CometBFT) takes minutes on a fresh machine."""
    from harness import chainpack
    from harness.runtime import images

    return images.ensure(client, chainpack.load(ROOT / "chains" / name))


@pytest.fixture(scope="session")
def anvil_image(docker_client):
    return chain_image(docker_client, "anvil")


@pytest.fixture(scope="session")
def cometbft_image(docker_client):
    return chain_image(docker_client, "cometbft")


@pytest.fixture(scope="session")
def geth_image(docker_client):
    return chain_image(docker_client, "geth-clique")


@pytest.fixture(scope="session")
def litecoin_image(docker_client):
    return chain_image(docker_client, "litecoin")


def bctest(*args: str, timeout: float = 600, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the real CLI in its own process, as a tester would."""
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, timeout=timeout,
                          capture_output=True, text=True)


def run_objects(client, run_id: str) -> list[str]:
    label = {"label": f"bctest.run={run_id}"}
    return ([c.name for c in client.containers.list(all=True, filters=label)]
            + [n.name for n in client.networks.list(filters=label)]
            + [v.name for v in client.volumes.list(filters=label)])


def write_suite(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(body)
    return path


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def delayers_in(pid: int) -> list[str]:
    """NFQUEUE delayer processes (harness.faults.nfqueue) in the network namespace of `pid`."""
    ns = os.readlink(f"/proc/{pid}/ns/net")
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (proc.name.isdigit() and b"harness.faults.nfqueue" in (proc / "cmdline").read_bytes()
                    and os.readlink(proc / "ns" / "net") == ns):
                found.append(proc.name)
        except OSError:
            pass
    return found
