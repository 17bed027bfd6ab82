"""A userspace packet delayer on NFQUEUE: the delay fault where the kernel has no netem.

Run inside a node's network namespace (`nsenter -t PID -n python -m harness.faults.nfqueue
--queue N --delay-ms D [--jitter-ms J] [--seed S]`), next to an iptables rule that sends
the node's packets to queue N. The kernel hands each packet's id to this process, which
holds the verdict and answers ACCEPT once the packet's delay has passed: the packet leaves
late, exactly like netem's egress delay. Nothing is copied but the packet's metadata.

Release times never go backwards (a packet waits for the one queued before it), so jitter
delays packets without reordering them: TCP between nodes sees a slower link, not a
broken one. The iptables rule carries --queue-bypass: if this process is gone, packets
pass undelayed instead of being dropped. On SIGTERM or SIGINT every held packet is let
go at once before the process exits. It does the same within half a second of its parent
(the run's process, `--parent`) being gone, SIGKILL included: it watches its parent pid
rather than take a parent-death signal, because the nemesis starts it from a worker thread
and that signal fires when the starting *thread* ends (harness.lifetime).

The netlink messages are packed and parsed here (no libnetfilter_queue needed); the
layouts are those of linux/netfilter/nfnetlink_queue.h.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from harness.errors import InfraError

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQA_CFG_MASK, NFQA_CFG_FLAGS = 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1        # a full queue lets packets through rather than dropping them
NF_ACCEPT = 1
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
QUEUE_MAXLEN = 20000            # packets held at once; past it the kernel lets them through

NLMSGHDR = struct.Struct("=IHHII")   # len, type, flags, seq, pid (host order)
NFGENMSG = struct.Struct("!BBH")     # family, version, res_id (big-endian)
NLATTR = struct.Struct("=HH")        # len, type


def _align(n: int) -> int:
    return (n + 3) & ~3


def attribute(kind: int, payload: bytes) -> bytes:
    length = NLATTR.size + len(payload)
    return NLATTR.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def message(msg_type: int, queue: int, attributes: bytes, seq: int = 0, flags: int = NLM_F_REQUEST) -> bytes:
    """One nfnetlink message to the queue subsystem (family AF_UNSPEC, version 0)."""
    body = NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + attributes
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type,
                         flags, seq, 0) + body


def bind_messages(queue: int) -> list[bytes]:
    """Bind the queue, ask for metadata only, raise its length, make it fail open."""
    cmd = attribute(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0))
    params = attribute(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
    maxlen = attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN))
    flags = (attribute(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
             + attribute(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)))
    ack = NLM_F_REQUEST | NLM_F_ACK
    return [message(NFQNL_MSG_CONFIG, queue, cmd, 1, ack), message(NFQNL_MSG_CONFIG, queue, params, 2, ack),
            message(NFQNL_MSG_CONFIG, queue, maxlen, 3, ack), message(NFQNL_MSG_CONFIG, queue, flags, 4, ack)]


def unbind_message(queue: int) -> bytes:
    return message(NFQNL_MSG_CONFIG, queue,
                   attribute(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_UNBIND, 0, 0)))


def verdict_message(queue: int, packet_id: int) -> bytes:
    accept = attribute(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))
    return message(NFQNL_MSG_VERDICT, queue, accept)


@dataclass(frozen=True)
class Netlink:
    """One parsed netlink message: its type, and for errors the errno (0 is an ACK)."""
    msg_type: int
    seq: int
    payload: bytes

    @property
    def error(self) -> int | None:
        if self.msg_type != NLMSG_ERROR:
            return None
        return -struct.unpack_from("=i", self.payload)[0]

    def packet_id(self) -> int | None:
        """The id of a queued packet, from its NFQA_PACKET_HDR attribute."""
        if self.msg_type != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            return None
        offset = NFGENMSG.size
        while offset + NLATTR.size <= len(self.payload):
            length, kind = NLATTR.unpack_from(self.payload, offset)
            if length < NLATTR.size:
                break
            if kind & 0x3FFF == NFQA_PACKET_HDR:
                return struct.unpack_from("!I", self.payload, offset + NLATTR.size)[0]
            offset += _align(length)
        return None


def parse(datagram: bytes) -> Iterator[Netlink]:
    offset = 0
    while offset + NLMSGHDR.size <= len(datagram):
        length, msg_type, _flags, seq, _pid = NLMSGHDR.unpack_from(datagram, offset)
        if length < NLMSGHDR.size or offset + length > len(datagram):
            break
        yield Netlink(msg_type, seq, datagram[offset + NLMSGHDR.size: offset + length])
        offset += _align(length)


class Schedule:
    """When each held packet may leave: arrival + delay ± jitter, never before the one ahead."""

    def __init__(self, delay_s: float, jitter_s: float, seed: int) -> None:
        self.delay_s, self.jitter_s = delay_s, jitter_s
        self.random = random.Random(seed)
        self.last = 0.0
        self.held: list[tuple[float, int, int]] = []   # (release, order, packet id)
        self.order = 0

    def hold(self, packet_id: int, now: float) -> float:
        wait = self.delay_s + (self.random.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0)
        release = max(now + max(wait, 0.0), self.last)
        self.last = release
        heapq.heappush(self.held, (release, self.order, packet_id))
        self.order += 1
        return release

    def due(self, now: float) -> list[int]:
        out = []
        while self.held and self.held[0][0] <= now:
            out.append(heapq.heappop(self.held)[2])
        return out

    def next_release(self) -> float | None:
        return self.held[0][0] if self.held else None

    def drain(self) -> list[int]:
        out = [entry[2] for entry in sorted(self.held)]
        self.held.clear()
        return out


class Stop(Exception):
    pass


def _stop(_signum: int, _frame: object) -> None:
    raise Stop


def _bind(sock: socket.socket, queue: int) -> None:
    for request in bind_messages(queue):
        sock.send(request)
        for reply in parse(sock.recv(65536)):
            if reply.error:
                raise OSError(reply.error, f"binding NFQUEUE {queue}: {os.strerror(reply.error)}")


def serve(queue: int, delay_ms: float, jitter_ms: float, seed: int, parent: int | None = None) -> int:
    schedule = Schedule(delay_ms / 1000.0, jitter_ms / 1000.0, seed)
    # The pid the run gave us, not whoever is our parent by now: if the run died before
    # this line we were adopted already and must not take the adopter for the run.
    parent = os.getppid() if parent is None else parent
    if os.getppid() != parent:
        print(f"nfqueue {queue}: the run (pid {parent}) is gone; not starting", file=sys.stderr, flush=True)
        return 1
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((0, 0))
    _bind(sock, queue)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"nfqueue {queue}: holding packets {delay_ms:g} ms (jitter {jitter_ms:g} ms)", flush=True)
    try:
        while True:
            now = time.monotonic()
            for packet_id in schedule.due(now):
                sock.send(verdict_message(queue, packet_id))
            release = schedule.next_release()
            timeout = 0.5 if release is None else min(0.5, max(release - now, 0.0))
            readable, _, _ = select.select([sock], [], [], timeout)
            if os.getppid() != parent:
                break   # the run is gone: let go of everything and leave
            if not readable:
                continue
            try:
                datagram = sock.recv(65536)
            except OSError:    # ENOBUFS: the kernel dropped messages we could not read in time
                continue
            arrived = time.monotonic()
            for msg in parse(datagram):
                packet_id = msg.packet_id()
                if packet_id is not None:
                    schedule.hold(packet_id, arrived)
    except Stop:
        pass
    finally:
        for packet_id in schedule.drain():
            sock.send(verdict_message(queue, packet_id))
        sock.send(unbind_message(queue))
        sock.close()
    return 0


# -- the harness's side: start a delayer in a node's namespace and stop it ---------------------

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def start(pid: int, queue: int, delay_ms: float, jitter_ms: float, seed: int) -> subprocess.Popen[str]:
    """A delayer bound to `queue` in the network namespace of process `pid`, once it is ready."""
    # nsenter entering only a network namespace execs without forking: the delayer is our
    # child, watches our pid, and carries the run's marks (harness.lifetime) for `bctest clean`.
    argv = ["nsenter", "-t", str(pid), "-n", sys.executable, "-m", "harness.faults.nfqueue",
            "--queue", str(queue), "--delay-ms", f"{delay_ms:g}", "--jitter-ms", f"{jitter_ms:g}",
            "--seed", str(seed), "--parent", str(os.getpid())]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
    line = proc.stdout.readline() if readable else ""
    if not line.startswith(f"nfqueue {queue}: holding"):
        stop(proc)
        why = (proc.stderr.read() if proc.stderr else "").strip() or line.strip() or \
            f"not ready within {READY_TIMEOUT:g} s"
        raise InfraError(f"the NFQUEUE delayer in the namespace of pid {pid} did not start: {why[:300]}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (it lets every held packet go and unbinds), SIGKILL if it does not exit."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe:
            pipe.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.faults.nfqueue",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parent", type=int, default=None,
                        help="the run's pid: let every packet go and exit when it is gone")
    args = parser.parse_args(argv)
    try:
        return serve(args.queue, args.delay_ms, args.jitter_ms, args.seed, args.parent)
    except OSError as exc:
        print(f"nfqueue {args.queue}: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
