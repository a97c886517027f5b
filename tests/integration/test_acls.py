"""ACLs: Kafka's StandardAuthorizer, as an operator configures it.

One node with a PLAINTEXT listener (its principal User:ANONYMOUS is a super
user, as the inter-broker and set-up channel) and a SASL_PLAINTEXT listener
with PLAIN users admin (super user) and alice/bob (not),
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer.
kafka-acls.sh --add/--list/--remove prints what Kafka's AclCommand prints;
bindings are AccessControlEntryRecords in the metadata log and survive a
restart; clients see Kafka's authorization errors.
"""
import os
import socket
import shutil
import struct
import tempfile
import time

import pytest

from test_sasl import ADMIN_PW, ALICE_PW, SaslNode, ck_conf

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
BOB_PW = "bob-secret"
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        f'password="{ADMIN_PW}" user_admin="{ADMIN_PW}" user_alice="{ALICE_PW}" user_bob="{BOB_PW}";')


def acl_node(workdir, **extra):
    cfg = {"authorizer.class.name": AUTHORIZER, "super.users": "User:admin;User:ANONYMOUS",
           "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS}
    cfg.update(extra)
    return SaslNode(workdir, cfg)


@pytest.fixture
def node():
    d = tempfile.mkdtemp(prefix="samsa-acls-")
    n = acl_node(d)
    yield n
    code = n.b.stop()
    log = n.b.log_text()
    shutil.rmtree(d, ignore_errors=True)
    assert code in (0, None), f"broker exited with {code}:\n{log[-4000:]}"


def acls(node, *args, user="admin", password=ADMIN_PW, input=None):
    cfg = node.command_config("PLAIN", user, password, f"{user}.properties")
    return node.tool("kafka-acls", "--bootstrap-server", node.sasl_bootstrap, "--command-config", cfg, *args,
                     input=input)


def create_topic(node, topic, partitions=1):
    r = node.tool("kafka-topics", "--bootstrap-server", node.bootstrap, "--create", "--topic", topic,
                  "--partitions", str(partitions))
    assert r.returncode == 0, r.stdout + r.stderr


def pattern(rtype, name, ptype="LITERAL"):
    return f"ResourcePattern(resourceType={rtype}, name={name}, patternType={ptype})"


def entry(principal, op, perm="ALLOW", host="*"):
    return f"(principal={principal}, host={host}, operation={op}, permissionType={perm})"


def test_add_list_remove_output_as_kafka(node):
    r = acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Write", "--topic", "t")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == (
        f"Adding ACLs for resource `{pattern('TOPIC', 't')}`: \n \t{entry('User:alice', 'WRITE')} \n\n"
        f"Current ACLs for resource `{pattern('TOPIC', 't')}`: \n \t{entry('User:alice', 'WRITE')} \n\n"), r.stdout

    r = acls(node, "--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.9", "--operation", "Read",
             "--operation", "Describe", "--group", "g", "--resource-pattern-type", "prefixed")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == f"Adding ACLs for resource `{pattern('GROUP', 'g', 'PREFIXED')}`: ", r.stdout
    for op in ("READ", "DESCRIBE"):
        assert entry("User:bob", op, "DENY", "10.0.0.9") in r.stdout, r.stdout
    assert f"Current ACLs for resource `{pattern('GROUP', 'g', 'PREFIXED')}`: " in r.stdout

    r = acls(node, "--list")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Current ACLs for resource `{pattern('TOPIC', 't')}`: \n \t{entry('User:alice', 'WRITE')} \n\n" \
        in r.stdout, r.stdout
    assert f"Current ACLs for resource `{pattern('GROUP', 'g', 'PREFIXED')}`: " in r.stdout

    r = acls(node, "--list", "--topic", "t")
    assert r.stdout == f"Current ACLs for resource `{pattern('TOPIC', 't')}`: \n \t{entry('User:alice', 'WRITE')} \n\n"

    r = acls(node, "--list", "--principal", "User:bob")
    assert r.stdout.startswith("ACLs for principal `User:bob`\n"), r.stdout
    assert "User:alice" not in r.stdout

    # no --force: the question, then "n" keeps the binding
    r = acls(node, "--remove", "--topic", "t", input="n\n")
    assert r.stdout.startswith(f"Are you sure you want to delete all ACLs for resource filter "
                               f"`{pattern('TOPIC', 't')}`? (y/n)\n"), r.stdout
    assert entry("User:alice", "WRITE") in acls(node, "--list", "--topic", "t").stdout
    r = acls(node, "--remove", "--force", "--allow-principal", "User:alice", "--operation", "Write", "--topic", "t")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "", r.stdout
    assert acls(node, "--list", "--topic", "t").stdout == ""
    r = acls(node, "--remove", "--force", "--group", "g", "--resource-pattern-type", "prefixed")
    assert r.returncode == 0 and acls(node, "--list").stdout == "", r.stdout


def test_producer_consumer_convenience(node):
    r = acls(node, "--add", "--allow-principal", "User:alice", "--producer", "--topic", "t", "--transactional-id",
             "tx", "--idempotent")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for op in ("WRITE", "DESCRIBE", "CREATE"):
        assert entry("User:alice", op) in out.split(f"Adding ACLs for resource `{pattern('TOPIC', 't')}`")[1]
    assert f"Adding ACLs for resource `{pattern('TRANSACTIONAL_ID', 'tx')}`" in out
    assert f"Adding ACLs for resource `{pattern('CLUSTER', 'kafka-cluster')}`: \n " \
           f"\t{entry('User:alice', 'IDEMPOTENT_WRITE')} \n\n" in out, out
    r = acls(node, "--add", "--allow-principal", "User:bob", "--consumer", "--topic", "t", "--group", "g")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Adding ACLs for resource `{pattern('GROUP', 'g')}`: \n \t{entry('User:bob', 'READ')} \n\n" in r.stdout


def test_tool_errors_as_kafka(node):
    r = acls(node, "--add", "--topic", "t")
    assert r.returncode == 1
    assert "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs." in r.stderr
    r = acls(node, "--add", "--list", "--topic", "t")
    assert "Command must include exactly one action: --list, --add, --remove. " in r.stderr
    r = acls(node, "--add", "--allow-principal", "User:a", "--operation", "Write", "--group", "g")
    assert r.returncode == 1
    assert "ResourceType GROUP only supports operations READ,DESCRIBE,DELETE,ALL" in r.stderr, r.stderr
    r = acls(node, "--add", "--allow-principal", "User:a", "--producer", "--group", "g")
    assert "With --producer you must specify a --topic" in r.stderr
    # a user who may not ALTER the cluster
    r = acls(node, "--add", "--allow-principal", "User:a", "--topic", "t", user="alice", password=ALICE_PW)
    assert r.returncode == 1
    assert "Error while executing ACL command: org.apache.kafka.common.errors.ClusterAuthorizationException" \
        in r.stdout, r.stdout


def test_acl_apis_without_authorizer_are_security_disabled(broker):
    r = broker.run_tool("kafka-acls", "--bootstrap-server", broker.bootstrap, "--list")
    assert r.returncode == 1
    assert ("Error while executing ACL command: org.apache.kafka.common.errors.SecurityDisabledException: "
            "No Authorizer is configured on the broker") in r.stdout, r.stdout


def kp_admin(node, user="admin", password=ADMIN_PW):
    from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=node.sasl_bootstrap, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="PLAIN", sasl_plain_username=user, sasl_plain_password=password,
                            request_timeout_ms=20000)


def test_admin_client_validation(node):
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePattern, ResourcePatternFilter, ResourceType)
    a = kp_admin(node)
    try:
        ok = ACL("User:alice", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                 ResourcePattern(ResourceType.TOPIC, "t", ACLResourcePatternType.LITERAL))
        bad = ACL("User:alice", "*", ACLOperation.ALTER, ACLPermissionType.ALLOW,
                  ResourcePattern(ResourceType.CLUSTER, "other", ACLResourcePatternType.LITERAL))
        res = a.create_acls([ok, bad])
        assert len(res["succeeded"]) == 1, res
        # (kafka-python keeps only the error class; the message is checked in tests/unit/test_authorizer.c)
        assert len(res["failed"]) == 1 and "InvalidRequestError" in str(res["failed"][0]), res
        assert len(a.create_acls([ok])["succeeded"]) == 1  # the same binding again: kept once
        flt = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                        ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
        got, err = a.describe_acls(flt)
        assert [(x.resource_pattern.resource_name, x.principal, x.operation) for x in got] == \
            [("t", "User:alice", ACLOperation.READ)], got
        deleted = a.delete_acls([flt])
        assert len(deleted[0][1]) == 1, deleted
        assert a.describe_acls(flt)[0] == []
    finally:
        a.close()


def test_acls_survive_restart(node):
    acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "keep")
    acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "gone")
    acls(node, "--remove", "--force", "--topic", "gone")
    node.b.restart()
    r = acls(node, "--list")
    assert f"`{pattern('TOPIC', 'keep')}`" in r.stdout, r.stdout
    assert "gone" not in r.stdout


def produce(node, user, password, topic, count=3, **extra):
    """Produce with confluent-kafka; returns the delivery errors (None = delivered)."""
    from confluent_kafka import Producer
    p = Producer(ck_conf(node, "PLAIN", user, password, **{"message.timeout.ms": 8000, **extra}))
    errors = []
    for i in range(count):
        p.produce(topic, value=f"v{i}".encode(), on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    return errors


def consume(node, user, password, topic, group, count):
    """Consume with a group; returns (values, the first error seen)."""
    from confluent_kafka import Consumer, KafkaError
    c = Consumer(ck_conf(node, "PLAIN", user, password, **{"group.id": group, "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got, err = [], None
    deadline = time.time() + 20
    while len(got) < count and err is None and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                err = m.error()
            continue
        got.append(m.value().decode())
    c.close()
    return got, err


def visible_topics(node, user, password):
    from confluent_kafka.admin import AdminClient
    return set(AdminClient(ck_conf(node, "PLAIN", user, password)).list_topics(timeout=10).topics)


def test_produce_consume_need_acls(node):
    from confluent_kafka import KafkaError
    create_topic(node, "t")
    errs = produce(node, "alice", ALICE_PW, "t")
    assert errs and all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errs), errs
    assert "t" not in visible_topics(node, "alice", ALICE_PW)
    assert "t" in visible_topics(node, "admin", ADMIN_PW)
    log = node.b.log_text()
    # librdkafka learns from Metadata that it may not see the topic, and never sends the Produce
    assert ("INFO Principal = User:alice is Denied operation = DESCRIBE from host = 127.0.0.1 on resource = "
            "Topic:LITERAL:t for request = Metadata with resourceRefCount = 1 based on rule DefaultDeny "
            "(kafka.authorizer.logger)") in log, log[-3000:]
    assert "WARN The configuration 'super.users'" not in log

    r = acls(node, "--add", "--allow-principal", "User:alice", "--producer", "--topic", "t")
    assert r.returncode == 0, r.stdout + r.stderr
    assert produce(node, "alice", ALICE_PW, "t") == [None, None, None]
    assert "t" in visible_topics(node, "alice", ALICE_PW)

    # bob: READ on the topic but no group ACL
    acls(node, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--topic", "t")
    got, err = consume(node, "bob", BOB_PW, "t", "g", 3)
    assert err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, (got, err)
    r = acls(node, "--add", "--allow-principal", "User:bob", "--consumer", "--topic", "t", "--group", "g")
    assert r.returncode == 0, r.stdout + r.stderr
    got, err = consume(node, "bob", BOB_PW, "t", "g", 3)
    assert err is None and sorted(got) == ["v0", "v1", "v2"], (got, err)


def test_deny_beats_allow_and_prefixes(node):
    from confluent_kafka import KafkaError
    for t in ("app-a", "app-secret", "other"):
        create_topic(node, t)
    acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Write", "--operation", "Describe",
         "--topic", "app-", "--resource-pattern-type", "prefixed")
    acls(node, "--add", "--deny-principal", "User:alice", "--operation", "Write", "--topic", "app-secret")
    assert produce(node, "alice", ALICE_PW, "app-a") == [None] * 3
    errs = produce(node, "alice", ALICE_PW, "app-secret")
    assert all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errs), errs
    errs = produce(node, "alice", ALICE_PW, "other")
    assert all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errs), errs
    assert visible_topics(node, "alice", ALICE_PW) >= {"app-a", "app-secret"}
    assert "other" not in visible_topics(node, "alice", ALICE_PW)


def test_allow_everyone_if_no_acl_found():
    d = tempfile.mkdtemp(prefix="samsa-acls-")
    n = acl_node(d, **{"allow.everyone.if.no.acl.found": "true"})
    try:
        from confluent_kafka import KafkaError
        create_topic(n, "open")
        create_topic(n, "closed")
        assert produce(n, "alice", ALICE_PW, "open") == [None] * 3
        acls(n, "--add", "--allow-principal", "User:bob", "--operation", "Write", "--topic", "closed")
        errs = produce(n, "alice", ALICE_PW, "closed")
        assert all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errs), errs
    finally:
        code = n.b.stop()
        shutil.rmtree(d, ignore_errors=True)
    assert code in (0, None)


def test_admin_apis_need_acls(node):
    cfg = node.command_config("PLAIN", "alice", ALICE_PW, "alice-admin.properties")

    def topics(*args):
        return node.tool("kafka-topics", "--bootstrap-server", node.sasl_bootstrap, "--command-config", cfg, *args)

    r = topics("--create", "--topic", "mine", "--partitions", "1")
    assert r.returncode != 0 and "uthorization" in r.stdout + r.stderr, r.stdout + r.stderr
    acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Create", "--topic", "mine")
    r = topics("--create", "--topic", "mine", "--partitions", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    # CREATE does not give DESCRIBE_CONFIGS / ALTER / DELETE
    r = node.tool("kafka-configs", "--bootstrap-server", node.sasl_bootstrap, "--command-config", cfg,
                  "--entity-type", "topics", "--entity-name", "mine", "--describe")
    assert r.returncode != 0 and "uthorization" in r.stdout + r.stderr, r.stdout + r.stderr
    # without DESCRIBE the topic is hidden from her: Kafka's tool says it does not exist
    r = topics("--alter", "--topic", "mine", "--partitions", "2")
    assert r.returncode != 0 and "does not exist" in r.stdout + r.stderr, r.stdout + r.stderr
    r = topics("--delete", "--topic", "mine")
    assert r.returncode != 0, r.stdout + r.stderr
    acls(node, "--add", "--allow-principal", "User:alice", "--operation", "AlterConfigs", "--operation", "Alter",
         "--operation", "Delete", "--topic", "mine")
    r = node.tool("kafka-configs", "--bootstrap-server", node.sasl_bootstrap, "--command-config", cfg,
                  "--entity-type", "topics", "--entity-name", "mine", "--describe")
    assert r.returncode == 0, r.stdout + r.stderr  # ALTER_CONFIGS implies DESCRIBE_CONFIGS
    assert topics("--alter", "--topic", "mine", "--partitions", "2").returncode == 0
    assert topics("--delete", "--topic", "mine").returncode == 0
    # broker configs need the cluster
    r = node.tool("kafka-configs", "--bootstrap-server", node.sasl_bootstrap, "--command-config", cfg,
                  "--entity-type", "brokers", "--entity-name", "1", "--describe")
    assert r.returncode != 0 and "uthorization" in r.stdout + r.stderr, r.stdout + r.stderr


def test_transactional_and_idempotent_producers(node):
    from confluent_kafka import KafkaException, Producer
    create_topic(node, "tx-topic")
    acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Write", "--operation", "Describe",
         "--topic", "tx-topic")
    # idempotent: WRITE on a topic is enough (no IDEMPOTENT_WRITE on the cluster needed)
    assert produce(node, "alice", ALICE_PW, "tx-topic", **{"enable.idempotence": True}) == [None] * 3
    p = Producer(ck_conf(node, "PLAIN", "alice", ALICE_PW, **{"transactional.id": "tx-1"}))
    with pytest.raises(KafkaException) as e:
        p.init_transactions(15)
    assert "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in str(e.value) or "Transactional Id authorization failed" \
        in str(e.value), str(e.value)
    r = acls(node, "--add", "--allow-principal", "User:alice", "--producer", "--topic", "tx-topic",
             "--transactional-id", "tx-1")
    assert r.returncode == 0, r.stdout + r.stderr
    p = Producer(ck_conf(node, "PLAIN", "alice", ALICE_PW, **{"transactional.id": "tx-1"}))
    p.init_transactions(15)  # FindCoordinator (DESCRIBE) and InitProducerId (WRITE) on tx-1 now pass
    # (a transactional produce is not tried here: the broker's transaction verifier reaches the leader
    # through the client's SASL listener without credentials, a limitation outside the authorizer)


def test_cluster_admin_apis_need_cluster_acls(node):
    """SCRAM credentials, quotas and record deletion are refused to a user without the cluster (or
    topic) ACL, as KafkaApis does."""
    cfg = node.command_config("PLAIN", "alice", ALICE_PW, "alice-cluster.properties")
    create_topic(node, "d")

    def as_alice(tool, *args):
        r = node.tool(tool, "--bootstrap-server", node.sasl_bootstrap, "--command-config", cfg, *args)
        return r.returncode, r.stdout + r.stderr

    rc, out = as_alice("kafka-configs", "--alter", "--entity-type", "users", "--entity-name", "bob",
                       "--add-config", "SCRAM-SHA-256=[password=stolen]")
    assert rc != 0 and "uthorization" in out, out
    rc, out = as_alice("kafka-configs", "--alter", "--entity-type", "users", "--entity-name", "alice",
                       "--add-config", "producer_byte_rate=1000000000")
    assert rc != 0 and "uthorization" in out, out
    offsets = os.path.join(node.workdir, "offsets.json")
    with open(offsets, "w") as f:
        f.write('{"partitions":[{"topic":"d","partition":0,"offset":0}],"version":1}')
    rc, out = as_alice("kafka-delete-records", "--offset-json-file", offsets)
    assert "uthorization" in out, out
    # the super user may
    r = node.tool("kafka-configs", "--bootstrap-server", node.sasl_bootstrap, "--command-config",
                  node.command_config("PLAIN", "admin", ADMIN_PW, "admin-cluster.properties"), "--alter",
                  "--entity-type", "users", "--entity-name", "bob", "--add-config", "SCRAM-SHA-256=[password=ok]")
    assert r.returncode == 0, r.stdout + r.stderr


def test_transactions_and_producers_listed_only_with_describe(node):
    from confluent_kafka import Producer
    create_topic(node, "p")
    p = Producer(ck_conf(node, "PLAIN", "admin", ADMIN_PW, **{"transactional.id": "seen-by-admin"}))
    p.init_transactions(15)
    admin = node.command_config("PLAIN", "admin", ADMIN_PW, "admin-tx.properties")
    alice = node.command_config("PLAIN", "alice", ALICE_PW, "alice-tx.properties")

    def tx(cfg, *args):
        return node.tool("kafka-transactions", "--bootstrap-server", node.sasl_bootstrap, "--command-config", cfg,
                         *args)
    assert "seen-by-admin" in tx(admin, "list").stdout
    r = tx(alice, "list")
    assert "seen-by-admin" not in r.stdout, r.stdout
    r = tx(alice, "describe", "--transactional-id", "seen-by-admin")
    assert r.returncode != 0 and "uthorization" in r.stdout + r.stderr, r.stdout + r.stderr
    r = tx(alice, "describe-producers", "--topic", "p", "--partition", "0")
    assert r.returncode != 0, r.stdout + r.stderr  # the topic is hidden from her: no leader to ask
    acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Describe", "--transactional-id",
         "seen-by-admin")
    assert "seen-by-admin" in tx(alice, "list").stdout


def test_fetch_needs_read(node):
    """DESCRIBE shows the topic, but fetching it needs READ: TOPIC_AUTHORIZATION_FAILED, one denial
    line per topic."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    create_topic(node, "f", partitions=3)
    assert produce(node, "admin", ADMIN_PW, "f") == [None] * 3
    acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Describe", "--topic", "f")
    c = Consumer(ck_conf(node, "PLAIN", "alice", ALICE_PW, **{"group.id": "unused", "enable.auto.commit": False}))
    c.assign([TopicPartition("f", p, 0) for p in range(3)])
    err = None
    deadline = time.time() + 15
    while err is None and time.time() < deadline:
        m = c.poll(0.5)
        # (its coordinator lookup for the unused group fails too: GROUP_AUTHORIZATION_FAILED)
        if m is not None and m.error() and m.error().code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            err = m.error()
    c.close()
    assert err is not None, "no TOPIC_AUTHORIZATION_FAILED from the fetch"
    lines = [l for l in node.b.log_text().splitlines()
             if "Principal = User:alice is Denied operation = READ" in l and "for request = Fetch" in l]
    assert lines and "on resource = Topic:LITERAL:f " in lines[0], lines
    assert len(lines) <= 30  # one per fetch request, not one per partition of it


# -- authorized operations (KIP-430): DescribeCluster v0 and Metadata v10,
# hand-encoded (the Debian clients do not ask for them) on a SASL/PLAIN
# connection

def _uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7f) | 0x80])
        n >>= 7
    return out + bytes([n])


class _Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def uvarint(self):
        shift = n = 0
        while True:
            b = self.d[self.p]
            self.p += 1
            n |= (b & 0x7f) << shift
            if b < 0x80:
                return n
            shift += 7

    def cstr(self):
        n = self.uvarint()
        s = self.d[self.p:self.p + n - 1].decode() if n else None
        self.p += max(n - 1, 0)
        return s

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.p += self.uvarint()


class _Conn:
    """One connection authenticated with SASL/PLAIN (SaslHandshake v1, SaslAuthenticate v0)."""

    def __init__(self, bootstrap, user, password):
        host, port = bootstrap.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=15)
        self.corr = 0
        r = _Reader(self.call(17, 1, b"\x00\x05PLAIN", flexible=False))
        assert r.take(">h") == 0
        token = b"\x00" + user.encode() + b"\x00" + password.encode()
        r = _Reader(self.call(36, 0, struct.pack(">i", len(token)) + token, flexible=False))
        assert r.take(">h") == 0, "authentication failed"

    def call(self, api_key, version, body, flexible=True):
        self.corr += 1
        head = struct.pack(">hhih", api_key, version, self.corr, 4) + b"test"
        msg = head + (_uvarint(0) if flexible else b"") + body
        self.s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self._recv(4))[0]
        data = self._recv(size)
        return data[5:] if flexible else data[4:]  # correlation id (and header tags)

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            assert chunk, "connection closed"
            buf += chunk
        return buf

    def close(self):
        self.s.close()


def _cluster_ops(conn, include=True):
    r = _Reader(conn.call(60, 0, struct.pack(">?", include) + _uvarint(0)))
    r.take(">i")
    assert r.take(">h") == 0
    r.cstr()
    r.cstr()
    r.take(">i")
    for _ in range(r.uvarint() - 1):
        r.take(">i")
        r.cstr()
        r.take(">i")
        r.cstr()
        r.tags()
    return r.take(">i")


def _metadata_ops(conn, topic):
    """Metadata v10 for one topic -> (cluster operations, {topic: (error, operations)})."""
    nb = topic.encode()
    body = (_uvarint(2) + bytes(16) + _uvarint(len(nb) + 1) + nb + _uvarint(0)
            + struct.pack(">???", False, True, True) + _uvarint(0))
    r = _Reader(conn.call(3, 10, body))
    r.take(">i")
    for _ in range(r.uvarint() - 1):
        r.take(">i")
        r.cstr()
        r.take(">i")
        r.cstr()
        r.tags()
    r.cstr()
    r.take(">i")
    topics = {}
    for _ in range(r.uvarint() - 1):
        err = r.take(">h")
        name = r.cstr()
        r.p += 16 + 1  # topic id, is_internal
        for _ in range(r.uvarint() - 1):
            r.take(">hiii")
            for _ in range(3):
                for _ in range(r.uvarint() - 1):
                    r.take(">i")
            r.tags()
        topics[name] = (err, r.take(">i"))
        r.tags()
    return r.take(">i"), topics


READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE = 3, 4, 5, 6, 7, 8
CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE = 9, 10, 11, 12


def bits(*ops):
    return sum(1 << op for op in ops)


def test_authorized_operations(node):
    create_topic(node, "ops")
    alice = _Conn(node.sasl_bootstrap, "alice", ALICE_PW)
    admin = _Conn(node.sasl_bootstrap, "admin", ADMIN_PW)
    try:
        # not asked for: Integer.MIN_VALUE
        assert _cluster_ops(alice, include=False) == -2147483648
        # no DESCRIBE on the cluster: 0, and the topic is hidden
        assert _cluster_ops(alice) == 0
        cluster, topics = _metadata_ops(alice, "ops")
        assert cluster == 0 and topics == {"ops": (29, -2147483648)}, (cluster, topics)

        r = acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Describe", "--operation",
                 "IdempotentWrite", "--cluster")
        assert r.returncode == 0, r.stdout + r.stderr
        r = acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "ops")
        assert r.returncode == 0, r.stdout + r.stderr
        assert _cluster_ops(alice) == bits(DESCRIBE, IDEMPOTENT_WRITE)
        cluster, topics = _metadata_ops(alice, "ops")
        # READ implies DESCRIBE
        assert cluster == bits(DESCRIBE, IDEMPOTENT_WRITE) and topics == {"ops": (0, bits(READ, DESCRIBE))}, \
            (cluster, topics)

        # a super user may do everything the resource types support
        every_cluster_op = bits(CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
                                IDEMPOTENT_WRITE)
        assert _cluster_ops(admin) == every_cluster_op
        cluster, topics = _metadata_ops(admin, "ops")
        assert topics["ops"][1] == bits(READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
                                        ALTER_CONFIGS), topics
    finally:
        alice.close()
        admin.close()


def _create_topic_v7(conn, name, partitions):
    """CreateTopics v7 -> (error, num_partitions, replication_factor, configs or None, topic_config_error_code)."""
    nb = name.encode()
    body = (_uvarint(2) + _uvarint(len(nb) + 1) + nb + struct.pack(">ih", partitions, 1) + _uvarint(1) + _uvarint(1)
            + _uvarint(0) + struct.pack(">i?", 30000, False) + _uvarint(0))
    r = _Reader(conn.call(19, 7, body))
    r.take(">i")
    assert r.uvarint() == 2
    r.cstr()
    r.p += 16
    err = r.take(">h")
    r.cstr()
    nparts, rf = r.take(">ih")
    n = r.uvarint()
    configs = None if n == 0 else {}
    for _ in range(max(n - 1, 0)):
        k = r.cstr()
        configs[k] = r.cstr()
        r.take(">?b?")
        r.tags()
    config_err = 0
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        if tag == 0:
            config_err = struct.unpack_from(">h", r.d, r.p)[0]
        r.p += size
    return err, nparts, rf, configs, config_err


def test_create_topics_returns_configs_only_with_describe_configs(node):
    """ReplicationControlManager.createTopic: without DESCRIBE_CONFIGS on the new topic its layout and
    configs are left out and topic_config_error_code is TOPIC_AUTHORIZATION_FAILED."""
    r = acls(node, "--add", "--allow-principal", "User:alice", "--operation", "Create", "--topic", "cfg-",
             "--resource-pattern-type", "prefixed")
    assert r.returncode == 0, r.stdout + r.stderr
    alice = _Conn(node.sasl_bootstrap, "alice", ALICE_PW)
    try:
        assert _create_topic_v7(alice, "cfg-hidden", 2) == (0, -1, -1, {}, 29)
        r = acls(node, "--add", "--allow-principal", "User:alice", "--operation", "DescribeConfigs", "--topic",
                 "cfg-shown")
        assert r.returncode == 0, r.stdout + r.stderr
        err, nparts, rf, configs, config_err = _create_topic_v7(alice, "cfg-shown", 2)
        assert (err, nparts, rf, config_err) == (0, 2, 1, 0)
        assert configs["cleanup.policy"] == "delete", configs
    finally:
        alice.close()
