"""How fast can the harness itself send? The ceiling every later change is held to.

Three measurements, each printed as a table of steps and summarised at the end:

(a) endpoint  The harness's open-loop sender (harness.load.driver.plan_workers +
              run_senders, exactly what `bctest run` uses) against a trivial local
              JSON-RPC endpoint (nginx, see bench/endpoint.py), with 1 and 2 sender
              processes. Rate search: start at --start-rate, double until the achieved
              send rate falls below 98% of the target, then bisect to --tolerance.
              The bodies are eth_sendRawTransaction-shaped JSON (~280 bytes, the size
              of a signed legacy transfer), classified by harness.adapters.evm:EvmAdapter.
(b) wrk       wrk (closed loop, `wrk -t2 -c64 -d10s`) POSTing the same body to the same
              endpoint: what the endpoint and the machine can do, for comparison.
(c) anvil     `bctest run` of generated suites (chain anvil, 1 node) at increasing
              rates, reading results.json; sustained = send_rate_ratio >= 0.98 and
              success_ratio >= 0.99 (and the honest send rate below >= 0.98).

"Achieved send rate" here is the honest one: sends actually made / the time they
took (max of the window and the time of the last send after start). Lag is
measured per request as (moment the request task started) - (scheduled instant),
which includes event-loop delay the sender's own `late` counter does not see.

    python bench/harness_ceiling.py                 # everything (~15 min on 2 cores)
    python bench/harness_ceiling.py --quick         # shorter steps, coarser search
    python bench/harness_ceiling.py --skip-anvil --skip-wrk
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# measure the checkout this script is in, not whichever harness is installed
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.adapters import jsonrpc  # noqa: E402
from harness.adapters.base import Prepared  # noqa: E402
from harness.load.driver import plan_workers, run_senders  # noqa: E402
from harness.load.shape import fixed_offsets  # noqa: E402
from harness.load.sender import DROPPED  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from endpoint import Endpoint  # bench/ is not a package

REPO = Path(__file__).resolve().parent.parent
CLASSIFIER = "harness.adapters.evm:EvmAdapter"
HEADERS = {"Content-Type": "application/json"}
SUSTAINED = 0.98          # achieved send rate / target
MIN_SUCCESS = 0.99        # anvil: committed / submitted
RAW_TX_BYTES = 104        # a signed EIP-155 legacy value transfer


def log(message: str = "") -> None:
    print(message, flush=True)


def dummy_bodies(count: int, seed: int = 1) -> list[Prepared]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        raw = rng.randbytes(RAW_TX_BYTES)
        body = jsonrpc.request_body("eth_sendRawTransaction", ["0x" + raw.hex()], i)
        out.append(Prepared(body=body, tx_id=f"0x{i:064x}"))
    return out


def make_plans(prepared: list[Prepared], url: str, rate: float, workers: int, max_in_flight: int,
               submit_timeout: float) -> list[Any]:
    """plan_workers for a fixed rate: one offset per transaction, as `bctest run` makes them."""
    return plan_workers(prepared, [(0, url)], fixed_offsets(len(prepared), rate), workers,
                        max_in_flight, submit_timeout, HEADERS, CLASSIFIER)


def established_to(port: int) -> int:
    """Open TCP connections from this machine to 127.0.0.1:port (client side), from
    /proc/net/tcp: the OS's count, beside the sender's own."""
    needle = f":{port:04X} "
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    # fields: sl local_address rem_address st ...; st 01 = ESTABLISHED
    return sum(1 for line in lines
               if (parts := line.split())[2].endswith(needle.strip()) and parts[3] == "01")


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat; steal counts as busy
    (the hypervisor gave our core to someone else), guest time is already in user."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def background_cores(seconds: float = 2.0) -> float:
    """Cores busy on the machine over `seconds` (call while the bench itself is idle)."""
    busy0, total0 = cpu_times()
    time.sleep(seconds)
    busy1, total1 = cpu_times()
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


QUIET = {"max_wait": 120.0, "threshold": 0.15}


def wait_quiet() -> float:
    """Wait (up to QUIET['max_wait'] s) until other work on the machine uses less than
    QUIET['threshold'] of a core, so a step measures the harness, not a neighbour.
    Returns the last background measured (cores)."""
    deadline = time.monotonic() + QUIET["max_wait"]
    waited = False
    while True:
        background = background_cores(2.0)
        if background <= QUIET["threshold"] or time.monotonic() >= deadline:
            if waited:
                log(f"    (waited for a quiet machine: background now {background:.0%} of a core)")
            return background
        if not waited:
            log(f"    (machine busy with other work: {background:.0%} of a core; waiting up to "
                f"{QUIET['max_wait']:.0f} s)")
        waited = True


def sender_processes_cpu() -> dict[int, float]:
    """utime+stime (s) of each live sender child of this process (multiprocessing spawn)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    children: list[str] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            children += (task / "children").read_text().split()
        except OSError:
            pass
    for pid in children:
        try:
            if b"spawn_main" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return out


def pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 1000:.{digits}f}"


# --- (a) the sender against the trivial endpoint ------------------------------------


@dataclass
class EndpointStep:
    workers: int
    target: float
    seconds: float
    scheduled: int
    sent: int
    dropped: int
    errors: int
    send_rate: float
    ratio: float
    late: int
    max_lag: float                 # the sender's own figure (at dispatch)
    lag_p99: float | None          # per request: task start - scheduled
    lag_max: float | None
    ack_p50: float | None          # ack - submit
    ack_p99: float | None
    sender_cpu: float              # sender processes' CPU while sending / time (1.0 = one core)
    main_cpu: float                # the collecting main process
    endpoint_cpu: float
    machine_busy: float            # share of all cores busy during the step
    others_cpu: float              # CPU used by everything else on the machine (1.0 = one core)
    background: float = 0.0        # others' cores just before the step
    first_error: str | None = None
    passed: bool = False
    noisy: bool = False            # others used > NOISY of a core during the step
    on_time: float | None = None   # share of sends made within LATE of their schedule
    cpu_per_1k: float = 0.0        # sender CPU (cores) per 1,000 tx/s offered
    connections: int = 0           # the senders' peak open connections (their own count)
    os_connections: int = 0        # peak ESTABLISHED connections to the endpoint (/proc/net/tcp)
    limit: str | None = None       # SendProgress.limit(): what held the sends back
    loop: str = ""                 # the senders' event loop
    vs_wrk: float | None = None    # send_rate / wrk -t1's req/s in the same session
    label: str = ""


NOISY = 0.25
LATE = 0.010              # a send more than this behind its schedule is late
ON_TIME = 0.99            # sustained also needs this share of sends on time
WRK = {"rps": None}       # the same session's wrk reference, once measured


def endpoint_step(endpoint: Endpoint, rate: float, workers: int, seconds: float,
                  max_in_flight: int, submit_timeout: float) -> EndpointStep:
    count = round(rate * seconds)
    prepared = dummy_bodies(count)
    plans = make_plans(prepared, endpoint.url, rate, workers, max_in_flight, submit_timeout)
    background = wait_quiet()
    conns = {"peak": 0}
    started: dict[str, float] = {}
    window: dict[str, Any] = {"start": {}, "last": {}, "start_at": 0.0, "end_at": 0.0}

    def on_start(at: float) -> None:
        started["t0"] = at
        window["start"] = sender_processes_cpu()
        window["start_at"] = time.monotonic()

    def on_progress(_progress: Any) -> None:  # every 0.5 s per worker: last sample ~ end
        if window["start_at"]:
            window["last"].update(sender_processes_cpu())  # an exited sender keeps its last
            window["end_at"] = time.monotonic()
            conns["peak"] = max(conns["peak"], established_to(endpoint.port))

    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    endpoint0 = endpoint.cpu_seconds()
    busy0, total0 = cpu_times()
    wall0 = time.monotonic()
    records, progress = asyncio.run(run_senders(
        plans, count, lambda: False, on_progress, on_start))
    wall = time.monotonic() - wall0
    busy1, total1 = cpu_times()
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = started["t0"]
    submitted, scheduled, acks, first_error = [], [], [], None
    dropped = errors = 0
    for record in records:
        if record is None or record.submitted is None:
            continue
        if record.error == DROPPED:
            dropped += 1
            continue
        submitted.append(record.submitted)
        scheduled.append(t0 + record.scheduled)
        if record.error:
            errors += 1
            first_error = first_error or record.error
        elif record.acked is not None:
            acks.append(record.acked - record.submitted)
    submitted_a, scheduled_a, acks_a = np.array(submitted), np.array(scheduled), np.array(acks)
    sent = len(submitted)
    span = (float(submitted_a.max()) - t0 + 1.0 / rate) if sent else seconds
    send_rate = sent / max(seconds, span)
    lags = submitted_a - scheduled_a
    # the senders' CPU between the common start and their last progress report (so
    # process start-up and the hand-off of records are not counted)
    sender_cpu = (sum(cpu - window["start"].get(pid, cpu) for pid, cpu in window["last"].items())
                  / max(1e-9, window["end_at"] - window["start_at"]))
    main_cpu = ((self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)) / wall
    endpoint_cpu = (endpoint.cpu_seconds() - endpoint0) / wall
    machine_busy = (busy1 - busy0) / max(1, total1 - total0)
    ncpu = os.cpu_count() or 1
    ours = ((children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
            + (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)) / wall
    step = EndpointStep(
        workers=workers, target=rate, seconds=seconds, scheduled=count, sent=sent,
        dropped=dropped, errors=errors, send_rate=send_rate, ratio=send_rate / rate,
        late=progress.late, max_lag=progress.max_lag, lag_p99=pct(lags, 99),
        lag_max=float(lags.max()) if sent else None, ack_p50=pct(acks_a, 50),
        ack_p99=pct(acks_a, 99), sender_cpu=sender_cpu, main_cpu=main_cpu,
        endpoint_cpu=endpoint_cpu, machine_busy=machine_busy,
        others_cpu=max(0.0, machine_busy * ncpu - ours - endpoint_cpu), background=background,
        first_error=first_error)
    step.noisy = step.others_cpu > NOISY
    step.on_time = float((lags <= LATE).mean()) if sent else None
    step.cpu_per_1k = sender_cpu / (rate / 1000)
    step.connections = progress.connections
    step.os_connections = conns["peak"]
    step.limit = progress.limit()
    step.loop = ",".join(sorted({str(w.get("loop", "?")) for w in progress.per_worker.values()}))
    step.vs_wrk = send_rate / WRK["rps"] if WRK["rps"] else None
    step.passed = (step.ratio >= SUSTAINED and (errors + dropped) <= 0.01 * count
                   and (step.on_time or 0) >= ON_TIME)
    return step


ENDPOINT_HEADER = (f"{'workers':>7} {'target':>7} {'sent/s':>8} {'xwrk':>5} {'ratio':>6} "
                   f"{'onTime':>6} {'late':>7} {'maxlag':>7} {'lag99':>7} {'ack50':>6} {'ack99':>7} "
                   f"{'err+drop':>8} {'conns':>5} {'sndCPU':>6} {'cpu/1k':>6} {'ngxCPU':>6} "
                   f"{'others':>6} {'busy':>5}  result")


def endpoint_row(s: EndpointStep) -> str:
    conns = f"{s.connections}/{s.os_connections}"
    return (f"{s.workers:>7} {s.target:>7.0f} {s.send_rate:>8.1f} "
            f"{'-' if s.vs_wrk is None else format(s.vs_wrk, '.3f'):>5} {s.ratio:>6.3f} "
            f"{'-' if s.on_time is None else format(s.on_time, '.4f'):>6} {s.late:>7} "
            f"{ms(s.max_lag):>7} {ms(s.lag_p99):>7} {ms(s.ack_p50, 2):>6} {ms(s.ack_p99, 2):>7} "
            f"{s.errors + s.dropped:>8} {conns:>5} {s.sender_cpu:>6.0%} {s.cpu_per_1k:>6.1%} "
            f"{s.endpoint_cpu:>6.0%} {s.others_cpu:>6.0%} {s.machine_busy:>5.0%}  "
            f"{'ok' if s.passed else 'SHORT'}"
            + (f" {s.label}" if s.label else "")
            + (" (noisy)" if s.noisy else "")
            + (f"  ({s.first_error})" if s.first_error else "")
            + (f"\n{'':>9}limit: {s.limit}" if s.limit and s.label else ""))


def search(run_step: Callable[[float], Any], start: float, tolerance: float, max_rate: float,
           min_rate: float, granularity: float) -> tuple[Any | None, list[Any]]:
    """Double from `start` until a step fails, then bisect; return (best passing step, all)."""
    steps: list[Any] = []

    def attempt(rate: float) -> Any:
        step = run_step(rate)
        steps.append(step)
        return step

    best = None
    rate = start
    failed_at = None
    while rate <= max_rate:
        step = attempt(rate)
        if step.passed:
            best = step
            rate *= 2
        else:
            failed_at = rate
            break
    if best is None:  # even the start rate failed: halve down to something sustainable
        rate = start / 2
        while rate >= min_rate:
            step = attempt(rate)
            if step.passed:
                best = step
                break
            failed_at = rate
            rate /= 2
        if best is None:
            return None, steps
    if failed_at is None:
        return best, steps  # passed up to max_rate
    lo, hi = best.target, failed_at
    while (hi - lo) / lo > tolerance:
        mid = round((lo + hi) / 2 / granularity) * granularity
        if mid <= lo or mid >= hi:
            break
        step = attempt(mid)
        if step.passed:
            best, lo = step, mid
        else:
            hi = mid
    return best, steps


# --- (b) wrk -------------------------------------------------------------------------

WRK_LUA = """\
-- generated by bench/harness_ceiling.py: POST one eth_sendRawTransaction-shaped body
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
"""


def parse_wrk(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}

    def seconds(token: str) -> float | None:
        for unit in ("us", "ms", "s", "m"):
            if token.endswith(unit):
                try:
                    return float(token[:-len(unit)]) * units[unit]
                except ValueError:
                    return None
        return None

    for line in text.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            out["requests_per_s"] = float(parts[1])
        elif parts[:1] == ["50%"]:
            out["p50"] = seconds(parts[1])
        elif parts[:1] == ["99%"]:
            out["p99"] = seconds(parts[1])
        elif "Non-2xx" in line:
            out["non_2xx"] = int(parts[-1])
        elif line.strip().startswith("Socket errors"):
            out["socket_errors"] = line.strip()
        elif "requests in" in line:
            out["requests"] = int(parts[0])
    return out


def run_wrk(endpoint: Endpoint, tmp: Path, seconds: int, threads: int,
            connections: int) -> dict[str, Any]:
    body = dummy_bodies(1)[0].body.decode()
    script = tmp / "post.lua"
    script.write_text(WRK_LUA.format(body=body))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "-s", str(script), endpoint.url]
    background = wait_quiet()
    busy0, total0 = cpu_times()
    endpoint0 = endpoint.cpu_seconds()
    wall0 = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          check=False)
    wall = time.monotonic() - wall0
    busy1, total1 = cpu_times()
    figures = parse_wrk(done.stdout)
    figures.update(command=" ".join(command[:-3] + ["post.lua", endpoint.url]),
                   exit=done.returncode, endpoint_cpu=(endpoint.cpu_seconds() - endpoint0) / wall,
                   machine_busy=(busy1 - busy0) / max(1, total1 - total0), background=background,
                   stderr=done.stderr.strip()[-500:])
    return figures


# --- (c) bctest run against anvil ----------------------------------------------------

SUITE_YAML = """\
# generated by bench/harness_ceiling.py (temporary)
name: bench-anvil-{rate}
description: harness ceiling probe, anvil 1 node, {rate} tx/s
chain: anvil
nodes: 1
seed: 1
params:
  block_time: {block_time}
workload:
  kind: transfer
  accounts: {accounts}
load:
  rate: {rate}
  warmup: {warmup}
  duration: {duration}
  settle: {settle}
  workers: {workers}
commit:
  subscribe: true
checks:
  - id: committed at least 99% of submitted
    metric: success_ratio
    op: ">="
    value: 0.99
  - id: harness kept the target rate (send rate within 2%)
    metric: send_rate_ratio
    op: ">="
    value: 0.98
"""


@dataclass
class AnvilStep:
    target: float
    exit: int | None
    wall: float
    ok_run: bool = False
    send_rate: float | None = None       # bctest's figure
    ratio: float | None = None           # bctest's send_rate_ratio
    honest_ratio: float | None = None    # sends made in time (see module doc)
    success: float | None = None
    throughput: float | None = None
    p50: float | None = None             # commit latency, seconds
    p99: float | None = None
    ack_p50: float | None = None
    ack_p99: float | None = None
    lag_p99: float | None = None
    late: int | None = None
    max_lag: float | None = None
    failed: int | None = None
    dropped: int | None = None
    signed: int | None = None
    run_id: str | None = None
    background: float = 0.0              # others' cores just before the run
    harness_cpu_s: float = 0.0           # CPU seconds of bctest + its senders + signing pool
    chain_cpu_s: float = 0.0             # the run's containers (anvil), from their cgroup
    proxy_cpu_s: float = 0.0             # docker-proxy processes of the run's published ports
    others_cpu: float = 0.0              # everything else on the machine, cores (avg over run)
    monitored: str = ""
    noisy: bool = False
    note: str | None = None
    errors: list = field(default_factory=list)
    passed: bool = False


def bctest_command() -> list[str]:
    found = shutil.which("bctest")
    return [found] if found else [sys.executable, "-c", "from harness.cli import main; main()"]


def honest_figures(run_dir: Path) -> dict[str, Any]:
    """From history.jsonl: the send rate actually achieved in the measure window and lags."""
    from harness import history as history_module

    history = history_module.read(run_dir / "history.jsonl")
    rate = history.header["load"]["rate"]
    start, end = history.header["phases"]["measure"]
    length = max(end - start, 1e-9)
    txs = [tx for tx in history.txs if tx.phase == "measure"]
    sent = [tx for tx in txs if tx.submitted is not None and tx.error != DROPPED]
    if not sent:
        return {"honest_ratio": 0.0}
    last = max(tx.submitted for tx in sent)
    span = max(length, last - start + 1.0 / rate)
    lags = np.array([tx.submitted - tx.scheduled for tx in sent])
    acks = np.array([tx.acked - tx.submitted for tx in sent if tx.acked is not None and not tx.error])
    return {"honest_ratio": len(sent) / span / rate, "lag_p99": pct(lags, 99),
            "ack_p50": pct(acks, 50), "ack_p99": pct(acks, 99)}


def _proc_cpu(pid: str) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _container_cpu(container_id: str) -> float | None:
    """CPU seconds of one container from its cgroup (v1 cpuacct or v2 cpu.stat)."""
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage")
    v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat")
    try:
        if v1.exists():
            return int(v1.read_text()) / 1e9
        if v2.exists():
            for line in v2.read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
    except (OSError, ValueError):
        pass
    return None


class RunMonitor(threading.Thread):
    """While one `bctest run` runs, follow the CPU its containers and their docker-proxy
    processes use, so 'others' (everything else on the machine) can be told apart."""

    def __init__(self, log_path: Path):
        super().__init__(daemon=True)
        self.log_path = log_path
        self.stop = threading.Event()
        self.run_id: str | None = None
        self.containers: dict[str, float] = {}     # id -> last CPU seconds seen
        self.proxies: dict[str, float] = {}        # docker-proxy pid -> last CPU seconds seen
        self.proxy_ports: set[str] = set()

    def _docker(self, *args: str) -> str:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False,
                              timeout=20)
        return done.stdout

    def _discover(self) -> None:
        if self.run_id is None:
            try:
                for line in self.log_path.read_text(errors="replace").splitlines():
                    if line.startswith("run ") and ":" in line:
                        self.run_id = line.split()[1].rstrip(":")
                        break
            except OSError:
                return
            if self.run_id is None:
                return
        ids = self._docker("ps", "-q", "--no-trunc", "--filter",
                           f"label=bctest.run={self.run_id}").split()
        for container in ids:
            self.containers.setdefault(container, 0.0)
            ports = self._docker("inspect", "-f",
                                 "{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}"
                                 "{{.HostPort}} {{end}}{{end}}", container).split()
            self.proxy_ports.update(ports)
        if self.proxy_ports:
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid in self.proxies:
                    continue
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if argv and argv[0].endswith(b"docker-proxy") and b"-host-port" in argv:
                    port = argv[argv.index(b"-host-port") + 1].decode()
                    if port in self.proxy_ports:
                        self.proxies[pid] = 0.0

    def run(self) -> None:
        next_discover = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if shutil.which("docker") and now >= next_discover:
                try:
                    self._discover()
                except (OSError, subprocess.SubprocessError):
                    pass
                next_discover = now + (1.0 if not self.containers else 5.0)
            for container in self.containers:
                value = _container_cpu(container)
                if value is not None:
                    self.containers[container] = max(self.containers[container], value)
            for pid in self.proxies:
                value = _proc_cpu(pid)
                if value is not None:
                    self.proxies[pid] = max(self.proxies[pid], value)
            self.stop.wait(0.5)

    def finish(self) -> tuple[float, float]:
        """(container CPU s, docker-proxy CPU s) seen over the run."""
        self.stop.set()
        self.join(timeout=30)
        return sum(self.containers.values()), sum(self.proxies.values())


def anvil_step(tmp: Path, rate: float, workers: int, accounts: int, warmup: float,
               duration: float, settle: float, block_time: float, timeout: float) -> AnvilStep:
    rate_i = int(rate)
    tag = f"{rate_i}-{time.monotonic_ns()}"
    suite = tmp / f"anvil-{tag}.yaml"
    out = tmp / f"run-{tag}"
    suite.write_text(SUITE_YAML.format(rate=rate_i, accounts=accounts, warmup=warmup,
                                       duration=duration, settle=settle, workers=workers,
                                       block_time=block_time))
    log_path = tmp / f"run-{tag}.log"
    background = wait_quiet()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, total0 = cpu_times()
    wall0 = time.monotonic()
    log_path.touch()
    monitor = RunMonitor(log_path)
    monitor.start()
    with open(log_path, "w") as output:
        process = subprocess.Popen(bctest_command() + ["run", str(suite), "--out", str(out)],
                                   stdout=output, stderr=subprocess.STDOUT, cwd=REPO,
                                   env={**os.environ, "COLUMNS": "160", "NO_COLOR": "1"})
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # bctest tears its containers down on SIGINT
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            code = None
        except BaseException:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
        finally:
            container_cpu, proxy_cpu = monitor.finish()
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy1, total1 = cpu_times()
    wall = time.monotonic() - wall0
    step = AnvilStep(target=rate, exit=code, wall=wall, background=background,
                     harness_cpu_s=(children1.ru_utime + children1.ru_stime)
                     - (children0.ru_utime + children0.ru_stime),
                     chain_cpu_s=container_cpu, proxy_cpu_s=proxy_cpu,
                     monitored=f"{len(monitor.containers)} container(s), {len(monitor.proxies)} "
                     f"docker-proxy process(es) of run {monitor.run_id}")
    machine_cores = (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
    step.others_cpu = max(0.0, machine_cores - (step.harness_cpu_s + container_cpu + proxy_cpu)
                          / wall)
    step.noisy = step.others_cpu > NOISY
    results_path = out / "results.json"
    if not results_path.exists():
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        step.note = ("timed out; " if code is None else f"exit {code}; ") + " | ".join(tail)[-400:]
        suite.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
        return step
    results = json.loads(results_path.read_text())
    measure = results["phases"]["measure"]
    sender = results.get("sender", {})
    step.ok_run = results.get("status") == "complete"
    step.run_id = results.get("run_id")
    step.send_rate = measure["send_rate"]
    step.ratio = measure["send_rate_ratio"]
    step.success = measure["success_ratio"]
    step.throughput = measure["throughput"]
    step.p50 = None if measure["latency"]["p50"] is None else measure["latency"]["p50"] / 1000
    step.p99 = None if measure["latency"]["p99"] is None else measure["latency"]["p99"] / 1000
    step.failed = measure["failed"]
    step.dropped = measure.get("dropped")
    step.errors = measure.get("errors", [])[:3]
    step.late = sender.get("late_sends")
    step.max_lag = None if sender.get("max_lag_ms") is None else sender["max_lag_ms"] / 1000
    step.signed = round(rate * (warmup + duration))
    try:
        for key, value in honest_figures(out).items():
            setattr(step, key, value)
    except (OSError, ValueError, KeyError) as exc:
        step.note = f"history unreadable: {exc}"
    step.passed = (step.ok_run and (step.ratio or 0) >= SUSTAINED
                   and (step.success or 0) >= MIN_SUCCESS
                   and (step.honest_ratio or 0) >= SUSTAINED)
    if not step.ok_run:
        step.note = f"status {results.get('status')}: {results.get('status_reason')}"
    suite.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    log_path.unlink(missing_ok=True)
    return step


ANVIL_HEADER = (f"{'target':>7} {'sent/s':>8} {'ratio':>6} {'honest':>6} {'success':>7} "
                f"{'tput':>7} {'p50ms':>7} {'p99ms':>7} {'ack50':>6} {'ack99':>7} {'lag99':>7} "
                f"{'late':>6} {'maxlag':>7} {'wall':>4} {'bct s':>5} {'anv s':>5} {'prx s':>5} "
                f"{'others':>6}  result")


def anvil_row(s: AnvilStep) -> str:
    def num(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    row = (f"{s.target:>7.0f} {num(s.send_rate, '>8.1f')} {num(s.ratio, '>6.3f')} "
           f"{num(s.honest_ratio, '>6.3f')} {num(s.success, '>7.4f')} {num(s.throughput, '>7.1f')} "
           f"{ms(s.p50, 0):>7} {ms(s.p99, 0):>7} {ms(s.ack_p50):>6} {ms(s.ack_p99):>7} "
           f"{ms(s.lag_p99):>7} {num(s.late, '>6')} {ms(s.max_lag):>7} {s.wall:>4.0f} "
           f"{s.harness_cpu_s:>5.0f} {s.chain_cpu_s:>5.0f} {s.proxy_cpu_s:>5.0f} "
           f"{s.others_cpu:>6.0%}  {'ok' if s.passed else 'SHORT'}"
           + (" (noisy)" if s.noisy else ""))
    if s.note:
        row += f"  ({s.note})"
    elif not s.passed and s.errors:
        row += "  errors: " + "; ".join(f"{e.get('error', e)} x{e.get('count', '')}"
                                        if isinstance(e, dict) else str(e) for e in s.errors)
    return row


def leftover_containers(run_ids: list[str]) -> list[str]:
    if not run_ids or not shutil.which("docker"):
        return []
    left = []
    for run_id in run_ids:
        done = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=bctest.run={run_id}"],
                              capture_output=True, text=True, check=False)
        left += done.stdout.split()
    return left


# --- one round: wrk -t1, then the sender's ceiling, then 2x the ceiling ----------------


def endpoint_round(endpoint: Endpoint, args: Any, tmp: Path, seconds: float, tolerance: float,
                   summary: list[str]) -> dict[str, Any]:
    """(b) then (a): the wrk reference first, so every sender step prints its share of it."""
    out: dict[str, Any] = {"wrk": None, "workers": {}}
    WRK["rps"] = None
    if not args.skip_wrk:
        if not shutil.which("wrk"):
            summary.append("wrk: not installed (apt-get install -y wrk), skipped")
        else:
            log(f"(b) wrk -> same endpoint, closed loop, {int(seconds)} s")
            wrk = run_wrk(endpoint, tmp, int(seconds), args.wrk_threads, args.wrk_connections)
            out["wrk"] = wrk
            WRK["rps"] = wrk.get("requests_per_s")
            log(f"    {wrk['command']}")
            log(f"    {wrk.get('requests_per_s', '?')} req/s, latency p50 "
                f"{ms(wrk.get('p50'), 2)} ms p99 {ms(wrk.get('p99'), 2)} ms, nginx CPU "
                f"{wrk['endpoint_cpu']:.0%}, machine busy {wrk['machine_busy']:.0%}, background "
                f"before {wrk['background']:.0%} of a core"
                + (f", non-2xx {wrk['non_2xx']}" if wrk.get("non_2xx") else "")
                + (f", {wrk['socket_errors']}" if wrk.get("socket_errors") else ""))
            if wrk["exit"] != 0:
                log(f"    wrk exited {wrk['exit']}: {wrk['stderr']}")
            summary.append(f"wrk -t{args.wrk_threads} -c{args.wrk_connections} -> "
                           f"{endpoint.server}: {wrk.get('requests_per_s', '?')} req/s "
                           f"(closed loop), p50 {ms(wrk.get('p50'), 2)} ms p99 "
                           f"{ms(wrk.get('p99'), 2)} ms")
            log("")
    if args.skip_endpoint:
        return out
    log(f"(a) harness sender -> trivial endpoint, {seconds:g} s per step, sustained = sent/s >= "
        f"{SUSTAINED:.0%} of target, errors+drops <= 1%, on time (<= 10 ms late) >= {ON_TIME:.0%}")
    log("    xwrk: sent/s / wrk's req/s; ratio: achieved/target; onTime: share of sends <= 10 ms "
        "late; late: the sender's count; maxlag/lag99/ack ms; conns: the senders' peak / the OS's "
        "peak ESTABLISHED; CPU: 100% = one core; cpu/1k: sender CPU per 1,000 tx/s offered")
    log(ENDPOINT_HEADER)
    for workers in args.workers:
        def one(rate: float, workers: int = workers, label: str = "") -> EndpointStep:
            step = endpoint_step(endpoint, rate, workers, seconds, args.max_in_flight, 10.0)
            step.label = label
            log(endpoint_row(step))
            if not step.passed and step.noisy and not label:  # a neighbour, not us? once more
                step = endpoint_step(endpoint, rate, workers, seconds, args.max_in_flight, 10.0)
                log(endpoint_row(step) + "  [retry]")
            return step

        best, steps = search(one, args.start_rate, tolerance, args.max_rate,
                             min_rate=50, granularity=50)
        entry: dict[str, Any] = {"steps": [asdict(s) for s in steps], "best": None, "over": None}
        out["workers"][workers] = entry
        if not best:
            summary.append(f"harness -> {endpoint.server}, {workers} worker(s): no rate sustained")
            log("")
            continue
        entry["best"] = asdict(best)
        passing = [s for s in steps if s.passed and s.target <= best.target]
        worst_cpu = max(s.cpu_per_1k for s in passing)
        summary.append(
            f"harness -> {endpoint.server}, {workers} worker(s) [{best.loop}]: ceiling "
            f"{best.target:.0f} tx/s (sent {best.send_rate:.0f}/s"
            + (f" = {best.vs_wrk:.3f}x wrk -t{args.wrk_threads}" if best.vs_wrk else "")
            + f"); on time {best.on_time:.4f}, lag p99 {ms(best.lag_p99)} ms, ack p50 "
            f"{ms(best.ack_p50, 2)} p99 {ms(best.ack_p99, 2)} ms; sender CPU {best.sender_cpu:.0%} "
            f"({best.cpu_per_1k:.1%} of a core per 1,000 tx/s; worst of the passing steps "
            f"{worst_cpu:.1%}); connections {best.connections}")
        entry["worst_cpu_per_1k"] = worst_cpu
        if args.overload > 0:
            over = one(best.target * args.overload, label=f"[{args.overload:g}x ceiling]")
            entry["over"] = asdict(over)
            summary.append(
                f"  asked {args.overload:g}x the ceiling ({over.target:.0f} tx/s): sent "
                f"{over.send_rate:.0f}/s = {over.send_rate / best.target:.3f}x the ceiling, "
                f"{over.dropped} dropped at max_in_flight, peak connections {over.connections} "
                f"(OS: {over.os_connections}); limit: {over.limit or 'none reported'}")
        log("")
    return out


def round_medians(rounds: list[dict[str, Any]]) -> list[str]:
    """Medians over rounds of the figures the issue asks for, each a ratio to its own
    round's wrk."""
    lines = []
    workers = sorted({w for r in rounds for w in r["workers"]})
    for w in workers:
        entries = [r["workers"][w] for r in rounds if r["workers"].get(w, {}).get("best")]
        if not entries:
            continue
        ceil = [e["best"]["target"] for e in entries]
        vs = [e["best"]["vs_wrk"] for e in entries if e["best"]["vs_wrk"]]
        cpu = [e["worst_cpu_per_1k"] for e in entries]
        over = [e["over"]["send_rate"] / e["best"]["target"] for e in entries if e.get("over")]
        conns = [e["over"]["connections"] for e in entries if e.get("over")]
        lines.append(
            f"median of {len(entries)} rounds, {w} worker(s): ceiling {np.median(ceil):.0f} tx/s"
            + (f" = {np.median(vs):.3f}x wrk" if vs else "")
            + f" (rounds: {', '.join(f'{c:.0f}' for c in ceil)}); worst CPU per 1,000 tx/s "
            f"{np.median(cpu):.1%}"
            + (f"; at 2x: {np.median(over):.3f}x the ceiling (rounds: "
               f"{', '.join(f'{o:.3f}' for o in over)}), peak connections {max(conns)}"
               if over else ""))
    wrk = [r["wrk"]["requests_per_s"] for r in rounds if r.get("wrk") and r["wrk"].get("requests_per_s")]
    if wrk:
        lines.append(f"wrk medians: {np.median(wrk):.0f} req/s (rounds: "
                     f"{', '.join(f'{x:.0f}' for x in wrk)})")
    return lines


# --- main ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--quick", action="store_true", help="shorter steps, coarser search")
    parser.add_argument("--skip-anvil", action="store_true")
    parser.add_argument("--skip-wrk", action="store_true")
    parser.add_argument("--skip-endpoint", action="store_true", help="skip (a)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="sender processes to try in (a) (default 1 2)")
    parser.add_argument("--start-rate", type=float, default=1000)
    parser.add_argument("--max-rate", type=float, default=128000)
    parser.add_argument("--seconds", type=float, help="send time per endpoint step (default 10, quick 5)")
    parser.add_argument("--tolerance", type=float, help="bisect until (hi-lo)/lo <= this "
                        "(default 0.05, quick 0.10)")
    parser.add_argument("--max-in-flight", type=int, default=4096)
    parser.add_argument("--server", choices=["auto", "nginx", "python"], default="auto",
                        help="the trivial endpoint (default nginx if installed)")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--wrk-threads", type=int, default=1,
                        help="wrk threads (default 1: the issue's reference is wrk -t1)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat wrk + the sender search + the overload step; medians at the end")
    parser.add_argument("--overload", type=float, default=2.0,
                        help="after the ceiling, one step at this multiple of it (0: skip)")
    parser.add_argument("--wrk-connections", type=int, default=64)
    parser.add_argument("--anvil-workers", type=int, default=1)
    parser.add_argument("--anvil-start", type=float, default=200)
    parser.add_argument("--anvil-max", type=float, default=12800)
    parser.add_argument("--anvil-accounts", type=int, default=1024)
    parser.add_argument("--anvil-timeout", type=float, default=540,
                        help="seconds one `bctest run` may take before it is interrupted")
    parser.add_argument("--quiet-wait", type=float, default=600,
                        help="before each step wait up to this many seconds for other work on "
                        "the machine to drop below --quiet-threshold (default 600)")
    parser.add_argument("--quiet-threshold", type=float, default=0.15,
                        help="background CPU in cores counted as quiet (default 0.15)")
    parser.add_argument("--json", type=Path, help="also write every step here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    QUIET.update(max_wait=args.quiet_wait, threshold=args.quiet_threshold)
    seconds = args.seconds or (5 if args.quick else 10)
    tolerance = args.tolerance or (0.10 if args.quick else 0.05)
    anvil_warmup, anvil_duration, anvil_settle = (2, 8, 15) if args.quick else (3, 15, 20)

    tmp = Path(tempfile.mkdtemp(prefix="bctest-bench-"))
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "host": {"cpus": os.cpu_count(),
                                                      "python": sys.version.split()[0]},
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "settings": {"seconds": seconds, "tolerance": tolerance, "sustained": SUSTAINED,
                     "max_in_flight": args.max_in_flight, "rounds": args.rounds,
                     "wrk": f"-t{args.wrk_threads} -c{args.wrk_connections}",
                     "anvil": {"warmup": anvil_warmup, "duration": anvil_duration,
                               "settle": anvil_settle, "workers": args.anvil_workers,
                               "accounts": args.anvil_accounts}},
    }
    summary: list[str] = []
    run_ids: list[str] = []
    status = 0
    try:
        if not (args.skip_endpoint and args.skip_wrk):
            with Endpoint(args.server, nginx_workers=args.nginx_workers) as endpoint:
                report["endpoint"] = {"server": endpoint.server, "url": endpoint.url,
                                      "body_bytes": len(dummy_bodies(1)[0].body)}
                log(f"trivial endpoint: {endpoint.server} on {endpoint.url} "
                    f"(body {report['endpoint']['body_bytes']} bytes)")
                report["rounds"] = []
                for round_no in range(1, args.rounds + 1):
                    if args.rounds > 1:
                        log(f"\n=== round {round_no} of {args.rounds} ===")
                    report["rounds"].append(endpoint_round(endpoint, args, tmp, seconds,
                                                           tolerance, summary))
                if args.rounds > 1:
                    summary.extend(round_medians(report["rounds"]))
        if not args.skip_anvil:
            log(f"(c) bctest run -> anvil (1 node, block_time 1, {args.anvil_accounts} accounts, "
                f"warmup {anvil_warmup} s, measure {anvil_duration} s, settle {anvil_settle} s, "
                f"{args.anvil_workers} worker(s))")
            log("    ratio: bctest send_rate_ratio; honest: sends made in time / target "
                "(history.jsonl); tput: committed/s; p50/p99: commit latency ms;")
            log("    ack/lag ms (history.jsonl); late/maxlag: bctest's sender figures; CPU seconds "
                "over the whole run: bct = bctest (+senders, signing), anv = anvil container, "
                "prx = docker-proxy; others: cores used by the rest of the machine")
            log(ANVIL_HEADER)

            def one_anvil(rate: float) -> AnvilStep:
                def attempt() -> AnvilStep:
                    step = anvil_step(tmp, rate, args.anvil_workers, args.anvil_accounts,
                                      anvil_warmup, anvil_duration, anvil_settle, 1,
                                      args.anvil_timeout)
                    if step.run_id:
                        run_ids.append(step.run_id)
                    return step

                step = attempt()
                log(anvil_row(step))
                if not step.passed and step.noisy:  # a neighbour, not us? once more
                    step = attempt()
                    log(anvil_row(step) + "  [retry]")
                return step

            best, steps = search(one_anvil, args.anvil_start, tolerance, args.anvil_max,
                                 min_rate=10, granularity=25 if not args.quick else 50)
            report["anvil_steps"] = [asdict(s) for s in steps]
            if best:
                summary.append(
                    f"bctest run -> anvil, {args.anvil_workers} worker(s): sustained "
                    f"{best.target:.0f} tx/s (send_rate_ratio {best.ratio:.3f}, honest "
                    f"{best.honest_ratio:.3f}, success {best.success:.4f}, throughput "
                    f"{best.throughput:.1f} tx/s, commit p50 {ms(best.p50, 0)} ms p99 "
                    f"{ms(best.p99, 0)} ms, ack p50 {ms(best.ack_p50)} ms p99 "
                    f"{ms(best.ack_p99)} ms)")
            else:
                summary.append("bctest run -> anvil: no rate sustained")
    except KeyboardInterrupt:
        summary.append("INTERRUPTED: the figures above are partial")
        status = 130
    finally:
        left = leftover_containers(run_ids)
        if left:
            summary.append(f"WARNING: containers left behind by bench runs: {' '.join(left)}")
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log("\nSummary (" + report["date"] + f", {os.cpu_count()} cores)")
    for line in summary:
        log("  " + line)
    report["summary"] = summary
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
