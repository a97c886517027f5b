"""Consumer groups across a coordinator failover, black box: 3 etcd members and
3 Samsa nodes on loopback, __consumer_offsets with replication factor 3.

1. a consumer group (confluent-kafka) consumes and commits; kill -9 of the
   node coordinating it: the group goes on with the new coordinator (the
   leader the controller elects for the group's __consumer_offsets partition)
   within broker.session.timeout.ms + a few seconds, reads the records
   produced after the kill, and no acknowledged commit is lost (read back by
   a client and by kafka-consumer-groups.sh --describe);
2. FindCoordinator answers COORDINATOR_NOT_AVAILABLE while fewer brokers are
   registered than offsets.topic.replication.factor (the controller cannot
   place __consumer_offsets), and a coordinator once enough are;
3. a commit is acknowledged only once replicated: with both followers of
   the group's partition stopped it times out (REQUEST_TIMED_OUT, as
   Kafka's storeOffsets passes it on) and OffsetFetch keeps answering the
   previous offset; with the followers back it is acknowledged;
4. a coordinator elected for a partition holding megabytes of commits loads
   it a share per event-loop turn and then answers every offset as committed;
5. one node: metadata changes while a group is active (topics created and
   deleted) leave the group alone (no rebalance, offsets kept).
"""
import threading
import time

import pytest

from cluster import (HAVE_ETCD, SamsaCluster, etcd_cluster, etcd_cluster_factory,  # noqa: F401 (fixtures)
                     samsa_cluster_factory)
from test_cluster import (W, confluent_produce, create_topic, find_coordinator, kafka_call, metadata, node_logs,
                          tool, wait_all_registered, wait_until)

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")

SESSION_S = int(SamsaCluster.DEFAULTS["broker.session.timeout.ms"]) / 1000.0
OVERRIDES = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.replication.factor": "3",
             "replica.lag.time.max.ms": "4000", "default.replication.factor": "3"}
NONE, REQUEST_TIMED_OUT, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR = 0, 7, 15, 16
TOPIC = "failover"
PARTITIONS = 3


class Member(threading.Thread):
    """One confluent-kafka consumer of the group: commits every record it
    reads (synchronously, explicit offsets), and every 0.2 s the positions
    again, so a working coordinator shows as a stream of acknowledged
    commits. Remembers the last acknowledged offset per partition and when."""

    def __init__(self, bootstrap, group, name):
        super().__init__(daemon=True)
        self.bootstrap, self.group, self.name = bootstrap, group, name
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.got = []            # (partition, offset, value)
        self.committed = {}      # partition -> last acknowledged committed offset
        self.commit_times = []   # wall clock of every acknowledged commit
        self.commit_errors = []
        self.assigned = []
        self.error = None

    def _commit(self, c, offsets):
        from confluent_kafka import KafkaException, TopicPartition
        if not offsets:
            return
        try:
            res = c.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in sorted(offsets.items())],
                           asynchronous=False)
        except KafkaException as e:  # retriable coordinator errors while it moves
            with self.lock:
                self.commit_errors.append((time.time(), str(e)))
            return
        with self.lock:
            for tp in res:
                if tp.error is None:
                    self.committed[tp.partition] = tp.offset
            self.commit_times.append(time.time())

    def run(self):
        from confluent_kafka import Consumer
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "client.id": self.name,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
                      "topic.metadata.refresh.interval.ms": 1000})

        def on_assign(_c, parts):
            self.assigned = sorted(p.partition for p in parts)

        def on_revoke(_c, parts):
            self.assigned = []
        try:
            c.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke)
            positions = {}
            last = 0.0
            while not self.stop.is_set():
                m = c.poll(0.1)
                if m is not None and not m.error():
                    with self.lock:
                        self.got.append((m.partition(), m.offset(), m.value()))
                    positions[m.partition()] = m.offset() + 1
                    self._commit(c, {m.partition(): m.offset() + 1})
                    last = time.time()
                elif time.time() - last > 0.2:
                    mine = {p: o for p, o in positions.items() if p in self.assigned}
                    self._commit(c, mine)
                    last = time.time()
        except Exception as e:  # reported by the test
            self.error = repr(e)
        finally:
            c.close()

    def snapshot(self):
        with self.lock:
            return list(self.got), dict(self.committed), list(self.commit_times)


def acknowledged(members):
    """The last acknowledged commit per partition over the members (a
    partition that moved between them: the higher one, the later owner's)."""
    out = {}
    for m in members:
        for p, o in m.snapshot()[1].items():
            out[p] = max(o, out.get(p, -1))
    return out


def committed_by_client(bootstrap, group, timeout=10):
    """The group's committed offsets as a new client reads them (OffsetFetch). A client that gets
    no answer within timeout raises AssertionError, which wait_until counts as a no: while a
    coordinator moves (its node killed, the session not yet expired) the client waits for it."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        try:
            res = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=timeout)
        except KafkaException as e:
            raise AssertionError(f"OffsetFetch of {group} through {bootstrap}: {e}") from e
        return {tp.partition: tp.offset for tp in res if tp.error is None and tp.offset >= 0}
    finally:
        c.close()


def describe_group(c, bootstrap, group):
    """kafka-consumer-groups.sh --describe: {partition: (current offset, log end offset)}."""
    r = tool(c, "kafka-consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group, ok=False)
    rows = {}
    for line in r.stdout.splitlines():
        x = line.split()
        if len(x) >= 6 and x[0] == group and x[1] == TOPIC and x[3].isdigit():
            rows[int(x[2])] = (int(x[3]), int(x[4]))
    return rows


def group_coordinated_by(c, node_id, avoid=()):
    """A group name whose coordinator (same answer from every node) is node_id."""
    for i in range(200):
        name = f"fo-{i}"
        answers = [find_coordinator(n.bootstrap, name) for n in c.live_nodes()]
        if all(a[0] == NONE for a in answers) and len({a[1] for a in answers}) == 1 and \
                answers[0][1] == node_id and name not in avoid:
            return name
    raise AssertionError(f"no group of 200 coordinated by node {node_id}")


def first_coordinator(c, name):
    return wait_until(lambda: (lambda a: a[1] if a[0] == NONE else None)(find_coordinator(c.node(1).bootstrap, name)),
                      30, f"a coordinator for {name}\n" + node_logs(c))


@pytest.mark.timeout(240)
def test_group_survives_kill9_of_its_coordinator(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    create_topic(c, 1, TOPIC, "--partitions", str(PARTITIONS), "--replication-factor", "3")
    # __consumer_offsets is made by the first FindCoordinator, with 3 replicas
    first_coordinator(c, "warm-up")
    out = tool(c, "kafka-topics", "--bootstrap-server", c.node(1).bootstrap, "--describe", "--topic",
               "__consumer_offsets").stdout
    assert "ReplicationFactor: 3" in out, out
    # the group lives on node 2: the consumers bootstrap from every node
    group = group_coordinated_by(c, 2)
    before = [(f"k{i}".encode(), f"before-{i}".encode()) for i in range(90)]
    confluent_produce(c.bootstrap, TOPIC, before)

    members = [Member(c.bootstrap, group, f"m{i}") for i in (1, 2)]
    for m in members:
        m.start()
    try:
        def all_before_committed():
            got = {v for m in members for _p, _o, v in m.snapshot()[0]}
            committed = acknowledged(members)
            return got >= {v for _k, v in before} and sum(committed.values()) == 90 and committed
        wait_until(all_before_committed, 60, lambda: "the group to read and commit 90 records\n" + node_logs(c))
        time.sleep(0.5)  # the positions' re-commits settle (same offsets)
        acked = acknowledged(members)
        assert sum(acked.values()) == 90, acked

        t_kill = time.time()
        c.kill9(2)
        survivors = c.bootstrap_of(1, 3)

        # a commit acknowledged by the new coordinator, within the session + a few seconds
        def resumed():
            return [t for m in members for t in m.snapshot()[2] if t > t_kill + 0.1]
        wait_until(resumed, SESSION_S + 8, lambda: "a commit acknowledged after the kill\n" + node_logs(c))
        took = min(resumed()) - t_kill
        assert took < SESSION_S + 5, f"the group resumed committing {took:.1f}s after the kill"
        new_coord = find_coordinator(c.node(1).bootstrap, group)
        assert new_coord[0] == NONE and new_coord[1] in (1, 3), new_coord

        # nothing acknowledged was lost: the new coordinator has every commit
        assert committed_by_client(survivors, group) == acked

        after = [(f"k{i}".encode(), f"after-{i}".encode()) for i in range(90)]
        confluent_produce(survivors, TOPIC, after)

        def all_after_committed():
            got = {v for m in members for _p, _o, v in m.snapshot()[0]}
            committed = acknowledged(members)
            return got >= {v for _k, v in before + after} and sum(committed.values()) == 180 and committed
        wait_until(all_after_committed, 60, lambda: "the group to read and commit the next 90\n" + node_logs(c))
    finally:
        for m in members:
            m.stop.set()
        for m in members:
            m.join(timeout=30)
    assert all(m.error is None for m in members), [m.error for m in members]
    final = acknowledged(members)
    assert committed_by_client(c.bootstrap_of(1, 3), group) == final
    rows = wait_until(lambda: (lambda r: r if len(r) == PARTITIONS else None)(
        describe_group(c, c.node(3).bootstrap, group)), 20, "kafka-consumer-groups --describe")
    assert {p: cur for p, (cur, _end) in rows.items()} == final
    assert all(cur == end for cur, end in rows.values()), rows

    # the node comes back: the group keeps its offsets wherever it is coordinated
    c.start_node(2)
    wait_all_registered(c, timeout=20)
    wait_until(lambda: committed_by_client(c.bootstrap, group) == final, 30,
               lambda: "offsets after node 2 is back\n" + node_logs(c))


@pytest.mark.timeout(120)
def test_find_coordinator_waits_for_enough_brokers(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=OVERRIDES, start=False)
    c.start_node(1)
    c.start_node(2)
    wait_until(lambda: all(set(metadata(c.node(i).bootstrap)["brokers"]) == {1, 2} for i in (1, 2)), 10,
               "nodes 1 and 2 registered")
    # Kafka: the controller refuses to place 3 replicas on 2 brokers; clients retry
    for _ in range(3):
        for i in (1, 2):
            assert find_coordinator(c.node(i).bootstrap, "early")[0] == COORDINATOR_NOT_AVAILABLE
        time.sleep(0.2)
    assert "__consumer_offsets" not in metadata(c.node(1).bootstrap)["topics"]
    c.start_node(3)
    wait_all_registered(c)
    coord = first_coordinator(c, "early")
    assert coord in (1, 2, 3)
    for n in c.nodes:
        assert wait_until(lambda: (lambda a: a if a[0] == NONE else None)(find_coordinator(n.bootstrap, "early")),
                          10, "every node names the coordinator")[1] == coord


def simple_commit(bootstrap, group, partition, offset, timeout=15, metadata=""):
    """OffsetCommit v2 of one offset outside group management (generation -1);
    returns (error, seconds the answer took)."""
    body = W().str16(group).i32(-1).str16("")
    body.b += (-1).to_bytes(8, "big", signed=True)  # retention_time_ms: the broker's
    body.i32(1).str16(TOPIC).i32(1).i32(partition)
    body.b += offset.to_bytes(8, "big", signed=True)
    body.str16(metadata)
    t0 = time.time()
    r = kafka_call(bootstrap, 8, 2, body.b, False, timeout=timeout)
    topics = r.array(lambda: (r.str16(), r.array(lambda: (r.i32(), r.i16()))))
    return topics[0][1][0][1], time.time() - t0


@pytest.mark.timeout(120)
def test_commit_acknowledged_only_once_replicated(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=dict(OVERRIDES, **{
        "offsets.commit.timeout.ms": "1000"})))
    create_topic(c, 1, TOPIC, "--partitions", str(PARTITIONS), "--replication-factor", "3")
    first_coordinator(c, "warm-up")
    group = group_coordinated_by(c, 1)
    coord = c.node(1).bootstrap
    # every replica of every __consumer_offsets partition in the ISR
    def full_isr():
        out = tool(c, "kafka-topics", "--bootstrap-server", coord, "--describe", "--topic",
                   "__consumer_offsets").stdout
        isrs = [line.rsplit("Isr: ", 1)[1].split()[0] for line in out.splitlines() if "Isr: " in line]
        return len(isrs) == 50 and all(sorted(x.split(",")) == ["1", "2", "3"] for x in isrs)
    wait_until(full_isr, 20, "a full ISR")
    err, took = simple_commit(coord, group, 0, 5)
    assert err == NONE, err
    assert committed_by_client(coord, group) == {0: 5}

    # the followers stop fetching: the write cannot reach the high watermark
    c.sigstop(2)
    c.sigstop(3)
    try:
        err, took = simple_commit(coord, group, 0, 9)
        assert err == REQUEST_TIMED_OUT and 0.9 < took < 3.0, (err, took)
        # not acknowledged, so not the group's committed offset
        assert committed_by_client(coord, group) == {0: 5}
    finally:
        c.sigcont(2)
        c.sigcont(3)
    # back (maybe fenced and registered again meanwhile): acknowledged again
    wait_until(lambda: simple_commit(coord, group, 0, 12)[0] == NONE, 30,
               lambda: "a commit acknowledged with the followers back\n" + node_logs(c))
    assert committed_by_client(coord, group) == {0: 12}
    wait_until(full_isr, 20, "a full ISR again")

    # a clean shutdown while a commit waits for the followers: answered (or the
    # connection closed), and the node exits cleanly
    answer = {}

    def commit_in_flight():
        try:
            answer["err"] = simple_commit(coord, group, 0, 20)[0]
        except (ConnectionError, OSError) as e:
            answer["err"] = repr(e)
    c.sigstop(2)
    c.sigstop(3)
    try:
        t = threading.Thread(target=commit_in_flight, daemon=True)
        t.start()
        time.sleep(0.3)
        assert "err" not in answer, answer
        assert c.stop_node(1) == 0
        t.join(timeout=10)
        assert answer.get("err") in (NOT_COORDINATOR, REQUEST_TIMED_OUT) or \
            str(answer.get("err")).startswith("ConnectionError"), answer
    finally:
        c.sigcont(2)
        c.sigcont(3)


@pytest.mark.timeout(180)
def test_new_coordinator_loads_a_big_partition(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    create_topic(c, 1, TOPIC, "--partitions", str(PARTITIONS), "--replication-factor", "3")
    first_coordinator(c, "warm-up")
    group = group_coordinated_by(c, 3)
    coord = c.node(3).bootstrap
    # ~6 MB of commits in the group's partition (offset metadata up to offset.metadata.max.bytes)
    pad = "m" * 4000
    for i in range(1500):
        err, _ = simple_commit(coord, group, i % PARTITIONS, i, metadata=pad)
        assert err == NONE, (i, err)
    want = {p: 1500 - PARTITIONS + p for p in range(PARTITIONS)}
    assert committed_by_client(coord, group) == want
    c.kill9(3)
    survivors = c.bootstrap_of(1, 2)
    got = wait_until(lambda: (lambda r: r if r == want else None)(committed_by_client(survivors, group, timeout=5)),
                     SESSION_S + 20, lambda: "the offsets from the new coordinator\n" + node_logs(c))
    assert got == want
    new = find_coordinator(c.node(1).bootstrap, group)[1]
    assert new in (1, 2)
    log = c.node(new).log_text()
    assert "Finished loading offsets and group metadata from __consumer_offsets-" in log, log[-3000:]


# ---------------------------------------------------------------- one node

@pytest.mark.timeout(120)
def test_single_node_metadata_changes_leave_groups_alone(broker_factory):
    """Topics created and deleted while a group is Stable: every change runs
    the coordinator's leadership check, which must not touch the group."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    b = broker_factory(group_initial_rebalance_delay_ms="0")
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
        f.result(timeout=20)
    confluent_produce(b.bootstrap, TOPIC, [(None, f"v{i}".encode()) for i in range(30)])
    revoked = []
    cons = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "steady", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 10000, "heartbeat.interval.ms": 300})
    try:
        cons.subscribe([TOPIC], on_revoke=lambda _c, p: revoked.append(p))
        got = 0
        deadline = time.time() + 30
        while got < 30 and time.time() < deadline:
            m = cons.poll(0.2)
            if m is not None and not m.error():
                got += 1
                cons.commit(message=m, asynchronous=False)
        assert got == 30
        for i in range(5):
            for f in admin.create_topics([NewTopic(f"churn-{i}", 2, 1)]).values():
                f.result(timeout=20)
            for f in admin.delete_topics([f"churn-{i}"]).values():
                f.result(timeout=20)
            assert cons.poll(0.3) is None
        # still the same member of the same generation: commits are accepted as they were
        cons.commit(offsets=[TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)], asynchronous=False)
        cons.commit(offsets=[TopicPartition(TOPIC, p, 10) for p in range(PARTITIONS)], asynchronous=False)
        assert not revoked, revoked
    finally:
        cons.close()
    r = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "steady"})
    try:
        res = r.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        r.close()
    assert {tp.partition: tp.offset for tp in res} == {p: 10 for p in range(PARTITIONS)}
