"""The per-host agent of a Swarm run: network-namespace commands on a swarm node the
harness cannot nsenter into.

One global service of the harness image (bctest/harness:<version>) per run, constrained
to the run's hosts, on the host network, with its host's Docker socket and the run's
token (a swarm secret). For a node container on its host it starts a helper container
of the same image inside the node's network namespace (`network_mode container:<id>`,
only NET_ADMIN and NET_RAW), and runs in it what netns.py runs through nsenter locally:
iptables, tc, ip, and the NFQUEUE delayer (harness.faults.nfqueue). It also pauses and
unpauses node containers (the pause fault). It acts only on containers labelled with its
run, runs no other program, and answers only requests carrying the token.

The harness's side is AgentClient / AgentNamespace (the netns Namespace protocol).
Server: `python -m harness.runtime.agent` (environment: see main()).
"""

from __future__ import annotations

import hmac
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.errors import InfraError

TOOLS = ("iptables", "tc", "ip")    # what /run may start, nothing else
LINK_PROBE = ["python3", "-m", "harness.faults.links", "--probe"]   # + address, port, samples


def is_link_probe(argv: list[str]) -> bool:
    """The topology's RTT probe (harness.faults.links), with nothing but an IPv4 address,
    a port and a sample count after it."""
    if len(argv) != len(LINK_PROBE) + 3 or argv[:len(LINK_PROBE)] != LINK_PROBE:
        return False
    address, port, samples = argv[len(LINK_PROBE):]
    return (re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", address) is not None and port.isdigit()
            and samples.isdigit() and 0 < int(port) < 65536 and 0 < int(samples) <= 100)
TOKEN_HEADER = "X-Bctest-Token"
TOKEN_FILE = "/run/secrets/bctest-agent-token"
REQUEST_TIMEOUT = 45.0
READY_TIMEOUT = 60.0     # seconds for every agent to answer after its service is created
DELAYER_READY = 10.0


# -- the harness's side -------------------------------------------------------------------------


class AgentClient:
    """One host's agent, reached over HTTP with the run's token."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self.token = token

    def call(self, path: str, body: dict[str, Any] | None = None,
             timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method="POST",
                                         headers={TOKEN_HEADER: self.token,
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return json.loads(answer.read(1 << 20) or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode(errors="replace")
            raise InfraError(f"agent {self.url}{path}: HTTP {exc.code}: {detail[:300]}") from None
        except (OSError, ValueError) as exc:
            raise InfraError(f"agent {self.url}{path}: {exc}") from None

    def namespace(self, container_id: str) -> AgentNamespace:
        return AgentNamespace(self, container_id)

    def container(self, container_id: str) -> AgentContainer:
        return AgentContainer(self, container_id)


@dataclass
class AgentNamespace:
    """A node container's network namespace on the agent's host (netns.Namespace)."""

    agent: AgentClient
    container_id: str

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        got = self.agent.call("/run", {"container": self.container_id, "argv": list(argv)})
        done = subprocess.CompletedProcess(list(argv), int(got["returncode"]), got.get("stdout", ""),
                                           got.get("stderr", ""))
        if check and done.returncode != 0:
            raise InfraError(f"{' '.join(argv)} in the namespace of container {self.container_id[:12]} "
                             f"(agent {self.agent.url}) failed: "
                             f"{(done.stderr or done.stdout).strip()[:300]}")
        return done

    def start_delayer(self, queue: int, delay_ms: float, jitter_ms: float, seed: int) -> AgentDelayer:
        self.agent.call("/delayer/start", {"container": self.container_id, "queue": queue,
                                           "delay_ms": delay_ms, "jitter_ms": jitter_ms, "seed": seed})
        return AgentDelayer(self.agent, self.container_id, queue)

    def __str__(self) -> str:
        return f"container {self.container_id[:12]} via agent {self.agent.url}"


@dataclass
class AgentDelayer:
    agent: AgentClient
    container_id: str
    queue: int

    def stop(self) -> None:
        self.agent.call("/delayer/stop", {"container": self.container_id, "queue": self.queue})


@dataclass
class AgentContainer:
    """What the pause fault asks of a container, on the agent's host."""

    agent: AgentClient
    container_id: str

    def pause(self) -> None:
        self.agent.call("/pause", {"container": self.container_id})

    def unpause(self) -> None:
        self.agent.call("/unpause", {"container": self.container_id})


def agent_spec(run_id: str, labels: dict[str, str], image: str, port: int, secret: tuple[str, str],
               exclude: list[str]) -> dict[str, Any]:
    """The agents' global service (Engine API 1.41 body), on every run host (`exclude`:
    the swarm node ids that hold none of the run's tasks)."""
    return {
        "Name": f"bctest-{run_id}-agent",
        "Labels": {**labels, "bctest.agent": "true"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Command": ["python", "-m", "harness.runtime.agent"],
                "Env": [f"BCTEST_AGENT_RUN={run_id}", f"BCTEST_AGENT_PORT={port}",
                        f"BCTEST_AGENT_IMAGE={image}", f"BCTEST_AGENT_LABELS={json.dumps(labels)}"],
                "Labels": {**labels, "bctest.agent": "true"},
                "Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock",
                            "Target": "/var/run/docker.sock"}],
                "Secrets": [{"File": {"Name": "bctest-agent-token", "UID": "0", "GID": "0", "Mode": 0o400},
                             "SecretID": secret[0], "SecretName": secret[1]}],
                "StopGracePeriod": 15_000_000_000,
            },
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Networks": [{"Target": "host"}],
            "LogDriver": {"Name": "json-file", "Options": {"max-size": "16m", "max-file": "1"}},
            "Resources": {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * 1024**2, "Pids": 256}},
            "Placement": {"Constraints": [f"node.id != {node}" for node in sorted(exclude)]},
        },
        "Mode": {"Global": {}},
    }


class Agents:
    """The run's agents, one per host that holds a node."""

    def __init__(self, clients: dict[str, AgentClient]):
        self.clients = clients

    @classmethod
    def start(cls, client: Any, run_id: str, labels: dict[str, str], hosts: set[str],
              local_node_id: str, image_tag: str) -> Agents:
        import secrets as random_tokens

        import docker.errors

        from harness.runtime.docker import free_ports
        from harness.runtime.images import SOURCE_LABEL, source_digest
        try:
            found = client.images.get(image_tag)
        except docker.errors.ImageNotFound:
            raise InfraError(f"the swarm agent needs the harness image {image_tag} on every run host: "
                             "build it with `bctest images harness` (docs/swarm.md)") from None
        built_from, running = (found.labels or {}).get(SOURCE_LABEL), source_digest()
        if built_from != running:   # an agent of other code would answer the protocol differently
            raise InfraError(f"the harness image {image_tag} was built from other code (source "
                             f"{built_from or 'unlabelled'}, this harness {running}): rebuild it with "
                             "`bctest images harness` (docs/swarm.md)")
        image = found.id
        token = random_tokens.token_urlsafe(32)
        try:
            secret = client.secrets.create(name=f"bctest-{run_id}-agent-token", data=token.encode(),
                                           labels=labels)
        except docker.errors.APIError as exc:
            raise InfraError(f"cannot create the agent's token secret: {exc}") from None
        port = free_ports(1)[0]
        swarm_nodes = {n["ID"]: n for n in client.api.nodes()}
        body = agent_spec(run_id, labels, image, port, (secret.id, f"bctest-{run_id}-agent-token"),
                          [node for node in swarm_nodes if node not in hosts])
        try:
            service = client.api.create_service(body["TaskTemplate"], name=body["Name"],
                                                labels=body["Labels"], mode=body["Mode"])
        except docker.errors.APIError as exc:
            raise InfraError(f"cannot create the agent service: {exc}") from None
        clients = {}
        for host in hosts:
            address = "127.0.0.1" if host == local_node_id else \
                ((swarm_nodes.get(host) or {}).get("Status") or {}).get("Addr", "")
            clients[host] = AgentClient(f"http://{address}:{port}", token)
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = dict(clients)
        while waiting:
            for host, agent in list(waiting.items()):
                try:
                    agent.call("/health", timeout=2)
                    del waiting[host]
                except InfraError as exc:
                    last = str(exc)
            if waiting:
                tasks = client.api.tasks(filters={"service": service["ID"]})
                failed = [t for t in tasks if t["Status"]["State"] in ("failed", "rejected", "complete")]
                if failed or time.monotonic() > deadline:
                    why = failed[0]["Status"].get("Err") if failed else last
                    raise InfraError(f"the swarm agent on {', '.join(sorted(waiting))} did not answer: "
                                     f"{why}")
                time.sleep(0.5)
        return cls(clients)

    def for_host(self, node_id: str) -> AgentClient:
        if node_id not in self.clients:
            raise InfraError(f"no agent on swarm node {node_id}")
        return self.clients[node_id]

    def close(self) -> None:
        """Ask every agent to stop its delayers and remove its helpers (best effort: the
        agent does it again on SIGTERM when its service is removed)."""
        for agent in self.clients.values():
            try:
                agent.call("/close", timeout=20)
            except InfraError:
                pass


# -- the agent's side ---------------------------------------------------------------------------


class Server:
    """What one agent holds: the host's engine, its run, its helpers."""

    def __init__(self, client: Any, run_id: str, image: str, labels: dict[str, str]):
        self.client = client
        self.run_id = run_id
        self.image = image
        self.labels = labels
        self.helpers: dict[str, Any] = {}     # node container id -> helper container
        self.lock = threading.Lock()

    def node(self, container_id: str) -> Any:
        """The node container, if it is one of this run's (else PermissionError)."""
        import docker.errors
        if not isinstance(container_id, str) or not container_id.isalnum():
            raise PermissionError("container: an id")
        try:
            container = self.client.containers.get(container_id)
        except docker.errors.NotFound:
            raise LookupError(f"no container {container_id[:12]} on this host") from None
        labels = container.labels or {}
        if labels.get("bctest.run") != self.run_id or "bctest.node" not in labels:
            raise PermissionError(f"container {container_id[:12]} is not a node of run {self.run_id}")
        return container

    def helper(self, container_id: str) -> Any:
        """The helper inside the node's network namespace (made on first use)."""
        node = self.node(container_id)
        with self.lock:
            helper = self.helpers.get(node.id)
            if helper is not None:
                helper.reload()
                if helper.status == "running":
                    return helper
                helper.remove(force=True)
            helper = self.client.containers.run(
                self.image, entrypoint=["sleep", "infinity"], detach=True, init=True,
                network_mode=f"container:{node.id}", cap_drop=["ALL"], cap_add=["NET_ADMIN", "NET_RAW"],
                labels={**self.labels, "bctest.agent-helper": node.labels.get("bctest.node", "")},
                mem_limit=256 * 1024**2, pids_limit=64, name=f"bctest-{self.run_id}-nshelper-{node.id[:12]}")
            self.helpers[node.id] = helper
            return helper

    def exec(self, container_id: str, argv: list[str], detach: bool = False) -> tuple[int, str, str]:
        helper = self.helper(container_id)
        api = self.client.api
        created = api.exec_create(helper.id, argv, stdout=True, stderr=True)
        if detach:
            api.exec_start(created["Id"], detach=True)
            return 0, "", ""
        out, err = api.exec_start(created["Id"], demux=True)
        code = api.exec_inspect(created["Id"]).get("ExitCode")
        return int(code if code is not None else -1), (out or b"").decode(errors="replace"), \
            (err or b"").decode(errors="replace")

    def run(self, body: dict[str, Any]) -> dict[str, Any]:
        argv = body.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv) \
                or not (argv[0] in TOOLS or is_link_probe(argv)):
            raise PermissionError(f"argv: a list of strings starting with one of {', '.join(TOOLS)}, "
                                  "or the link probe")
        code, out, err = self.exec(body.get("container"), argv)
        return {"returncode": code, "stdout": out, "stderr": err}

    def delayer_start(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = int(body["queue"])
        files = f"/tmp/bct-delayer-{queue}"
        command = ["python", "-m", "harness.faults.nfqueue", "--queue", str(queue),
                   "--delay-ms", f"{float(body['delay_ms']):g}", "--jitter-ms",
                   f"{float(body.get('jitter_ms') or 0):g}", "--seed", str(int(body.get("seed", 0))),
                   "--parent", "0"]   # an exec's parent is outside the helper: ppid 0 for its life
        script = f"echo $$ > {files}.pid; exec {shlex.join(command)} > {files}.log 2>&1"
        container = body.get("container")
        self.exec(container, ["sh", "-c", script], detach=True)
        deadline = time.monotonic() + DELAYER_READY
        while True:
            _, log, _ = self.exec(container, ["cat", f"{files}.log"])
            if log.startswith(f"nfqueue {queue}: holding"):
                return {"started": True}
            alive, _, _ = self.exec(container, ["sh", "-c", f"kill -0 $(cat {files}.pid)"])
            if alive != 0 or time.monotonic() > deadline:
                raise RuntimeError(f"the NFQUEUE delayer did not start: {log.strip()[:300] or 'no output'}")
            time.sleep(0.2)

    def delayer_stop(self, body: dict[str, Any]) -> dict[str, Any]:
        pidfile = f"/tmp/bct-delayer-{int(body['queue'])}.pid"
        script = (f"p=$(cat {pidfile}) || exit 0; kill -TERM $p 2>/dev/null || exit 0; "
                  "for i in $(seq 50); do kill -0 $p 2>/dev/null || exit 0; sleep 0.1; done; kill -KILL $p")
        code, out, err = self.exec(body.get("container"), ["sh", "-c", script])
        return {"returncode": code, "stderr": err}

    def pause(self, body: dict[str, Any], on: bool) -> dict[str, Any]:
        container = self.node(body.get("container"))
        container.pause() if on else container.unpause()
        return {"paused": on}

    def close(self) -> dict[str, Any]:
        with self.lock:
            removed = 0
            for helper in self.helpers.values():
                try:
                    helper.remove(force=True)   # its delayers die with it
                    removed += 1
                except Exception:  # gone already
                    pass
            self.helpers.clear()
        return {"removed": removed}


def handler(server: Server, token: str) -> type[BaseHTTPRequestHandler]:
    routes = {
        "/health": lambda body: {"run": server.run_id},
        "/run": server.run,
        "/delayer/start": server.delayer_start,
        "/delayer/stop": server.delayer_stop,
        "/pause": lambda body: server.pause(body, True),
        "/unpause": lambda body: server.pause(body, False),
        "/close": lambda body: server.close(),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            given = self.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return self._answer(403, {"error": "bad token"})
            route = routes.get(self.path)
            if route is None:
                return self._answer(404, {"error": f"no {self.path}"})
            try:
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("a JSON object")
                self._answer(200, route(body))
            except PermissionError as exc:
                self._answer(403, {"error": str(exc)})
            except (LookupError, ValueError, TypeError) as exc:
                self._answer(400, {"error": f"{type(exc).__name__}: {exc}"})
            except Exception as exc:  # the agent answers, whatever the engine said
                self._answer(500, {"error": f"{type(exc).__name__}: {exc}"})

        def _answer(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            print(f"agent: {self.address_string()} {format % args}", file=sys.stderr, flush=True)

    return Handler


def main() -> int:
    """The agent's process: BCTEST_AGENT_RUN, _PORT, _IMAGE, _LABELS (JSON), [_BIND], and
    the token in /run/secrets/bctest-agent-token (BCTEST_AGENT_TOKEN_FILE)."""
    import docker
    run_id = os.environ["BCTEST_AGENT_RUN"]
    with open(os.environ.get("BCTEST_AGENT_TOKEN_FILE", TOKEN_FILE)) as stream:
        token = stream.read().strip()
    server = Server(docker.from_env(timeout=60), run_id, os.environ["BCTEST_AGENT_IMAGE"],
                    json.loads(os.environ.get("BCTEST_AGENT_LABELS", "{}")))
    httpd = ThreadingHTTPServer((os.environ.get("BCTEST_AGENT_BIND", "0.0.0.0"),
                                 int(os.environ["BCTEST_AGENT_PORT"])), handler(server, token))

    def stop(_signum: int, _frame: object) -> None:   # the service is removed: leave nothing
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"agent: run {run_id}, listening on port {httpd.server_address[1]}", file=sys.stderr, flush=True)
    try:
        httpd.serve_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
