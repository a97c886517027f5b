"""Client quotas in a 3-node cluster on etcd: a quota set with kafka-configs
through one node is described by every node (each applies the
ClientQuotaRecord from the metadata), throttles a producer at another node's
partition, survives a restart (the quotas/ keys are part of the snapshot) and
is gone everywhere once deleted."""
import time

from cluster import etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from conftest import wait_until


def wait_for(pred, what, timeout=40):
    wait_until(pred, timeout, what, interval=0.3)


def configs(c, node_id, *args):
    n = c.node(node_id)
    return n.run_tool("kafka-configs", "--bootstrap-server", n.bootstrap, *args)


def produce_throttles(bootstrap, topic, client_id):
    """Produces 30 kB in one go and returns the throttle times the broker answered."""
    import confluent_kafka as ck
    throttles = []
    p = ck.Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 50,
                     "throttle_cb": lambda ev: throttles.append(ev.throttle_time)})
    for _ in range(3):
        p.produce(topic, b"x" * 10_000)
    assert p.flush(60) == 0
    deadline = time.time() + 10
    while not throttles and time.time() < deadline:
        p.poll(0.2)
    return throttles


DESCRIBED = "Quota configs for client-id 'slow' are producer_byte_rate=2500.0"


def test_client_quota_set_on_one_node_applies_on_all(samsa_cluster_factory):
    c = samsa_cluster_factory(3)
    wait_for(lambda: c.node(1).run_tool("kafka-broker-api-versions", "--bootstrap-server",
                                    c.node(1).bootstrap).stdout.count("(id: ") == 3, "three nodes registered")
    n2 = c.node(2)
    r = n2.run_tool("kafka-topics", "--bootstrap-server", n2.bootstrap, "--create", "--topic", "q",
                    "--replica-assignment", "2")
    assert r.returncode == 0, r.stdout + r.stderr

    r = configs(c, 1, "--entity-type", "clients", "--entity-name", "slow", "--alter", "--add-config",
                "producer_byte_rate=2500")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "Completed updating config for client slow.\n"
    for node_id in (3, 2):
        wait_for(lambda: configs(c, node_id, "--entity-type", "clients", "--describe").stdout.strip() == DESCRIBED,
                 f"node {node_id} describes the quota")

    # node 2 leads q: it throttles 'slow' (30 kB over Kafka's 10 s window: about 3000 B/s against
    # 2500, so about 2 s of throttle) and not others
    assert max(produce_throttles(n2.bootstrap, "q", "slow"), default=0) > 0
    assert not any(produce_throttles(n2.bootstrap, "q", "fast"))

    # a restarted node loads the quota from etcd's current state
    c.restart(3)
    r = configs(c, 3, "--entity-type", "clients", "--describe")
    assert r.stdout.strip() == DESCRIBED, r.stdout + r.stderr

    r = configs(c, 2, "--entity-type", "clients", "--entity-name", "slow", "--alter", "--delete-config",
                "producer_byte_rate")
    assert r.returncode == 0, r.stdout + r.stderr
    for node_id in (1, 3):
        wait_for(lambda: configs(c, node_id, "--entity-type", "clients", "--describe").stdout.strip() == "",
                 f"node {node_id} forgets the quota")
    c.restart(1)
    r = configs(c, 1, "--entity-type", "clients", "--describe")
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr
