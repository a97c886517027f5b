"""Leader elections in a cluster, black box (3 etcd members, Samsa nodes on
loopback), checked as a user checks them:

1. kafka-leader-election.sh prints Kafka 3.6.1's lines (LeaderElectionCommand):
   valid replica already elected, unknown topics and partitions, a dead
   preferred replica (PreferredLeaderNotAvailableException), unclean with
   nobody alive, option and JSON file errors; on a single node too;
2. SIGTERM (kafka-server-stop.sh): a controlled shutdown, then the node
   deregisters at once (its partitions are leaderless right away, not after
   the session timeout); controlled.shutdown.enable=false skips the first;
3. replication factor 3 (run once replication has landed; skipped while
   CreateTopics refuses it): a preferred election by the tool after a node
   came back, auto.leader.rebalance.enable bringing leadership back to
   preferred replicas, and a SIGTERM moving the node's leaderships away
   before it exits while a producer keeps going with no error.
"""
import json
import os
import re
import threading
import time

import pytest

from cluster import (HAVE_ETCD, SamsaCluster, etcd_cluster, etcd_cluster_factory,  # noqa: F401 (fixtures)
                     samsa_cluster_factory)
from test_cluster import create_topic, metadata, node_logs, tool, wait_all_registered, wait_until

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")

SESSION_S = int(SamsaCluster.DEFAULTS["broker.session.timeout.ms"]) / 1000.0
EXC = 'Exception in thread "main" '
FAILED = "org.apache.kafka.server.common.AdminCommandFailedException: "


def elect(c, node_id, *args, ok=None):
    r = c.run_tool("kafka-leader-election", "--bootstrap-server", c.node(node_id).bootstrap, *args)
    if ok is not None:
        assert (r.returncode == 0) == ok, f"rc {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def partition_state(c, node_id, topic, p):
    """(leader, replicas, isr) of topic-p as node_id's Metadata has it."""
    _, leader, _, replicas, isr = metadata(c.node(node_id).bootstrap, [topic])["topics"][topic]["partitions"][p]
    return leader, replicas, isr


def create_rf3(c, topic, assignment):
    """Creates topic with a manual RF 3 assignment, or skips the test while
    replication has not landed (CreateTopics refuses RF > 1)."""
    r = tool(c, "kafka-topics", "--bootstrap-server", c.node(1).bootstrap, "--create", "--topic", topic,
             "--replica-assignment", assignment, ok=False)
    if "is not supported yet" in r.stdout + r.stderr:
        pytest.skip("replication factor 3 is not supported yet (waiting for replication)")
    assert r.returncode == 0 and r.stdout == f"Created topic {topic}.\n", r.stdout + r.stderr
    wait_until(lambda: all(topic in metadata(n.bootstrap, [topic])["topics"] for n in c.live_nodes()), 5,
               f"{topic} everywhere")


def wait_in_sync(c, topic, p, node_id, timeout=30):
    wait_until(lambda: node_id in partition_state(c, 2 if node_id != 2 else 3, topic, p)[2], timeout,
               lambda: f"node {node_id} back in the ISR of {topic}-{p}\n" + node_logs(c), interval=0.2)


# ---------------------------------------------------------------- 1. the tool's output

@pytest.fixture(scope="module")
def c3(request):
    """Three nodes on three etcd members, RF 1 topics (module scope)."""
    import shutil
    import tempfile
    from cluster import EtcdCluster
    from conftest import BROKER_BIN
    if not os.access(BROKER_BIN, os.X_OK):
        pytest.skip(f"{BROKER_BIN} not built")
    d = tempfile.mkdtemp(prefix="samsa-test-elections-")
    etcd = EtcdCluster(os.path.join(d, "etcd"))
    c = None
    try:
        c = SamsaCluster(os.path.join(d, "samsa"), etcd, nodes=3)
        wait_all_registered(c)
        yield c
        c.stop(check=True)
    finally:
        if c is not None:
            c.stop(check=False)
        etcd.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(90)
def test_tool_outputs(c3, tmp_path):
    c = c3
    create_topic(c, 1, "el", "--partitions", "3")
    r = elect(c, 2, "--election-type", "preferred", "--topic", "el", "--partition", "0", ok=True)
    assert r.stdout == "Valid replica already elected for partitions el-0\n", r.stdout + r.stderr
    r = elect(c, 3, "--election-type", "UNCLEAN", "--topic", "el", "--partition", "1", ok=True)
    assert r.stdout == "Valid replica already elected for partitions el-1\n", r.stdout + r.stderr
    # Every partition: those needing no election are left out of the answer.
    r = elect(c, 1, "--election-type", "PREFERRED", "--all-topic-partitions", ok=True)
    assert r.stdout == "" and r.stderr == "", r.stdout + r.stderr
    r = elect(c, 1, "--election-type", "preferred", "--topic", "nope", "--partition", "0", ok=False)
    assert r.stdout == ("Error completing leader election (PREFERRED) for partition: nope-0: "
                        "org.apache.kafka.common.errors.UnknownTopicOrPartitionException: No such topic as nope\n")
    assert r.stderr.startswith(EXC + FAILED + "1 replica(s) could not be elected"), r.stderr
    # A JSON file: known, already led partitions and an unknown one.
    f = tmp_path / "election.json"
    f.write_text(json.dumps({"partitions": [{"topic": "el", "partition": 2}, {"topic": "el", "partition": 9}]}))
    r = elect(c, 2, "--election-type", "preferred", "--path-to-json-file", str(f), ok=False)
    assert r.stdout == ("Valid replica already elected for partitions el-2\n"
                        "Error completing leader election (PREFERRED) for partition: el-9: "
                        "org.apache.kafka.common.errors.UnknownTopicOrPartitionException: No such partition as "
                        "el-9\n"), r.stdout


@pytest.mark.timeout(60)
def test_tool_refusals(c3, tmp_path):
    c = c3
    r = elect(c, 1, "--topic", "el", "--partition", "0", ok=False)
    assert r.stderr == EXC + FAILED + "Missing required option(s): election-type\n", r.stderr
    r = elect(c, 1, "--election-type", "preferred", ok=False)
    assert r.stderr == (EXC + FAILED + "One and only one of the following options is required: topic, "
                        "all-topic-partitions, path-to-json-file\n"), r.stderr
    r = elect(c, 1, "--election-type", "preferred", "--topic", "el", "--all-topic-partitions", ok=False)
    assert "One and only one of the following options is required" in r.stderr
    r = elect(c, 1, "--election-type", "preferred", "--topic", "el", ok=False)
    assert r.stderr == EXC + FAILED + "Missing required option(s): partition\n", r.stderr
    r = elect(c, 1, "--election-type", "preferred", "--all-topic-partitions", "--partition", "1", ok=False)
    assert r.stderr == EXC + FAILED + "Option partition is only allowed if topic is used\n", r.stderr
    r = elect(c, 1, "--election-type", "sideways", "--all-topic-partitions", ok=False)
    assert "Cannot parse argument 'sideways' of option election-type" in r.stderr, r.stderr
    f = tmp_path / "dups.json"
    f.write_text('{"partitions": [{"topic": "el", "partition": 1}, {"topic": "el", "partition": 1}]}')
    r = elect(c, 1, "--election-type", "preferred", "--path-to-json-file", str(f), ok=False)
    assert r.stderr == (EXC + "org.apache.kafka.server.common.AdminOperationException: Replica election data "
                        "contains duplicate partitions: el-1\n"), r.stderr
    f.write_text('{"topics": []}')
    r = elect(c, 1, "--election-type", "preferred", "--path-to-json-file", str(f), ok=False)
    assert r.stderr == (EXC + "org.apache.kafka.server.common.AdminOperationException: Replica election data "
                        "is missing \"partitions\" field\n"), r.stderr


@pytest.mark.timeout(60)
def test_tool_single_node(broker):
    r = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", "one",
                        "--partitions", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    r = broker.run_tool("kafka-leader-election", "--bootstrap-server", broker.bootstrap, "--election-type",
                        "preferred", "--topic", "one", "--partition", "1")
    assert (r.returncode, r.stdout) == (0, "Valid replica already elected for partitions one-1\n"), r.stderr
    r = broker.run_tool("kafka-leader-election", "--bootstrap-server", broker.bootstrap, "--election-type",
                        "preferred", "--all-topic-partitions")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


@pytest.mark.timeout(120)
def test_dead_preferred_replica(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3))
    create_topic(c, 1, "solo", "--replica-assignment", "3")
    c.kill9(3)
    wait_until(lambda: partition_state(c, 1, "solo", 0)[0] == -1, SESSION_S + 5,
               lambda: "solo-0 leaderless after kill -9\n" + node_logs(c))
    r = elect(c, 1, "--election-type", "preferred", "--topic", "solo", "--partition", "0", ok=False)
    assert r.stdout == ("Error completing leader election (PREFERRED) for partition: solo-0: "
                        "org.apache.kafka.common.errors.PreferredLeaderNotAvailableException: The preferred "
                        "leader was not available.\n"), r.stdout + r.stderr
    r = elect(c, 2, "--election-type", "unclean", "--topic", "solo", "--partition", "0", ok=False)
    assert r.stdout == ("Error completing leader election (UNCLEAN) for partition: solo-0: "
                        "org.apache.kafka.common.errors.EligibleLeadersNotAvailableException: Eligible topic "
                        "partition leaders are not available.\n"), r.stdout + r.stderr
    # Listed under --all-topic-partitions too: it needs an election.
    r = elect(c, 2, "--election-type", "preferred", "--all-topic-partitions", ok=False)
    assert "for partition: solo-0: org.apache.kafka.common.errors.PreferredLeaderNotAvailableException" in r.stdout
    c.start_node(3)
    wait_until(lambda: partition_state(c, 1, "solo", 0)[0] == 3, 15, "node 3 leads again")
    r = elect(c, 1, "--election-type", "preferred", "--topic", "solo", "--partition", "0", ok=True)
    assert r.stdout == "Valid replica already elected for partitions solo-0\n"


# ---------------------------------------------------------------- 2. SIGTERM

@pytest.mark.timeout(120)
def test_sigterm_controlled_shutdown_then_deregisters(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, node_overrides={2: {"controlled.shutdown.enable": "false"}}))
    create_topic(c, 1, "st", "--replica-assignment", "3,2")
    t0 = time.time()
    assert c.stop_node(3) == 0
    # Gone at once: its partition is leaderless well within the session timeout.
    wait_until(lambda: partition_state(c, 1, "st", 0)[0] == -1, SESSION_S / 2,
               lambda: "st-0 leaderless right after the SIGTERM\n" + node_logs(c))
    assert 3 not in metadata(c.node(1).bootstrap)["brokers"]
    assert time.time() - t0 < SESSION_S + 5
    log3 = c.node(3).log_text()
    # One replica: nothing could move; the node still went through the steps in order.
    assert "Beginning controlled shutdown." in log3, log3[-3000:]
    assert "Could not mark the registration" not in log3, log3[-3000:]
    steps = [log3.index("Beginning controlled shutdown."), log3.index("Controlled shutdown completed (0 partition"),
             log3.index("Deregistered from the cluster")]
    assert steps == sorted(steps), log3[-3000:]
    assert c.stop_node(2) == 0
    log2 = c.node(2).log_text()
    assert "Beginning controlled shutdown" not in log2 and "Deregistered from the cluster" in log2, log2[-3000:]


# ---------------------------------------------------------------- 3. replication factor 3

@pytest.mark.timeout(180)
def test_rf3_preferred_election_by_the_tool(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides={"auto.leader.rebalance.enable": "false"}))
    create_rf3(c, "pe", "1:2:3,2:3:1,3:1:2")
    c.kill9(1)
    wait_until(lambda: partition_state(c, 2, "pe", 0)[0] == 2, SESSION_S + 5,
               lambda: "pe-0 moved to node 2\n" + node_logs(c))
    c.start_node(1)
    wait_in_sync(c, "pe", 0, 1)
    assert partition_state(c, 2, "pe", 0)[0] == 2  # no auto rebalance here
    r = elect(c, 3, "--election-type", "preferred", "--topic", "pe", "--partition", "0", ok=True)
    assert r.stdout == "Successfully completed leader election (PREFERRED) for partitions pe-0\n", r.stdout
    # Applied on the answering node; the others follow from their watch.
    assert partition_state(c, 3, "pe", 0)[0] == 1
    wait_until(lambda: all(partition_state(c, n, "pe", 0)[0] == 1 for n in (1, 2)), 5, "node 1 leads pe-0 everywhere")
    r = elect(c, 3, "--election-type", "preferred", "--topic", "pe", "--partition", "0", ok=True)
    assert r.stdout == "Valid replica already elected for partitions pe-0\n"
    r = elect(c, 2, "--election-type", "preferred", "--all-topic-partitions", ok=True)
    assert r.stdout == ""


@pytest.mark.timeout(180)
def test_rf3_auto_rebalance_returns_leadership(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides={"leader.imbalance.check.interval.seconds": "1"}))
    create_rf3(c, "ar", "1:2:3,2:3:1,3:1:2,1:3:2")
    c.kill9(1)
    wait_until(lambda: all(partition_state(c, 2, "ar", p)[0] != 1 for p in (0, 3)), SESSION_S + 5,
               lambda: "node 1's leaderships moved\n" + node_logs(c))
    c.start_node(1)
    # Back in the ISRs, then the controller's balancing makes it leader again.
    wait_until(lambda: all(partition_state(c, 3, "ar", p)[0] == 1 for p in (0, 3)), 40,
               lambda: "leadership back on the preferred replica\n" + node_logs(c), interval=0.25)
    leaders = {p: partition_state(c, 2, "ar", p)[0] for p in range(4)}
    assert leaders == {0: 1, 1: 2, 2: 3, 3: 1}, leaders


@pytest.mark.timeout(180)
def test_rf3_sigterm_moves_leadership_under_a_producer(samsa_cluster_factory):
    from confluent_kafka import Producer
    c = wait_all_registered(samsa_cluster_factory(3, overrides={"auto.leader.rebalance.enable": "false"}))
    create_rf3(c, "cs", "1:2:3,1:3:2,2:3:1")
    p = Producer({"bootstrap.servers": c.bootstrap_of(2, 3), "acks": "all", "retries": 1000000,
                  "enable.idempotence": True, "message.timeout.ms": 60000, "linger.ms": 5})
    acked, errors = [], []
    stop = threading.Event()

    def cb(err, msg):
        if err:
            errors.append(str(err))
        else:
            acked.append((msg.partition(), msg.offset()))

    def load():
        i = 0
        while not stop.is_set():
            p.produce("cs", value=f"v{i}".encode(), partition=i % 3, on_delivery=cb)
            i += 1
            p.poll(0.005)
        p.flush(60)
    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        wait_until(lambda: len(acked) > 100, 20, "the producer under way")
        assert c.stop_node(1) == 0
        # Moved before it left: leaders are 2 and 3, node 1 is in no ISR.
        for part in (0, 1):
            leader, _, isr = partition_state(c, 2, "cs", part)
            assert leader in (2, 3) and 1 not in isr, (part, leader, isr)
        log1 = c.node(1).log_text()
        m = re.search(r"Controlled shutdown completed \((\d+) partition change", log1)
        assert m and int(m.group(1)) >= 3, log1[-3000:]
        assert log1.index("Controlled shutdown completed") < log1.index("Deregistered from the cluster")
        n0 = len(acked)
        wait_until(lambda: len(acked) > n0 + 200, 20, "acks after node 1 left")
    finally:
        stop.set()
        t.join(timeout=70)
    assert not errors, errors[:5]
    c.start_node(1)
