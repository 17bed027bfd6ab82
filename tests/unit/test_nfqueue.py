"""The NFQUEUE delayer's own logic: netlink messages as the kernel lays them out, and
when held packets are let go."""

from __future__ import annotations

import socket
import struct

from hypothesis import given
from hypothesis import strategies as st

from harness.faults import nfqueue


def test_verdict_message_is_an_nfnetlink_accept_for_one_packet():
    raw = nfqueue.verdict_message(7, 0x01020304)
    length, msg_type, flags, seq, pid = struct.unpack_from("=IHHII", raw)
    assert (length, msg_type, flags, seq, pid) == (len(raw), (3 << 8) | 1, 1, 0, 0)
    assert raw[16:20] == bytes([socket.AF_UNSPEC, 0, 0, 7])             # nfgenmsg, res_id big-endian
    assert struct.unpack_from("=HH", raw, 20) == (12, 2)                 # NFQA_VERDICT_HDR
    assert struct.unpack_from("!II", raw, 24) == (1, 0x01020304)         # NF_ACCEPT, packet id


def test_bind_asks_for_an_ack_and_metadata_only_and_fails_open():
    bind, params, maxlen, flags = nfqueue.bind_messages(3)
    assert all(struct.unpack_from("=H", m, 6)[0] == 0x5 for m in (bind, params, maxlen, flags))  # REQUEST|ACK
    assert struct.unpack_from("=HHBBH", bind, 20) == (8, 1, 1, 0, 0)    # CFG_CMD: BIND
    assert struct.unpack_from("!IB", params, 24) == (0, 1)              # copy range 0, COPY_META
    assert struct.unpack_from("=H", params, 20)[0] == 9 and len(params) % 4 == 0   # attribute padded
    assert struct.unpack_from("!I", maxlen, 24)[0] == nfqueue.QUEUE_MAXLEN
    assert struct.unpack_from("!I", flags, 24)[0] == 1 and struct.unpack_from("!I", flags, 32)[0] == 1


def packet(packet_id: int, leading: bytes = b"") -> bytes:
    """A queued-packet message as the kernel sends it: nfgenmsg, other attributes, PACKET_HDR."""
    body = struct.pack("!BBH", socket.AF_INET, 0, 7) + leading + nfqueue.attribute(
        1, struct.pack("!IHB", packet_id, 0x0800, 3))
    return struct.pack("=IHHII", 16 + len(body), 3 << 8, 0, 0, 0) + body


def test_parse_finds_each_packet_id_in_a_batch_and_reads_errors():
    mark = nfqueue.attribute(3, struct.pack("!I", 9))                    # NFQA_MARK before the header
    ack = struct.pack("=IHHII", 36, 2, 0, 4, 0) + struct.pack("=i", 0) + b"\0" * 16
    err = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -1) + b"\0" * 16
    msgs = list(nfqueue.parse(packet(5) + packet(6, mark) + ack + err))
    assert [m.packet_id() for m in msgs] == [5, 6, None, None]
    assert [m.error for m in msgs] == [None, None, 0, 1]                  # 0 is an ACK; 1 is EPERM


def test_parse_stops_at_a_truncated_message():
    assert list(nfqueue.parse(packet(5)[:-4])) == []     # its length says more than arrived
    msgs = list(nfqueue.parse(packet(5) + b"\x03\x00"))
    assert [m.packet_id() for m in msgs] == [5]


def test_schedule_holds_each_packet_for_the_delay():
    schedule = nfqueue.Schedule(0.2, 0.0, seed=1)
    assert schedule.hold(1, 10.0) == 10.2 and schedule.hold(2, 10.05) == 10.25
    assert schedule.due(10.19) == [] and schedule.next_release() == 10.2
    assert schedule.due(10.2) == [1] and schedule.due(11.0) == [2] and schedule.next_release() is None


@given(st.lists(st.floats(0, 0.05), min_size=1, max_size=200), st.integers(0, 2**32))
def test_jittered_releases_stay_in_order_and_never_come_early(gaps, seed):
    schedule = nfqueue.Schedule(0.1, 0.03, seed)
    now, releases = 0.0, []
    for packet_id, gap in enumerate(gaps):
        now += gap
        release = schedule.hold(packet_id, now)
        assert release >= now + 0.07 - 1e-9        # never less than delay - jitter
        releases.append(release)
    assert releases == sorted(releases)             # FIFO: TCP sees a slow link, not reordering
    assert schedule.due(now + 10) == list(range(len(gaps)))


def test_drain_lets_every_held_packet_go_in_order():
    schedule = nfqueue.Schedule(5.0, 1.0, seed=3)
    for packet_id in range(10):
        schedule.hold(packet_id, float(packet_id))
    assert schedule.drain() == list(range(10)) and schedule.next_release() is None
