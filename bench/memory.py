"""Peak resident memory of a big run: the real prepare → plan → send → record path.

Issue 13 asks that a run of 1,000,000 transactions keeps the harness's resident memory under
2 GiB. This drives the same code a `bctest run` on anvil drives, minus Docker:

  prepare  EvmAdapter.prepare(count) of a temporary anvil suite (the signing pool),
  plan     harness.load.driver.plan_workers,
  send     harness.load.driver.run_senders (spawned sender processes) against the trivial
           nginx endpoint (bench/endpoint.py), while a feeder hands the CommitTracker one
           synthetic block every 0.25 s holding every transaction sent so far (so every
           transaction is committed, as on a chain that keeps up),
  record   harness.phases.record.record: history.jsonl, results.json (judged from the file
           as written) and the reports.

A sampler thread reads VmRSS of this process and of every descendant every 0.1 s and keeps,
per stage, the peak of the main process, of the children (signing pool or senders) and of
their sum. Peaks between two samples can be missed (kernel's VmHWM of the main process is
printed too; it cannot miss).

  python bench/memory.py --count 1000000 --rate 5000 --workers 2
  python bench/memory.py --count 100000 --rate 4000 --workers 1 --keep
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from endpoint import Endpoint  # noqa: E402
from rich.console import Console  # noqa: E402

from harness import suite as suite_module  # noqa: E402
from harness.adapters.evm import EvmAdapter  # noqa: E402
from harness.load.driver import plan_workers, run_senders  # noqa: E402
from harness.load.shape import fixed_offsets  # noqa: E402
from harness.model import Block  # noqa: E402
from harness.phases import record as record_stage  # noqa: E402
from harness.phases.context import LoadState, RunContext  # noqa: E402
from harness.phases.load import classifier_ref  # noqa: E402
from harness.run import run_header  # noqa: E402
from harness.tracker import CommitTracker  # noqa: E402

GIB = 1 << 30
SUITE = """name: memory-bench
chain: anvil
nodes: 1
seed: 7
params: {{block_time: 1}}
workload: {{kind: transfer, accounts: {accounts}}}
load: {{rate: {rate}, warmup: 1, duration: {duration}, settle: 1, workers: {workers}}}
"""


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class RssSampler(threading.Thread):
    """Peak RSS per stage: main process, its descendants (summed), and the total."""

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        self.interval, self.stage = interval, "start"
        self.peaks: dict[str, dict[str, int]] = {}
        self.stopped = threading.Event()
        self.exclude: set[int] = set()   # the endpoint (nginx) is not the harness

    def run(self) -> None:
        me = os.getpid()
        while not self.stopped.is_set():
            main = _rss_kib(me)
            excluded = set(self.exclude)
            for pid in self.exclude:
                excluded.update(_descendants(pid))
            children = sum(_rss_kib(p) for p in _descendants(me) if p not in excluded)
            peak = self.peaks.setdefault(self.stage, {"main": 0, "children": 0, "total": 0})
            peak["main"] = max(peak["main"], main)
            peak["children"] = max(peak["children"], children)
            peak["total"] = max(peak["total"], main + children)
            self.stopped.wait(self.interval)


def gib(kib: int) -> str:
    return f"{kib / (1 << 20):.2f} GiB"


async def drive(ctx: RunContext, endpoint_url: str, count: int, rate: float, workers: int,
                sampler: RssSampler) -> dict:
    spec, adapter = ctx.suite.load, ctx.adapter
    timings = {}
    sampler.stage = "prepare"
    began = time.monotonic()
    ctx.prepared = await asyncio.to_thread(adapter.prepare, count)
    timings["prepare_s"] = round(time.monotonic() - began, 1)
    print(f"prepare: {count} signed in {timings['prepare_s']} s", flush=True)

    sampler.stage = "send"
    tracker = CommitTracker([p.tx_id for p in ctx.prepared], 1, ctx.suite.commit_share)
    state = ctx.load = LoadState(t0=time.monotonic(), prepared=ctx.prepared, tracker=tracker,
                                 rate=spec.rate, targets=[0])
    offsets = fixed_offsets(len(ctx.prepared), spec.rate)
    plans = plan_workers(ctx.prepared, [(0, endpoint_url)], offsets, workers, spec.max_in_flight,
                         spec.submit_timeout, adapter.submit_headers, classifier_ref(adapter),
                         spec.connections)
    started = asyncio.Event()
    sent = {"n": 0}

    def on_start(at: float) -> None:
        state.t0 = at
        started.set()

    def on_progress(progress) -> None:
        sent["n"] = progress.sent

    async def feeder() -> None:
        # one block every 0.25 s with what was sent since the last (interleaved workers send
        # in index order, so "the first n" is close to what went out)
        await started.wait()
        number, done = 1, 0
        while done < count:
            await asyncio.sleep(0.25)
            upto = min(count, sent["n"])
            if upto > done:
                now = time.monotonic()
                tracker.on_block(Block(node=0, number=number, hash=f"0x{number:064x}",
                                       parent=f"0x{number - 1:064x}", seen=now, fetched=now,
                                       tx_ids=tuple(ctx.prepared[i].tx_id for i in range(done, upto)),
                                       timestamp=time.time()))
                number, done = number + 1, upto

    feed = asyncio.ensure_future(feeder())
    began = time.monotonic()
    state.records, state.sends = await run_senders(plans, count, lambda: False, on_progress, on_start)
    await asyncio.sleep(0.6)
    feed.cancel()
    del plans
    timings["send_s"] = round(time.monotonic() - began, 1)
    print(f"send: {state.sends.sent} sent, {state.sends.errors} errors, {state.sends.dropped} "
          f"dropped, {state.sends.late} late in {timings['send_s']} s; "
          f"{tracker.committed} committed", flush=True)
    state.phases = {"warmup": [0.0, spec.warmup], "measure": [spec.warmup, spec.total_seconds]}
    state.settle_end = "all-committed"
    state.watch_methods = {"node0": "synthetic"}

    sampler.stage = "record"
    began = time.monotonic()
    ctx.node_info = [{"name": "node0", "index": 0, "ready_seconds": 0.0, "log": "logs/node0.log"}]
    results = record_stage.record(ctx, run_header(ctx))
    timings["record_s"] = round(time.monotonic() - began, 1)
    print(f"record: history.jsonl {(ctx.run_dir / 'history.jsonl').stat().st_size / 1e6:.0f} MB, "
          f"results.json in {timings['record_s']} s", flush=True)
    measure = results.get("phases", {}).get("measure", {})
    return {"timings": timings, "sent": state.sends.sent, "committed": tracker.committed,
            "success_ratio": measure.get("success_ratio")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=1024)
    parser.add_argument("--server", default="auto", help="endpoint: nginx | python | auto")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here too")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bctest-bench-memory-"))
    sampler = RssSampler()
    sampler.start()
    try:
        duration = args.count / args.rate - 1
        if duration <= 0:
            parser.error("--count must be more than one second of --rate")
        suite_file = tmp / "memory.yaml"
        suite_file.write_text(SUITE.format(accounts=args.accounts, rate=args.rate,
                                           duration=round(duration, 6), workers=args.workers))
        suite = suite_module.load(suite_file)
        count = int(round(suite.load.rate * suite.load.total_seconds))
        (tmp / "run" / "logs").mkdir(parents=True)
        ctx = RunContext(suite=suite, run_id="membench", run_dir=tmp / "run",
                         console=Console(quiet=True), stopped=lambda: None)
        ctx.adapter = EvmAdapter(suite.chain, suite.params, 1, 7, suite.accounts)
        ctx.workload, ctx.key_secret = "transfer", "0" * 32
        ctx.image = {"tag": suite.chain.image_tag, "id": "sha256:" + "0" * 64}
        ctx.host = {"hostname": os.uname().nodename, "cpus": os.cpu_count(), "note": "bench/memory.py"}
        with Endpoint(args.server) as endpoint:
            sampler.exclude = {endpoint.process.pid} if endpoint.process else set()
            print(f"{count} transactions at {args.rate:g} tx/s, {args.workers} sender(s), "
                  f"endpoint {endpoint.server} {endpoint.url}", flush=True)
            figures = asyncio.run(drive(ctx, endpoint.url, count, args.rate, args.workers, sampler))
        time.sleep(0.3)
    finally:
        sampler.stopped.set()
        sampler.join()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    hwm = _rss_kib(os.getpid(), "VmHWM")
    peaks = sampler.peaks
    overall = max(p["total"] for p in peaks.values())
    print("\npeak RSS (sampled every 0.1 s)        main        children    total")
    for stage in ("prepare", "send", "record"):
        p = peaks.get(stage, {"main": 0, "children": 0, "total": 0})
        print(f"  {stage:<34} {gib(p['main']):>10}  {gib(p['children']):>10}  {gib(p['total']):>10}")
    print(f"  main process high-water mark (VmHWM): {gib(hwm)}")
    print(f"  overall peak (main + descendants):    {gib(overall)}  "
          f"({'under' if overall < 2 * GIB // 1024 else 'OVER'} 2 GiB)")
    if args.json:
        args.json.write_text(json.dumps({**figures, "count": count, "rate": args.rate,
                                         "workers": args.workers, "peaks_kib": peaks,
                                         "main_hwm_kib": hwm, "overall_kib": overall}, indent=1))
    return 0 if overall < 2 * GIB // 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
