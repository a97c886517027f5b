"""Replication, black box: 3 etcd members and 3 Samsa nodes on loopback, topics
with replication factor 3, driven by real clients and Kafka's tools.

1. an RF 3 topic is described with three replicas, all in the ISR, from every node;
2. acks=all records are on every replica, byte for byte, once replicated;
3. kill -9 of a partition's leader under an idempotent acks=all producer: a
   new leader from the ISR within broker.session.timeout.ms + 1 s, nothing
   acknowledged lost or duplicated, the dead node leaves the ISR;
4. min.insync.replicas above the live replicas: NOT_ENOUGH_REPLICAS, as Kafka;
5. a node restarted with an empty data dir copies everything back from the
   leaders and rejoins the ISR; its logs end identical to the leader's;
6. a consumer never sees a record before the high watermark passes it.
"""
import glob
import os
import re
import time

import pytest

from cluster import (HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory)  # noqa: F401 (fixtures)
from test_cluster import describe, leaders, metadata, tool, wait_until
from test_cluster_faults import AckedProducer, read_back_exactly_once

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")

OVERRIDES = {"group.initial.rebalance.delay.ms": "0", "replica.lag.time.max.ms": "4000",
             "default.replication.factor": "3", "min.insync.replicas": "2"}
SESSION_S = 3.0


def create(c, topic, partitions=3, rf=3, *extra):
    # a node that has just started may not have applied the others' registrations yet
    wait_until(lambda: len(metadata(c.node(1).bootstrap)["brokers"]) == 3, 10, "node 1 sees 3 brokers")
    r = tool(c, "kafka-topics", "--bootstrap-server", c.node(1).bootstrap, "--create", "--topic", topic,
             "--partitions", str(partitions), "--replication-factor", str(rf), *extra)
    assert r.stdout == f"Created topic {topic}.\n", r.stdout + r.stderr


def partition_lines(c, node_id, topic):
    out = describe(c, node_id, topic)
    rows = {}
    for m in re.finditer(r"\tTopic: \S+\tPartition: (\d+)\tLeader: (\S+)\tReplicas: (\S+)\tIsr: (\S*)", out):
        rows[int(m.group(1))] = (m.group(2), m.group(3).split(","), m.group(4).split(",") if m.group(4) else [])
    return rows


def isr_full(c, topic, nodes=(1, 2, 3), on=1):
    rows = partition_lines(c, on, topic)
    return rows and all(sorted(isr) == sorted(str(n) for n in nodes) for _l, _r, isr in rows.values())


def log_bytes(c, node_id, topic, partition):
    d = os.path.join(c.node(node_id).log_dir, f"{topic}-{partition}")
    data = b""
    for f in sorted(glob.glob(os.path.join(d, "*.log"))):
        with open(f, "rb") as fh:
            data += fh.read()
    return data


def replicas_identical(c, topic, partitions, nodes=(1, 2, 3)):
    for p in range(partitions):
        blobs = {n: log_bytes(c, n, topic, p) for n in nodes}
        if len(set(blobs.values())) != 1:
            return False
    return True


def test_rf3_topic_replicates_acks_all(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    create(c, "r3", 3, 3)
    for n in (1, 2, 3):
        rows = wait_until(lambda: partition_lines(c, n, "r3"), 10, f"r3 described on node {n}")
        assert len(rows) == 3
        for leader, replicas, isr in rows.values():
            assert sorted(replicas) == ["1", "2", "3"] and sorted(isr) == ["1", "2", "3"], rows
            assert leader == replicas[0]
    assert "ReplicationFactor: 3\t" in describe(c, 2, "r3")

    prod = AckedProducer(c.bootstrap, "r3", 3)
    time.sleep(2)
    prod.stop()
    assert not prod.errors, prod.errors
    assert len(prod.acked) > 50
    read_back_exactly_once(c, c.bootstrap, "r3", 3, prod.acked)
    # every replica holds the same bytes once the followers caught up
    wait_until(lambda: replicas_identical(c, "r3", 3), 15, "identical replicas")
    assert all(log_bytes(c, n, "r3", p) for n in (1, 2, 3) for p in range(3)), "a replica holds nothing"


def test_leader_kill9_loses_nothing(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    create(c, "fo", 4, 3)
    prod = AckedProducer(c.bootstrap, "fo", 4)
    time.sleep(1.5)
    md = metadata(c.node(1).bootstrap, ["fo"])
    victim = leaders(md, "fo")[0]
    killed_at = time.time()
    c.kill9(victim)
    survivors = [n for n in (1, 2, 3) if n != victim]

    def moved():
        ls = leaders(metadata(c.node(survivors[0]).bootstrap, ["fo"]), "fo")
        return all(l in survivors for l in ls.values())
    wait_until(moved, SESSION_S + 5, "leadership moved off the dead node")
    moved_after = time.time() - killed_at
    # acknowledged records keep coming after the failover
    n_before = len(prod.acked)
    wait_until(lambda: len(prod.acked) > n_before + 20, 20, "acks after the failover")
    prod.stop()
    print(f"leadership moved {moved_after:.2f}s after the kill")
    assert moved_after <= SESSION_S + 1, f"failover took {moved_after:.1f}s"
    rows = partition_lines(c, survivors[0], "fo")
    for leader, replicas, isr in rows.values():
        assert str(victim) not in isr, rows
    read_back_exactly_once(c, c.node(survivors[0]).bootstrap, "fo", 4, prod.acked)

    # the node comes back, catches up, rejoins the ISR
    c.start_node(victim)
    wait_until(lambda: isr_full(c, "fo", on=survivors[0]), 30, "ISR full again")
    wait_until(lambda: replicas_identical(c, "fo", 4), 20, "identical replicas after the return")


def test_not_enough_replicas(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    create(c, "mi", 1, 3, "--config", "min.insync.replicas=3")
    md = metadata(c.node(1).bootstrap, ["mi"])
    leader = leaders(md, "mi")[0]
    follower = [n for n in (1, 2, 3) if n != leader][0]
    c.kill9(follower)
    wait_until(lambda: str(follower) not in partition_lines(c, leader, "mi")[0][2], SESSION_S + 5,
               "the dead follower left the ISR")
    from confluent_kafka import Producer, KafkaError
    errs = []
    p = Producer({"bootstrap.servers": c.node(leader).bootstrap, "acks": "all", "retries": 0,
                  "message.timeout.ms": 5000})
    p.produce("mi", b"x", partition=0, on_delivery=lambda e, m: errs.append(e))
    p.flush(10)
    assert len(errs) == 1 and errs[0] is not None and errs[0].code() == KafkaError.NOT_ENOUGH_REPLICAS, errs
    assert "The size of the current ISR Set(" in c.node(leader).log_text()
    # acks=1 still works
    ok = []
    p1 = Producer({"bootstrap.servers": c.node(leader).bootstrap, "acks": "1", "retries": 0})
    p1.produce("mi", b"y", partition=0, on_delivery=lambda e, m: ok.append(e))
    p1.flush(10)
    assert ok == [None], ok


def test_wiped_node_rereplicates(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    create(c, "wp", 2, 3)
    prod = AckedProducer(c.bootstrap, "wp", 2)
    time.sleep(1.5)
    c.node(3).kill9()
    c.node(3).wipe()
    c.start_node(3)
    time.sleep(1)
    prod.stop()
    assert not prod.errors, prod.errors
    wait_until(lambda: isr_full(c, "wp"), 30, "ISR full after the wiped node returned")
    wait_until(lambda: replicas_identical(c, "wp", 2), 20, "the wiped node holds the same bytes")
    assert log_bytes(c, 3, "wp", 0) or log_bytes(c, 3, "wp", 1)
    read_back_exactly_once(c, c.bootstrap, "wp", 2, prod.acked)


def latest_offset(bootstrap, topic, partition):
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw-probe", "enable.auto.commit": False})
    try:
        _lo, hi = cons.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return hi
    finally:
        cons.close()


def test_consumers_read_up_to_the_high_watermark(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    create(c, "hw", 1, 3)
    leader = leaders(metadata(c.node(1).bootstrap, ["hw"]), "hw")[0]
    followers = [n for n in (1, 2, 3) if n != leader]
    from confluent_kafka import Producer
    acked = []
    p = Producer({"bootstrap.servers": c.node(leader).bootstrap, "acks": "1"})
    p.produce("hw", b"first", partition=0, on_delivery=lambda e, m: acked.append(e))
    p.flush(10)
    assert acked == [None]
    wait_until(lambda: latest_offset(c.node(leader).bootstrap, "hw", 0) == 1, 10, "HW 1")
    # One follower paused (still in the ISR for replica.lag.time.max.ms): an
    # acks=1 record is in the leader's log but not committed, so not visible.
    c.sigstop(followers[0])
    try:
        p.produce("hw", b"second", partition=0, on_delivery=lambda e, m: acked.append(e))
        p.flush(10)
        assert acked == [None, None]
        time.sleep(1)
        assert latest_offset(c.node(leader).bootstrap, "hw", 0) == 1, "the HW passed a record one ISR member lacks"
    finally:
        c.sigcont(followers[0])
    wait_until(lambda: latest_offset(c.node(leader).bootstrap, "hw", 0) == 2, 10, "HW 2 once the follower is back")


def test_paused_leader_cannot_acknowledge(samsa_cluster_factory):
    """SIGSTOP of a leader for longer than the session: a new leader is
    elected; when the old one resumes (a zombie) nothing it acknowledges is
    missing from the new leader's log, and acks=all records are all kept."""
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    create(c, "zb", 2, 3)
    prod = AckedProducer(c.bootstrap, "zb", 2)
    time.sleep(1.5)
    victim = leaders(metadata(c.node(1).bootstrap, ["zb"]), "zb")[0]
    others = [n for n in (1, 2, 3) if n != victim]
    c.sigstop(victim)
    try:
        wait_until(lambda: all(l in others for l in leaders(metadata(c.node(others[0]).bootstrap, ["zb"]),
                                                             "zb").values()),
                   SESSION_S + 6, "new leaders while the old one is paused")
        time.sleep(1)
    finally:
        c.sigcont(victim)
    time.sleep(2)
    prod.stop()
    assert not [e for e in prod.errors if "undelivered" in e], prod.errors
    wait_until(lambda: isr_full(c, "zb", on=others[0]), 30, "ISR full after the zombie returned")
    read_back_exactly_once(c, c.node(others[0]).bootstrap, "zb", 2, prod.acked)
    wait_until(lambda: replicas_identical(c, "zb", 2), 20, "identical replicas")


def test_follower_throttle_slows_catch_up(samsa_cluster_factory):
    """follower.replication.throttled.rate on a node, with the topic's
    follower.replication.throttled.replicas naming it: a replica out of the
    ISR catches up at about that rate (the bytes cannot come faster)."""
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    wait_until(lambda: len(metadata(c.node(1).bootstrap)["brokers"]) == 3, 10, "node 1 sees 3 brokers")
    r = tool(c, "kafka-topics", "--bootstrap-server", c.node(1).bootstrap, "--create", "--topic", "th",
             "--replica-assignment", "1:2:3")
    assert r.stdout == "Created topic th.\n", r.stdout + r.stderr
    c.kill9(3)
    wait_until(lambda: "3" not in partition_lines(c, 1, "th")[0][2], SESSION_S + 5, "node 3 out of the ISR")
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": c.node(1).bootstrap, "acks": "all", "linger.ms": 20})
    for i in range(3000):
        p.produce("th", b"x" * 1000, partition=0)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    rate = 1_000_000
    # node 3 is down: the cluster-wide default (a per-broker change goes to that broker)
    r = tool(c, "kafka-configs", "--bootstrap-server", c.node(1).bootstrap, "--entity-type", "brokers",
             "--entity-default", "--alter", "--add-config", f"follower.replication.throttled.rate={rate}")
    assert r.stdout == "Completed updating default config for brokers in the cluster.\n", r.stdout + r.stderr
    r = tool(c, "kafka-configs", "--bootstrap-server", c.node(1).bootstrap, "--entity-type", "topics",
             "--entity-name", "th", "--alter", "--add-config", "follower.replication.throttled.replicas=[0:3]")
    assert r.stdout == "Completed updating config for topic th.\n", r.stdout + r.stderr
    started = time.time()
    c.start_node(3)
    wait_until(lambda: isr_full(c, "th"), 60, "node 3 back in the ISR")
    took = time.time() - started
    size = len(log_bytes(c, 1, "th", 0))
    print(f"{size} bytes caught up in {took:.2f}s at a {rate} B/s throttle")
    # about 3 MB at 1 MB/s: at least 1.5 s; unthrottled it takes a fraction of a second
    assert took >= 0.5 * size / rate, f"{size} bytes caught up in {took:.2f}s despite a {rate} B/s throttle"
    wait_until(lambda: replicas_identical(c, "th", 1), 20, "identical replicas")
