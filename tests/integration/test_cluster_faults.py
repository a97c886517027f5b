"""The cluster under faults (issue 12), black box: 3 etcd members and 3 Samsa
nodes on loopback, as in test_cluster.py (whose helpers this file reuses):

1. producer ids never repeat: thousands of InitProducerId from every node at
   once (several blocks of 1,000 per node), again after a kill -9 and restart
   of a node, and the ids of idempotent producers through different nodes;
2. kill -9 of nodes during topic creation: every acknowledged topic exists
   whole on every node, no topic is ever half created;
3. a node whose watch history was compacted reloads a snapshot and converges
   (new topics present, the deleted one gone with its log directory);
4. etcd entirely stopped for 1.5 s (less than the session): produce goes on,
   CreateTopics answers (success or REQUEST_TIMED_OUT) within the request
   timeout, metadata changes work after;
5. etcd stopped for longer than the session: nodes stop leading
   (NOT_LEADER_OR_FOLLOWER), lead again within ~10 s after, and every
   acknowledged record is read back exactly once.

Every test has its own etcd and nodes (the fixtures stop them, and fail the
test on a crash or a sanitizer exit). Node output: <workdir>/node<N>/broker.out,
printed by the helpers on failure.
"""
import os
import socket
import struct
import threading
import time

import pytest

from cluster import (HAVE_ETCD, SamsaCluster,  # noqa: F401 (fixtures)
                     etcd_cluster, etcd_cluster_factory, samsa_cluster_factory)
from test_cluster import (R, W, confluent_produce, confluent_read_all, create_topic, leaders, metadata,
                          node_logs, normalized, produce_raw, same_metadata_everywhere, tool,
                          wait_all_registered, wait_until)

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")

SESSION_S = int(SamsaCluster.DEFAULTS["broker.session.timeout.ms"]) / 1000.0
OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
ETCD_REQUEST_TIMEOUT_S = 5.0  # REQUEST_TIMEOUT_MS of src/mstore/etcd_store.c

NONE, NOT_LEADER, REQUEST_TIMED_OUT, COORDINATOR_LOAD_IN_PROGRESS, TOPIC_ALREADY_EXISTS = 0, 6, 7, 14, 36


# ---------------------------------------------------------------- raw requests

class Conn:
    """One connection of its own (safe to use one per thread, unlike
    test_cluster.kafka_call's shared correlation id); requests may be
    pipelined, the broker answers them in order."""

    def __init__(self, bootstrap, timeout=20):
        host, port = bootstrap.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        self.corr = 0
        self.buf = b""

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, api_key, version, body, flexible):
        self.corr += 1
        h = W().i16(api_key).i16(version).i32(self.corr).str16("samsa-test-faults")
        if flexible:
            h.uvar(0)
        frame = bytes(h.b) + bytes(body)
        self.s.sendall(struct.pack(">i", len(frame)) + frame)
        return self.corr

    def recv(self, corr, flexible):
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack(">i", self.buf[:4])[0]:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self.buf += chunk
        n = struct.unpack(">i", self.buf[:4])[0]
        r = R(self.buf[4:4 + n])
        self.buf = self.buf[4 + n:]
        got = r.i32()
        assert got == corr, (got, corr)
        if flexible:
            r.tags()
        return r

    def call(self, api_key, version, body, flexible):
        return self.recv(self.send(api_key, version, body, flexible), flexible)


def init_producer_id_body():
    """InitProducerId v4 without a transactional id."""
    w = W().uvar(0).i32(60000)
    w.b += struct.pack(">qh", -1, -1)
    return w.uvar(0).b


def read_init_producer_id(r):
    r.i32()
    err, pid, epoch = r.i16(), r.i64(), r.i16()
    return err, pid, epoch


def init_producer_ids(bootstrap, count, window=100, retries=50):
    """count InitProducerId answers from one node, pipelined `window` at a
    time. Retriable errors (COORDINATOR_LOAD_IN_PROGRESS: a block lost to
    another node too often; REQUEST_TIMED_OUT) are asked again. Returns
    (producer ids in answer order, {error: how many})."""
    pids, errors = [], {}
    body = init_producer_id_body()
    with Conn(bootstrap) as c:
        while len(pids) < count:
            n = min(window, count - len(pids))
            corrs = [c.send(22, 4, body, True) for _ in range(n)]
            for corr in corrs:
                err, pid, epoch = read_init_producer_id(c.recv(corr, True))
                if err == NONE:
                    assert pid >= 0 and epoch == 0, (pid, epoch)
                    pids.append(pid)
                else:
                    errors[err] = errors.get(err, 0) + 1
                    assert err in (COORDINATOR_LOAD_IN_PROGRESS, REQUEST_TIMED_OUT), f"InitProducerId error {err}"
                    assert sum(errors.values()) <= retries, f"too many retriable errors: {errors}"
    return pids, errors


def from_all_nodes(c, count, node_ids=None):
    """init_producer_ids(count) from the given nodes at once, one thread each
    (joined; an exception in one is raised here). Returns {node id: pids}."""
    node_ids = node_ids or [n.node_id for n in c.nodes]
    out, failures = {}, []

    def run(i):
        try:
            out[i] = init_producer_ids(c.node(i).bootstrap, count)
        except BaseException as e:  # re-raised below
            failures.append((i, e))
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in node_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "InitProducerId threads still running"
    if failures:
        i, e = failures[0]
        raise AssertionError(f"InitProducerId through node {i}: {e!r}\n" + node_logs(c)) from e
    return {i: pids for i, (pids, _errors) in out.items()}


def describe_producers(bootstrap, topic, partition):
    """DescribeProducers v0: (error, [(producer id, epoch, last sequence)])."""
    w = W().uvar(2).cstr(topic).uvar(2).i32(partition).uvar(0).uvar(0)
    with Conn(bootstrap) as c:
        r = c.call(61, 0, w.b, True)
    r.i32()

    def producer():
        p = (r.i64(), r.i32(), r.i32(), r.i64(), r.i32(), r.i64())
        r.tags()
        return p[:3]

    def part():
        idx, err, _msg = r.i32(), r.i16(), r.cstr()
        prods = r.carray(producer) or []
        r.tags()
        return idx, err, prods

    def top():
        name = r.cstr()
        parts = r.carray(part) or []
        r.tags()
        return name, parts
    (_name, [(_idx, err, prods)]), = r.carray(top)
    return err, sorted(prods)


def create_topics_raw(bootstrap, topics, timeout_ms=10000, sock_timeout=30):
    """CreateTopics v4 of [(name, partitions)]: {name: (error, message)}."""
    w = W().i32(len(topics))
    for name, parts in topics:
        w.str16(name).i32(parts).i16(1).i32(0).i32(0)
    w.i32(timeout_ms).i8(0)
    with Conn(bootstrap, timeout=sock_timeout) as c:
        r = c.call(19, 4, w.b, False)
    r.i32()
    return dict((name, (err, msg)) for name, err, msg in r.array(lambda: (r.str16(), r.i16(), r.str16())))


# ---------------------------------------------------------------- more helpers

def all_led(c, topics, nodes=None):
    """Every live node's Metadata has every partition of these topics with a leader."""
    for n in nodes or c.live_nodes():
        md = metadata(n.bootstrap, topics)
        for t in topics:
            if t not in md["topics"] or md["topics"][t]["error"] != 0:
                return False
            if any(l not in (1, 2, 3) for l in leaders(md, t).values()):
                return False
    return True


class AckedProducer:
    """An idempotent confluent-kafka producer in a thread, writing v<i> to
    partition i % partitions until stop(); every delivery report is kept
    with the time it came (acked: [(time, partition, offset, value)])."""

    def __init__(self, bootstrap, topic, partitions):
        from confluent_kafka import Producer
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "retries": 1000000, "message.timeout.ms": 60000, "linger.ms": 5,
                           "retry.backoff.ms": 50})
        self.topic, self.partitions = topic, partitions
        self.acked, self.errors, self.failure = [], [], None
        self.done = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _cb(self, err, msg):
        if err:
            self.errors.append(str(err))
        else:
            self.acked.append((time.time(), msg.partition(), msg.offset(), msg.value()))

    def _run(self):
        try:
            i = 0
            while not self.done.is_set():
                self.p.produce(self.topic, value=f"v{i}".encode(), partition=i % self.partitions,
                               on_delivery=self._cb)
                i += 1
                self.p.poll(0.01)
            left = self.p.flush(60)
            if left:
                self.errors.append(f"{left} records undelivered after flush")
        except BaseException as e:  # re-raised by stop()
            self.failure = e

    def stop(self):
        self.done.set()
        self.t.join(timeout=75)
        assert not self.t.is_alive(), "the producer thread did not finish"
        if self.failure:
            raise self.failure
        return self


def read_back_exactly_once(c, bootstrap, topic, partitions, acked):
    """Every acked (partition, offset, value) is read back, and nothing twice."""
    got = confluent_read_all(bootstrap, topic, range(partitions), len(acked), timeout=40)
    want = sorted((p, o, v) for _t, p, o, v in acked)
    have = sorted((p, o, v) for p, o, _k, v in got)
    values = [v for _p, _o, v in have]
    twice = sorted(v for v in set(values) if values.count(v) > 1)
    assert not twice, f"records read twice: {twice[:10]}\n" + node_logs(c)
    assert have == want, (f"read {len(have)} of {len(want)} acknowledged; missing "
                          f"{sorted(set(want) - set(have))[:10]}; extra {sorted(set(have) - set(want))[:10]}\n"
                          + node_logs(c))


def sigstop_etcd(c):
    for m in c.etcd.members:
        m.sigstop()


def sigcont_etcd(c):
    for m in c.etcd.members:
        m.sigcont()


# ---------------------------------------------------------------- 1. producer ids

@pytest.mark.timeout(150)
def test_producer_ids_never_repeat_across_nodes(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    # 1,500 from every node at once: each needs two blocks of 1,000, the
    # nodes race for the producer-ids key.
    first = from_all_nodes(c, 1500)
    seen = [p for pids in first.values() for p in pids]
    assert len(seen) == 4500
    dups = sorted(p for p in set(seen) if seen.count(p) > 1) if len(set(seen)) != len(seen) else []
    assert not dups, f"producer ids handed out twice: {dups[:20]}"
    for i, pids in first.items():
        assert pids == sorted(pids), f"node {i} answered ids out of order"  # one connection, in order

    # kill -9 of node 2, back with the same data: its unused ids stay unused,
    # nobody gets an id seen before.
    c.kill9(2)
    c.restart(2)
    wait_all_registered(c)
    again = from_all_nodes(c, 300)
    new = [p for pids in again.values() for p in pids]
    assert len(set(new)) == len(new) == 900
    reused = sorted(set(new) & set(seen))
    assert not reused, f"ids handed out again after node 2's restart: {reused[:20]}"
    seen += new

    # Idempotent producers through different nodes get distinct ids: read
    # them back from the partition leaders with DescribeProducers.
    create_topic(c, 1, "idem", "--replica-assignment", "1,2,3")
    for i in (1, 2, 3):
        confluent_produce(c.node(i).bootstrap, "idem", [(None, f"n{i}-p{p}".encode(), p) for p in range(3)],
                          **{"enable.idempotence": True})
    md = metadata(c.node(1).bootstrap, ["idem"])
    assert leaders(md, "idem") == {0: 1, 1: 2, 2: 3}
    per_part = {}
    for p, leader in leaders(md, "idem").items():
        err, prods = describe_producers(c.node(leader).bootstrap, "idem", p)
        assert err == 0, err
        per_part[p] = {pid for pid, _epoch, _seq in prods}
        assert len(prods) == 3 and all(seq == 0 for _pid, _epoch, seq in prods), (p, prods)
    assert per_part[0] == per_part[1] == per_part[2], per_part
    assert not per_part[0] & set(seen), (per_part, "an idempotent producer got an id already handed out")
    # A node that does not host a partition answers NOT_LEADER_OR_FOLLOWER; with RF 3 a follower
    # answers from its own copy, as Kafka's ReplicaManager.activeProducerState does (what
    # kafka-transactions describe-producers --broker-id asks).
    assert describe_producers(c.node(2).bootstrap, "idem", 0)[0] == 6
    create_topic(c, 1, "idem3", "--replica-assignment", "1:2:3")
    confluent_produce(c.node(1).bootstrap, "idem3", [(None, b"x", 0)], **{"enable.idempotence": True})
    on_leader = describe_producers(c.node(1).bootstrap, "idem3", 0)
    assert on_leader[0] == 0 and len(on_leader[1]) == 1, on_leader
    for follower in (2, 3):
        wait_until(lambda: describe_producers(c.node(follower).bootstrap, "idem3", 0) == on_leader, 10,
                   f"node {follower} (a follower) describes the producer as the leader does")


# ---------------------------------------------------------------- 2. kill -9 during topic creation

@pytest.mark.timeout(150)
def test_kill9_nodes_during_topic_creation(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    asked = {}        # name -> partitions
    outcome = {}      # name -> error code, or "no answer: ..." (outcome unknown)
    stop = threading.Event()
    failure = []

    def creator():
        try:
            deadline = time.time() + 60
            for i in range(150):
                if stop.is_set() or time.time() > deadline:
                    return
                time.sleep(0.1)  # a steady stream across both kills and restarts, ~70 topics
                name, parts = f"ct-{i}", 3 + i % 10
                asked[name] = parts
                try:
                    res = create_topics_raw(c.node(1).bootstrap, [(name, parts)], timeout_ms=10000)
                    outcome[name] = res[name][0]
                except (OSError, ConnectionError, AssertionError) as e:
                    outcome[name] = f"no answer: {e!r}"
        except BaseException as e:  # re-raised below
            failure.append(e)
    t = threading.Thread(target=creator, daemon=True)
    t.start()
    try:
        for victim in (2, 3):
            n0 = len(outcome)
            wait_until(lambda: len(outcome) >= n0 + 3 or not t.is_alive(), 30,
                       lambda: f"topics being created before node {victim}'s kill ({outcome})\n" + node_logs(c))
            c.kill9(victim)
            time.sleep(0.3)
            c.restart(victim, timeout=30)
        n0 = len(outcome)
        wait_until(lambda: len(outcome) >= n0 + 3 or not t.is_alive(), 30,
                   lambda: f"topics created after the restarts ({outcome})\n" + node_logs(c))
    finally:
        stop.set()
        t.join(timeout=60)
    assert not t.is_alive(), "the creating thread did not finish"
    if failure:
        raise failure[0]
    acked = sorted(n for n, e in outcome.items() if e == NONE)
    other = {n: e for n, e in outcome.items() if e != NONE}
    assert len(acked) >= 12, (outcome, node_logs(c))
    # Node 1 never died: every answer is a success or a retriable error.
    assert all(e in (REQUEST_TIMED_OUT,) for e in other.values()), other

    # Quiescence: every node registered, every partition led, the same Metadata everywhere.
    wait_all_registered(c, timeout=15)
    names = sorted(asked)
    wait_until(lambda: all_led(c, [n for n in names if n in metadata(c.node(1).bootstrap)["topics"]]), 15,
               lambda: "every partition led again\n" + node_logs(c))
    md = same_metadata_everywhere(c, timeout=10)
    for name in acked:
        assert name in md["topics"], f"{name} was acknowledged but does not exist"
    for name, t in md["topics"].items():
        if not name.startswith("ct-"):
            continue
        assert name in asked, name
        assert sorted(t["partitions"]) == list(range(asked[name])), \
            f"{name}: asked {asked[name]} partitions, has {sorted(t['partitions'])} (half created)"
        assert t["error"] == 0 and all(l in (1, 2, 3) for l in leaders(md, name).values()), (name, t)
    # A topic whose create got no success answer either exists whole (checked above) or not at all.
    for name in other:
        assert name not in md["topics"] or len(md["topics"][name]["partitions"]) == asked[name]
    # Every node's view, not only node 1's: the full Metadata of each.
    assert len({normalized(metadata(n.bootstrap)) for n in c.nodes}) == 1


# ---------------------------------------------------------------- 3. compacted watch history

@pytest.mark.timeout(120)
def test_node_behind_compaction_reloads_a_snapshot(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    n3 = c.node(3)
    create_topic(c, 1, "gone", "--replica-assignment", "3,1,2")
    create_topic(c, 1, "kept", "--partitions", "3")
    assert confluent_produce(c.node(1).bootstrap, "gone", [(None, b"x", 0)])
    gone_dir = os.path.join(n3.log_dir, "gone-0")
    assert os.path.isdir(gone_dir), os.listdir(n3.log_dir)
    same_metadata_everywhere(c)

    # Node 3 follows etcd through its first endpoint (member 0). Stop node 3,
    # then break that watch (kill -9 and restart member 0) before the changes
    # are made: events written while the watch was still up could sit in node
    # 3's socket buffer and be applied from there, with no reload needed.
    n3.sigstop()
    try:
        c.etcd.kill9(0)
        c.etcd.start_member(0)
        r = tool(c, "kafka-topics", "--bootstrap-server", c.node(1).bootstrap, "--delete", "--topic", "gone")
        assert (r.stdout, r.stderr) == ("", "")
        for i in range(3):
            r = tool(c, "kafka-topics", "--bootstrap-server", c.node(1).bootstrap, "--create", "--topic",
                     f"fresh-{i}", "--partitions", str(2 + i))
            assert r.stdout == f"Created topic fresh-{i}.\n", r.stdout + r.stderr
        r = tool(c, "kafka-configs", "--bootstrap-server", c.node(2).bootstrap, "--alter", "--entity-type",
                 "topics", "--entity-name", "kept", "--add-config", "retention.ms=4242424")
        assert r.returncode == 0
        rev = c.etcd.members[1].status()["revision"]
        c.etcd.etcdctl("compact", str(rev))
    finally:
        n3.sigcont()
    t_cont = time.time()
    wait_until(lambda: "Reloaded the metadata from etcd" in n3.log_text(), 10,
               lambda: "node 3 reloading its metadata\n" + node_logs(c))
    wait_until(lambda: all_led(c, ["kept", "fresh-0", "fresh-1", "fresh-2"]), 10,
               lambda: "every partition led\n" + node_logs(c))
    md = same_metadata_everywhere(c, timeout=10)
    assert "gone" not in md["topics"]
    assert {"kept", "fresh-0", "fresh-1", "fresh-2"} <= set(md["topics"])
    assert [len(md["topics"][f"fresh-{i}"]["partitions"]) for i in range(3)] == [2, 3, 4]
    wait_until(lambda: not [d for d in os.listdir(n3.log_dir) if d.startswith("gone-")], 5,
               lambda: f"gone-0 removed from node 3's data dir: {os.listdir(n3.log_dir)}")
    assert time.time() - t_cont < 15
    # Node 3 serves what it reloaded: its partitions of the new topics take records.
    out = tool(c, "kafka-configs", "--bootstrap-server", n3.bootstrap, "--describe", "--entity-type", "topics",
               "--entity-name", "kept").stdout
    assert "retention.ms=4242424" in out, out
    reports = confluent_produce(n3.bootstrap, "fresh-2", [(None, f"r{p}".encode(), p) for p in range(4)])
    assert len(reports) == 4


# ---------------------------------------------------------------- 4. etcd away for less than the session

@pytest.mark.timeout(120)
def test_etcd_paused_shorter_than_the_session(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=dict(OVERRIDES, **{
        "broker.session.timeout.ms": "6000"})))
    create_topic(c, 1, "calm", "--partitions", "3")
    assert set(leaders(metadata(c.node(1).bootstrap, ["calm"]), "calm").values()) == {1, 2, 3}
    prod = AckedProducer(c.bootstrap, "calm", 3)
    created = {}
    try:
        wait_until(lambda: len(prod.acked) > 50, 20, "the producer under way")

        def create():
            t0 = time.time()
            try:
                created["res"] = create_topics_raw(c.node(2).bootstrap, [("paused", 3)], timeout_ms=10000,
                                                   sock_timeout=30)["paused"]
            except BaseException as e:  # checked below
                created["res"] = e
            created["took"] = time.time() - t0

        t_stop = time.time()
        sigstop_etcd(c)
        try:
            time.sleep(0.2)
            ct = threading.Thread(target=create, daemon=True)
            ct.start()
            time.sleep(1.3)
        finally:
            sigcont_etcd(c)
        t_cont = time.time()
        ct.join(timeout=30)
        assert not ct.is_alive(), "CreateTopics hung"
        n = len(prod.acked)
        wait_until(lambda: len(prod.acked) > n + 50, 15, "acks after etcd came back")
    finally:
        prod.stop()
    assert not prod.errors, prod.errors[:5]
    during = [a for a in prod.acked if t_stop + 0.1 < a[0] < t_cont]
    assert len(during) > 10, f"only {len(during)} records acknowledged while etcd was stopped"

    # CreateTopics while etcd was stopped: done once etcd came back, or a
    # retriable REQUEST_TIMED_OUT; in time either way.
    res = created["res"]
    print(f"CreateTopics while etcd was stopped: {res!r} after {created['took']:.2f}s; "
          f"{len(during)} records acknowledged during the pause")
    assert not isinstance(res, BaseException), repr(res)
    assert res[0] in (NONE, REQUEST_TIMED_OUT), res
    assert created["took"] < ETCD_REQUEST_TIMEOUT_S + 3, created
    if res[0] == REQUEST_TIMED_OUT:
        again = create_topics_raw(c.node(2).bootstrap, [("paused", 3)])["paused"]
        assert again[0] in (NONE, TOPIC_ALREADY_EXISTS), again

    # Metadata changes work again; nobody fenced itself, leadership never moved.
    create_topic(c, 3, "after-pause", "--partitions", "3")
    wait_until(lambda: all_led(c, ["paused", "after-pause", "calm"]), 10, "every partition led")
    md = same_metadata_everywhere(c, timeout=10)
    assert len(md["topics"]["paused"]["partitions"]) == 3
    assert set(leaders(md, "calm").values()) == {1, 2, 3}
    for n in c.nodes:
        assert "Fenced:" not in n.log_text(), n.log_text()[-3000:]
    read_back_exactly_once(c, c.node(2).bootstrap, "calm", 3, prod.acked)


# ---------------------------------------------------------------- 5. etcd away for longer than the session

@pytest.mark.timeout(150)
def test_etcd_paused_longer_than_the_session(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    create_topic(c, 1, "storm", "--replica-assignment", "1,2,3")
    want = {0: 1, 1: 2, 2: 3}
    assert leaders(metadata(c.node(2).bootstrap, ["storm"]), "storm") == want
    prod = AckedProducer(c.bootstrap, "storm", 3)
    raw_acked = []  # (time, partition, offset, value) of raw Produce answered 0
    calls = [0]

    def raw_produce(tag):
        """One record (a value of its own) to each partition's leader; {partition: error}."""
        calls[0] += 1
        errs = {}
        for p, leader in want.items():
            v = f"raw-{tag}-{calls[0]}-{p}".encode()
            err, base = produce_raw(c.node(leader).bootstrap, "storm", p, [v])
            errs[p] = err
            if err == NONE:
                raw_acked.append((time.time(), p, base, v))
        return errs

    try:
        wait_until(lambda: len(prod.acked) > 50, 20, "the producer under way")
        assert raw_produce("before") == {0: 0, 1: 0, 2: 0}
        t_stop = time.time()
        sigstop_etcd(c)
        try:
            # Every node stops leading before its lease can lapse.
            def refused():
                errs = raw_produce("during")
                assert all(e in (NONE, NOT_LEADER) for e in errs.values()), errs
                return set(errs.values()) == {NOT_LEADER}
            wait_until(refused, SESSION_S + 1.5, lambda: "NOT_LEADER_OR_FOLLOWER from every node\n" + node_logs(c),
                       interval=0.1)
            took = time.time() - t_stop
            assert took < SESSION_S, f"still leading {took:.2f}s after etcd stopped (session {SESSION_S}s)"
            time.sleep(max(0.0, t_stop + SESSION_S + 2 - time.time()))
            n_paused = len(prod.acked)
            assert raw_produce("late") == {0: NOT_LEADER, 1: NOT_LEADER, 2: NOT_LEADER}
        finally:
            sigcont_etcd(c)
        t_cont = time.time()
        for n in c.nodes:
            assert "Fenced:" in n.log_text(), f"node {n.node_id} never fenced itself\n" + n.log_text()[-3000:]

        # Registered again, leading again within ~10 s: the raw Produce and the producer get through.
        wait_all_registered(c, timeout=10)
        wait_until(lambda: raw_produce("after") == {0: 0, 1: 0, 2: 0} or None, 10,
                   lambda: "every node leading again\n" + node_logs(c), interval=0.2)
        back = time.time() - t_cont
        print(f"refused {took:.2f}s after etcd stopped; leading again {back:.2f}s after it came back")
        assert back < 10, f"leading again only after {back:.1f}s"
        wait_until(lambda: len(prod.acked) > n_paused + 100, 20,
                   lambda: f"the producer going on ({len(prod.acked)} acked)\n" + node_logs(c))
    finally:
        prod.stop()
    assert not prod.errors, prod.errors[:5]
    # No record is acknowledged while nobody leads (a heartbeat of slack at either end).
    quiet = [a for a in prod.acked if t_stop + SESSION_S < a[0] < t_cont]
    assert not quiet, f"{len(quiet)} records acknowledged while every node was fenced: {quiet[:3]}"
    md = same_metadata_everywhere(c, timeout=10)
    assert leaders(md, "storm") == want
    read_back_exactly_once(c, c.node(1).bootstrap, "storm", 3, prod.acked + raw_acked)
