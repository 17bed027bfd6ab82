"""The body spool: prepared transactions in a file, read back lazily (also in another process)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.adapters import jsonrpc
from harness.adapters.evm import EvmAdapter
from harness.adapters.evm_tx import derive_account, sign_transfer
from harness.chainpack import load as load_pack
from harness.load import spool
from harness.load.driver import plan_workers
from harness.load.shape import fixed_offsets
from harness.model import Prepared

ROOT = Path(__file__).resolve().parents[2]
LINUX = os.path.isdir("/proc/self/fd")


def sample(count: int) -> list[Prepared]:
    # odd sizes: empty, one byte, long; ids of different lengths
    return [Prepared(body=bytes([i % 251]) * (i % 7 * 50), tx_id=f"id-{i}") for i in range(count)]


def test_spool_reads_back_every_body_and_id(tmp_path):
    items = sample(100)
    spooled = spool.spool(items, str(tmp_path))
    assert len(spooled) == 100
    assert list(spooled) == items
    assert spooled[-1] == items[-1] and spooled[3:6] == items[3:6]
    assert list(spool.tx_ids(spooled)) == [p.tx_id for p in items]
    assert list(spool.bodies_for(spooled, [5, 0, 99])) == [items[5].body, items[0].body, items[99].body]
    assert list(spool.bodies_for(spooled, range(1, 100, 3))) == [p.body for p in items[1::3]]


def test_empty_spool(tmp_path):
    spooled = spool.spool([], str(tmp_path))
    assert len(spooled) == 0 and list(spooled) == [] and len(spooled.bodies(range(0))) == 0


def test_the_file_goes_with_the_spool(tmp_path):
    spooled = spool.spool(sample(10), str(tmp_path))
    if LINUX:   # unlinked at once, reached through /proc: a SIGKILLed harness leaves nothing
        assert list(tmp_path.iterdir()) == [] and spooled.path.startswith("/proc/")
    assert spooled[9] == sample(10)[9]
    del spooled
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_a_spool_outlives_nothing_that_made_it(tmp_path):
    # the process that signed is SIGKILLed: its spool file must be gone with it
    script = ("import sys, os; from harness.load import spool; from harness.model import Prepared; "
              f"s = spool.spool([Prepared(b'x' * 100, 'a')] * 1000, {str(tmp_path)!r}); "
              "print('ok', flush=True); os.kill(os.getpid(), 9)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout == "ok\n" and done.returncode == -9, done.stderr
    assert list(tmp_path.iterdir()) == [] if LINUX else True


def test_a_failed_writer_leaves_no_file(tmp_path):
    def broken():
        yield from sample(3)
        raise RuntimeError("signing failed")

    with pytest.raises(RuntimeError):
        spool.spool(broken(), str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def _sum_lengths(bodies) -> int:
    return sum(len(b) for b in bodies)


def test_worker_bodies_pickle_small_and_read_in_a_spawned_process(tmp_path):
    items = [Prepared(body=b"x" * 300, tx_id=f"{i}") for i in range(2000)]
    spooled = spool.spool(items, str(tmp_path))
    plans = plan_workers(spooled, [(0, "http://127.0.0.1:1/")], fixed_offsets(2000, 100.0), 2, 10,
                         1.0, {}, "m:C")
    assert [len(p.bodies) for p in plans] == [1000, 1000]
    assert len(pickle.dumps(plans[0].bodies)) < 20_000      # offsets, not 300 kB of bodies
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_sum_lengths, (plans[1].bodies,)) == 300 * 1000


def test_plan_workers_still_takes_a_plain_list():
    items = sample(6)
    plans = plan_workers(items, [(0, "http://127.0.0.1:1/")], fixed_offsets(6, 10.0), 2, 10, 1.0, {}, "m:C")
    assert list(plans[1].bodies) == [items[i].body for i in (1, 3, 5)]


@pytest.mark.parametrize("count", [70, 20_001])
def test_evm_prepare_signs_what_the_per_transaction_path_signs(count):
    # 20_001 takes the process pool (spawned signers) and several chunks
    adapter = EvmAdapter(load_pack(ROOT / "chains" / "anvil"), {}, 1, 7, 16)
    prepared = adapter.prepare(count)
    assert len(prepared) == count
    senders = adapter.senders(16)
    recipients = [derive_account("recipient", 7, i).address for i in range(64)]
    for i in {0, 1, 15, 16, 17, count // 2, count - 1}:
        raw, tx_hash = sign_transfer(senders[i % 16].key, i // 16, adapter.gas_price, 21_000,
                                     recipients[i % 64], 1, adapter.chain_id)
        assert prepared[i] == Prepared(
            body=jsonrpc.request_body("eth_sendRawTransaction", ["0x" + raw.hex()], i),
            tx_id="0x" + tx_hash.hex())
    assert prepared.path.startswith("/proc/") or not LINUX


def test_reads_cross_the_read_ahead_window_in_any_order(tmp_path, monkeypatch):
    monkeypatch.setattr(spool, "READ_AHEAD", 1000)
    items = sample(300)
    spooled = spool.spool(items, str(tmp_path))
    bodies = spooled.bodies(range(1, 300, 2))
    assert list(bodies) == [p.body for p in items[1::2]]                # in order
    order = [7, 3, 149, 0, 148, 75, 76, 2]
    assert [bodies[k] for k in order] == [items[1 + 2 * k].body for k in order]   # any order
    assert [spooled[i].body for i in reversed(range(300))] == [p.body for p in reversed(items)]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


@pytest.mark.skipif(not LINUX, reason="reads process parents from /proc")
def test_signing_processes_die_with_a_killed_harness():
    script = ("from pathlib import Path; from harness.chainpack import load; "
              "from harness.adapters.evm import EvmAdapter; "
              "EvmAdapter(load(Path('chains/anvil')), {}, 1, 7, 16).prepare(3_000_000)")
    harness = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        signers: list[int] = []
        while len(signers) < (os.cpu_count() or 1) and time.monotonic() < deadline:
            time.sleep(0.2)
            signers = [p for p in _children(harness.pid)
                       if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert signers, "the signing pool never started"
    finally:
        harness.kill()
        harness.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in signers):
        time.sleep(0.1)
    alive = [p for p in signers if Path(f"/proc/{p}").exists()
             and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert alive == []
