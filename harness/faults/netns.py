"""Commands run inside a node container's network namespace (iptables, tc).

The host's own iptables and tc run through `nsenter -t PID -n`, so node images need
neither tool nor NET_ADMIN. Every rule of a fault lives in a chain of its own, hooked
from INPUT and OUTPUT, so healing one fault never touches another's rules.

Where the namespace is is the runtime's: `runtime.namespace(node)` gives a local pid (an
int: entered with nsenter here), None for a container that is down, or a Namespace
object that runs the commands elsewhere (a Swarm node's agent, harness/runtime/swarm.py).
Every function here takes either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Protocol

from harness.errors import InfraError

TOOLS = ("nsenter", "iptables", "tc")


class Delayer(Protocol):
    def stop(self) -> None: ...


class Namespace(Protocol):
    """A node's network namespace reached some other way than a local pid."""

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]: ...

    def start_delayer(self, queue: int, delay_ms: float, jitter_ms: float, seed: int) -> Delayer: ...


Target = int | Namespace | None   # a local pid, a Namespace, or None: the container is down


class LocalDelayer:
    """The NFQUEUE delayer (harness.faults.nfqueue) running here, in a local namespace."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def stop(self) -> None:
        from harness.faults import nfqueue
        nfqueue.stop(self.proc)


def start_delayer(target: Target, queue: int, delay_ms: float, jitter_ms: float, seed: int) -> Delayer:
    """The NFQUEUE delayer bound to `queue` in the target's namespace, once it is ready."""
    if target is None or isinstance(target, int):
        from harness.faults import nfqueue
        return LocalDelayer(nfqueue.start(target or 0, queue, delay_ms, jitter_ms, seed))
    return target.start_delayer(queue, delay_ms, jitter_ms, seed)


def preflight() -> None:
    """Network faults need root on the engine's host and the tools: say so before the run."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise InfraError(f"network faults need {', '.join(missing)} on this host "
                         "(Debian: apt-get install util-linux iptables iproute2)")
    if os.geteuid() != 0:
        raise InfraError("network faults enter the nodes' network namespaces with nsenter, "
                         "which needs root: run bctest as root (or drop the network faults)")


def run(pid: Target, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if pid is not None and not isinstance(pid, int):
        return pid.run(list(argv), check=check)
    if pid is None or pid <= 0:
        raise InfraError(f"cannot enter the network namespace of a stopped container ({argv[0]})")
    if not os.path.exists(f"/proc/{pid}/ns/net"):
        raise InfraError(f"process {pid} is not visible here: network faults need the harness to "
                         "run on the Docker Engine's host, in its PID namespace")
    done = subprocess.run(["nsenter", "-t", str(pid), "-n", *argv], capture_output=True,
                          text=True, timeout=30)
    if check and done.returncode != 0:
        raise InfraError(f"{' '.join(argv)} in the namespace of pid {pid} failed: "
                         f"{(done.stderr or done.stdout).strip()[:300]}")
    return done


def add_drop_chain(pid: Target, chain: str, peers: list[str], probability: float | None = None) -> None:
    """DROP packets to and from `peers` (all of them, or a random share)."""
    run(pid, "iptables", "-w", "-N", chain)
    sample = ["-m", "statistic", "--mode", "random", "--probability", f"{probability:.6f}"] \
        if probability is not None else []
    for peer in peers:
        run(pid, "iptables", "-w", "-A", chain, "-s", peer, *sample, "-j", "DROP")
        run(pid, "iptables", "-w", "-A", chain, "-d", peer, *sample, "-j", "DROP")
    for hook in ("INPUT", "OUTPUT"):
        run(pid, "iptables", "-w", "-I", hook, "-j", chain)


def add_queue_chain(pid: Target, chain: str, peers: list[str], queue: int) -> None:
    """Send this node's packets to `peers` to NFQUEUE `queue` (egress only, like netem).

    --queue-bypass: with no delayer listening the packets pass instead of being dropped.
    """
    run(pid, "iptables", "-w", "-N", chain)
    for peer in peers:
        run(pid, "iptables", "-w", "-A", chain, "-d", peer, "-j", "NFQUEUE", "--queue-num", str(queue),
            "--queue-bypass")
    run(pid, "iptables", "-w", "-I", "OUTPUT", "-j", chain)


def nfqueue_missing(pid: Target) -> str | None:
    """None when iptables can queue packets to userspace here; else iptables' exact answer."""
    probe = "bct-probe"
    run(pid, "iptables", "-w", "-N", probe, check=False)
    done = run(pid, "iptables", "-w", "-A", probe, "-d", "192.0.2.1", "-j", "NFQUEUE", "--queue-num", "0",
               "--queue-bypass", check=False)
    run(pid, "iptables", "-w", "-F", probe, check=False)
    run(pid, "iptables", "-w", "-X", probe, check=False)
    if done.returncode != 0:
        return (done.stderr or done.stdout).strip() or f"iptables exited {done.returncode}"
    return None


def remove_chain(pid: Target, chain: str) -> None:
    for hook in ("INPUT", "OUTPUT"):
        while run(pid, "iptables", "-w", "-D", hook, "-j", chain, check=False).returncode == 0:
            pass
    run(pid, "iptables", "-w", "-F", chain, check=False)
    run(pid, "iptables", "-w", "-X", chain, check=False)


def chains(pid: Target) -> list[str]:
    """Our chains present in the namespace (for tests and leak checks)."""
    listing = run(pid, "iptables", "-w", "-S").stdout
    return sorted({line.split()[1] for line in listing.splitlines()
                   if line.startswith("-N ") and line.split()[1].startswith("bct-")})


def qdisc(pid: Target, device: str = "eth0") -> str:
    return run(pid, "tc", "qdisc", "show", "dev", device).stdout.strip()


def set_root_qdisc(pid: Target, *spec: str, device: str = "eth0") -> None:
    run(pid, "tc", "qdisc", "replace", "dev", device, "root", *spec)


def clear_root_qdisc(pid: Target, device: str = "eth0") -> None:
    # "No such file" / "Cannot delete qdisc with handle of zero" means nothing to clear.
    run(pid, "tc", "qdisc", "del", "dev", device, "root", check=False)


def netem_missing(pid: Target, device: str = "eth0") -> str | None:
    """None when netem works here; else the kernel's exact answer."""
    done = run(pid, "tc", "qdisc", "replace", "dev", device, "root", "netem", "delay", "1ms",
               check=False)
    if done.returncode != 0:
        return (done.stderr or done.stdout).strip() or f"tc exited {done.returncode}"
    clear_root_qdisc(pid, device)
    return None
