"""Litecoin Core regtest for real: the adapter's Python-signed transactions against real
nodes (testmempoolaccept), and a 4-node network through the CLI."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp

from harness import chainpack
from harness.adapters import jsonrpc
from harness.adapters.bitcoin import BitcoinAdapter
from harness.runtime.docker import DockerRuntime
from harness.tracker import CommitTracker

from .conftest import ROOT, bctest, results, run_objects, write_suite

PACK = ROOT / "chains" / "litecoin"


async def _ready(adapter: BitcoinAdapter, nodes, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    for node in nodes:
        while (reason := await adapter.ready(node)) is not None:
            assert time.monotonic() < deadline, f"{node.name} not ready: {reason}"
            await asyncio.sleep(0.25)


def test_signed_transactions_are_accepted_and_committed(docker_client, litecoin_image, tmp_path):
    """Two nodes: bootstrap mines and fans out, every sampled load tx passes
    testmempoolaccept on both nodes, and sent ones are reported once 2 blocks deep."""
    pack = chainpack.load(PACK)
    params = {**pack.params, "confirmations": 2, "block_interval": 0.5}
    adapter = BitcoinAdapter(pack, params, nodes=2, seed=5, accounts=16)
    runtime = DockerRuntime(docker_client, "t" + uuid.uuid4().hex[:9], tmp_path / "logs")

    async def scenario() -> None:
        nodes = await asyncio.to_thread(runtime.start, pack, pack.image_tag, 2,
                                        adapter.node_files(), params)
        try:
            await _ready(adapter, nodes)
            facts = await adapter.bootstrap(nodes)
            assert facts["block_production"] == "harness generatetoaddress every 0.5 s on node0"
            assert facts["chain"] == "regtest" and facts["coinbase_blocks"] == 101
            prepared = await asyncio.to_thread(adapter.prepare, 2500)   # two fan-out txs
            assert len(prepared) == 2500 and len({p.tx_id for p in prepared}) == 2500
            assert facts["utxos"] == 2500 and facts["fanout_txs"] == 3
            for node in nodes:
                for p in prepared[::125]:
                    raw = json.loads(p.body)["params"][0]
                    (verdict,) = await adapter._call(node, "testmempoolaccept", [[raw]])
                    assert verdict["allowed"], verdict
                    assert verdict["txid"] == p.tx_id
            # Send 40 exactly as the senders do, watch them become 2 deep on both nodes.
            tracker = CommitTracker([p.tx_id for p in prepared[:40]], 2, 1.0)
            stop = asyncio.Event()
            watchers = [asyncio.create_task(adapter.watch(n, tracker.on_block, stop, True, 0.05))
                        for n in nodes]
            driver = asyncio.create_task(adapter.drive(nodes, stop))
            async with aiohttp.ClientSession() as session:
                for i, p in enumerate(prepared[:40]):
                    async with session.post(nodes[i % 2].url() + adapter.submit_path, data=p.body,
                                            headers=adapter.submit_headers) as resp:
                        assert adapter.response_error(resp.status, await resp.read()) is None
                bad = jsonrpc.request_body("sendrawtransaction", ["00"], 1)
                async with session.post(nodes[0].url(), data=bad, headers=adapter.submit_headers) as resp:
                    assert resp.status == 500     # Core: RPC errors come with HTTP 500
                    error = adapter.response_error(resp.status, await resp.read())
                    assert error.startswith("TX decode failed") and error.endswith("(code -22)")
            deadline = time.monotonic() + 30
            while tracker.committed < 40 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            stop.set()
            methods = await asyncio.gather(*watchers)
            await driver
            assert methods == ["polling", "polling"]
            assert tracker.committed == 40
            assert facts["blocks_generated"] >= 2 and facts["generate_failures"] == 0
            held = {b.hash for b in tracker.blocks if b.tx_ids}
            tip = await adapter._call(nodes[1], "getblockcount")
            for block in tracker.blocks:
                assert block.number <= tip - 1       # reported only when 2 deep
                assert block.fetched >= block.seen
            assert held
            # Past height 432, where Core's default would activate MWEB on regtest and
            # generatetoaddress would start failing: the pack keeps MWEB inactive.
            await adapter._call(nodes[0], "generatetoaddress", [450, adapter.funder_address], timeout=120)
            info = await adapter._call(nodes[0], "getblockchaininfo")
            assert info["blocks"] > 550 and "mweb" not in info["softforks"]
        finally:
            await adapter.close()
            await asyncio.to_thread(runtime.teardown)

    asyncio.run(scenario())
    assert run_objects(docker_client, runtime.run_id) == []
    assert (tmp_path / "logs" / "node1.log").stat().st_size > 0


SUITE = """
name: litecoin-it
description: 4 Litecoin Core regtest nodes, a short run for the integration tests
chain: {pack}
nodes: 4
seed: 2
params:
  block_interval: 2
  confirmations: 2
workload:
  accounts: 64
load:
  rate: 40
  warmup: 5
  duration: 30
  settle: 20
commit:
  poll_interval: 0.1
checks:
  - id: committed at least 99% of submitted
    metric: success_ratio
    op: ">="
    value: 0.99
  - id: send rate within 2%
    metric: send_rate_ratio
    op: ">="
    value: 0.98
"""


def test_four_litecoin_nodes_through_the_cli(docker_client, litecoin_image, tmp_path):
    suite = write_suite(tmp_path, "litecoin-it", SUITE.format(pack=PACK))
    run_dir = tmp_path / "run"
    done = bctest("run", str(suite), "--out", str(run_dir), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    got = results(run_dir)
    assert got["node_count"] == 4 and got["threshold_nodes"] == 4
    measure = got["phases"]["measure"]
    assert measure["committed"] >= 0.99 * measure["submitted"] > 0
    assert measure["failed"] == 0
    assert all(n["commit_method"] == "polling" for n in got["nodes"])
    assert all(n["blocks_seen"] >= 10 for n in got["nodes"])
    header = (run_dir / "history.jsonl").read_text().splitlines()[0]
    assert "harness generatetoaddress every 2 s on node0" in header
    for node in range(4):
        assert (run_dir / "logs" / f"node{node}.log").stat().st_size > 0
    assert run_objects(docker_client, got["run_id"]) == []
