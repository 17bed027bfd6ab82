"""Clock skew on real nodes: the harness's libfaketime, preloaded at creation, moves a
Litecoin node's clock when the fault rewrites its timestamp file (its blocks are stamped
3 h ahead and its peer refuses them as too far in the future), and a CometBFT node (a
static Go binary) is skipped with that reason."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pytest

from harness import adapters, chainpack
from harness.adapters.bitcoin import BitcoinAdapter
from harness.faults import kinds
from harness.faults.kinds import skew
from harness.faults.nemesis import Nemesis
from harness.faults.schedule import plan
from harness.runtime.docker import DockerRuntime, remove_run

from .conftest import ROOT

THREE_HOURS = 3 * 3600


@pytest.fixture(autouse=True)
def _needs_libfaketime():
    if not skew.host_library().is_file():
        pytest.skip(f"{skew.host_library()} is missing on this host (apt-get install libfaketime; "
                    "scripts/setup installs it)")


def _steps(nodes: int, target: str, seconds: float):
    steps = plan([{"action": "skew", "target": [target], "seconds": seconds, "at": 0, "duration": 1}],
                 nodes, 0, 1, 1000.0, "test.yaml")
    return [dataclasses.replace(s, start=0.0, end=600.0) for s in steps]


def _run(coroutine):
    return asyncio.run(coroutine)


def test_a_miner_three_hours_ahead_has_its_blocks_refused(docker_client, litecoin_image, tmp_path):
    pack = chainpack.load(ROOT / "chains" / "litecoin")
    adapter = BitcoinAdapter(pack, pack.params, nodes=2, seed=1, accounts=4)
    steps = _steps(2, "node1", THREE_HOURS)
    run_id = "skew" + uuid.uuid4().hex[:8]
    runtime = DockerRuntime(docker_client, run_id, tmp_path / "logs")
    extras = kinds.container_options(steps, 2, tmp_path)
    assert set(extras) == {1}, "only the node the skew step names is preloaded"
    try:
        nodes = runtime.start(pack, pack.image_tag, 2, adapter.node_files(), pack.params, extras=extras)
        rpc = [adapter._sync(n) for n in nodes]

        async def ready():
            deadline = time.monotonic() + 90
            for node in nodes:
                while (reason := await adapter.ready(node)) is not None:
                    assert time.monotonic() < deadline, f"{node.name} not ready: {reason}"
                    await asyncio.sleep(0.25)
            await adapter.close()
        _run(ready())
        rpc[0].call("generatetodescriptor", 1, "raw(51)")
        deadline = time.monotonic() + 30
        while rpc[1].call("getblockcount") < 1:
            assert time.monotonic() < deadline, "node1 never followed node0's block"
            time.sleep(0.2)

        nemesis = Nemesis(runtime, nodes, steps)

        async def apply():
            nemesis.t0 = time.monotonic()
            await nemesis._apply(steps[0])
        _run(apply())
        record = nemesis.records[steps[0].id]
        assert record.status == "active", record.reason
        assert record.params["skewed"] == ["node1"] and record.params["offset_at_start"] == "+10800"
        assert "libfaketime" in record.method

        # node1's own view of time: the block it mines is stamped ~3 h ahead (libfaketime
        # re-reads the file within ~2 s).
        deadline = time.monotonic() + 10
        while True:
            [mined] = rpc[1].call("generatetodescriptor", 1, "raw(51)")
            ahead = rpc[1].call("getblockheader", mined)["time"] - time.time()
            if ahead > THREE_HOURS - 60 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert THREE_HOURS - 60 < ahead < THREE_HOURS + 60, f"node1's block is {ahead:.0f} s ahead"
        # node0 does not take it (more than 2 h past its own clock), and says why when
        # handed the block itself.
        tip1 = rpc[1].call("getblockcount")
        time.sleep(5)
        assert rpc[0].call("getblockcount") < tip1
        assert mined not in {tip["hash"] for tip in rpc[0].call("getchaintips")}
        assert rpc[0].call("submitblock", rpc[1].call("getblock", mined, 0)) == "time-too-new"

        _run(nemesis.heal_all())
        assert record.status == "healed"
        clock = tmp_path.resolve() / "faketime" / "node1" / skew.CLOCK_FILE
        assert clock.read_text() == "+0\n"
        # The mount is read-only to the node: it cannot move its own clock back.
        denied = docker_client.containers.get(nodes[1].container_id).exec_run(
            ["sh", "-c", f"echo +5 > {skew.MOUNT}/{skew.CLOCK_FILE}"])
        assert denied.exit_code != 0
    finally:
        remove_run(docker_client, run_id)


def test_a_static_cometbft_node_is_skipped_with_the_reason(docker_client, cometbft_image, tmp_path):
    pack = chainpack.load(ROOT / "chains" / "cometbft")
    adapter = adapters.adapter_class(pack.family)(pack, pack.params, 1, 1, 4)
    steps = _steps(1, "node0", 600)
    run_id = "skew" + uuid.uuid4().hex[:8]
    runtime = DockerRuntime(docker_client, run_id, tmp_path / "logs")
    try:
        nodes = runtime.start(pack, pack.image_tag, 1, adapter.node_files(), pack.params,
                              extras=kinds.container_options(steps, 1, tmp_path))
        deadline = time.monotonic() + 30
        while "cometbft" not in _program(runtime, nodes[0]):   # the entrypoint script execs it
            assert time.monotonic() < deadline, "cometbft never started"
            time.sleep(0.5)
        nemesis = Nemesis(runtime, nodes, steps)

        async def apply():
            nemesis.t0 = time.monotonic()
            await nemesis._apply(steps[0])
        _run(apply())
        record = nemesis.history()[0]
        assert record.status == "skipped" and record.start is None
        assert "statically linked" in record.reason and "cometbft" in record.reason, record.reason
        assert "statically linked" in record.params["not_skewed"]["node0"]
        assert (tmp_path.resolve() / "faketime" / "node0" / skew.CLOCK_FILE).read_text() == "+0\n"
    finally:
        remove_run(docker_client, run_id)


def _program(runtime, node) -> str:
    import os
    pid = runtime.pid(node)
    try:
        return os.readlink(f"/proc/{pid}/exe") if pid > 0 else ""
    except OSError:
        return ""
