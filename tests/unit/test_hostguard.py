"""The host guard's rule bookkeeping, without touching the host's iptables."""

from __future__ import annotations

import subprocess

from harness.runtime import hostguard


def test_bridge_names_fit_linux_and_differ_per_run():
    names = {hostguard.bridge_name(f"run{i}") for i in range(1000)}
    assert len(names) == 1000 and all(len(n) <= 15 and n.startswith("bct") for n in names)


def test_guarded_runs_are_read_from_the_rule_comments(monkeypatch):
    listing = "\n".join([
        "-P INPUT ACCEPT",
        '-A INPUT -i bct0123456789ab -m conntrack --ctstate NEW -m comment '
        '--comment "bctest.run=abc123" -j DROP',
        "-A INPUT -i bct99 -m conntrack --ctstate NEW -m comment --comment bctest.run=def456 -j DROP",
        '-A INPUT -m comment --comment "not ours" -j ACCEPT',
    ])
    monkeypatch.setattr(hostguard.shutil, "which", lambda name: "/usr/sbin/iptables")
    monkeypatch.setattr(hostguard, "_iptables",
                        lambda *args: subprocess.CompletedProcess(args, 0, listing, ""))
    assert hostguard.guarded_runs() == {"abc123", "def456"}


def test_without_iptables_the_run_goes_on_with_the_reason(monkeypatch):
    monkeypatch.setattr(hostguard.shutil, "which", lambda name: None)
    assert hostguard.guard("r1") == "iptables is not installed on this host"
    assert hostguard.unguard("r1") == 0 and hostguard.guarded_runs() == set()
