"""Keep vendor nodes off the test host's own services.

The run network's bridge is the nodes' way to the host: without a rule, a node can open
connections to anything the host serves on the bridge's gateway address (an engine API on
TCP, an internal web page, a database). One host iptables rule per run drops every new
connection arriving from the run's bridge; the harness's own connections to the nodes
(published ports, readiness probes) start on the host, so their replies are established
traffic and pass. The rule carries the run id in a comment, so the teardown and `bctest
clean` find it, and nothing of a run outlives it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess

COMMENT = "bctest.run={run_id}"
_RULE = re.compile(r'^-A INPUT .*--comment "?bctest\.run=([A-Za-z0-9_-]+)"?')


def bridge_name(run_id: str) -> str:
    """The run network's bridge interface: 15 characters at most (Linux), one per run."""
    return "bct" + hashlib.sha256(run_id.encode()).hexdigest()[:12]


def _rule(run_id: str) -> list[str]:
    return ["INPUT", "-i", bridge_name(run_id), "-m", "conntrack", "--ctstate", "NEW",
            "-m", "comment", "--comment", COMMENT.format(run_id=run_id), "-j", "DROP"]


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True, timeout=30)


def guard(run_id: str) -> str | None:
    """Drop new connections from the run's bridge to the host. None when done, else why it
    could not be (the run goes on; results.json warns that nodes could reach the host)."""
    if shutil.which("iptables") is None:
        return "iptables is not installed on this host"
    done = _iptables("-I", *_rule(run_id))
    if done.returncode != 0:
        return f"iptables refused the rule: {(done.stderr or done.stdout).strip()[:200]}"
    return None


def unguard(run_id: str) -> int:
    """Remove every rule of this run (there is one; a retried setup may have left two)."""
    removed = 0
    if shutil.which("iptables") is None:
        return 0
    while _iptables("-D", *_rule(run_id)).returncode == 0:
        removed += 1
    return removed


def guarded_runs() -> set[str]:
    """Run ids that have a rule on this host now (for `bctest clean`)."""
    if shutil.which("iptables") is None:
        return set()
    listed = _iptables("-S", "INPUT")
    return {m.group(1) for line in listed.stdout.splitlines() if (m := _RULE.match(line))}
