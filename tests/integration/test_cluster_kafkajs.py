"""kafkajs (Node.js, its own protocol code: no librdkafka, no Java) against a
3-node cluster bootstrapped from node 1 only: admin create/metadata/offsets,
producer with keys and headers to partitions led by every node, and a
consumer group whose coordinator may be any node, reading everything back.
Same driver as test_kafkajs.py."""
import time

from kafka.admin import KafkaAdminClient

from cluster import etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from test_kafkajs import pytestmark, run_driver  # noqa: F401 (skip without kafkajs)


class _Bootstrap:
    def __init__(self, bootstrap):
        self.bootstrap = bootstrap


def test_kafkajs_across_the_cluster(samsa_cluster_factory):  # noqa: F811
    cl = samsa_cluster_factory(nodes=3, overrides={"group.initial.rebalance.delay.ms": "0"})
    count = 90
    res = run_driver(_Bootstrap(cl.bootstrap_of(1)), "js-cluster", count)

    assert res["created"] is True
    assert res["createdAgain"] is False
    assert res["partitions"] == [0, 1, 2]
    assert all(s["errorCode"] == 0 for s in res["sent"])
    got = res["consumed"]
    assert sorted(int(m["headers"]["seq"]) for m in got) == list(range(count))  # each record exactly once
    for m in got:
        i = int(m["headers"]["seq"])
        assert m["key"] == f"key-{i % 7}" and m["value"] == f"value-{i}"
    per_part = {}
    for m in got:
        per_part.setdefault(m["partition"], []).append(m["offset"])
    for offsets in per_part.values():
        assert offsets == list(range(len(offsets)))

    # (3 partitions on 3 nodes: Kafka's striped placement gives each node one,
    # test_cluster.py checks that; the driver deletes the topic at its end)
    admin = KafkaAdminClient(bootstrap_servers=cl.bootstrap_of(2))
    try:
        deadline = time.monotonic() + 5
        while "js-cluster" in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "js-cluster" not in admin.list_topics()  # the deletion reached node 2
    finally:
        admin.close()


def test_kafkajs_resend_after_a_partial_success_is_the_clients_copy(samsa_cluster_factory, tmp_path):  # noqa: F811
    """kafkajs 2.x writes a value twice when one broker answered its part of a send, another's part
    failed, and both parts then moved to a third broker: the retry goes to the broker that has no
    answer yet, with every partition it now leads, the answered one included, as a new batch with
    the next sequence number. The broker appends it (so does Kafka: the sequence follows on). The
    torture producers journal that as the client's copy (js/send_answers.js), and the history
    checker accepts exactly those positions; without the journal line the same log is a duplicate.
    This is what made the quick torture run fail in CI once (seed 1285469847)."""
    import json
    import subprocess

    from confluent_kafka import Consumer as CKConsumer
    from confluent_kafka import TopicPartition

    from history import History, check
    from test_cluster import create_topic, tool, wait_until
    from test_kafkajs import JS_DIR, NODE
    from torture import OVERRIDES, Journal, partition_state

    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    # X-0 is led by node 1 and also kept by node 3; Y-0 by node 2, also on node 3, and refuses every
    # acks=all write until its min.insync.replicas comes down (2 replicas, 3 required).
    create_topic(c, 1, "resend-x", "--replica-assignment", "1:3")
    create_topic(c, 1, "resend-y", "--replica-assignment", "2:3", "--config", "min.insync.replicas=3")
    for topic in ("resend-x", "resend-y"):
        wait_until(lambda: all(len(st[3]) == 2 for st in partition_state(c, topic).values()), 20, f"{topic}: ISR full")
    journal = tmp_path / "resend.journal"
    proc = subprocess.Popen([NODE, "resend_driver.js", c.bootstrap, "resend-x", "resend-y", str(journal)],
                            cwd=JS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The batch is under way once x-1 is journalled as sent: node 1 answers X-0 at once, node 2
        # keeps answering NOT_ENOUGH_REPLICAS and kafkajs keeps retrying Y-0 there alone.
        wait_until(lambda: journal.exists() and "S x-1 " in journal.read_text(), 30, "the batch sent")
        time.sleep(1.5)
        c.kill9(1)
        c.kill9(2)
        wait_until(lambda: all(st[0] == 3 for t in ("resend-x", "resend-y")
                               for st in partition_state(c, t, node=c.node(3)).values()), 20, "node 3 leads both")
        r = tool(c, "kafka-configs", "--bootstrap-server", c.node(3).bootstrap, "--alter", "--entity-type", "topics",
                 "--entity-name", "resend-y", "--add-config", "min.insync.replicas=1")
        assert r.stdout == "Completed updating config for topic resend-y.\n", r.stdout + r.stderr
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["error"] is None and [a["errorCode"] for a in res["y"]] == [0], res

    h = History()
    Journal(str(journal)).ingest(h)
    # x-1 was acknowledged by node 1 at offset 1 and, as kafkajs's copy, by node 3 at offset 2.
    assert h.acks["x-1"][:2] == (0, 1) and h.copies == {"x-1": [(0, 2)]}, (h.acks, h.copies)

    cons = CKConsumer({"bootstrap.servers": c.node(3).bootstrap, "group.id": "resend-read",
                       "enable.auto.commit": False})
    records = []
    try:
        cons.assign([TopicPartition("resend-x", 0, 0)])
        deadline = time.time() + 30
        while len(records) < 3 and time.time() < deadline:
            for m in cons.consume(10, 0.5):
                assert not m.error(), m.error()
                records.append((m.partition(), m.offset(), m.value().decode()))
    finally:
        cons.close()
    assert records == [(0, 0, "x-warm"), (0, 1, "x-1"), (0, 2, "x-1")], records
    h.read(records)
    check(h).assert_ok()
    # The same log without the journal's copy line is a broker duplicate to the checker.
    h.copies.clear()
    assert {"duplicate-read", "ack-offset-mismatch"} <= set(check(h).counts()), check(h).summary()
