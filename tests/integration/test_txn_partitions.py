"""The partition side of transactions, driven with raw requests as a
transaction coordinator and a transactional producer would: transactional
batches, WriteTxnMarkers COMMIT/ABORT, the last stable offset in Fetch and
ListOffsets, read_committed fetches with their aborted transactions, the
.txnindex file in Kafka's format, and the state across restarts and kill -9."""
import os
import socket
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_bad_input import (API_PRODUCE, call, connect, kstring, parse_produce_v8, produce_v8,  # noqa: E402
                            record_batch)
from cluster import (HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster,  # noqa: E402,F401 (fixtures)
                     samsa_cluster_factory)

API_FETCH, API_LIST_OFFSETS, API_WRITE_TXN_MARKERS = 1, 2, 27
TRANSACTIONAL = 0x10
CONTROL = 0x20
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
TRANSACTION_COORDINATOR_FENCED = 52


class Client:
    def __init__(self, broker):
        self.broker = broker
        self.s = connect(broker)
        self.corr = 0

    def call(self, api, version, body):
        self.corr += 1
        return call(self.s, api, version, self.corr, body)

    def produce(self, topic, values, pid, epoch, seq, transactional=True, partition=0):
        batch = record_batch(values, producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                             codec=TRANSACTIONAL if transactional else 0)
        return parse_produce_v8(self.call(API_PRODUCE, 8, produce_v8(topic, partition, batch)))

    def markers(self, markers):
        """WriteTxnMarkers v0; markers: [(pid, epoch, commit, coordinator_epoch, {topic: [partitions]})]
        -> {(pid, topic, partition): error}"""
        body = struct.pack(">i", len(markers))
        for pid, epoch, commit, coord_epoch, topics in markers:
            body += struct.pack(">qhb", pid, epoch, 1 if commit else 0) + struct.pack(">i", len(topics))
            for topic, parts in topics.items():
                body += kstring(topic) + struct.pack(">i", len(parts)) + b"".join(struct.pack(">i", p) for p in parts)
            body += struct.pack(">i", coord_epoch)
        data = self.call(API_WRITE_TXN_MARKERS, 0, body)
        pos = 4
        out = {}
        (nm,) = struct.unpack_from(">i", data, pos)
        pos += 4
        for _ in range(nm):
            (pid, nt) = struct.unpack_from(">qi", data, pos)
            pos += 12
            for _ in range(nt):
                (nl,) = struct.unpack_from(">h", data, pos)
                topic = data[pos + 2:pos + 2 + nl].decode()
                pos += 2 + nl
                (np_,) = struct.unpack_from(">i", data, pos)
                pos += 4
                for _ in range(np_):
                    part, err = struct.unpack_from(">ih", data, pos)
                    pos += 6
                    out[(pid, topic, part)] = err
        return out

    def fetch(self, topic, offset, read_committed, partition=0, max_wait=0):
        """Fetch v4 -> dict(error, hw, lso, aborted=[(pid, first)] or None, batches=[(base, last, attrs, pid)])"""
        body = struct.pack(">iiiib", -1, max_wait, 1, 1 << 20, 1 if read_committed else 0)
        body += struct.pack(">i", 1) + kstring(topic) + struct.pack(">i", 1)
        body += struct.pack(">iqi", partition, offset, 1 << 20)
        data = self.call(API_FETCH, 4, body)
        pos = 4 + 4  # correlation id, throttle
        (nt,) = struct.unpack_from(">i", data, pos)
        assert nt == 1
        pos += 4
        (nl,) = struct.unpack_from(">h", data, pos)
        pos += 2 + nl
        (np_,) = struct.unpack_from(">i", data, pos)
        assert np_ == 1
        pos += 4
        _idx, err, hw, lso, na = struct.unpack_from(">ihqqi", data, pos)
        pos += 4 + 2 + 8 + 8 + 4
        aborted = None
        if na >= 0:
            aborted = []
            for _ in range(na):
                aborted.append(struct.unpack_from(">qq", data, pos))
                pos += 16
        (rlen,) = struct.unpack_from(">i", data, pos)
        pos += 4
        records = data[pos:pos + max(rlen, 0)]
        return {"error": err, "hw": hw, "lso": lso, "aborted": aborted, "batches": parse_batches(records)}

    def list_offset(self, topic, read_committed, ts=-1, partition=0):
        """ListOffsets v2 -> (error, offset)"""
        body = struct.pack(">ib", -1, 1 if read_committed else 0) + struct.pack(">i", 1) + kstring(topic)
        body += struct.pack(">i", 1) + struct.pack(">iq", partition, ts)
        data = self.call(API_LIST_OFFSETS, 2, body)
        pos = 4 + 4 + 4
        (nl,) = struct.unpack_from(">h", data, pos)
        pos += 2 + nl + 4
        _idx, err, _ts, off = struct.unpack_from(">ihqq", data, pos)
        return err, off


def parse_batches(records):
    out = []
    pos = 0
    while pos + 61 <= len(records):
        base, blen = struct.unpack_from(">qi", records, pos)
        if pos + 12 + blen > len(records):
            break
        attrs, lod = struct.unpack_from(">hi", records, pos + 21)
        (pid,) = struct.unpack_from(">q", records, pos + 43)
        out.append((base, base + lod, attrs, pid))
        pos += 12 + blen
    return out


def data_offsets(batches):
    return [b[0] for b in batches if not b[2] & CONTROL]


def create(broker, topic, *extra):
    r = broker.run_tool("kafka-topics", "--create", "--topic", topic, "--bootstrap-server", broker.bootstrap, *extra)
    assert r.returncode == 0, r.stderr


def txnindex_entries(path):
    """The entries of a .txnindex file: [(version, pid, first, last, lso)]."""
    data = open(path, "rb").read()
    assert len(data) % 34 == 0, len(data)
    return [struct.unpack_from(">hqqqq", data, i) for i in range(0, len(data), 34)]


def txnindex_files(log_dir):
    return sorted(f for f in os.listdir(log_dir) if f.endswith(".txnindex"))


def consume(broker, topic, isolation, expect, timeout=20):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-" + isolation + topic,
                  "auto.offset.reset": "earliest", "isolation.level": isolation, "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.time() + timeout
    try:
        while len(got) < expect and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append((m.offset(), m.value()))
        # nothing more comes (control records never reach the application)
        end = time.time() + 1.5
        while time.time() < end:
            m = c.poll(0.3)
            if m is not None and not m.error():
                got.append((m.offset(), m.value()))
    finally:
        c.close()
    return got


def test_commit_abort_lso_and_aborted_transactions(broker):
    create(broker, "tx")
    c = Client(broker)
    # an open transaction: consumers in read_committed see nothing of it
    assert c.produce("tx", [b"a", b"b"], pid=5000, epoch=0, seq=0) == (0, 0)
    f = c.fetch("tx", 0, read_committed=True)
    assert (f["error"], f["hw"], f["lso"], f["aborted"], f["batches"]) == (0, 2, 0, [], [])
    f = c.fetch("tx", 0, read_committed=False)
    assert (f["hw"], f["lso"], f["aborted"]) == (2, 0, None)
    assert data_offsets(f["batches"]) == [0]
    assert c.list_offset("tx", read_committed=True) == (0, 0)
    assert c.list_offset("tx", read_committed=False) == (0, 2)
    # a plain batch of the same producer while its transaction is open
    assert c.produce("tx", [b"z"], pid=5000, epoch=0, seq=2, transactional=False)[0] == INVALID_TXN_STATE

    # COMMIT: the marker at offset 2, everything stable
    assert c.markers([(5000, 0, True, 3, {"tx": [0]})]) == {(5000, "tx", 0): 0}
    f = c.fetch("tx", 0, read_committed=True)
    assert (f["hw"], f["lso"], f["aborted"]) == (3, 3, [])
    assert [(b[0], b[2]) for b in f["batches"]] == [(0, TRANSACTIONAL), (2, TRANSACTIONAL | CONTROL)]
    assert c.list_offset("tx", read_committed=True) == (0, 3)

    # a second transaction, interleaved with another producer's plain batch, then ABORT
    assert c.produce("tx", [b"c"], pid=5000, epoch=0, seq=2) == (0, 3)
    assert c.produce("tx", [b"x"], pid=6000, epoch=0, seq=0, transactional=False) == (0, 4)
    f = c.fetch("tx", 3, read_committed=True)
    assert (f["hw"], f["lso"], f["batches"]) == (5, 3, [])
    assert c.markers([(5000, 0, False, 3, {"tx": [0]})]) == {(5000, "tx", 0): 0}
    f = c.fetch("tx", 0, read_committed=True)
    assert (f["hw"], f["lso"], f["aborted"]) == (6, 6, [(5000, 3)])
    assert data_offsets(f["batches"]) == [0, 3, 4]
    # Kafka lists it while the fetch offset is at or below its marker
    assert c.fetch("tx", 5, read_committed=True)["aborted"] == [(5000, 3)]

    # the aborted transaction is in the segment's .txnindex, Kafka's 34-byte entry
    log_dir = os.path.join(broker.log_dir, "tx-0")
    assert txnindex_files(log_dir) == ["%020d.txnindex" % 0]
    assert txnindex_entries(os.path.join(log_dir, "%020d.txnindex" % 0)) == [(0, 5000, 3, 5, 6)]

    # fenced markers and unknown partitions
    errs = c.markers([(5000, -1, True, 3, {"tx": [0]}), (5000, 0, True, 2, {"tx": [0], "nope": [0]}),
                      (7000, 0, True, 0, {"tx": [1]})])
    assert errs[(5000, "tx", 0)] in (INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED)
    assert errs[(5000, "nope", 0)] == UNKNOWN_TOPIC_OR_PARTITION
    assert errs[(7000, "tx", 1)] == UNKNOWN_TOPIC_OR_PARTITION
    assert c.markers([(5000, -1, True, 3, {"tx": [0]})]) == {(5000, "tx", 0): INVALID_PRODUCER_EPOCH}
    assert c.markers([(5000, 0, True, 2, {"tx": [0]})]) == {(5000, "tx", 0): TRANSACTION_COORDINATOR_FENCED}

    # consumers: read_uncommitted sees every data record, never a control record
    assert [v for _o, v in consume(broker, "tx", "read_uncommitted", 4)] == [b"a", b"b", b"c", b"x"]
    assert [v for _o, v in consume(broker, "tx", "read_committed", 3)] == [b"a", b"b", b"x"]

    # a clean restart keeps the index and the state
    broker.stop()
    broker.start()
    c = Client(broker)
    f = c.fetch("tx", 0, read_committed=True)
    assert (f["hw"], f["lso"], f["aborted"]) == (6, 6, [(5000, 3)])
    assert txnindex_entries(os.path.join(log_dir, "%020d.txnindex" % 0)) == [(0, 5000, 3, 5, 6)]


def test_open_transaction_survives_kill9_and_index_is_rebuilt(broker):
    create(broker, "tk")
    c = Client(broker)
    assert c.produce("tk", [b"a"], pid=42, epoch=3, seq=0) == (0, 0)
    assert c.markers([(42, 3, False, 1, {"tk": [0]})]) == {(42, "tk", 0): 0}
    assert c.produce("tk", [b"b"], pid=42, epoch=3, seq=1) == (0, 2)      # a second transaction, open
    assert c.produce("tk", [b"p"], pid=43, epoch=0, seq=0, transactional=False) == (0, 3)
    log_dir = os.path.join(broker.log_dir, "tk-0")
    index = os.path.join(log_dir, "%020d.txnindex" % 0)
    assert txnindex_entries(index) == [(0, 42, 0, 1, 2)]
    broker.kill9()
    os.unlink(index)  # lost with the crash: the log replay writes it back
    broker.start()
    c = Client(broker)
    f = c.fetch("tk", 0, read_committed=True)
    assert (f["hw"], f["lso"], f["aborted"]) == (4, 2, [(42, 0)])
    assert txnindex_entries(index) == [(0, 42, 0, 1, 2)]
    assert c.list_offset("tk", read_committed=True) == (0, 2)
    # the producer is still known: an old epoch is fenced, its transaction commits
    assert c.markers([(42, 2, True, 1, {"tk": [0]})]) == {(42, "tk", 0): INVALID_PRODUCER_EPOCH}
    assert c.markers([(42, 3, True, 1, {"tk": [0]})]) == {(42, "tk", 0): 0}
    f = c.fetch("tk", 0, read_committed=True)
    assert (f["hw"], f["lso"], f["aborted"]) == (5, 5, [(42, 0)])
    assert data_offsets(f["batches"]) == [0, 2, 3]


def test_snapshots_at_roll_and_transactions_across_segments(broker):
    """Small segments: producer snapshots at each roll, an aborted transaction
    spanning segments is listed for a fetch in any of them, and a restart
    after kill -9 (no shutdown snapshot) keeps the open transaction."""
    create(broker, "ts", "--config", "segment.bytes=600")
    c = Client(broker)
    assert c.produce("ts", [b"t" * 100], pid=1, epoch=0, seq=0) == (0, 0)   # transaction of producer 1
    for i in range(12):
        assert c.produce("ts", [b"y" * 100], pid=2, epoch=0, seq=i, transactional=False) == (0, i + 1)
    log_dir = os.path.join(broker.log_dir, "ts-0")
    bases = sorted(int(f[:20]) for f in os.listdir(log_dir) if f.endswith(".log"))
    assert len(bases) >= 3
    snaps = sorted(int(f[:20]) for f in os.listdir(log_dir) if f.endswith(".snapshot"))
    assert snaps == bases[1:], (snaps, bases)
    f = c.fetch("ts", 0, read_committed=True)
    assert (f["hw"], f["lso"], f["batches"]) == (13, 0, [])
    assert c.markers([(1, 0, False, 0, {"ts": [0]})]) == {(1, "ts", 0): 0}
    for start in (0, 5, 12):
        f = c.fetch("ts", start, read_committed=True)
        assert (f["lso"], f["aborted"]) == (14, [(1, 0)]), (start, f)
    # a new open transaction, then kill -9: no shutdown snapshot, the roll ones and the log rebuild it
    assert c.produce("ts", [b"u"], pid=1, epoch=0, seq=1) == (0, 14)
    broker.kill9()
    broker.start()
    c = Client(broker)
    f = c.fetch("ts", 0, read_committed=True)
    assert (f["hw"], f["lso"]) == (15, 14)
    assert f["aborted"] == [(1, 0)]


def test_describe_producers_shows_transaction_start(broker):
    from test_idempotence import read_uvarint, uvarint
    create(broker, "td")
    c = Client(broker)
    assert c.produce("td", [b"a"], pid=900, epoch=1, seq=0, transactional=False) == (0, 0)
    assert c.produce("td", [b"b"], pid=901, epoch=2, seq=0) == (0, 1)
    name = b"td"
    body = uvarint(2) + uvarint(len(name) + 1) + name + uvarint(2) + struct.pack(">i", 0) + b"\0" + b"\0"
    frame = struct.pack(">hhi", 61, 0, 7) + kstring("txn-test") + b"\0" + body
    s = connect(broker)
    s.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    data = s.recv(size, socket.MSG_WAITALL)
    pos = 4 + 1 + 4
    _nt, pos = read_uvarint(data, pos)
    tlen, pos = read_uvarint(data, pos)
    pos += tlen - 1
    _np, pos = read_uvarint(data, pos)
    _index, err = struct.unpack_from(">ih", data, pos)
    pos += 6
    assert err == 0
    mlen, pos = read_uvarint(data, pos)
    pos += max(mlen - 1, 0)
    nprod, pos = read_uvarint(data, pos)
    got = {}
    for _ in range(nprod - 1):
        pid, epoch, last_seq, _ts, ce, txn = struct.unpack_from(">qiiqiq", data, pos)
        pos += 8 + 4 + 4 + 8 + 4 + 8 + 1
        got[pid] = (epoch, last_seq, ce, txn)
    assert got == {900: (1, 0, -1, -1), 901: (2, 0, -1, 1)}
    assert c.markers([(901, 2, True, 9, {"td": [0]})]) == {(901, "td", 0): 0}
    s.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    data2 = s.recv(size, socket.MSG_WAITALL)
    # the same layout: producer 901 now has coordinator epoch 9 and no transaction
    tail = struct.pack(">qiiq", 901, 2, 0, 0)[:16]
    i = data2.index(tail)
    _pid, _e, _ls, _ts, ce, txn = struct.unpack_from(">qiiqiq", data2, i)
    assert (ce, txn) == (9, -1)


def test_parked_read_committed_fetch_waits_for_the_marker(broker):
    """A long-polling read_committed fetch at the LSO is not answered with
    records of an open transaction; the COMMIT marker wakes it."""
    import threading
    create(broker, "tw")
    c = Client(broker)
    assert c.produce("tw", [b"a"], pid=11, epoch=0, seq=0) == (0, 0)
    result = {}

    def poll():
        t0 = time.time()
        result["f"] = Client(broker).fetch("tw", 0, read_committed=True, max_wait=8000)
        result["s"] = time.time() - t0

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(1.0)
    assert "f" not in result  # still parked: nothing below the LSO
    assert c.markers([(11, 0, True, 0, {"tw": [0]})]) == {(11, "tw", 0): 0}
    th.join(10)
    assert not th.is_alive()
    f = result["f"]
    assert (f["lso"], data_offsets(f["batches"])) == (2, [0])
    assert result["s"] < 6


@pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")
def test_followers_track_the_lso_across_failover(samsa_cluster):
    from test_cluster import create_topic, leaders, metadata, wait_all_registered, wait_until
    c = wait_all_registered(samsa_cluster)  # RF 3 needs every node registered
    create_topic(c, 1, "tr", "--partitions", "1", "--replication-factor", "3")
    leader = leaders(metadata(c.node(1).bootstrap, ["tr"]), "tr")[0]
    lc = Client(c.node(leader))
    assert lc.produce("tr", [b"a"], pid=77, epoch=0, seq=0) == (0, 0)
    assert lc.produce("tr", [b"b"], pid=78, epoch=0, seq=0, transactional=False) == (0, 1)
    assert lc.markers([(77, 0, False, 5, {"tr": [0]})]) == {(77, "tr", 0): 0}
    assert lc.produce("tr", [b"c"], pid=77, epoch=0, seq=1) == (0, 3)      # open
    f = lc.fetch("tr", 0, read_committed=True)
    assert (f["hw"], f["lso"], f["aborted"]) == (4, 3, [(77, 0)])
    # every replica wrote the aborted transaction to its own index
    for n in c.live_nodes():
        path = os.path.join(n.log_dir, "tr-0", "%020d.txnindex" % 0)
        wait_until(lambda: os.path.exists(path) and os.path.getsize(path) == 34, 10, f"{path}")
        assert txnindex_entries(path) == [(0, 77, 0, 2, 3)]
    c.node(leader).kill9()
    others = [n for n in c.live_nodes() if n.node_id != leader]

    def new_leader():
        lead = leaders(metadata(others[0].bootstrap, ["tr"]), "tr")[0]
        return lead if lead not in (-1, leader) else None
    nl = wait_until(new_leader, 30, "a new leader")
    nc = Client(c.node(nl))

    def stable():
        f = nc.fetch("tr", 0, read_committed=True)
        return f if f["error"] == 0 and f["hw"] == 4 else None
    f = wait_until(stable, 20, "the new leader's HW")
    # the open transaction is still open on the new leader: the LSO holds
    assert (f["lso"], f["aborted"], data_offsets(f["batches"])) == (3, [(77, 0)], [0, 1])
    assert nc.list_offset("tr", read_committed=True) == (0, 3)
    assert nc.markers([(77, 0, True, 4, {"tr": [0]})]) == {(77, "tr", 0): TRANSACTION_COORDINATOR_FENCED}
    assert nc.markers([(77, 0, True, 6, {"tr": [0]})]) == {(77, "tr", 0): 0}
    f = nc.fetch("tr", 0, read_committed=True)
    assert (f["hw"], f["lso"], data_offsets(f["batches"])) == (5, 5, [0, 1, 3])


def test_confluent_transactions_end_to_end(broker):
    """A confluent_kafka transactional producer through the coordinator:
    a committed and an aborted transaction (flushed to the log before the
    abort); read_committed sees the committed records only, read_uncommitted
    both, and neither a control record; the log holds the markers and the
    .txnindex the aborted transaction."""
    from confluent_kafka import Producer
    create(broker, "te")
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "te-1", "linger.ms": 0})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(5):
        p.produce("te", value=b"c%d" % i, partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(3):
        p.produce("te", value=b"a%d" % i, partition=0)
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce("te", value=b"c5", partition=0)
    p.commit_transaction(30)
    committed = [v for _o, v in consume(broker, "te", "read_committed", 6)]
    assert committed == [b"c0", b"c1", b"c2", b"c3", b"c4", b"c5"]
    everything = [v for _o, v in consume(broker, "te", "read_uncommitted", 9)]
    assert everything == [b"c0", b"c1", b"c2", b"c3", b"c4", b"a0", b"a1", b"a2", b"c5"]
    c = Client(broker)
    f = c.fetch("te", 0, read_committed=True)
    assert f["lso"] == f["hw"] and len(f["aborted"]) == 1
    assert sum(1 for b in f["batches"] if b[2] & CONTROL) == 3
    entries = txnindex_entries(os.path.join(broker.log_dir, "te-0", "%020d.txnindex" % 0))
    assert len(entries) == 1 and entries[0][2] == f["aborted"][0][1]
    # kafka-dump-log prints the markers as Kafka does
    r = broker.run_tool("kafka-dump-log", "--print-data-log", "--files",
                        os.path.join(broker.log_dir, "te-0", "%020d.log" % 0))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("isControl: true") == 3, r.stdout
    assert r.stdout.count("endTxnMarker: COMMIT coordinatorEpoch: ") == 2, r.stdout
    assert r.stdout.count("endTxnMarker: ABORT coordinatorEpoch: ") == 1, r.stdout


def test_idle_producers_expire_but_open_transactions_stay(broker_factory):
    """producer.id.expiration.ms: a producer idle that long is forgotten (its
    next batch may start at any sequence); one with an open transaction is
    kept, as Kafka's removeExpiredProducers."""
    from test_idempotence import describe_producers
    b = broker_factory(producer_id_expiration_ms=1500, producer_id_expiration_check_interval_ms=300)
    create(b, "tx-exp")
    c = Client(b)
    assert c.produce("tx-exp", [b"a"], pid=1, epoch=0, seq=0, transactional=False) == (0, 0)
    assert c.produce("tx-exp", [b"b"], pid=2, epoch=0, seq=0) == (0, 1)      # open transaction
    assert [p[0] for p in describe_producers(b, "tx-exp", 0)] == [1, 2]
    deadline = time.time() + 10
    while time.time() < deadline and len(describe_producers(b, "tx-exp", 0)) > 1:
        time.sleep(0.2)
    assert [p[0] for p in describe_producers(b, "tx-exp", 0)] == [2]
    # forgotten: a new sequence is accepted
    assert c.produce("tx-exp", [b"c"], pid=1, epoch=0, seq=7, transactional=False) == (0, 2)


NOT_ENOUGH_REPLICAS = 19


def produce_txn(c, topic, tid, values, pid, epoch, seq):
    """Produce v8 with a transactional id -> (error, base_offset)."""
    batch = record_batch(values, producer_id=pid, producer_epoch=epoch, base_sequence=seq, codec=TRANSACTIONAL)
    body = kstring(tid) + struct.pack(">hi", -1, 30000) + struct.pack(">i", 1) + kstring(topic)
    body += struct.pack(">i", 1) + struct.pack(">ii", 0, len(batch)) + batch
    return parse_produce_v8(c.call(API_PRODUCE, 8, body))


def init_transactional_id(c, tid, deadline_s=30):
    """FindCoordinator v1 (creates __transaction_state) then InitProducerId v0 -> (pid, epoch)."""
    deadline = time.time() + deadline_s
    while True:
        data = c.call(10, 1, kstring(tid) + struct.pack(">b", 1))
        (err,) = struct.unpack_from(">h", data, 4 + 4)
        if err == 0:
            break
        assert time.time() < deadline, err
        time.sleep(0.2)
    while True:
        data = c.call(22, 0, kstring(tid) + struct.pack(">i", 60000))
        err, pid, epoch = struct.unpack_from(">hqh", data, 4 + 4)
        if err == 0:
            return pid, epoch
        assert time.time() < deadline, err
        time.sleep(0.2)


def test_transaction_verification_before_the_first_append(broker):
    """transaction.partition.verification.enable (KIP-890): a producer's
    first transactional batch on a partition is written only if the
    coordinator has the partition in its transaction."""
    create(broker, "tv")
    c = Client(broker)
    # no __transaction_state yet: the coordinator is not available, a retriable answer
    assert produce_txn(c, "tv", "tv-id", [b"x"], pid=999, epoch=0, seq=0) == (NOT_ENOUGH_REPLICAS, -1)
    pid, epoch = init_transactional_id(c, "tv-id")
    # the partition was never added to the transaction
    assert produce_txn(c, "tv", "tv-id", [b"x"], pid=pid, epoch=epoch, seq=0) == (INVALID_TXN_STATE, -1)
    assert c.list_offset("tv", read_committed=False) == (0, 0)
    # AddPartitionsToTxn v0, then the batch is written
    body = kstring("tv-id") + struct.pack(">qh", pid, epoch) + struct.pack(">i", 1) + kstring("tv")
    body += struct.pack(">ii", 1, 0)
    data = c.call(24, 0, body)
    assert struct.unpack_from(">h", data, len(data) - 2)[0] == 0
    assert produce_txn(c, "tv", "tv-id", [b"a"], pid=pid, epoch=epoch, seq=0) == (0, 0)
    assert produce_txn(c, "tv", "tv-id", [b"b"], pid=pid, epoch=epoch, seq=1) == (0, 1)   # ongoing: no question
    f = c.fetch("tv", 0, read_committed=True)
    assert (f["hw"], f["lso"]) == (2, 0)


def test_verification_can_be_turned_off(broker_factory):
    b = broker_factory(transaction_partition_verification_enable="false")
    create(b, "tv2")
    c = Client(b)
    assert produce_txn(c, "tv2", "tv2-id", [b"x"], pid=5, epoch=0, seq=0) == (0, 0)
