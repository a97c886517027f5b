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
   the old one.
"""
import time

import pytest

from cluster import HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from test_cluster import create_topic, node_logs, wait_all_registered, wait_until
from test_txn_coordinator import NONE, Raw, read_values, retry, txn_producer

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
