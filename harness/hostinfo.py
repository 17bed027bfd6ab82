"""Facts about the machine a run ran on, for the report's reproducibility section."""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any


def host_facts(client: Any | None = None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    facts["memory_bytes"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    facts["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if client is not None:
        try:
            version = client.version()
            facts["docker"] = {"version": version.get("Version"),
                               "api": version.get("ApiVersion"),
                               "kernel": version.get("KernelVersion")}
        except Exception as exc:  # facts are best effort; never fail a run over them
            facts["docker"] = {"error": str(exc)[:200]}
    return facts
