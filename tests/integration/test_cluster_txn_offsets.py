"""Transactional offsets across a group coordinator failover (3 etcd members,
3 Samsa nodes, __consumer_offsets with replication factor 3): offsets
committed by a COMMIT marker stay committed, offsets of a transaction still
open stay pending (UNSTABLE_OFFSET_COMMIT, invisible) on the node elected
after kill -9 of the coordinator, which loaded them from its replica, and
the marker the transaction coordinator then sends to the new leader
commits them."""
import time

import pytest

from cluster import HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from test_cluster import create_topic, find_coordinator, node_logs, wait_all_registered, wait_until
from test_cluster_group_failover import OVERRIDES, first_coordinator, group_coordinated_by
from test_txn_offsets import NONE, UNSTABLE_OFFSET_COMMIT, FlexClient, offsets_partition
from test_txn_partitions import Client

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")


def marker(node, pid, commit, group):
    part = offsets_partition(group)
    res = Client(node).markers([(pid, 0, commit, 0, {"__consumer_offsets": [part]})])
    return res[(pid, "__consumer_offsets", part)]


@pytest.mark.timeout(180)
def test_pending_txn_offsets_survive_coordinator_kill9(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))
    create_topic(c, 1, "src", "--partitions", "2", "--replication-factor", "3")
    first_coordinator(c, "warm-up")
    group = group_coordinated_by(c, 2)
    coord = c.node(2)
    f = FlexClient(coord)
    parts = [("src", 0), ("src", 1)]
    assert f.txn_commit(group, 8000, 0, {("src", 0): (11, "")}) == {("src", 0): NONE}
    assert marker(coord, 8000, True, group) == NONE
    assert f.txn_commit(group, 8001, 0, {("src", 1): (22, "")}) == {("src", 1): NONE}  # left open
    assert f.offset_fetch(group, parts, require_stable=True) == {("src", 0): (11, NONE),
                                                                 ("src", 1): (-1, UNSTABLE_OFFSET_COMMIT)}
    c.kill9(2)

    def new_coordinator():
        for n in c.live_nodes():
            err, node, _h, _p = find_coordinator(n.bootstrap, group)
            if err != NONE or node == 2:
                return None
        return node
    new = wait_until(new_coordinator, 30, lambda: "a new coordinator for the group\n" + node_logs(c))
    node = c.node(new)

    def fetched():
        try:
            return FlexClient(node).offset_fetch(group, parts, require_stable=True)
        except AssertionError:
            return None  # COORDINATOR_LOAD_IN_PROGRESS as a group error while it loads
    got = wait_until(lambda: (lambda r: r if r and r[("src", 0)][1] == NONE else None)(fetched()), 20,
                     lambda: "the new coordinator serving the group\n" + node_logs(c))
    assert got == {("src", 0): (11, NONE), ("src", 1): (-1, UNSTABLE_OFFSET_COMMIT)}
    assert FlexClient(node).offset_fetch(group, parts, require_stable=False) == {("src", 0): (11, NONE),
                                                                                 ("src", 1): (-1, NONE)}
    # the transaction coordinator's marker reaches the new leader
    assert wait_until(lambda: marker(node, 8001, True, group) == NONE or None, 20,
                      lambda: "the marker written on the new leader\n" + node_logs(c))
    deadline = time.time() + 10
    while time.time() < deadline:
        got = FlexClient(node).offset_fetch(group, parts, require_stable=True)
        if got[("src", 1)] == (22, NONE):
            break
        time.sleep(0.1)
    assert got == {("src", 0): (11, NONE), ("src", 1): (22, NONE)}


@pytest.mark.timeout(180)
def test_transactions_tool_on_a_cluster(samsa_cluster_factory):
    """kafka-transactions.sh asks every broker (list), the transaction's
    coordinator (describe) and the partition leader (describe-producers),
    whichever node it bootstraps from."""
    from test_cluster import tool
    from test_cluster_txn_coordinator import OVERRIDES as TXN_OVERRIDES
    from test_cluster_txn_coordinator import coordinator_of
    import confluent_kafka as ck
    c = wait_all_registered(samsa_cluster_factory(3, overrides=dict(OVERRIDES, **TXN_OVERRIDES)))
    create_topic(c, 1, "tt", "--partitions", "3", "--replication-factor", "3")
    p = ck.Producer({"bootstrap.servers": c.bootstrap, "transactional.id": "tool-cluster"})
    p.init_transactions(30)
    p.begin_transaction()
    for part in range(3):
        p.produce("tt", b"v", partition=part)
    p.flush(30)
    coord = coordinator_of(c, "tool-cluster")
    for n in c.nodes:
        rows = [ln.split("\t") for ln in tool(c, "kafka-transactions", "--bootstrap-server", n.bootstrap,
                                              "list").stdout.splitlines()]
        mine = [[x.strip() for x in r] for r in rows if r[0].strip() == "tool-cluster"]
        assert len(mine) == 1 and mine[0][1] == str(coord) and mine[0][3] == "Ongoing", rows
        out = tool(c, "kafka-transactions", "--bootstrap-server", n.bootstrap, "describe", "--transactional-id",
                   "tool-cluster").stdout.splitlines()[1].split("\t")
        assert out[0].strip() == str(coord) and out[4].strip() == "Ongoing", out
        assert sorted(out[8].strip().split(",")) == ["tt-0", "tt-1", "tt-2"], out
    for part in range(3):
        out = tool(c, "kafka-transactions", "--bootstrap-server", c.node(1).bootstrap, "describe-producers",
                   "--topic", "tt", "--partition", str(part)).stdout.splitlines()
        assert len(out) == 2 and out[1].split("\t")[5].strip() == "0", out
    p.commit_transaction(30)
