"""The transaction coordinator (issue 14): FindCoordinator for transactional
ids, InitProducerId with a transactional id (epoch bumps, zombie fencing,
INVALID_TRANSACTION_TIMEOUT), AddPartitionsToTxn / EndTxn through
confluent-kafka's transactional producer, DescribeTransactions and
ListTransactions, hostile requests with Kafka's errors, and the state kept in
__transaction_state across a restart."""
import os
import socket
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import log_segment_bytes  # noqa: E402
from test_bad_input import call, connect  # noqa: E402

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import KafkaException, Producer  # noqa: E402

API_FIND_COORDINATOR = 10
API_INIT_PRODUCER_ID = 22
API_ADD_PARTITIONS_TO_TXN = 24
API_END_TXN = 26
API_DESCRIBE_TRANSACTIONS = 65
API_LIST_TRANSACTIONS = 66

NONE = 0
NOT_COORDINATOR = 16
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
UNKNOWN_TOPIC_OR_PARTITION = 3
OPERATION_NOT_ATTEMPTED = 55
INVALID_REQUEST = 42
TRANSACTIONAL_ID_NOT_FOUND = 105
PRODUCER_FENCED = 90


# ---- raw requests (non-flexible versions: plain strings and arrays) ----

def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def uvarint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def cstr(s):
    """A compact string (flexible versions)."""
    b = s.encode()
    return uvarint(len(b) + 1) + b


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v[0]

    def i8(self): return self.take(">b")
    def i16(self): return self.take(">h")
    def i32(self): return self.take(">i")
    def i64(self): return self.take(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.d[self.p:self.p + n].decode()
        self.p += n
        return s

    def uvarint(self):
        shift = n = 0
        while True:
            b = self.d[self.p]
            self.p += 1
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7

    def cstring(self):
        n = self.uvarint() - 1
        if n < 0:
            return None
        s = self.d[self.p:self.p + n].decode()
        self.p += n
        return s

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.p += self.uvarint()


class Raw:
    """A plain socket to the broker speaking a few coordinator requests."""

    def __init__(self, broker):
        self.s = connect(broker)
        self.corr = 0

    def close(self):
        self.s.close()

    def _call(self, api, version, body):
        self.corr += 1
        return call(self.s, api, version, self.corr, body)[4:]

    def find_coordinator(self, tid):
        """FindCoordinator v1 key_type 1: (error, node_id, port)."""
        r = Reader(self._call(API_FIND_COORDINATOR, 1, kstr(tid) + struct.pack(">b", 1)))
        r.i32()
        err = r.i16()
        r.string()
        node = r.i32()
        r.string()
        port = r.i32()
        return err, node, port

    def init_pid(self, tid, timeout_ms=60000, pid=-1, epoch=-1, version=3):
        """InitProducerId v0-4 (non-flexible up to v1; v2+ flexible)."""
        if version >= 2:
            body = (uvarint(0) if tid is None else cstr(tid)) + struct.pack(">i", timeout_ms)
            if version >= 3:
                body += struct.pack(">qh", pid, epoch)
            body += b"\x00"
            r = Reader(self._call_flex(API_INIT_PRODUCER_ID, version, body))
        else:
            r = Reader(self._call(API_INIT_PRODUCER_ID, version, kstr(tid) + struct.pack(">i", timeout_ms)))
        r.i32()
        return r.i16(), r.i64(), r.i16()

    def _call_flex(self, api, version, body):
        # request header v2: api, version, corr, client id (nullable string), tagged fields
        self.corr += 1
        hdr = struct.pack(">hhi", api, version, self.corr) + kstr("txn-coord-test") + b"\x00"
        frame = hdr + body
        self.s.sendall(struct.pack(">i", len(frame)) + frame)
        n = struct.unpack(">i", _recv(self.s, 4))[0]
        payload = _recv(self.s, n)
        assert struct.unpack(">i", payload[:4])[0] == self.corr
        return payload[5:]  # response header v1: correlation id + empty tagged fields

    def add_partitions(self, tid, pid, epoch, topics, version=1):
        """AddPartitionsToTxn v0-2: {topic: [partition errors]}."""
        body = kstr(tid) + struct.pack(">qhi", pid, epoch, len(topics))
        for t, parts in topics.items():
            body += kstr(t) + struct.pack(">i", len(parts)) + b"".join(struct.pack(">i", p) for p in parts)
        r = Reader(self._call(API_ADD_PARTITIONS_TO_TXN, version, body))
        r.i32()
        out = {}
        for _ in range(r.i32()):
            t = r.string()
            out[t] = {}
            for _ in range(r.i32()):
                p = r.i32()
                out[t][p] = r.i16()
        return out

    def add_partitions_v4(self, txns):
        """AddPartitionsToTxn v4 (flexible, batched): txns = [(tid, pid, epoch, verify_only, {topic: [p]})];
        returns (error, [(tid, {topic: {partition: error}})]) in the request's order."""
        body = uvarint(len(txns) + 1)
        for tid, pid, epoch, verify, topics in txns:
            body += cstr(tid) + struct.pack(">qhb", pid, epoch, 1 if verify else 0) + uvarint(len(topics) + 1)
            for t, parts in topics.items():
                body += cstr(t) + uvarint(len(parts) + 1) + b"".join(struct.pack(">i", p) for p in parts) + b"\x00"
            body += b"\x00"
        body += b"\x00"
        r = Reader(self._call_flex(API_ADD_PARTITIONS_TO_TXN, 4, body))
        r.i32()
        err = r.i16()
        out = []
        for _ in range(r.uvarint() - 1):
            tid = r.cstring()
            topics = {}
            for _ in range(r.uvarint() - 1):
                t = r.cstring()
                topics[t] = {}
                for _ in range(r.uvarint() - 1):
                    p = r.i32()
                    topics[t][p] = r.i16()
                    r.tags()
                r.tags()
            r.tags()
            out.append((tid, topics))
        return err, out

    def end_txn(self, tid, pid, epoch, commit, version=1):
        body = kstr(tid) + struct.pack(">qhb", pid, epoch, 1 if commit else 0)
        r = Reader(self._call(API_END_TXN, version, body))
        r.i32()
        return r.i16()

    def describe(self, tids):
        """DescribeTransactions v0 (flexible)."""
        body = uvarint(len(tids) + 1) + b"".join(cstr(t) for t in tids) + b"\x00"
        r = Reader(self._call_flex(API_DESCRIBE_TRANSACTIONS, 0, body))
        r.i32()
        out = {}
        for _ in range(r.uvarint() - 1):
            err = r.i16()
            tid = r.cstring()
            state = r.cstring()
            timeout = r.i32()
            r.i64()
            pid = r.i64()
            epoch = r.i16()
            topics = {}
            for _ in range(r.uvarint() - 1):
                t = r.cstring()
                topics[t] = [r.i32() for _ in range(r.uvarint() - 1)]
                r.tags()
            r.tags()
            out[tid] = dict(error=err, state=state, timeout=timeout, pid=pid, epoch=epoch, topics=topics)
        return out

    def list(self, states=(), pids=()):
        """ListTransactions v0 (flexible): (error, unknown filters, {tid: (pid, state)})."""
        body = uvarint(len(states) + 1) + b"".join(cstr(s) for s in states)
        body += uvarint(len(pids) + 1) + b"".join(struct.pack(">q", p) for p in pids) + b"\x00"
        r = Reader(self._call_flex(API_LIST_TRANSACTIONS, 0, body))
        r.i32()
        err = r.i16()
        unknown = [r.cstring() for _ in range(r.uvarint() - 1)]
        out = {}
        for _ in range(r.uvarint() - 1):
            tid = r.cstring()
            pid = r.i64()
            out[tid] = (pid, r.cstring())
            r.tags()
        return err, unknown, out


def _recv(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def retry(fn, ok, timeout=20.0, pause=0.1):
    """Call fn until ok(result) or the deadline; returns the last result."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if ok(v) or time.time() > deadline:
            return v
        time.sleep(pause)


def create_topic(broker, name, partitions=1):
    r = broker.run_tool("kafka-topics", "--create", "--topic", name, "--partitions", str(partitions),
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr


def txn_producer(bootstrap, tid, **extra):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5}
    conf.update(extra)
    return Producer(conf)


def init_pid(raw, tid, **kw):
    """FindCoordinator (creating __transaction_state), then InitProducerId,
    waiting out the retriable errors a fresh coordinator gives."""
    assert retry(lambda: raw.find_coordinator(tid), lambda v: v[0] == NONE)[0] == NONE
    return retry(lambda: raw.init_pid(tid, **kw), lambda v: v[0] not in (14, 15, 51))


# ---- tests ----

def test_find_coordinator_and_init_producer_id(broker):
    raw = Raw(broker)
    err, node, port = retry(lambda: raw.find_coordinator("tx-a"), lambda v: v[0] == NONE)
    assert (err, port) == (NONE, broker.port)
    err, pid, epoch = init_pid(raw, "tx-a")
    assert err == NONE and pid >= 0 and epoch == 0
    # each InitProducerId bumps the epoch of the same producer id
    assert raw.init_pid("tx-a") == (NONE, pid, 1)
    # a timeout above transaction.max.timeout.ms (900000 by default)
    assert raw.init_pid("tx-a", timeout_ms=900001)[0] == INVALID_TRANSACTION_TIMEOUT
    # an empty transactional id, and a producer id without an epoch
    assert raw.init_pid("")[0] == INVALID_REQUEST
    assert raw.init_pid("tx-a", pid=pid, epoch=-1)[0] == INVALID_REQUEST
    # KIP-360: the current producer id and epoch bump it; a stale epoch is fenced
    assert raw.init_pid("tx-a", pid=pid, epoch=1) == (NONE, pid, 2)
    assert raw.init_pid("tx-a", pid=pid, epoch=0, version=4)[0] == PRODUCER_FENCED
    # clients before v4 do not know PRODUCER_FENCED
    assert raw.init_pid("tx-a", pid=pid, epoch=0, version=3)[0] == INVALID_PRODUCER_EPOCH
    d = raw.describe(["tx-a", "nope", ""])
    assert d["tx-a"]["error"] == NONE and d["tx-a"]["state"] == "Empty" and d["tx-a"]["pid"] == pid
    assert d["tx-a"]["epoch"] == 2 and d["tx-a"]["timeout"] == 60000
    assert d["nope"]["error"] == TRANSACTIONAL_ID_NOT_FOUND
    assert d[""]["error"] == INVALID_REQUEST
    raw.close()


def test_hostile_requests_get_kafkas_errors(broker):
    create_topic(broker, "hostile")
    raw = Raw(broker)
    err, pid, epoch = init_pid(raw, "tx-h")
    assert err == NONE
    # unknown producer id, wrong epoch, unknown id
    assert raw.add_partitions("tx-h", pid + 1, epoch, {"hostile": [0]}) == {"hostile": {0: INVALID_PRODUCER_ID_MAPPING}}
    # v1 does not know PRODUCER_FENCED: INVALID_PRODUCER_EPOCH
    assert raw.add_partitions("tx-h", pid, epoch + 1, {"hostile": [0]}) == {"hostile": {0: INVALID_PRODUCER_EPOCH}}
    assert raw.add_partitions("tx-unknown", 1, 0, {"hostile": [0]}) == {"hostile": {0: INVALID_PRODUCER_ID_MAPPING}}
    # an unknown partition fails the transaction's request; the others are not attempted
    assert raw.add_partitions("tx-h", pid, epoch, {"hostile": [0, 7]}) == {
        "hostile": {0: OPERATION_NOT_ATTEMPTED, 7: UNKNOWN_TOPIC_OR_PARTITION}}
    # EndTxn with nothing in the transaction
    assert raw.end_txn("tx-h", pid, epoch, commit=True) == INVALID_TXN_STATE
    assert raw.end_txn("tx-h", pid + 1, epoch, commit=True) == INVALID_PRODUCER_ID_MAPPING
    assert raw.end_txn("tx-h", pid, epoch + 5, commit=True) == INVALID_PRODUCER_EPOCH
    # a real transaction: added, then ongoing
    assert raw.add_partitions("tx-h", pid, epoch, {"hostile": [0]}) == {"hostile": {0: NONE}}
    d = raw.describe(["tx-h"])["tx-h"]
    assert d["state"] == "Ongoing" and d["topics"] == {"hostile": [0]}
    err, unknown, listed = raw.list(states=["Ongoing", "Bogus"])
    assert err == NONE and unknown == ["Bogus"] and listed == {"tx-h": (pid, "Ongoing")}
    assert raw.list(pids=[pid + 1000])[2] == {}
    assert raw.list(states=["Empty"])[2] == {}
    # abort it: answered once PrepareAbort is written; EndTxn twice is a retry, not an error
    assert raw.end_txn("tx-h", pid, epoch, commit=False) == NONE
    assert raw.end_txn("tx-h", pid, epoch, commit=False) in (NONE, CONCURRENT_TRANSACTIONS)
    # while the markers are written the completion is pending (Kafka: CONCURRENT_TRANSACTIONS)
    assert raw.end_txn("tx-h", pid, epoch, commit=True) in (INVALID_TXN_STATE, CONCURRENT_TRANSACTIONS)
    raw.close()


def test_zombie_producer_is_fenced(broker):
    create_topic(broker, "zombie")
    old = txn_producer(broker.bootstrap, "tx-z")
    old.init_transactions(30)
    new = txn_producer(broker.bootstrap, "tx-z")
    new.init_transactions(30)
    # the older producer's next transactional request is refused as fenced
    with pytest.raises(KafkaException) as e:
        old.begin_transaction()
        old.produce("zombie", b"from the zombie")
        old.flush(10)
        old.commit_transaction(10)
    assert e.value.args[0].fatal() or "fenced" in str(e.value).lower()


def test_transaction_timeout_above_max_is_refused(broker_factory):
    b = broker_factory(**{"transaction.max.timeout.ms": "60000"})
    p = txn_producer(b.bootstrap, "tx-t", **{"transaction.timeout.ms": 120000})
    with pytest.raises(KafkaException) as e:
        p.init_transactions(20)
    assert "timeout" in str(e.value).lower()


def test_state_survives_a_restart(broker):
    """The coordinator's table is __transaction_state replayed: an open
    transaction, its producer id, epoch and partitions are there after a
    clean restart and after kill -9."""
    create_topic(broker, "restart", partitions=2)
    raw = Raw(broker)
    err, pid, epoch = init_pid(raw, "tx-r", timeout_ms=600000)
    assert err == NONE
    assert raw.add_partitions("tx-r", pid, epoch, {"restart": [0, 1]}) == {"restart": {0: NONE, 1: NONE}}
    err, pid2, epoch2 = init_pid(raw, "tx-r2")
    assert err == NONE and pid2 != pid
    raw.close()
    for how in ("clean", "kill -9"):
        if how == "clean":
            assert broker.stop() == 0
        else:
            broker.kill9()
        broker.start()
        raw = Raw(broker)
        d = retry(lambda: raw.describe(["tx-r", "tx-r2"]), lambda v: v["tx-r"]["error"] == NONE)
        assert d["tx-r"]["error"] == NONE, d
        assert (d["tx-r"]["state"], d["tx-r"]["pid"], d["tx-r"]["epoch"]) == ("Ongoing", pid, epoch)
        assert d["tx-r"]["topics"] == {"restart": [0, 1]} and d["tx-r"]["timeout"] == 600000
        assert (d["tx-r2"]["state"], d["tx-r2"]["pid"], d["tx-r2"]["epoch"]) == ("Empty", pid2, epoch2)
        raw.close()
    # the producer id block moved on: a new id does not reuse one handed out before the restart
    raw = Raw(broker)
    err, pid3, _ = init_pid(raw, "tx-r3")
    assert err == NONE and pid3 not in (pid, pid2)
    # a new InitProducerId for the open transaction fences it (aborted with a bumped epoch)
    err = retry(lambda: raw.init_pid("tx-r", timeout_ms=600000)[0], lambda e: e != CONCURRENT_TRANSACTIONS,
                timeout=2)
    d = raw.describe(["tx-r"])["tx-r"]
    assert d["epoch"] >= epoch + 1 and d["state"] in ("PrepareAbort", "CompleteAbort", "Empty"), d
    raw.close()


def read_values(bootstrap, topic, isolation, expect, timeout=30):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chk-{topic}-{isolation}-{time.time()}",
                  "isolation.level": isolation, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.time() + timeout
    try:
        while len(got) < expect and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append(m.value())
        # a little longer: nothing more may show up
        end = time.time() + 1.5
        while time.time() < end:
            m = c.poll(0.3)
            if m is not None and not m.error():
                got.append(m.value())
    finally:
        c.close()
    return got


def run_transactions(bootstrap, tid, topic, plan):
    """plan: [(values, commit?)]; one transaction each, with one producer."""
    p = txn_producer(bootstrap, tid)
    p.init_transactions(30)
    for values, commit in plan:
        p.begin_transaction()
        for i, v in enumerate(values):
            p.produce(topic, value=v, partition=i % 2)
        p.flush(30)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
    return p


def test_commit_and_abort_end_to_end(broker):
    create_topic(broker, "e2e", partitions=2)
    plan = [([b"c1-%d" % i for i in range(10)], True), ([b"a1-%d" % i for i in range(10)], False),
            ([b"c2-%d" % i for i in range(10)], True)]
    run_transactions(broker.bootstrap, "tx-e2e", "e2e", plan)
    committed = read_values(broker.bootstrap, "e2e", "read_committed", 20)
    assert sorted(committed) == sorted([v for vs, c in plan if c for v in vs])
    everything = read_values(broker.bootstrap, "e2e", "read_uncommitted", 30)
    assert sorted(everything) == sorted(v for vs, _ in plan for v in vs)
    raw = Raw(broker)
    d = raw.describe(["tx-e2e"])["tx-e2e"]
    assert d["state"] == "CompleteCommit" and d["topics"] == {}
    raw.close()
    # the completed state is reloaded after a restart
    assert broker.stop() == 0
    broker.start()
    raw = Raw(broker)
    d = retry(lambda: raw.describe(["tx-e2e"])["tx-e2e"], lambda v: v["error"] == NONE)
    assert d["state"] == "CompleteCommit"
    raw.close()
    # and the producer goes on after the restart
    run_transactions(broker.bootstrap, "tx-e2e", "e2e", [([b"c3-0", b"c3-1"], True)])
    assert sorted(read_values(broker.bootstrap, "e2e", "read_committed", 22)) == sorted(
        [v for vs, c in plan if c for v in vs] + [b"c3-0", b"c3-1"])


def test_open_transaction_times_out_and_is_aborted(broker_factory):
    b = broker_factory(**{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"})
    create_topic(b, "late")
    raw = Raw(b)
    err, pid, epoch = init_pid(raw, "tx-late", timeout_ms=1000)
    assert err == NONE
    assert raw.add_partitions("tx-late", pid, epoch, {"late": [0]}) == {"late": {0: NONE}}
    d = retry(lambda: raw.describe(["tx-late"])["tx-late"], lambda v: v["state"] != "Ongoing", timeout=10)
    # aborted with an epoch fence: the producer's epoch is stale now
    assert d["state"] in ("PrepareAbort", "CompleteAbort") and d["epoch"] == epoch + 1, d
    assert raw.end_txn("tx-late", pid, epoch, commit=True) == INVALID_PRODUCER_EPOCH
    raw.close()


def test_add_partitions_v4_batches_and_verify_only(broker):
    """AddPartitionsToTxn v4 (what partition leaders send when
    transaction.partition.verification.enable is on): several transactions
    in one request, each answered; verify-only never adds a partition."""
    create_topic(broker, "v4", partitions=3)
    raw = Raw(broker)
    _, pid1, ep1 = init_pid(raw, "tx-v4a")
    _, pid2, ep2 = init_pid(raw, "tx-v4b")
    assert raw.add_partitions("tx-v4a", pid1, ep1, {"v4": [0]}) == {"v4": {0: NONE}}
    err, out = raw.add_partitions_v4([
        ("tx-v4a", pid1, ep1, True, {"v4": [0, 1]}),      # verify: 0 is in, 1 is not
        ("tx-v4b", pid2, ep2, False, {"v4": [2]}),        # add
        ("tx-v4b", pid2, ep2 + 1, True, {"v4": [2]}),     # a wrong epoch
        ("tx-none", 12345, 0, True, {"v4": [0]}),         # unknown id
        ("tx-v4a", pid1, ep1, True, {"v4": [9]}),         # unknown partition
    ])
    assert err == NONE
    assert out == [("tx-v4a", {"v4": {0: NONE, 1: INVALID_TXN_STATE}}),
                   ("tx-v4b", {"v4": {2: NONE}}),
                   ("tx-v4b", {"v4": {2: PRODUCER_FENCED}}),
                   ("tx-none", {"v4": {0: INVALID_PRODUCER_ID_MAPPING}}),
                   ("tx-v4a", {"v4": {9: UNKNOWN_TOPIC_OR_PARTITION}})]
    d = raw.describe(["tx-v4a", "tx-v4b"])
    assert d["tx-v4a"]["topics"] == {"v4": [0]} and d["tx-v4b"]["topics"] == {"v4": [2]}
    assert raw.add_partitions_v4([("tx-v4b", pid2, ep2, True, {"v4": [2]})])[1] == [("tx-v4b", {"v4": {2: NONE}})]
    assert raw.add_partitions_v4([])[0] == NONE
    raw.close()


def test_idle_transactional_ids_expire(broker_factory):
    b = broker_factory(**{"transactional.id.expiration.ms": "1500",
                          "transaction.remove.expired.transaction.cleanup.interval.ms": "300"})
    raw = Raw(b)
    err, pid, _ = init_pid(raw, "tx-old")
    assert err == NONE
    d = retry(lambda: raw.describe(["tx-old"])["tx-old"], lambda v: v["error"] == TRANSACTIONAL_ID_NOT_FOUND,
              timeout=10)
    assert d["error"] == TRANSACTIONAL_ID_NOT_FOUND
    assert raw.list()[2] == {}
    raw.close()
    # the tombstone keeps it gone after a restart
    assert b.stop() == 0
    b.start()
    raw = Raw(b)
    d = retry(lambda: raw.describe(["tx-old"])["tx-old"], lambda v: v["error"] != 16)
    assert d["error"] == TRANSACTIONAL_ID_NOT_FOUND
    # the id starts over with a new producer id
    err, pid2, epoch2 = init_pid(raw, "tx-old")
    assert err == NONE and pid2 != pid and epoch2 == 0
    raw.close()


def test_concurrent_transactional_producers(broker):
    """Eight producers, each its own transactional id, commit and abort in
    parallel over the same partitions: every committed record is read once
    with read_committed, no aborted one, and every id ends complete."""
    import threading
    create_topic(broker, "conc", partitions=4)
    errors = []

    def run(k):
        try:
            p = txn_producer(broker.bootstrap, f"tx-conc-{k}")
            p.init_transactions(30)
            for t in range(10):
                p.begin_transaction()
                for i in range(5):
                    p.produce("conc", value=b"%d-%d-%d" % (k, t, i), partition=(k + i) % 4)
                if t % 3 == 2:
                    # flushed first: librdkafka 2.0.2 aborting while its AddPartitionsToTxn was answered
                    # CONCURRENT_TRANSACTIONS (the previous commit's markers still being written) sends
                    # EndTxn(abort) for partitions never added, which Kafka's coordinator, like this one,
                    # refuses with INVALID_TXN_STATE (seen 3 times in 4 runs beside other tests)
                    assert p.flush(30) == 0
                    p.abort_transaction(30)
                else:
                    p.commit_transaction(30)
        except Exception as e:  # reported by the test below
            errors.append((k, repr(e)))
    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    want = sorted(b"%d-%d-%d" % (k, t, i) for k in range(8) for t in range(10) if t % 3 != 2 for i in range(5))
    got = read_values(broker.bootstrap, "conc", "read_committed", len(want))
    assert sorted(got) == want
    raw = Raw(broker)
    d = retry(lambda: raw.describe([f"tx-conc-{k}" for k in range(8)]),
              lambda v: all(s["state"] == "CompleteCommit" for s in v.values()), timeout=10)
    assert all(s["state"] == "CompleteCommit" and s["topics"] == {} for s in d.values()), d
    err, _, listed = raw.list(states=["CompleteCommit"])
    assert err == NONE and set(listed) == {f"tx-conc-{k}" for k in range(8)}
    raw.close()


def test_state_survives_compaction_of_its_log(broker_factory):
    """__transaction_state is compacted (cleanup.policy=compact): once the
    cleaner has kept only each id's latest record, a restart loads the same
    producer ids, epochs and open transactions."""
    b = broker_factory(**{"transaction.state.log.num.partitions": "1",
                          "transaction.state.log.segment.bytes": "2048",
                          "log.cleaner.backoff.ms": "200"})
    create_topic(b, "compacted")
    raw = Raw(b)
    last = {}
    for k in range(3):
        for _ in range(40):  # every InitProducerId bumps the epoch: one record each
            err, pid, epoch = init_pid(raw, f"tx-c{k}")
            assert err == NONE
        last[f"tx-c{k}"] = (pid, epoch)
    pid, epoch = last["tx-c0"]
    assert raw.add_partitions("tx-c0", pid, epoch, {"compacted": [0]}) == {"compacted": {0: NONE}}
    raw.close()
    d = os.path.join(b.log_dir, "__transaction_state-0")

    def log_bytes():
        return log_segment_bytes(d)
    written = log_bytes()
    assert written > 3 * 40 * 40, written
    # the cleaner keeps one record per id (the active segment aside)
    assert retry(log_bytes, lambda n: n < written / 3, timeout=30) < written / 3, (written, log_bytes())
    assert b.stop() == 0
    b.start()
    raw = Raw(b)
    got = retry(lambda: raw.describe(list(last)), lambda v: all(s["error"] == NONE for s in v.values()))
    for tid, (pid, epoch) in last.items():
        assert (got[tid]["pid"], got[tid]["epoch"]) == (pid, epoch), (tid, got[tid])
    assert got["tx-c0"]["state"] == "Ongoing" and got["tx-c0"]["topics"] == {"compacted": [0]}
    assert got["tx-c1"]["state"] == "Empty"
    raw.close()
