"""Locust engine scaling on the trivial endpoint (issue 13 §4).

Sends the same pre-built bodies (321-byte eth_sendRawTransaction-shaped POSTs, classified by
the EVM adapter) to bench/endpoint.py (nginx) through the real engines:

  locust-1   harness.load.locust_engine.run_locust, one Locust worker (+ the master)
  locust-2   the same with two workers
  builtin-1  harness.load.driver.run_senders, one built-in sender process

For each, two steps on the same endpoint in the same run:
  saturation  asked --ask tx/s (far past any ceiling) for --seconds, max_in_flight 4096 per
              worker (past it a send is recorded dropped): ok replies per second (replies ÷
              time from the common start to the last reply) is the ceiling; best of --repeat;
  on time     asked half that ceiling: share of sends ≤ 10 ms behind schedule, lag p99.
CPU is each engine's own processes (Locust master / workers, or the sender) between the
common start and the last progress report, from /proc; `busy` is the whole machine's.
Closed-loop reference: `wrk -t1 -c64` on the same endpoint (context, not a target).

    python bench/locust_scaling.py [--seconds 5] [--ask 10000] [--repeat 1] [--skip-wrk] [--json F]

The figures are only as good as the machine is quiet: it prints the load average and the
share of the machine others used, so a reader can judge.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from endpoint import Endpoint  # noqa: E402

from harness.load.driver import plan_workers, run_senders  # noqa: E402
from harness.load.locust_engine import available, run_locust  # noqa: E402
from harness.model import Prepared  # noqa: E402
from harness.suite import LocustSpec  # noqa: E402

BODY_HEX = "ab" * 120          # a 120-byte payload, as hex: 321-byte bodies
CLASSIFIER = "harness.adapters.evm:EvmAdapter"
HEADERS = {"Content-Type": "application/json"}
TICK = os.sysconf("SC_CLK_TCK")
MAX_IN_FLIGHT = 4096    # the suite default: past it an overdue send is recorded dropped


def bodies(count: int) -> list[Prepared]:
    return [Prepared(json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                                 "params": ["0x" + BODY_HEX]}).encode(), str(i))
            for i in range(count)]


def schedule(rate: float, count: int) -> float | list[float]:
    """plan_workers' third argument: the rate, or (issue 13's load shapes) the offsets."""
    if "offsets" in inspect.signature(plan_workers).parameters:
        return [i / rate for i in range(count)]
    return rate


def machine_busy() -> tuple[float, float]:
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def children_cpu(exclude: set[int]) -> dict[int, tuple[str, float]]:
    """CPU seconds of this process's direct children (Locust or sender processes), by pid."""
    me, out = os.getpid(), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) != me:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            out[int(entry.name)] = (command, (int(stat[11]) + int(stat[12])) / TICK)
        except (OSError, IndexError, ValueError):
            continue
    return out


def role(command: str) -> str:
    if "--worker" in command:      # (a worker's command also names --master-host)
        return "workers"
    if "--master" in command:
        return "master"
    if "resource_tracker" in command:
        return "tracker"
    return "senders"


@dataclass
class Step:
    engine: str
    asked: float
    sends: int
    ok: int
    errors: int
    replies_per_s: float
    on_time: float             # share of sends ≤ 10 ms behind schedule
    lag_p99_ms: float
    cpu: dict[str, float]      # cores used by the engine's processes, by role
    cpu_per_1k: float          # cores the engine used per 1,000 replies/s
    endpoint_cpu: float
    machine_busy: float
    others: float              # cores used by everything else (other helpers, docker...)


def step(endpoint: Endpoint, engine: str, rate: float, seconds: float, logs: Path) -> Step:
    count = int(rate * seconds)
    prepared = bodies(count)
    workers = 2 if engine == "locust-2" else 1
    plans = plan_workers(prepared, [(0, endpoint.url)], schedule(rate, count), workers,
                         MAX_IN_FLIGHT, 10.0, HEADERS, CLASSIFIER, 64)
    exclude = {endpoint.process.pid} if endpoint.process else set()
    marks: dict[str, Any] = {}

    def on_start(at: float) -> None:
        marks["start"] = at
        marks["cpu0"] = children_cpu(exclude)
        marks["busy0"] = machine_busy()
        marks["ep0"] = endpoint.cpu_seconds()

    def on_progress(_progress: Any) -> None:   # the last one arrives near the end
        if "start" in marks:
            marks["t1"] = time.monotonic()
            marks["cpu1"] = children_cpu(exclude)
            marks["busy1"] = machine_busy()
            marks["ep1"] = endpoint.cpu_seconds()

    if engine.startswith("locust"):
        run = run_locust(plans, count, lambda: False, on_progress, on_start,
                         LocustSpec(workers=workers), log_dir=logs / f"{engine}-{int(rate)}")
    else:
        run = run_senders(plans, count, lambda: False, on_progress, on_start)
    records, _ = asyncio.run(run)
    start = marks["start"]
    done = [r for r in records if r is not None]
    ok = [r for r in done if r.error is None and r.acked is not None]
    last = max((r.acked for r in ok), default=start + seconds)
    lags = sorted(max(0.0, r.submitted - start - r.scheduled) for r in done if r.submitted)
    elapsed = max(1e-6, marks["t1"] - start)
    cpu: dict[str, float] = {}
    for pid, (command, seconds_now) in marks["cpu1"].items():
        before = marks["cpu0"].get(pid, (command, seconds_now))[1]
        cpu[role(command)] = cpu.get(role(command), 0.0) + (seconds_now - before) / elapsed
    busy = (marks["busy1"][0] - marks["busy0"][0]) / max(1e-6, marks["busy1"][1] - marks["busy0"][1])
    endpoint_cpu = (marks["ep1"] - marks["ep0"]) / elapsed
    cores = os.cpu_count() or 1
    ours = sum(v for k, v in cpu.items() if k != "tracker") + endpoint_cpu
    return Step(engine=engine, asked=rate, sends=len(done), ok=len(ok), errors=len(done) - len(ok),
                replies_per_s=len(ok) / max(1e-6, last - start),
                on_time=sum(lag <= 0.010 for lag in lags) / max(1, len(lags)),
                lag_p99_ms=1000 * lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
                cpu={k: round(v, 3) for k, v in cpu.items() if k != "tracker"},
                cpu_per_1k=sum(v for k, v in cpu.items() if k != "tracker")
                / max(1e-6, len(ok) / max(1e-6, last - start) / 1000),
                endpoint_cpu=endpoint_cpu, machine_busy=busy,
                others=max(0.0, busy * cores - ours))


def wrk(endpoint: Endpoint, seconds: int, tmp: Path) -> dict[str, Any]:
    script = tmp / "post.lua"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                       "params": ["0x" + BODY_HEX]})
    script.write_text(f"wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
                      f"wrk.body = '{body}'\n")
    command = ["wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(script), endpoint.url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    rate = next((float(line.split()[1]) for line in done.stdout.splitlines()
                 if line.startswith("Requests/sec")), None)
    return {"command": " ".join(command[:-3] + ["-s", "post.lua", "URL"]), "requests_per_s": rate}


def row(s: Step) -> str:
    cpu = " ".join(f"{k} {v:.0%}" for k, v in sorted(s.cpu.items()))
    return (f"  {s.engine:9} asked {s.asked:>7.0f}/s  sends {s.sends:>6}  ok {s.ok:>6}  "
            f"err {s.errors:>4}  replies {s.replies_per_s:>7.0f}/s  on-time {s.on_time:6.1%}  "
            f"lag99 {s.lag_p99_ms:>7.1f} ms  cpu [{cpu}] {s.cpu_per_1k:.0%}/1k  nginx {s.endpoint_cpu:.0%}  "
            f"busy {s.machine_busy:.0%}  others {s.others:.2f} cores")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--ask", type=float, default=10000.0, help="saturation step's rate")
    parser.add_argument("--engines", default="locust-1,locust-2,builtin-1")
    parser.add_argument("--repeat", type=int, default=1, help="saturation steps per engine (best)")
    parser.add_argument("--skip-wrk", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if available():
        print(f"locust_scaling: {available()}")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bctest-locust-bench-"))
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "cores": os.cpu_count(), "loadavg_before": os.getloadavg(),
                              "seconds": args.seconds, "steps": []}
    print(f"locust_scaling {report['date']}: {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        with Endpoint() as endpoint:
            print(f"endpoint: {endpoint.server} on {endpoint.url}")
            ceilings: dict[str, float] = {}
            per_core: dict[str, float] = {}
            for engine in args.engines.split(","):
                tries = []
                for _ in range(args.repeat):    # best of N: others share the machine
                    tries.append(step(endpoint, engine, args.ask, args.seconds, tmp))
                    print(row(tries[-1]), flush=True)
                saturated = max(tries, key=lambda s: s.replies_per_s)
                per_core[engine] = 1000 / max(1e-6, saturated.cpu_per_1k)
                ceilings[engine] = saturated.replies_per_s
                on_time = step(endpoint, engine, max(100.0, round(saturated.replies_per_s / 2, -2)),
                               args.seconds, tmp)
                print(row(on_time), flush=True)
                report["steps"] += [asdict(t) for t in tries] + [asdict(on_time)]
            if not args.skip_wrk and shutil.which("wrk"):
                report["wrk"] = wrk(endpoint, int(args.seconds), tmp)
                print(f"  wrk -t1 -c64 (closed loop): {report['wrk']['requests_per_s']} req/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["ceilings"], report["per_core"] = ceilings, per_core
    print("figures (best saturation replies/s; per core = replies/s per core the engine used):")
    for engine in ceilings:
        print(f"  {engine:9} {ceilings[engine]:7.0f}/s   {per_core[engine]:7.0f}/s per core")
    if "locust-1" in ceilings and "locust-2" in ceilings:
        report["two_over_one"] = ceilings["locust-2"] / max(1e-6, ceilings["locust-1"])
        report["two_over_one_per_core"] = per_core["locust-2"] / max(1e-6, per_core["locust-1"])
        print(f"  2 Locust workers / 1 = {report['two_over_one']:.2f}x (target >= 1.8x); "
              f"per core {report['two_over_one_per_core']:.2f}x")
    if "locust-1" in ceilings and "builtin-1" in ceilings:
        report["locust_over_builtin"] = ceilings["locust-1"] / max(1e-6, ceilings["builtin-1"])
        report["locust_over_builtin_per_core"] = per_core["locust-1"] / max(1e-6, per_core["builtin-1"])
        print(f"  1 Locust worker / 1 built-in sender = {report['locust_over_builtin']:.2f}x; "
              f"per core {report['locust_over_builtin_per_core']:.2f}x")
    if report.get("wrk", {}).get("requests_per_s") and "locust-1" in ceilings:
        report["locust_over_wrk_t1"] = ceilings["locust-1"] / report["wrk"]["requests_per_s"]
        print(f"  1 Locust worker / wrk -t1 = {report['locust_over_wrk_t1']:.3f}x")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
