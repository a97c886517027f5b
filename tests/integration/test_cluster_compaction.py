"""Log compaction with replication (issue 15), black box: 3 etcd members and
3 Samsa nodes. Every replica of an RF 3 compacted topic cleans its own log;
after the leader is killed the new leader serves the latest value per key at
its original offset; a node restarted with an empty data dir copies the
cleaned leader's log (offset gaps) and serves the same records."""
import os
import time

import confluent_kafka
import pytest

from conftest import log_segment_bytes
from cluster import (HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory)  # noqa: F401 (fixtures)
from test_cluster import leaders, metadata, wait_all_registered, wait_until
from test_compaction import check_latest
from test_replication import create, isr_full

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")

OVERRIDES = {"group.initial.rebalance.delay.ms": "0", "replica.lag.time.max.ms": "4000",
             "default.replication.factor": "3", "min.insync.replicas": "2", "log.cleaner.backoff.ms": "200"}


def node_log_bytes(c, node_id, topic):
    return log_segment_bytes(os.path.join(c.node(node_id).log_dir, f"{topic}-0"))


def read_all(bootstrap, topic, timeout=60):
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-%f" % time.time(),
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "enable.partition.eof": True})
    c.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
    out = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    return out
                if m.error().retriable():
                    continue
                raise AssertionError(m.error())
            out.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()
    raise AssertionError("no end of %s in %ss" % (topic, timeout))


def test_replicas_clean_their_logs_and_fail_over(samsa_cluster_factory):
    c = wait_all_registered(samsa_cluster_factory(3, overrides=OVERRIDES))  # RF 3 needs every node registered
    create(c, "rtable", 1, 3, "--config", "cleanup.policy=compact", "--config", "segment.bytes=50000",
           "--config", "min.cleanable.dirty.ratio=0.01")
    wait_until(lambda: isr_full(c, "rtable"), 20, "full ISR")
    latest = {}
    prod = confluent_kafka.Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5,
                                     "enable.idempotence": True, "batch.size": 8000})

    def done(err, msg):
        assert err is None, err
        latest[msg.key()] = (msg.value(), msg.offset())

    for i in range(20000):
        while True:
            try:
                prod.produce("rtable", key=b"k%03d" % (i % 200), value=b"k%03d:v%06d" % (i % 200, i), partition=0,
                             on_delivery=done)
                break
            except BufferError:
                prod.poll(0.05)
        prod.poll(0)
    assert prod.flush(60) == 0
    assert len(latest) == 200
    # every replica cleans its own copy
    wait_until(lambda: all(node_log_bytes(c, n, "rtable") < 120_000 for n in (1, 2, 3)), 60, "all replicas cleaned")
    check_latest(read_all(c.bootstrap, "rtable"), latest)

    leader = leaders(metadata(c.node(1).bootstrap, ["rtable"]), "rtable")[0]
    c.kill9(leader)
    others = [n for n in (1, 2, 3) if n != leader]
    wait_until(lambda: leaders(metadata(c.node(others[0]).bootstrap, ["rtable"]), "rtable")[0] in others, 20,
               "a new leader")
    check_latest(read_all(c.bootstrap_of(*others), "rtable"), latest)

    # the old leader comes back with nothing and copies the cleaned log
    c.restart(leader, wipe_data=True)
    wait_until(lambda: isr_full(c, "rtable", on=others[0]), 60,
               lambda: "the wiped node back in the ISR:\n" + "\n".join(
                   "node %d: " % n + "\n".join(x for x in c.node(n).log_text().splitlines()
                                               if "rtable" in x or "ERROR" in x)[-3000:] for n in (1, 2, 3)))
    wait_until(lambda: node_log_bytes(c, leader, "rtable") > 0, 20, "copied")
    # the others leave (controlled shutdown hands the partition over): the copy serves alone
    for n in others:
        c.stop_node(n)
    wait_until(lambda: leaders(metadata(c.node(leader).bootstrap, ["rtable"]), "rtable")[0] == leader, 30,
               "the copied replica leads", interval=0.3)
    check_latest(read_all(c.node(leader).bootstrap, "rtable"), latest)
