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
