"""Transactional offset commits in the group coordinator (issue 14):
TxnOffsetCommit offsets stay pending (invisible to OffsetFetch, UNSTABLE with
require_stable) until the COMMIT marker reaches __consumer_offsets and are
dropped on ABORT; the pending and committed state survives restarts (the
load replays transactional batches and markers); hostile requests get
Kafka's errors; and confluent-kafka's send_offsets_to_transaction works end
to end."""
import os
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_bad_input import connect, recv_frame  # noqa: E402
from test_txn_partitions import Client  # noqa: E402

API_OFFSET_FETCH, API_TXN_OFFSET_COMMIT = 9, 28
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
OFFSET_METADATA_TOO_LARGE = 12
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_PRODUCER_EPOCH = 47
UNSTABLE_OFFSET_COMMIT = 88
OFFSETS_PARTITIONS = 50


def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def read_uvarint(data, pos):
    shift = n = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7


def cstr(s):
    if s is None:
        return b"\x00"
    b = s.encode()
    return uvarint(len(b) + 1) + b


def read_cstr(data, pos):
    n, pos = read_uvarint(data, pos)
    if n == 0:
        return None, pos
    return data[pos:pos + n - 1].decode(), pos + n - 1


def java_hash(s):
    h = 0
    units = s.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(group):
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % OFFSETS_PARTITIONS


class FlexClient:
    """Flexible-version requests (header v2, compact encodings)."""

    def __init__(self, broker):
        self.s = connect(broker)
        self.corr = 0

    def call(self, api, version, body):
        self.corr += 1
        hdr = struct.pack(">hhi", api, version, self.corr) + struct.pack(">h", 4) + b"test" + b"\x00"
        msg = hdr + body
        self.s.sendall(struct.pack(">i", len(msg)) + msg)
        data = recv_frame(self.s)
        assert struct.unpack_from(">i", data)[0] == self.corr
        return data[5:]  # correlation id + empty tagged fields

    def txn_commit(self, group, pid, epoch, offsets, generation=-1, member="", instance=None, version=3, tid="tx"):
        """offsets: {(topic, partition): (offset, metadata)} -> {(topic, partition): error}"""
        by_topic = {}
        for (t, p), v in offsets.items():
            by_topic.setdefault(t, []).append((p, v))
        if version >= 3:
            body = cstr(tid) + cstr(group) + struct.pack(">qhi", pid, epoch, generation) + cstr(member) + cstr(instance)
            body += uvarint(len(by_topic) + 1)
            for t, parts in by_topic.items():
                body += cstr(t) + uvarint(len(parts) + 1)
                for p, (off, md) in parts:
                    body += struct.pack(">iqi", p, off, -1) + cstr(md) + b"\x00"
                body += b"\x00"
            body += b"\x00"
            data = self.call(API_TXN_OFFSET_COMMIT, 3, body)
            pos = 4
            out = {}
            nt, pos = read_uvarint(data, pos)
            for _ in range(nt - 1):
                name, pos = read_cstr(data, pos)
                np_, pos = read_uvarint(data, pos)
                for _ in range(np_ - 1):
                    p, err = struct.unpack_from(">ih", data, pos)
                    pos += 6 + 1
                    out[(name, p)] = err
                pos += 1
            return out
        raise NotImplementedError

    def offset_fetch(self, group, parts, require_stable):
        """OffsetFetch v7 -> {(topic, partition): (offset, error)}"""
        by_topic = {}
        for t, p in parts:
            by_topic.setdefault(t, []).append(p)
        body = cstr(group) + uvarint(len(by_topic) + 1)
        for t, ps in by_topic.items():
            body += cstr(t) + uvarint(len(ps) + 1) + b"".join(struct.pack(">i", p) for p in ps) + b"\x00"
        body += struct.pack(">b", 1 if require_stable else 0) + b"\x00"
        data = self.call(API_OFFSET_FETCH, 7, body)
        pos = 4
        out = {}
        nt, pos = read_uvarint(data, pos)
        for _ in range(nt - 1):
            name, pos = read_cstr(data, pos)
            np_, pos = read_uvarint(data, pos)
            for _ in range(np_ - 1):
                p, off, _epoch = struct.unpack_from(">iqi", data, pos)
                pos += 16
                _md, pos = read_cstr(data, pos)
                (err,) = struct.unpack_from(">h", data, pos)
                pos += 2 + 1
                out[(name, p)] = (off, err)
            pos += 1
        (gerr,) = struct.unpack_from(">h", data, pos)
        assert gerr == 0, gerr
        return out


def create(broker, topic, partitions=1):
    r = broker.run_tool("kafka-topics", "--create", "--topic", topic, "--partitions", str(partitions),
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr


def marker(broker, pid, epoch, commit, group):
    """The transaction coordinator's marker to the group's __consumer_offsets partition."""
    c = Client(broker)
    part = offsets_partition(group)
    res = c.markers([(pid, epoch, commit, 0, {"__consumer_offsets": [part]})])
    assert res == {(pid, "__consumer_offsets", part): 0}, res


def test_pending_until_commit_marker_and_dropped_on_abort(broker):
    create(broker, "in", 2)
    f = FlexClient(broker)
    # transactional offsets do not show before their marker
    r = f.txn_commit("g1", 7000, 0, {("in", 0): (5, "m5"), ("in", 1): (6, "")})
    assert r == {("in", 0): NONE, ("in", 1): NONE}
    parts = [("in", 0), ("in", 1)]
    assert f.offset_fetch("g1", parts, require_stable=False) == {("in", 0): (-1, NONE), ("in", 1): (-1, NONE)}
    assert f.offset_fetch("g1", parts, require_stable=True) == {("in", 0): (-1, UNSTABLE_OFFSET_COMMIT),
                                                                ("in", 1): (-1, UNSTABLE_OFFSET_COMMIT)}
    marker(broker, 7000, 0, True, "g1")
    assert f.offset_fetch("g1", parts, require_stable=True) == {("in", 0): (5, NONE), ("in", 1): (6, NONE)}

    # a second transaction aborted: the committed offsets stay
    assert f.txn_commit("g1", 7000, 0, {("in", 0): (9, "")}) == {("in", 0): NONE}
    assert f.offset_fetch("g1", parts, require_stable=True)[("in", 0)] == (-1, UNSTABLE_OFFSET_COMMIT)
    assert f.offset_fetch("g1", parts, require_stable=False)[("in", 0)] == (5, NONE)
    marker(broker, 7000, 0, False, "g1")
    assert f.offset_fetch("g1", parts, require_stable=True) == {("in", 0): (5, NONE), ("in", 1): (6, NONE)}

    # a marker for another producer leaves this one's pending offsets alone
    assert f.txn_commit("g1", 7001, 0, {("in", 1): (8, "")}) == {("in", 1): NONE}
    marker(broker, 7002, 0, True, "g1")
    assert f.offset_fetch("g1", parts, require_stable=True)[("in", 1)] == (-1, UNSTABLE_OFFSET_COMMIT)
    marker(broker, 7001, 0, True, "g1")
    assert f.offset_fetch("g1", parts, require_stable=True)[("in", 1)] == (8, NONE)


def test_pending_and_committed_survive_restart(broker):
    create(broker, "in")
    f = FlexClient(broker)
    assert f.txn_commit("gr", 7100, 0, {("in", 0): (3, "")}) == {("in", 0): NONE}
    marker(broker, 7100, 0, True, "gr")
    assert f.txn_commit("gr", 7101, 0, {("in", 0): (4, "")}) == {("in", 0): NONE}  # left open
    assert f.txn_commit("gr", 7102, 0, {("in", 0): (99, "")}) == {("in", 0): NONE}
    marker(broker, 7102, 0, False, "gr")
    broker.restart()
    f = FlexClient(broker)
    assert f.offset_fetch("gr", [("in", 0)], require_stable=False) == {("in", 0): (3, NONE)}
    assert f.offset_fetch("gr", [("in", 0)], require_stable=True) == {("in", 0): (-1, UNSTABLE_OFFSET_COMMIT)}
    # the open transaction is completed after the restart
    marker(broker, 7101, 0, True, "gr")
    assert f.offset_fetch("gr", [("in", 0)], require_stable=True) == {("in", 0): (4, NONE)}
    broker.kill9()
    broker.start()
    f = FlexClient(broker)
    assert f.offset_fetch("gr", [("in", 0)], require_stable=True) == {("in", 0): (4, NONE)}


def test_hostile_txn_offset_commits(broker):
    create(broker, "in", 2)
    f = FlexClient(broker)
    assert f.txn_commit("", 7200, 0, {("in", 0): (1, "")}) == {("in", 0): INVALID_GROUP_ID}
    assert f.txn_commit("gh", 7200, 0, {("nope", 0): (1, ""), ("in", 5): (1, "")}) == {
        ("nope", 0): UNKNOWN_TOPIC_OR_PARTITION, ("in", 5): UNKNOWN_TOPIC_OR_PARTITION}
    assert f.offset_fetch("gh", [("in", 0)], require_stable=True) == {("in", 0): (-1, NONE)}
    # a member id / generation the group does not know
    assert f.txn_commit("gh", 7200, 0, {("in", 0): (1, "")}, generation=3, member="nobody") == {
        ("in", 0): UNKNOWN_MEMBER_ID}
    assert f.txn_commit("gh", 7200, 0, {("in", 0): (1, "x" * 5000)}) == {("in", 0): OFFSET_METADATA_TOO_LARGE}
    # an older epoch of a producer that wrote with a newer one is fenced by the log
    assert f.txn_commit("gh", 7200, 2, {("in", 0): (1, "")}) == {("in", 0): NONE}
    assert f.txn_commit("gh", 7200, 1, {("in", 1): (2, "")}) == {("in", 1): INVALID_PRODUCER_EPOCH}
    marker(broker, 7200, 2, True, "gh")
    assert f.offset_fetch("gh", [("in", 0), ("in", 1)], require_stable=True) == {("in", 0): (1, NONE),
                                                                                ("in", 1): (-1, NONE)}
    # nobody else was disturbed: plain commits of another group still work
    r = broker.run_tool("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--group", "other",
                        "--reset-offsets", "--to-offset", "0", "--topic", "in", "--execute")
    assert r.returncode == 0, r.stderr


def test_send_offsets_to_transaction(broker):
    ck = pytest.importorskip("confluent_kafka")
    create(broker, "src")
    create(broker, "dst")
    p = ck.Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        p.produce("src", str(i).encode())
    p.flush(10)
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "eos", "enable.auto.commit": False,
                            "auto.offset.reset": "earliest"})
    tp = ck.Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "eos-tx"})
    try:
        tp.init_transactions(20)
        tp.begin_transaction()
        tp.produce("dst", b"out-1")
        tp.send_offsets_to_transaction([ck.TopicPartition("src", 0, 5)], consumer.consumer_group_metadata(), 20)
        tp.commit_transaction(20)
        got = consumer.committed([ck.TopicPartition("src", 0)], timeout=10)
        assert got[0].offset == 5
        tp.begin_transaction()
        tp.produce("dst", b"out-2")
        tp.send_offsets_to_transaction([ck.TopicPartition("src", 0, 9)], consumer.consumer_group_metadata(), 20)
        tp.abort_transaction(20)
        got = consumer.committed([ck.TopicPartition("src", 0)], timeout=10)
        assert got[0].offset == 5
        tp.begin_transaction()
        tp.send_offsets_to_transaction([ck.TopicPartition("src", 0, 10)], consumer.consumer_group_metadata(), 20)
        tp.commit_transaction(20)
        deadline = time.time() + 10
        while time.time() < deadline:
            got = consumer.committed([ck.TopicPartition("src", 0)], timeout=10)
            if got[0].offset == 10:
                break
            time.sleep(0.1)
        assert got[0].offset == 10
    finally:
        consumer.close()
    r = broker.run_tool("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--describe", "--group", "eos")
    assert r.returncode == 0, r.stderr
    row = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("eos ")]
    assert row and row[0][1:4] == ["src", "0", "10"], r.stdout
