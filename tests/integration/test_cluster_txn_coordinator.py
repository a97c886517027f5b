"""The transaction coordinator on a 3-node cluster (3 etcd members, 3 Samsa
nodes on loopback, __transaction_state with replication factor 3):

1. FindCoordinator for a transactional id answers the leader of its
   __transaction_state partition on every node; a transaction's partitions
   are led by the two other nodes, so every marker goes over the network;
   a committed transaction's records are visible to read_committed
   consumers, an aborted one's are not;
2. kill -9 of the coordinator: another node is elected for the partition,
   loads it from its replica of __transaction_state and serves the same
   producer id with its epoch; a new producer with the transactional id fences
   the old one;
3. the first coordinator comes back and a preferred election gives it the
   partition again: the interim coordinator resigns (NOT_COORDINATOR), the
   state is loaded back, and the producer goes on committing.
"""
import struct
import time

import pytest

from cluster import HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from test_cluster import create_topic, node_logs, wait_all_registered, wait_until
from test_txn_coordinator import NONE, Raw, read_values, retry, txn_producer

NOT_COORDINATOR = 16


def java_partition(s, n):
    """Kafka's Utils.abs(String.hashCode) % n."""
    h = 0
    data = s.encode("utf-16-be")
    for unit in struct.unpack(f">{len(data) // 2}H", data):  # Java hashes UTF-16 code units
        h = (h * 31 + unit) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if h == -(1 << 31) else abs(h)) % n

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")

OVERRIDES = {"transaction.state.log.replication.factor": "3", "transaction.state.log.min.isr": "2",
             "transaction.state.log.num.partitions": "5", "replica.lag.time.max.ms": "4000",
             "group.initial.rebalance.delay.ms": "0"}
TID = "cluster-tx"


def coordinator_of(c, tid, exclude=()):
    """Every live node names the same coordinator for tid: its node id."""
    def ask():
        seen = set()
        for n in c.live_nodes():
            raw = Raw(n)
            try:
                err, node, _port = raw.find_coordinator(tid)
            finally:
                raw.close()
            if err != NONE or node in exclude:
                return None
            seen.add(node)
        return seen.pop() if len(seen) == 1 else None
    return wait_until(ask, 30, lambda: f"one coordinator for {tid}\n" + node_logs(c))


def describe_on(node, tid):
    raw = Raw(node)
    try:
        return raw.describe([tid])[tid]
    finally:
        raw.close()


def test_coordinator_on_another_node_and_its_failover(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    coord = coordinator_of(c, TID)
    # the other nodes are not its coordinator
    for n in c.nodes:
        if n.node_id != coord:
            raw = Raw(n)
            assert raw.init_pid(TID)[0] == NOT_COORDINATOR
            assert raw.describe([TID])[TID]["error"] == NOT_COORDINATOR
            raw.close()
    others = [n.node_id for n in c.nodes if n.node_id != coord]
    a, b = others
    # the transaction's partitions are led by the two other nodes
    create_topic(c, a, "ctx", "--replica-assignment", f"{a}:{b},{b}:{a}")
    p = txn_producer(c.bootstrap, TID, **{"transaction.timeout.ms": 60000})
    p.init_transactions(30)
    d = describe_on(c.node(coord), TID)
    assert d["error"] == NONE and d["state"] == "Empty", d
    pid, epoch = d["pid"], d["epoch"]
    p.begin_transaction()
    for i in range(6):
        p.produce("ctx", value=b"c-%d" % i, partition=i % 2)
    p.flush(30)
    d = describe_on(c.node(coord), TID)
    assert d["state"] == "Ongoing" and d["topics"] == {"ctx": [0, 1]}, d
    p.commit_transaction(30)
    # answered once PrepareCommit is replicated; complete once both leaders wrote their markers
    d = retry(lambda: describe_on(c.node(coord), TID), lambda v: v["state"] == "CompleteCommit", timeout=15)
    assert d["state"] == "CompleteCommit" and d["topics"] == {}, d
    assert sorted(read_values(c.bootstrap, "ctx", "read_committed", 6)) == sorted(b"c-%d" % i for i in range(6))
    p.begin_transaction()
    p.produce("ctx", value=b"aborted", partition=0)
    p.flush(30)
    p.abort_transaction(30)
    assert b"aborted" not in read_values(c.bootstrap, "ctx", "read_committed", 6)
    assert b"aborted" in read_values(c.bootstrap, "ctx", "read_uncommitted", 7)

    # kill -9 of the coordinator: another node takes its __transaction_state partition over
    c.kill9(coord)
    new = coordinator_of(c, TID, exclude=(coord,))
    assert new != coord
    d = retry(lambda: describe_on(c.node(new), TID), lambda v: v["error"] == NONE, timeout=30)
    assert d["error"] == NONE and d["pid"] == pid and d["epoch"] == epoch, d
    d = retry(lambda: describe_on(c.node(new), TID), lambda v: v["state"] == "CompleteAbort", timeout=15)
    assert d["state"] == "CompleteAbort", d
    # a new producer with the same transactional id: same producer id, next epoch
    q = txn_producer(c.bootstrap_of(*others), TID)
    deadline = time.time() + 30
    while True:
        try:
            q.init_transactions(30)
            break
        except Exception:  # CONCURRENT_TRANSACTIONS while the old transaction's markers are owed
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    d = describe_on(c.node(new), TID)
    assert d["pid"] == pid and d["epoch"] > epoch, d
    # the old producer is fenced
    with pytest.raises(Exception):
        p.begin_transaction()
        p.produce("ctx", value=b"zombie", partition=0)
        p.flush(10)
        p.commit_transaction(10)

    # the first coordinator comes back; once in sync, a preferred election hands it the partition again
    c.start_node(coord)
    part = java_partition(TID, int(OVERRIDES["transaction.state.log.num.partitions"]))

    def elect():
        r = c.run_tool("kafka-leader-election", "--bootstrap-server", c.node(new).bootstrap, "--election-type",
                       "preferred", "--topic", "__transaction_state", "--partition", str(part))
        return r.returncode == 0 and coordinator_of(c, TID) == coord
    wait_until(elect, 40, lambda: "preferred election back to the first coordinator\n" + node_logs(c))
    d = retry(lambda: describe_on(c.node(coord), TID), lambda v: v["error"] == NONE, timeout=20)
    assert d["error"] == NONE and d["pid"] == pid and d["epoch"] > epoch and d["state"] == "Empty", d
    assert describe_on(c.node(new), TID)["error"] == NOT_COORDINATOR
    q.begin_transaction()
    q.produce("ctx", value=b"after-election", partition=1)
    q.flush(30)
    q.commit_transaction(30)
    assert b"after-election" in read_values(c.bootstrap, "ctx", "read_committed", 7)
    d = retry(lambda: describe_on(c.node(coord), TID), lambda v: v["state"] == "CompleteCommit", timeout=15)
    assert d["state"] == "CompleteCommit", d


def test_partition_leader_killed_while_markers_are_owed(samsa_cluster_factory):
    """kill -9 of the leader of a transaction's partition right before the
    commit: the coordinator answers the commit once PrepareCommit is
    replicated, retries the marker until the controller elects another
    leader, then completes; read_committed sees the transaction."""
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    tid = "cluster-tx-leader"
    coord = coordinator_of(c, tid)
    a, b = [n.node_id for n in c.nodes if n.node_id != coord]
    create_topic(c, a, "lead", "--replica-assignment", f"{a}:{b}:{coord}")
    p = txn_producer(c.bootstrap, tid, **{"acks": "all"})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(5):
        p.produce("lead", value=b"l-%d" % i, partition=0)
    assert p.flush(30) == 0
    c.kill9(a)
    p.commit_transaction(60)
    d = retry(lambda: describe_on(c.node(coord), tid), lambda v: v["state"] == "CompleteCommit", timeout=30)
    assert d["state"] == "CompleteCommit" and d["topics"] == {}, d
    got = read_values(c.bootstrap_of(b, coord), "lead", "read_committed", 5)
    assert sorted(got) == [b"l-%d" % i for i in range(5)]
