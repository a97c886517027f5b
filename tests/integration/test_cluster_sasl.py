"""SCRAM credentials in a 3-node cluster on etcd: a user created with
kafka-configs.sh on one node authenticates on every node (each applies the
UserScramCredentialRecord from the metadata log), and once deleted on another
node is refused everywhere. Every node has a PLAINTEXT listener (inter-broker)
and a SASL_PLAINTEXT listener."""
import shutil

from cluster import etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from conftest import free_port, wait_until

SASL = {
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
    "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
    "inter.broker.listener.name": "PLAINTEXT",
    "connection.failed.authentication.delay.ms": "0",
}


def can_login(port, user, password, mechanism="SCRAM-SHA-512"):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    errors = []
    a = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_PLAINTEXT",
                     "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password,
                     "error_cb": lambda e: errors.append(e)})
    try:
        md = a.list_topics(timeout=3)
        return bool(md.brokers)
    except KafkaException:
        return False


def wait_for(pred, what, timeout=30):
    wait_until(pred, timeout, what, interval=0.3)


def test_scram_user_created_on_one_node_works_on_every_node(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=SASL, start=False)
    sasl_ports = {}
    for n in c.nodes:
        sasl_ports[n.node_id] = free_port()
        n.overrides["listeners"] = (f"PLAINTEXT://127.0.0.1:{n.port},SASL_PLAINTEXT://127.0.0.1:{sasl_ports[n.node_id]},"
                                    f"CONTROLLER://127.0.0.1:{n.controller_port}")
        n.overrides["advertised.listeners"] = (f"PLAINTEXT://127.0.0.1:{n.port},"
                                               f"SASL_PLAINTEXT://127.0.0.1:{sasl_ports[n.node_id]}")
        n.write_config()
    c.start()
    n1, n2 = c.node(1), c.node(2)
    r = n1.run_tool("kafka-configs", "--bootstrap-server", n1.bootstrap, "--alter", "--entity-type", "users",
                    "--entity-name", "gina", "--add-config", "SCRAM-SHA-512=[iterations=4096,password=gina-pw]")
    assert (r.returncode, r.stdout) == (0, "Completed updating config for user gina.\n"), r.stderr
    for node_id, port in sasl_ports.items():
        wait_for(lambda: can_login(port, "gina", "gina-pw"), f"gina logs in on node {node_id}")
        assert not can_login(port, "gina", "wrong")
        r = c.node(node_id).run_tool("kafka-configs", "--bootstrap-server", c.node(node_id).bootstrap, "--describe",
                                     "--entity-type", "users", "--entity-name", "gina")
        assert r.stdout == "SCRAM credential configs for user-principal 'gina' are SCRAM-SHA-512=iterations=4096\n"
    r = n2.run_tool("kafka-configs", "--bootstrap-server", n2.bootstrap, "--alter", "--entity-type", "users",
                    "--entity-name", "gina", "--delete-config", "SCRAM-SHA-512")
    assert r.returncode == 0, r.stderr
    for node_id, port in sasl_ports.items():
        wait_for(lambda: not can_login(port, "gina", "gina-pw"), f"gina refused on node {node_id}")
    # a node restarted later loads the credentials (none now) from etcd's state
    r = n2.run_tool("kafka-configs", "--bootstrap-server", n2.bootstrap, "--alter", "--entity-type", "users",
                    "--entity-name", "hank", "--add-config", "SCRAM-SHA-256=[password=hank-pw]")
    assert r.returncode == 0, r.stderr
    c.node(3).stop()
    c.node(3).start()
    wait_for(lambda: can_login(sasl_ports[3], "hank", "hank-pw", "SCRAM-SHA-256"), "hank on restarted node 3")


ADMIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')


def test_cluster_replicates_over_sasl_between_brokers(samsa_cluster_factory):
    """inter.broker.listener.name on a SASL_PLAINTEXT listener: followers fetch from
    leaders after authenticating with PLAIN (sasl.mechanism.inter.broker.protocol)."""
    overrides = dict(SASL)
    overrides.update({
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": ADMIN_JAAS,
    })
    c = samsa_cluster_factory(3, overrides=overrides, start=False)
    sasl_ports = {}
    for n in c.nodes:
        sasl_ports[n.node_id] = free_port()
        n.overrides["listeners"] = (f"PLAINTEXT://127.0.0.1:{n.port},SASL_PLAINTEXT://127.0.0.1:{sasl_ports[n.node_id]},"
                                    f"CONTROLLER://127.0.0.1:{n.controller_port}")
        n.overrides["advertised.listeners"] = (f"PLAINTEXT://127.0.0.1:{n.port},"
                                               f"SASL_PLAINTEXT://127.0.0.1:{sasl_ports[n.node_id]}")
        n.write_config()
    c.start()
    n1 = c.node(1)
    wait_for(lambda: n1.run_tool("kafka-broker-api-versions", "--bootstrap-server", c.bootstrap).stdout.count(
        "(id: ") == 3, "three nodes registered")
    r = n1.run_tool("kafka-topics", "--bootstrap-server", n1.bootstrap, "--create", "--topic", "rep",
                    "--partitions", "3", "--replication-factor", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": f"127.0.0.1:{sasl_ports[2]}", "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret",
                  "acks": "all"})
    for i in range(30):
        p.produce("rep", value=str(i).encode(), partition=i % 3)
    assert p.flush(30) == 0

    def all_in_sync():
        r = n1.run_tool("kafka-topics", "--bootstrap-server", n1.bootstrap, "--describe", "--topic", "rep")
        lines = [l for l in r.stdout.splitlines() if "Partition: " in l]
        return len(lines) == 3 and all(len(l.split("Isr: ")[1].split()[0].split(",")) == 3 for l in lines)
    wait_for(all_in_sync, "every replica in sync over SASL")
    for n in c.nodes:
        assert "SASL authentication failed" not in n.log_text()


def test_add_scram_at_format_reaches_the_whole_cluster(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=SASL, start=False)
    sasl_ports = {}
    for n in c.nodes:
        sasl_ports[n.node_id] = free_port()
        n.overrides["listeners"] = (f"PLAINTEXT://127.0.0.1:{n.port},SASL_PLAINTEXT://127.0.0.1:{sasl_ports[n.node_id]},"
                                    f"CONTROLLER://127.0.0.1:{n.controller_port}")
        n.overrides["advertised.listeners"] = (f"PLAINTEXT://127.0.0.1:{n.port},"
                                               f"SASL_PLAINTEXT://127.0.0.1:{sasl_ports[n.node_id]}")
        n.write_config()
        shutil.rmtree(n.log_dir, ignore_errors=True)
        r = n.run_tool("kafka-storage", "format", "-t", c.cluster_id, "-c", n.config,
                       "--add-scram", "SCRAM-SHA-512=[name=boot,password=boot-pw]")
        assert r.returncode == 0, r.stdout + r.stderr
    c.start()
    for node_id, port in sasl_ports.items():
        wait_for(lambda: can_login(port, "boot", "boot-pw"), f"boot logs in on node {node_id}")
