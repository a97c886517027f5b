"""The cluster, black box: 3 etcd members and 3 Samsa nodes (metadata.store=etcd)
on loopback, driven only through bin/*.sh, real clients (confluent-kafka,
kafka-python, kcat) and a few raw requests, checking what a user checks:

1. every node sees every live node (kafka-broker-api-versions.sh, Metadata,
   DescribeCluster), the same controller everywhere, broker.rack per node;
2. topics placed over the nodes, the same description from every node, manual
   assignments, RF above the node count refused, CreatePartitions/DeleteTopics/configs from any
   node seen from the others;
3. producers and consumers bootstrapped from different nodes; a Produce to a
   node that does not lead the partition is NOT_LEADER_OR_FOLLOWER;
4. consumer groups whose coordinator is another node than the bootstrap;
5. kill -9 of a node and of the controller;
6. bad starts (duplicate node.id, another cluster id, etcd unreachable);
7. the lab's steps against node 1 while the topic lives on nodes 2 and 3;
8. kill -9 of the etcd leader under a producer (a node whose keep-alives
   stall through the election fences itself; it must lead again once they
   are answered, its registration never lapsed);
9. every node's Metadata identical after all this.

One cluster (`cl`, module scope) serves the tests that leave every node
running; the kill -9 tests and the rack test get their own. Node output is in
<workdir>/node<N>/broker.out (printed on failure by the helpers).
"""
import base64
import collections
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import shutil

import pytest

from cluster import (HAVE_ETCD, ClusterNode, EtcdCluster, SamsaCluster,  # noqa: F401 (fixtures)
                     etcd_cluster, etcd_cluster_factory, samsa_cluster_factory)
from conftest import BIN, BROKER_BIN, free_port, tool_env, wait_until
from test_lab import Consumer, pty_producer

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")

SESSION_S = int(SamsaCluster.DEFAULTS["broker.session.timeout.ms"]) / 1000.0
# Faster group joins (Kafka's default waits 3 s for more members).
OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
KAFKA_PYTHON = "/usr/lib/python3/dist-packages"


# ---------------------------------------------------------------- helpers



def tool(c, name, *args, input=None, timeout=60, ok=True):
    r = c.run_tool(name, *args, input=input, timeout=timeout)
    if ok:
        assert r.returncode == 0, f"{name} {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def node_logs(c):
    return "\n".join(f"--- node {n.node_id} ({n.stdout_path})\n{n.log_text()[-3000:]}" for n in c.nodes)


def mask_ids(text):
    return re.sub(r"TopicId: [A-Za-z0-9_-]{22}", "TopicId: <id>", text)


# ---- raw Kafka protocol (only what the tests need) ----

class W:
    def __init__(self):
        self.b = bytearray()

    def i8(self, v): self.b += struct.pack(">b", v); return self   # noqa: E702
    def i16(self, v): self.b += struct.pack(">h", v); return self  # noqa: E702
    def i32(self, v): self.b += struct.pack(">i", v); return self  # noqa: E702

    def uvar(self, v):
        while v >= 0x80:
            self.b.append((v & 0x7F) | 0x80)
            v >>= 7
        self.b.append(v)
        return self

    def str16(self, s):
        if s is None:
            return self.i16(-1)
        e = s.encode()
        self.i16(len(e))
        self.b += e
        return self

    def cstr(self, s):
        e = s.encode()
        self.uvar(len(e) + 1)
        self.b += e
        return self

    def bytes32(self, data):
        self.i32(len(data))
        self.b += data
        return self


class R:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, n):
        v = self.d[self.p:self.p + n]
        assert len(v) == n, "short response"
        self.p += n
        return v

    def i8(self): return struct.unpack(">b", self.take(1))[0]   # noqa: E704
    def i16(self): return struct.unpack(">h", self.take(2))[0]  # noqa: E704
    def i32(self): return struct.unpack(">i", self.take(4))[0]  # noqa: E704
    def i64(self): return struct.unpack(">q", self.take(8))[0]  # noqa: E704

    def uvar(self):
        v = shift = 0
        while True:
            c = self.take(1)[0]
            v |= (c & 0x7F) << shift
            if not c & 0x80:
                return v
            shift += 7

    def str16(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def cstr(self):
        n = self.uvar()
        return None if n == 0 else self.take(n - 1).decode()

    def uuid(self):
        return base64.urlsafe_b64encode(self.take(16)).decode().rstrip("=")

    def carray(self, item):
        n = self.uvar()
        return None if n == 0 else [item() for _ in range(n - 1)]

    def array(self, item):
        n = self.i32()
        return None if n < 0 else [item() for _ in range(n)]

    def tags(self):
        for _ in range(self.uvar()):
            self.uvar()
            self.take(self.uvar())


_corr = [0]


def kafka_call(bootstrap, api_key, version, body, flexible, timeout=10):
    """One request to host:port; returns an R positioned after the response header."""
    host, port = bootstrap.rsplit(":", 1)
    _corr[0] += 1
    h = W().i16(api_key).i16(version).i32(_corr[0]).str16("samsa-test-cluster")
    if flexible:
        h.uvar(0)
    frame = bytes(h.b) + bytes(body)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError(f"{bootstrap} closed the connection")
            buf += chunk
    r = R(buf[4:])
    assert r.i32() == _corr[0]
    if flexible:
        r.tags()
    return r


def metadata(bootstrap, topics=None):
    """Metadata v12 (topic ids): {brokers: {id: (host, port, rack)}, cluster_id,
    controller_id, topics: {name: {id, error, partitions: {p: (error, leader,
    epoch, replicas, isr)}}}}."""
    w = W()
    if topics is None:
        w.uvar(0)
    else:
        w.uvar(len(topics) + 1)
        for t in topics:
            w.b += b"\0" * 16
            w.cstr(t).uvar(0)
    w.i8(0).i8(0).uvar(0)
    r = kafka_call(bootstrap, 3, 12, w.b, True)
    r.i32()

    def broker():
        b = (r.i32(), r.cstr(), r.i32(), r.cstr())
        r.tags()
        return b

    def i32s():
        return r.carray(r.i32) or []

    def partition():
        p = (r.i16(), r.i32(), r.i32(), r.i32(), i32s(), i32s(), i32s())
        r.tags()
        return p

    def topic():
        err, name, tid, internal = r.i16(), r.cstr(), r.uuid(), r.i8()
        parts = r.carray(partition) or []
        r.i32()
        r.tags()
        return name, {"id": tid, "error": err, "internal": bool(internal),
                      "partitions": {p[1]: (p[0], p[2], p[3], tuple(p[4]), tuple(p[5])) for p in parts}}

    brokers = r.carray(broker) or []
    cluster_id, controller = r.cstr(), r.i32()
    tops = dict(r.carray(topic) or [])
    r.tags()
    return {"brokers": {b[0]: (b[1], b[2], b[3]) for b in brokers}, "cluster_id": cluster_id,
            "controller_id": controller, "topics": tops}


def describe_cluster(bootstrap):
    """DescribeCluster v0: (error, cluster_id, controller_id, {id: (host, port, rack)})."""
    r = kafka_call(bootstrap, 60, 0, W().i8(0).uvar(0).b, True)
    r.i32()
    err, _msg, cid, ctl = r.i16(), r.cstr(), r.cstr(), r.i32()

    def broker():
        b = (r.i32(), r.cstr(), r.i32(), r.cstr())
        r.tags()
        return b
    brokers = r.carray(broker) or []
    return err, cid, ctl, {b[0]: (b[1], b[2], b[3]) for b in brokers}


def find_coordinator(bootstrap, group):
    """FindCoordinator v3: (error, node_id, host, port)."""
    r = kafka_call(bootstrap, 10, 3, W().cstr(group).i8(0).uvar(0).b, True)
    r.i32()
    err, _msg, node, host, port = r.i16(), r.cstr(), r.i32(), r.cstr(), r.i32()
    return err, node, host, port


def record_batch(values):
    from kafka.record.memory_records import MemoryRecordsBuilder
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    for v in values:
        b.append(timestamp=int(time.time() * 1000), key=None, value=v, headers=[])
    b.close()
    return bytes(b.buffer())


def produce_raw(bootstrap, topic, partition, values, acks=-1):
    """Produce v7 of one batch; returns (error code, base offset)."""
    w = W().str16(None).i16(acks).i32(10000).i32(1).str16(topic).i32(1).i32(partition)
    w.bytes32(record_batch(values))
    r = kafka_call(bootstrap, 0, 7, w.b, False)
    resp = r.array(lambda: (r.str16(), r.array(lambda: (r.i32(), r.i16(), r.i64(), r.i64(), r.i64()))))
    (_name, [(_p, err, base, _t, _ls)]), = resp
    return err, base


def leaders(md, topic):
    return {p: v[1] for p, v in md["topics"][topic]["partitions"].items()}


def normalized(md):
    """What must be identical on every node: brokers, controller, every topic
    (id, partitions, leaders, epochs, replicas, isr)."""
    return json.dumps({"brokers": sorted(md["brokers"].items()), "controller": md["controller_id"],
                       "cluster": md["cluster_id"],
                       "topics": sorted((n, t["id"], t["error"], sorted(t["partitions"].items()))
                                        for n, t in md["topics"].items())}, sort_keys=True)


def same_metadata_everywhere(c, nodes=None, timeout=5):
    """Waits until every (live) node answers the same Metadata; returns it."""
    nodes = nodes or c.live_nodes()

    def check():
        mds = [metadata(n.bootstrap) for n in nodes]
        if all(normalized(m) == normalized(mds[0]) for m in mds):
            return mds[0]
        return None
    try:
        return wait_until(check, timeout, "identical Metadata on every node")
    except AssertionError:
        diff = "\n".join(f"node {n.node_id}: {normalized(metadata(n.bootstrap))}" for n in nodes)
        raise AssertionError("Metadata differs between nodes:\n" + diff + "\n" + node_logs(c))


def wait_all_registered(c, timeout=10):
    """A node listens before the others' registrations reach it: wait until
    every node's Metadata lists every node."""
    want = {n.node_id for n in c.nodes}
    wait_until(lambda: all(set(metadata(n.bootstrap)["brokers"]) == want for n in c.nodes), timeout,
               lambda: "every node registered everywhere\n" + node_logs(c))
    return c


def describe(c, node_id, topic):
    return tool(c, "kafka-topics", "--bootstrap-server", c.node(node_id).bootstrap, "--describe",
                "--topic", topic).stdout


def create_topic(c, node_id, topic, *args):
    r = tool(c, "kafka-topics", "--bootstrap-server", c.node(node_id).bootstrap, "--create", "--topic", topic,
             *args)
    assert r.stdout == f"Created topic {topic}.\n", r.stdout + r.stderr
    # Every node has it before the test goes on.
    wait_until(lambda: all(topic in metadata(n.bootstrap, [topic])["topics"]
                           and metadata(n.bootstrap, [topic])["topics"][topic]["error"] == 0
                           for n in c.live_nodes()), 5, f"topic {topic} on every node")


def confluent_produce(bootstrap, topic, records, **conf):
    """records: [(key, value)] or [(key, value, partition)]; returns the
    delivery reports [(partition, offset, key, value)]; raises on any error."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **conf})
    reports, errors = [], []

    def cb(err, msg):
        if err:
            errors.append(err)
        else:
            reports.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
    for rec in records:
        kw = {"partition": rec[2]} if len(rec) > 2 else {}
        p.produce(topic, key=rec[0], value=rec[1], on_delivery=cb, **kw)
        p.poll(0)
    left = p.flush(30)
    assert left == 0 and not errors, f"{left} undelivered, errors {errors}"
    return reports


def confluent_read_all(bootstrap, topic, partitions, expect, timeout=30):
    """Reads every partition from the beginning (no group) until `expect`
    records; returns [(partition, offset, key, value)]."""
    from confluent_kafka import Consumer as CKConsumer, TopicPartition, OFFSET_BEGINNING
    cons = CKConsumer({"bootstrap.servers": bootstrap, "group.id": "unused-" + topic,
                       "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        cons.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        got = []
        deadline = time.time() + timeout
        while len(got) < expect and time.time() < deadline:
            m = cons.poll(0.5)
            if m is None:
                continue
            assert not m.error(), m.error()
            got.append((m.partition(), m.offset(), m.key(), m.value()))
        return got
    finally:
        cons.close()


# ---------------------------------------------------------------- the shared cluster

@pytest.fixture(scope="module")
def cl():
    """etcd (3 members) and Samsa nodes 1-3; every node must exit cleanly at the end."""
    if not os.access(BROKER_BIN, os.X_OK):
        pytest.skip(f"{BROKER_BIN} not built")
    d = tempfile.mkdtemp(prefix="samsa-test-cluster-")
    etcd = EtcdCluster(os.path.join(d, "etcd"))
    c = None
    try:
        c = SamsaCluster(os.path.join(d, "samsa"), etcd, nodes=3, overrides=OVERRIDES)
        wait_all_registered(c)
        yield c
        c.stop(check=True)
    finally:
        if c is not None:
            c.stop(check=False)
        etcd.stop()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- 1. membership

@pytest.mark.timeout(60)
def test_every_node_sees_every_node(cl):
    want = {n.node_id: ("127.0.0.1", n.port) for n in cl.nodes}
    controllers = set()
    for n in cl.nodes:
        # kafka-broker-api-versions.sh: one block per node, each "host:port (id: N rack: null) -> ("
        r = tool(cl, "kafka-broker-api-versions", "--bootstrap-server", n.bootstrap)
        heads = re.findall(r"^(\S+):(\d+) \(id: (\d+) rack: (\S+)\) -> \($", r.stdout, re.M)
        assert sorted((int(i), (h, int(p)), rack) for h, p, i, rack in heads) == \
            sorted((i, hp, "null") for i, hp in want.items()), r.stdout
        assert r.stdout.count("\tProduce(0): 0 to 9 [usable: 9],\n") == 3

        md = metadata(n.bootstrap)
        assert {i: (h, p) for i, (h, p, _) in md["brokers"].items()} == want
        assert md["cluster_id"] == cl.cluster_id
        err, cid, ctl, brokers = describe_cluster(n.bootstrap)
        assert (err, cid) == (0, cl.cluster_id)
        assert {i: (h, p) for i, (h, p, _) in brokers.items()} == want
        assert ctl == md["controller_id"]
        controllers.add(ctl)

        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=n.bootstrap)
        try:
            dc = admin.describe_cluster()
        finally:
            admin.close()
        assert sorted((b["node_id"], b["host"], b["port"]) for b in dc["brokers"]) == \
            sorted((i, h, p) for i, (h, p) in want.items())
        assert dc["controller_id"] == ctl and dc["cluster_id"] == cl.cluster_id
    assert len(controllers) == 1 and controllers.pop() in want, controllers

    r = tool(cl, "kafka-cluster", "cluster-id", "--bootstrap-server", cl.node(3).bootstrap)
    assert r.stdout == f"Cluster ID: {cl.cluster_id}\n"


@pytest.mark.timeout(60)
def test_broker_rack_per_node(samsa_cluster_factory):
    racks = {1: "rack-a", 2: "rack-b", 3: "rack-c"}
    c = samsa_cluster_factory(3, node_overrides={i: {"broker.rack": r} for i, r in racks.items()})
    wait_all_registered(c)
    for n in c.nodes:
        md = metadata(n.bootstrap)
        assert {i: rack for i, (_, _, rack) in md["brokers"].items()} == racks
        assert {i: rack for i, (_, _, rack) in describe_cluster(n.bootstrap)[3].items()} == racks
        r = tool(c, "kafka-broker-api-versions", "--bootstrap-server", n.bootstrap)
        assert sorted(re.findall(r"\(id: (\d) rack: (\S+)\) -> \(", r.stdout)) == \
            sorted((str(i), rk) for i, rk in racks.items()), r.stdout
    # Rack-aware placement with one node per rack: every partition placed, every node used.
    create_topic(c, 2, "racked", "--partitions", "6")
    ls = leaders(metadata(c.node(1).bootstrap, ["racked"]), "racked")
    assert sorted(ls) == list(range(6)) and set(ls.values()) == {1, 2, 3}, ls


# ---------------------------------------------------------------- 2. topics

@pytest.mark.timeout(90)
def test_topics_placed_over_the_nodes(cl):
    create_topic(cl, 1, "spread", "--partitions", "6")
    d2 = describe(cl, 2, "spread")
    d3 = describe(cl, 3, "spread")
    d1 = describe(cl, 1, "spread")
    assert d1 == d2 == d3, (d1, d2, d3)
    rows = re.findall(r"^\tTopic: spread\tPartition: (\d+)\tLeader: (\d+)\tReplicas: (\d+)\tIsr: (\d+)$", d2, re.M)
    assert [int(r[0]) for r in rows] == list(range(6)), d2
    assert all(r[1] == r[2] == r[3] for r in rows), d2
    counts = {i: sum(1 for r in rows if int(r[1]) == i) for i in (1, 2, 3)}
    assert counts == {1: 2, 2: 2, 3: 2}, (counts, d2)
    assert re.match(r"Topic: spread\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 6\tReplicationFactor: 1\t"
                    r"Configs: segment.bytes=1073741824\n", d2), d2

    # A manual assignment is honoured.
    create_topic(cl, 1, "manual", "--replica-assignment", "2,3,1")
    for i in (1, 2, 3):
        assert mask_ids(describe(cl, i, "manual")) == (
            "Topic: manual\tTopicId: <id>\tPartitionCount: 3\tReplicationFactor: 1\t"
            "Configs: segment.bytes=1073741824\n"
            "\tTopic: manual\tPartition: 0\tLeader: 2\tReplicas: 2\tIsr: 2\n"
            "\tTopic: manual\tPartition: 1\tLeader: 3\tReplicas: 3\tIsr: 3\n"
            "\tTopic: manual\tPartition: 2\tLeader: 1\tReplicas: 1\tIsr: 1\n")

    # A replication factor above the number of nodes: Kafka's INVALID_REPLICATION_FACTOR message.
    r = tool(cl, "kafka-topics", "--bootstrap-server", cl.node(3).bootstrap, "--create", "--topic", "rf4",
             "--partitions", "2", "--replication-factor", "4", ok=False)
    assert r.returncode == 1
    assert ("Error while executing topic command : Unable to replicate the partition 4 time(s): The target "
            "replication factor of 4 cannot be reached because only 3 broker(s) are registered.") in r.stdout + r.stderr, \
        r.stdout + r.stderr
    assert "rf4" not in metadata(cl.node(1).bootstrap)["topics"]
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import InvalidReplicationFactorError
    admin = KafkaAdminClient(bootstrap_servers=cl.node(2).bootstrap)
    try:
        with pytest.raises(InvalidReplicationFactorError):
            admin.create_topics([NewTopic("rf4", 1, 4)])
    finally:
        admin.close()

    # CreatePartitions from node 3, seen from node 1.
    r = tool(cl, "kafka-topics", "--bootstrap-server", cl.node(3).bootstrap, "--alter", "--topic", "spread",
             "--partitions", "8")
    assert (r.stdout, r.stderr) == ("", "")
    wait_until(lambda: "PartitionCount: 8\t" in describe(cl, 1, "spread"), 5, "8 partitions seen from node 1")
    ls = leaders(metadata(cl.node(2).bootstrap, ["spread"]), "spread")
    assert sorted(ls) == list(range(8)) and all(v in (1, 2, 3) for v in ls.values()), ls

    # Configs altered through node 2, described from node 3 (and 1).
    r = tool(cl, "kafka-configs", "--bootstrap-server", cl.node(2).bootstrap, "--alter", "--entity-type",
             "topics", "--entity-name", "spread", "--add-config", "retention.ms=123456789,cleanup.policy=compact")
    assert r.stdout == "Completed updating config for topic spread.\n", r.stdout + r.stderr

    def configs_seen(node_id):
        out = tool(cl, "kafka-configs", "--bootstrap-server", cl.node(node_id).bootstrap, "--describe",
                   "--entity-type", "topics", "--entity-name", "spread").stdout
        return "retention.ms=123456789" in out and "cleanup.policy=compact" in out and out
    for i in (3, 1):
        out = wait_until(lambda: configs_seen(i), 5, f"the new configs from node {i}")
        assert out.startswith("Dynamic configs for topic spread are:\n"), out
    wait_until(lambda: "cleanup.policy=compact" in describe(cl, 3, "spread"), 5, "describe shows the config")
    r = tool(cl, "kafka-configs", "--bootstrap-server", cl.node(1).bootstrap, "--alter", "--entity-type",
             "topics", "--entity-name", "spread", "--delete-config", "cleanup.policy")
    assert r.returncode == 0
    wait_until(lambda: "cleanup.policy=compact" not in tool(
        cl, "kafka-configs", "--bootstrap-server", cl.node(2).bootstrap, "--describe", "--entity-type", "topics",
        "--entity-name", "spread").stdout, 5, "the deleted config gone on node 2")

    # DeleteTopics from node 3: gone everywhere.
    create_topic(cl, 2, "doomed", "--partitions", "3")
    r = tool(cl, "kafka-topics", "--bootstrap-server", cl.node(3).bootstrap, "--delete", "--topic", "doomed")
    assert (r.stdout, r.stderr) == ("", "")
    for i in (1, 2, 3):
        wait_until(lambda: "doomed" not in tool(cl, "kafka-topics", "--bootstrap-server", cl.node(i).bootstrap,
                                                "--list").stdout.split("\n"), 5, f"doomed gone from node {i}")
    same_metadata_everywhere(cl)


# ---------------------------------------------------------------- 3. clients

@pytest.mark.timeout(120)
def test_clients_across_the_cluster(cl):
    create_topic(cl, 2, "across", "--partitions", "6")
    md = metadata(cl.node(1).bootstrap, ["across"])
    assert set(leaders(md, "across").values()) == {1, 2, 3}

    # confluent-kafka: produce through node 1 only, read through node 3 only.
    sent = [(f"key-{i % 17}".encode(), f"confluent-{i}".encode()) for i in range(300)]
    reports = confluent_produce(cl.node(1).bootstrap, "across", sent)
    assert len(reports) == 300
    by_key = {}
    for p, _o, k, _v in reports:
        by_key.setdefault(k, set()).add(p)
    assert all(len(ps) == 1 for ps in by_key.values()), by_key  # a key stays in its partition
    assert len({p for p, *_ in reports}) > 1
    got = confluent_read_all(cl.node(3).bootstrap, "across", range(6), 300)
    assert sorted((k, v) for _p, _o, k, v in got) == sorted(sent)
    assert sorted(got) == sorted(reports)

    # kafka-python: produce through node 2, read through node 1 (a group, from the beginning).
    from kafka import KafkaConsumer, KafkaProducer
    prod = KafkaProducer(bootstrap_servers=cl.node(2).bootstrap, acks="all", retries=5)
    try:
        futs = [prod.send("across", key=f"py-{i % 5}".encode(), value=f"python-{i}".encode()) for i in range(60)]
        metas = [f.get(timeout=30) for f in futs]
    finally:
        prod.close()
    assert len(metas) == 60
    cons = KafkaConsumer("across", bootstrap_servers=cl.node(1).bootstrap, group_id="py-across",
                         auto_offset_reset="earliest", consumer_timeout_ms=8000)
    try:
        vals = []
        deadline = time.time() + 40
        while len(vals) < 360 and time.time() < deadline:
            for m in cons:
                vals.append(m.value.decode())
                if len(vals) >= 360:
                    break
    finally:
        cons.close()
    assert sorted(vals) == sorted([v.decode() for _k, v in sent] + [f"python-{i}" for i in range(60)])

    # kcat: produce through node 3, consume through node 2, every partition to its end.
    lines = "".join(f"kc-{i % 7}:kcat-{i}\n" for i in range(40))
    r = subprocess.run(["kcat", "-b", cl.node(3).bootstrap, "-P", "-t", "across", "-K", ":"], input=lines,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["kcat", "-b", cl.node(2).bootstrap, "-C", "-t", "across", "-o", "beginning", "-e", "-q",
                        "-f", "%p %k %s\n"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = [line.split(" ") for line in r.stdout.splitlines()]
    assert len(out) == 400, r.stdout[-2000:]
    assert sorted(v for _p, _k, v in out if v.startswith("kcat-")) == sorted(f"kcat-{i}" for i in range(40))
    # kafka-get-offsets through node 2 counts the same 400.
    r = tool(cl, "kafka-get-offsets", "--bootstrap-server", cl.node(2).bootstrap, "--topic", "across")
    assert sum(int(line.rsplit(":", 1)[1]) for line in r.stdout.split()) == 400, r.stdout


@pytest.mark.timeout(60)
def test_produce_to_a_node_that_does_not_lead(cl):
    create_topic(cl, 1, "raw", "--replica-assignment", "2,3,1")
    md = metadata(cl.node(1).bootstrap, ["raw"])
    assert leaders(md, "raw") == {0: 2, 1: 3, 2: 1}
    for p, leader in leaders(md, "raw").items():
        for n in cl.nodes:
            err, base = produce_raw(n.bootstrap, "raw", p, [b"x-%d-%d" % (p, n.node_id)])
            if n.node_id == leader:
                assert err == 0, (p, n.node_id, err)
            else:
                assert err == 6, (p, n.node_id, err)  # NOT_LEADER_OR_FOLLOWER
    r = tool(cl, "kafka-get-offsets", "--bootstrap-server", cl.node(3).bootstrap, "--topic", "raw")
    assert r.stdout == "raw:0:1\nraw:1:1\nraw:2:1\n"


# ---------------------------------------------------------------- 4. groups

@pytest.mark.timeout(120)
def test_group_coordinator_on_another_node(cl):
    from confluent_kafka import Consumer as CKConsumer, TopicPartition

    create_topic(cl, 3, "grouped", "--partitions", "6")
    sent = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(120)]
    confluent_produce(cl.node(3).bootstrap, "grouped", sent)

    # A group whose coordinator is not node 1 (the consumers' bootstrap), the
    # same answer from every node.
    group, coord = None, None
    for i in range(40):
        name = f"split-{i}"
        answers = wait_until(lambda: (lambda a: a if all(x[0] == 0 for x in a) else None)(
            [find_coordinator(n.bootstrap, name) for n in cl.nodes]), 20, f"a coordinator for {name}")
        assert len(set(answers)) == 1, answers
        err, node, host, port = answers[0]
        assert (host, port) == ("127.0.0.1", cl.node(node).port)
        if node != 1:
            group, coord = name, node
            break
    assert group, "no group name of 40 had its coordinator off node 1"

    stop = threading.Event()
    state = {}

    def member(name):
        c = CKConsumer({"bootstrap.servers": cl.node(1).bootstrap, "group.id": group, "client.id": name,
                        "auto.offset.reset": "earliest", "enable.auto.commit": False,
                        "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
        st = state[name] = {"assigned": [], "got": [], "error": None}

        def on_assign(_c, parts):
            st["assigned"] = sorted(p.partition for p in parts)

        def on_revoke(_c, parts):
            st["assigned"] = []
        try:
            c.subscribe(["grouped"], on_assign=on_assign, on_revoke=on_revoke)
            while not stop.is_set():
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    st["error"] = str(m.error())
                    continue
                st["got"].append((m.partition(), m.offset(), m.value()))
                c.commit(message=m, asynchronous=False)
        except Exception as e:  # reported below
            st["error"] = repr(e)
        finally:
            c.close()

    threads = [threading.Thread(target=member, args=(n,), daemon=True) for n in ("m1", "m2")]
    threads[0].start()
    wait_until(lambda: state.get("m1", {}).get("assigned") == list(range(6)), 30, "m1 to own all partitions")
    threads[1].start()
    try:
        def split():
            a, b = state.get("m1", {}).get("assigned"), state.get("m2", {}).get("assigned")
            return a and b and sorted(a + b) == list(range(6)) and len(a) == 3
        wait_until(split, 45, f"the two members to split the partitions ({state})")
        wait_until(lambda: len({(p, o) for s in state.values() for p, o, _ in s["got"]}) >= 120, 30,
                   "every record consumed")
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert all(s["error"] is None for s in state.values()), state
    vals = {v for s in state.values() for _p, _o, v in s["got"]}
    assert vals == {v for _k, v in sent}

    # The committed offsets, read by a new member of the group (through node 2)
    # and by kafka-consumer-groups.sh through node 3.
    ends = {p: hi for p in range(6) for _lo, hi in
            [confluent_watermarks(cl.node(2).bootstrap, "grouped", p)]}
    assert sum(ends.values()) == 120
    c = CKConsumer({"bootstrap.servers": cl.node(2).bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        committed = c.committed([TopicPartition("grouped", p) for p in range(6)], timeout=20)
    finally:
        c.close()
    assert {tp.partition: tp.offset for tp in committed} == ends
    r = tool(cl, "kafka-consumer-groups", "--bootstrap-server", cl.node(3).bootstrap, "--describe",
             "--group", group)
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith(group + " ")]
    assert sorted((int(x[2]), int(x[3]), int(x[4]), x[5]) for x in rows) == \
        sorted((p, e, e, "0") for p, e in ends.items()), r.stdout
    for n in cl.nodes:
        assert find_coordinator(n.bootstrap, group)[1] == coord


def confluent_watermarks(bootstrap, topic, partition):
    from confluent_kafka import Consumer as CKConsumer, TopicPartition
    c = CKConsumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


# ---------------------------------------------------------------- 5. kill -9

def wait_leaderless(c, topic, parts, t_kill, what):
    """Waits until every live node reports leader -1 for parts; returns the seconds since t_kill."""
    live = c.live_nodes()

    def check():
        for n in live:
            ls = leaders(metadata(n.bootstrap, [topic]), topic)
            if any(ls[p] != -1 for p in parts):
                return False
        return True
    wait_until(check, SESSION_S + 6, lambda: what + "\n" + node_logs(c))
    return time.time() - t_kill


@pytest.mark.timeout(150)
def test_kill9_node_then_controller(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    create_topic(c, 1, "victim", "--partitions", "6")
    md = same_metadata_everywhere(c)
    ls = leaders(md, "victim")
    controller = md["controller_id"]
    # A node that is not the controller, with its partitions.
    dead = next(i for i in (2, 3, 1) if i != controller)
    mine = sorted(p for p, l in ls.items() if l == dead)
    others = sorted(p for p, l in ls.items() if l != dead)
    assert mine and others, ls
    before = confluent_produce(c.node(1).bootstrap, "victim",
                               [(None, f"before-{p}-{i}".encode(), p) for p in range(6) for i in range(20)])
    assert len(before) == 120

    t_kill = time.time()
    c.kill9(dead)
    took = wait_leaderless(c, "victim", mine, t_kill, f"node {dead}'s partitions {mine} leaderless")
    assert took <= SESSION_S + 1.0, f"leaderless after {took:.2f}s (session {SESSION_S}s)"
    for n in c.live_nodes():
        md = metadata(n.bootstrap, ["victim"])
        assert dead not in md["brokers"], md["brokers"]
        assert {p: l for p, l in leaders(md, "victim").items() if p in others} == {p: ls[p] for p in others}
    live_id = next(n.node_id for n in c.live_nodes())
    d = describe(c, live_id, "victim")
    for p in mine:
        assert f"\tPartition: {p}\tLeader: none\tReplicas: {dead}\tIsr: {dead}\n" in d, d
    # Records keep flowing to the other partitions.
    during = confluent_produce(c.node(live_id).bootstrap, "victim",
                               [(None, f"during-{p}-{i}".encode(), p) for p in others for i in range(10)])
    assert len(during) == 10 * len(others)

    # The node comes back: it leads its partitions again, its records are all there.
    c.restart(dead)
    wait_until(lambda: all(leaders(metadata(n.bootstrap, ["victim"]), "victim") == ls for n in c.nodes), 10,
               lambda: f"node {dead} leading {mine} again\n" + node_logs(c))
    got = confluent_read_all(c.node(dead).bootstrap, "victim", range(6), 120 + len(during))
    assert sorted(v for *_x, v in got) == sorted([v for *_x, v in before] + [v for *_x, v in during])
    assert sorted(got) == sorted(before + during)  # same partitions and offsets as acknowledged
    same_metadata_everywhere(c)

    # kill -9 of the controller: another node takes over, topics can be created.
    controller = metadata(c.node(1).bootstrap)["controller_id"]
    assert controller in (1, 2, 3)
    t_kill = time.time()
    c.kill9(controller)

    def new_controller():
        ids = {metadata(n.bootstrap)["controller_id"] for n in c.live_nodes()}
        return len(ids) == 1 and ids.pop() not in (controller, -1)
    wait_until(new_controller, SESSION_S + 6, lambda: "a new controller on every live node\n" + node_logs(c))
    took = time.time() - t_kill
    assert took <= SESSION_S + 1.0, f"new controller after {took:.2f}s"
    live = [n.node_id for n in c.live_nodes()]
    r = tool(c, "kafka-topics", "--bootstrap-server", c.node(live[0]).bootstrap, "--create", "--topic",
             "after-controller", "--partitions", "4")
    assert r.stdout == "Created topic after-controller.\n"
    wait_until(lambda: all("after-controller" in metadata(n.bootstrap)["topics"] for n in c.live_nodes()), 5,
               "the new topic everywhere")
    new_ls = leaders(metadata(c.node(live[1]).bootstrap, ["after-controller"]), "after-controller")
    assert sorted(new_ls) == [0, 1, 2, 3] and set(new_ls.values()) <= set(live), new_ls
    confluent_produce(c.node(live[1]).bootstrap, "after-controller", [(b"k", b"v", p) for p in range(4)])
    c.restart(controller)
    wait_until(lambda: controller in metadata(c.node(controller).bootstrap)["brokers"], 10, "the old controller back")
    same_metadata_everywhere(c, timeout=10)


# ---------------------------------------------------------------- 8. etcd leader loss

@pytest.mark.timeout(120)
def test_kill9_etcd_leader_under_load(samsa_cluster_factory):
    from confluent_kafka import Producer
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    create_topic(c, 1, "steady", "--partitions", "3")
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "retries": 1000000,
                  "enable.idempotence": True, "message.timeout.ms": 60000, "linger.ms": 5})
    acked, errors = [], []
    stop = threading.Event()

    def cb(err, msg):
        if err:
            errors.append(str(err))
        else:
            acked.append((msg.partition(), msg.offset(), msg.value()))

    def load():
        i = 0
        while not stop.is_set():
            p.produce("steady", value=f"v{i}".encode(), partition=i % 3, on_delivery=cb)
            i += 1
            p.poll(0.01)
        p.flush(60)
    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        wait_until(lambda: len(acked) > 50, 20, "the producer under way")
        old = c.etcd.leader()
        t_kill = time.time()
        c.etcd.kill9(old.index)
        n0 = len(acked)
        new = c.etcd.leader(exclude=[old], timeout=15)
        assert new.index != old.index
        # Produce goes on during and after the election.
        wait_until(lambda: len(acked) > n0 + 100, 15, f"acks after the etcd leader died ({len(acked)})")
        # Topic creation works again within ~10 s.
        def created():
            r = tool(c, "kafka-topics", "--bootstrap-server", c.node(2).bootstrap, "--create", "--topic",
                     "after-etcd", "--partitions", "3", ok=False, timeout=30)
            return r.returncode == 0 or "already exists" in r.stdout + r.stderr
        wait_until(created, 10, lambda: "topic creation after the etcd leader loss\n" + node_logs(c), interval=0.5)
        assert time.time() - t_kill < 15
        n1 = len(acked)
        wait_until(lambda: len(acked) > n1 + 50, 10, "acks after the topic creation")
    finally:
        stop.set()
        t.join(timeout=70)
    assert not errors, errors[:5]
    assert all(n.alive() for n in c.nodes), node_logs(c)
    # Every acknowledged record is there, once, at its offset.
    got = confluent_read_all(c.node(3).bootstrap, "steady", range(3), len(acked), timeout=30)
    assert sorted(got_rec[:2] + (got_rec[3],) for got_rec in got) == sorted(acked), (
        f"read {len(got)} of {len(acked)} acknowledged; per partition read "
        f"{sorted(collections.Counter(g[0] for g in got).items())} acked "
        f"{sorted(collections.Counter(a[0] for a in acked).items())}; kafka-get-offsets: "
        + tool(c, "kafka-get-offsets", "--bootstrap-server", c.node(3).bootstrap, "--topic", "steady").stdout
        + "; Metadata: "
        + "; ".join(f"node {n.node_id}: {normalized(metadata(n.bootstrap, ['steady']))}" for n in c.nodes)
        + "\n" + node_logs(c))
    c.etcd.start_member(old.index)
    same_metadata_everywhere(c, timeout=10)


# ---------------------------------------------------------------- 6. bad starts

def start_extra_node(cl, name, overrides, cluster_id=None, timeout=30):
    """Formats and runs one more node against the cluster's etcd; returns
    (exit code, seconds, output). The node is killed if it outlives timeout."""
    common = dict(SamsaCluster.DEFAULTS, **OVERRIDES)
    common["etcd.endpoints"] = cl.etcd.endpoints_str
    n = ClusterNode(cl, 90 + len(name), common)
    n.workdir = os.path.join(cl.workdir, name)
    os.makedirs(n.workdir, exist_ok=True)
    n.log_dir = os.path.join(n.workdir, "data")
    n.config = os.path.join(n.workdir, "server.properties")
    n.stdout_path = os.path.join(n.workdir, "broker.out")
    n.overrides["log.dirs"] = n.log_dir
    n.overrides.update(overrides)
    n.write_config()
    if cluster_id:
        n.cluster_id = cluster_id
    n.format()
    t0 = time.time()
    try:
        r = subprocess.run([BROKER_BIN, n.config], capture_output=True, text=True, timeout=timeout,
                           env=tool_env())
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the {name} node was still running after {timeout}s: {e.stdout}")
    return r.returncode, time.time() - t0, r.stdout + r.stderr


@pytest.mark.timeout(90)
def test_bad_starts(cl):
    before = metadata(cl.node(1).bootstrap)

    # A 4th node with node 2's id, while node 2 lives.
    code, took, out = start_extra_node(cl, "dup", {"node.id": "2"})
    assert code == 1, out
    assert "Another broker is registered with that broker id" in out, out
    # It gave up after waiting one session for node 2's registration to expire. How long that
    # took in seconds depends on etcd's fsyncs on a loaded machine: the bound is start_extra_node's.
    assert f"waiting up to {int(SESSION_S * 1000) + 1000} ms for its session to expire" in out, (took, out)
    # Node 2 is unharmed: still registered with its own port, still leading.
    md = metadata(cl.node(1).bootstrap)
    assert md["brokers"] == before["brokers"]
    assert normalized(md) == normalized(before)
    assert cl.node(2).alive()

    # A node formatted with another cluster id, against the same etcd.
    other = SamsaCluster._random_uuid()
    code, took, out = start_extra_node(cl, "stranger", {"node.id": "7"}, cluster_id=other)
    assert code == 1, out
    assert "cluster.id" in out and cl.cluster_id in out and other in out, out
    assert took < 20, (took, out)
    keys = cl.etcd.etcdctl("get", "/", "--prefix", "--keys-only").stdout.split()
    assert any(cl.cluster_id in k for k in keys) and not [k for k in keys if other in k], keys
    assert 7 not in metadata(cl.node(3).bootstrap)["brokers"]

    # etcd unreachable: a free port with nothing listening.
    dead = f"http://127.0.0.1:{free_port()}"
    code, took, out = start_extra_node(cl, "lonely", {"node.id": "8", "etcd.endpoints": dead})
    assert code == 1, out
    assert dead in out, out
    assert took < 20, (took, out)

    assert normalized(metadata(cl.node(1).bootstrap)) == normalized(before)


# ---------------------------------------------------------------- 7. the lab on node 1, data on 2 and 3

@pytest.mark.timeout(120)
def test_lab_steps_through_node_1(cl):
    env = tool_env()
    bs = cl.node(1).bootstrap
    sh = lambda name: os.path.join(BIN, name + ".sh")  # noqa: E731

    def run(name, *args):
        return subprocess.run([sh(name), *args], capture_output=True, text=True, timeout=60, env=env)

    r = run("kafka-topics", "--create", "--topic", "test", "--bootstrap-server", bs, "--replica-assignment", "2")
    assert (r.returncode, r.stdout, r.stderr) == (0, "Created topic test.\n", "")
    wait_until(lambda: "test" in run("kafka-topics", "--list", "--bootstrap-server", bs).stdout.split("\n"), 5,
               "test listed")
    r = run("kafka-topics", "--describe", "--topic", "test", "--bootstrap-server", bs)
    assert (r.returncode, r.stderr) == (0, "")
    assert mask_ids(r.stdout) == (
        "Topic: test\tTopicId: <id>\tPartitionCount: 1\tReplicationFactor: 1\t"
        "Configs: segment.bytes=1073741824\n"
        "\tTopic: test\tPartition: 0\tLeader: 2\tReplicas: 2\tIsr: 2\n")

    transcript, err, code = pty_producer(BIN, env, ["--topic", "test", "--bootstrap-server", bs],
                                         ["hello", "world", "!"])
    assert (code, err, transcript) == (0, "", ">hello\n>world\n>!\n>")
    r = run("kafka-get-offsets", "--bootstrap-server", bs, "--topic", "test")
    assert (r.returncode, r.stdout, r.stderr) == (0, "test:0:3\n", "")

    c = Consumer(BIN, env, "--topic", "test", "--bootstrap-server", bs, "--from-beginning")
    try:
        c.wait_lines(3)
        time.sleep(0.3)
        out, err, code = c.interrupt()
    finally:
        c.kill()
    assert (out, err, code) == (["hello", "world", "!"], "Processed a total of 3 messages\n", 130)

    c = Consumer(BIN, env, "--topic", "test", "--bootstrap-server", bs, "--partition", "0", "--offset", "1")
    try:
        c.wait_lines(2)
        time.sleep(0.3)
        out, err, code = c.interrupt()
    finally:
        c.kill()
    assert (out, err) == (["world", "!"], "Processed a total of 2 messages\n")

    # A second partition, on node 3; the keyed producer splits as in the lab.
    r = run("kafka-topics", "--alter", "--topic", "test", "--partitions", "2", "--replica-assignment", "2,3",
            "--bootstrap-server", bs)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    wait_until(lambda: "PartitionCount: 2" in run("kafka-topics", "--describe", "--topic", "test",
                                                  "--bootstrap-server", bs).stdout, 5, "2 partitions")
    r = run("kafka-topics", "--describe", "--topic", "test", "--bootstrap-server", bs)
    assert mask_ids(r.stdout).endswith(
        "\tTopic: test\tPartition: 0\tLeader: 2\tReplicas: 2\tIsr: 2\n"
        "\tTopic: test\tPartition: 1\tLeader: 3\tReplicas: 3\tIsr: 3\n"), r.stdout
    keyed = [f"{i}:hello{i}" for i in range(1, 6)]
    transcript, err, code = pty_producer(
        BIN, env, ["--topic", "test", "--bootstrap-server", bs, "--property", "parse.key=true",
                   "--property", "key.separator=:"], keyed)
    assert (code, err) == (0, "")
    assert transcript == "".join(f">{k}\n" for k in keyed) + ">"
    r = run("kafka-get-offsets", "--bootstrap-server", bs, "--topic", "test")
    assert (r.returncode, r.stdout, r.stderr) == (0, "test:0:5\ntest:1:3\n", "")
    for p, want in ((0, ["hello2", "hello5"]), (1, ["hello1", "hello3", "hello4"])):
        c = Consumer(BIN, env, "--topic", "test", "--bootstrap-server", bs, "--partition", str(p),
                     "--offset", "earliest")
        try:
            c.wait_lines(len(want) + (3 if p == 0 else 0))
            time.sleep(0.3)
            out, err, _ = c.interrupt()
        finally:
            c.kill()
        expect = (["hello", "world", "!"] if p == 0 else []) + want
        assert (out, err) == (expect, f"Processed a total of {len(expect)} messages\n")


# ---------------------------------------------------------------- 9. no divergence (the shared cluster, last)

@pytest.mark.timeout(60)
def test_metadata_identical_on_every_node(cl):
    md = same_metadata_everywhere(cl)
    names = set(md["topics"])
    assert {"spread", "manual", "across", "raw", "grouped", "test", "__consumer_offsets"} <= names, names
    assert "doomed" not in names and "rf2" not in names
    ids = [t["id"] for t in md["topics"].values()]
    assert len(set(ids)) == len(ids)
    for name, t in md["topics"].items():
        assert t["error"] == 0, (name, t)
        for p, (err, leader, _epoch, replicas, isr) in t["partitions"].items():
            assert err == 0 and leader in (1, 2, 3) and replicas == (leader,) and isr == (leader,), (name, p)
    assert len(md["topics"]["spread"]["partitions"]) == 8
    # kafka-topics.sh --describe of everything: the same text through every node.
    outs = [tool(cl, "kafka-topics", "--bootstrap-server", n.bootstrap, "--describe").stdout for n in cl.nodes]
    assert outs[0] == outs[1] == outs[2]
