"""ACLs in a 3-node cluster on etcd: a binding added with kafka-acls.sh on one
node applies on every node (each applies the AccessControlEntryRecord from the
metadata), and removed on another is gone everywhere. Brokers talk to each
other over SASL_PLAINTEXT as User:admin, a super user, so replication
(follower fetches need CLUSTER_ACTION) keeps working with the authorizer on;
User:ANONYMOUS on the PLAINTEXT listener gets nothing."""
import os

from cluster import etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from conftest import free_port, wait_until

ADMIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')
OVERRIDES = {
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
    "sasl.enabled.mechanisms": "PLAIN",
    "sasl.mechanism.inter.broker.protocol": "PLAIN",
    "inter.broker.listener.name": "SASL_PLAINTEXT",
    "listener.name.sasl_plaintext.plain.sasl.jaas.config": ADMIN_JAAS,
    "connection.failed.authentication.delay.ms": "0",
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin",
}


def wait_for(pred, what, timeout=40):
    wait_until(pred, timeout, what, interval=0.3)


def alice_can_produce(port, topic):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    p = KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-secret",
                      acks="all", max_block_ms=5000, request_timeout_ms=5000)
    try:
        p.send(topic, b"x").get(timeout=10)
        return True
    except KafkaError:
        return False
    finally:
        p.close(timeout=5)


def test_acl_added_on_one_node_applies_on_all(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=OVERRIDES, start=False)
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
    admin_cfg = os.path.join(n1.workdir, "admin.properties")
    with open(admin_cfg, "w") as f:
        f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required '
                'username="admin" password="admin-secret";\n')

    def tool(node_id, name, *args):
        return c.node(node_id).run_tool(name, "--bootstrap-server", f"127.0.0.1:{sasl_ports[node_id]}",
                                        "--command-config", admin_cfg, *args)

    wait_for(lambda: tool(1, "kafka-broker-api-versions").stdout.count("(id: ") == 3, "three nodes registered")
    r = tool(1, "kafka-topics", "--create", "--topic", "rep", "--partitions", "3", "--replication-factor", "3")
    assert r.returncode == 0, r.stdout + r.stderr

    for port in sasl_ports.values():
        assert not alice_can_produce(port, "rep")
    r = tool(2, "kafka-acls", "--add", "--allow-principal", "User:alice", "--producer", "--topic", "rep")
    assert r.returncode == 0, r.stdout + r.stderr
    for node_id, port in sasl_ports.items():
        wait_for(lambda: alice_can_produce(port, "rep"), f"alice produces through node {node_id}")
        r = tool(node_id, "kafka-acls", "--list", "--topic", "rep")
        assert "(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)" in r.stdout, r.stdout

    def all_in_sync():
        r = tool(1, "kafka-topics", "--describe", "--topic", "rep")
        lines = [l for l in r.stdout.splitlines() if "Partition: " in l]
        return len(lines) == 3 and all(len(l.split("Isr: ")[1].split()[0].split(",")) == 3 for l in lines)
    wait_for(all_in_sync, "every replica in sync: followers fetch as a super user")

    # User:ANONYMOUS (the PLAINTEXT listener) is no super user: the topic is hidden from it
    r = n1.run_tool("kafka-topics", "--bootstrap-server", n1.bootstrap, "--list")
    assert "rep" not in r.stdout, r.stdout

    # tools that reach every broker use the --command-config's SASL settings on those connections
    r = tool(1, "kafka-log-dirs", "--describe", "--topic-list", "rep")
    assert "Received log directory information from brokers 1,2,3\n" in r.stdout, r.stdout + r.stderr
    r = tool(2, "kafka-consumer-groups", "--list")
    assert r.returncode == 0, r.stdout + r.stderr

    r = tool(3, "kafka-acls", "--remove", "--force", "--topic", "rep")
    assert r.returncode == 0, r.stdout + r.stderr
    for node_id, port in sasl_ports.items():
        wait_for(lambda: not alice_can_produce(port, "rep"), f"alice refused on node {node_id}")
    for n in c.nodes:
        log = n.log_text()
        assert "Principal = User:admin is Denied" not in log
