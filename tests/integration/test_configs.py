"""DescribeConfigs / AlterConfigs / IncrementalAlterConfigs against our broker
(the `broker` fixture), seen through real clients: confluent_kafka (librdkafka),
kafka-python, the kafka-topics tool, and hand-encoded IncrementalAlterConfigs
v0 (Debian's client libraries predate that API).

Expected values are Kafka 3.6.1's with the shipped server.properties.
"""
import socket
import struct
import uuid

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic  # noqa: E402

TOPIC, BROKER = 2, 4
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


def admin(broker):
    # One client per broker, kept alive on it: librdkafka fails pending
    # results with _DESTROY when the client is garbage collected.
    if not hasattr(broker, "_admin"):
        broker._admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    return broker._admin


def new_topic(broker, configs=None):
    name = "cfg-" + uuid.uuid4().hex[:8]
    a = admin(broker)  # keep the client alive until the result is in
    fs = a.create_topics([NewTopic(name, 1, 1, config=configs or {})])
    fs[name].result(timeout=10)
    return name


def describe(broker, rtype, name):
    res = ConfigResource(rtype, name)
    a = admin(broker)
    return a.describe_configs([res])[res].result(timeout=10)


# ---- hand-encoded IncrementalAlterConfigs v0 ----

def _str(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def incremental_alter(broker, resources, validate_only=False):
    """resources: [(type, name, [(key, op, value)])] -> [(code, msg, type, name)]"""
    body = struct.pack(">i", len(resources))
    for rtype, name, ops in resources:
        body += struct.pack(">b", rtype) + _str(name) + struct.pack(">i", len(ops))
        for key, op, value in ops:
            body += _str(key) + struct.pack(">b", op) + _str(value)
    body += struct.pack(">?", validate_only)
    header = struct.pack(">hhi", 44, 0, 7) + _str("test")
    msg = header + body
    host, port = broker.bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, size)
    pos = 8  # correlation id, throttle time
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    out = []
    for _ in range(n):
        code, mlen = struct.unpack_from(">hh", data, pos)
        pos += 4
        m = None
        if mlen >= 0:
            m = data[pos:pos + mlen].decode()
            pos += mlen
        (rtype,) = struct.unpack_from(">b", data, pos)
        (nlen,) = struct.unpack_from(">h", data, pos + 1)
        name = data[pos + 3:pos + 3 + nlen].decode()
        pos += 3 + nlen
        out.append((code, m, rtype, name))
    return out


def _recv(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


# ---- describe ----

def test_describe_topic_sources(broker):
    name = new_topic(broker, {"retention.ms": "1000"})
    cfg = describe(broker, ConfigResource.Type.TOPIC, name)
    assert len(cfg) == 31
    seg = cfg["segment.bytes"]
    assert seg.value == "1073741824"
    assert seg.source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert not seg.is_default
    ret = cfg["retention.ms"]
    assert (ret.value, ret.source) == ("1000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value
    assert cfg["max.message.bytes"].value == "1048588"
    assert cfg["flush.ms"].value == "9223372036854775807"
    # log.retention.hours is set statically, but only log.retention.ms would
    # make retention.ms non-default
    name2 = new_topic(broker)
    assert describe(broker, ConfigResource.Type.TOPIC, name2)["retention.ms"].is_default


def test_describe_topic_synonyms(broker):
    name = new_topic(broker, {"segment.bytes": "2000000"})
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    cfg = admin(broker).describe_configs([res])[res].result(timeout=10)
    syn = cfg["segment.bytes"].synonyms
    # topic override, then log.segment.bytes (static, then its default)
    assert list(syn)[:2] == ["segment.bytes", "log.segment.bytes"]
    assert syn["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def test_describe_unknown_topic(broker):
    res = ConfigResource(ConfigResource.Type.TOPIC, "no-such-topic-" + uuid.uuid4().hex[:6])
    with pytest.raises(ck.KafkaException) as e:
        admin(broker).describe_configs([res])[res].result(timeout=10)
    assert e.value.args[0].code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker(broker):
    cfg = describe(broker, ConfigResource.Type.BROKER, "1")
    assert cfg["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert cfg["num.partitions"].is_read_only
    assert cfg["log.segment.bytes"].value == "1073741824"
    assert cfg["message.max.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert not cfg["message.max.bytes"].is_read_only
    assert cfg["ssl.keystore.password"].is_sensitive
    assert cfg["ssl.keystore.password"].value is None
    assert cfg["process.roles"].value == "broker,controller"


def test_kafka_python_describe(broker):
    kadmin = pytest.importorskip("kafka.admin")
    name = new_topic(broker, {"cleanup.policy": "compact"})
    client = kadmin.KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        resp = client.describe_configs([kadmin.ConfigResource(kadmin.ConfigResourceType.TOPIC, name)])
        entries = {c[0]: c for c in resp[0].resources[0][4]}
        assert entries["cleanup.policy"][1] == "compact"
        assert entries["segment.bytes"][1] == "1073741824"
    finally:
        client.close()


def test_lab_describe_line(broker):
    name = new_topic(broker)
    r = broker.run_tool("kafka-topics", "--describe", "--topic", name, "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    assert "\tConfigs: segment.bytes=1073741824\n" in r.stdout


# ---- alter (legacy: replaces the whole set) ----

def test_alter_topic_replaces_set(broker):
    name = new_topic(broker, {"retention.ms": "1000"})
    res = ConfigResource(ConfigResource.Type.TOPIC, name, set_config={"cleanup.policy": "compact"})
    admin(broker).alter_configs([res])[res].result(timeout=10)
    cfg = describe(broker, ConfigResource.Type.TOPIC, name)
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["retention.ms"].value == "604800000"
    assert cfg["retention.ms"].is_default


def test_alter_topic_invalid_value(broker):
    name = new_topic(broker)
    res = ConfigResource(ConfigResource.Type.TOPIC, name, set_config={"segment.bytes": "10"})
    with pytest.raises(ck.KafkaException) as e:
        admin(broker).alter_configs([res])[res].result(timeout=10)
    err = e.value.args[0]
    assert err.code() == ck.KafkaError.INVALID_CONFIG
    assert "Invalid value 10 for configuration segment.bytes: Value must be at least 14" in err.str()


def test_alter_validate_only(broker):
    name = new_topic(broker)
    res = ConfigResource(ConfigResource.Type.TOPIC, name, set_config={"retention.ms": "5"})
    admin(broker).alter_configs([res], validate_only=True)[res].result(timeout=10)
    assert describe(broker, ConfigResource.Type.TOPIC, name)["retention.ms"].value == "604800000"


def test_alter_unknown_topic(broker):
    res = ConfigResource(ConfigResource.Type.TOPIC, "missing-" + uuid.uuid4().hex[:6],
                         set_config={"retention.ms": "5"})
    with pytest.raises(ck.KafkaException) as e:
        admin(broker).alter_configs([res])[res].result(timeout=10)
    assert e.value.args[0].code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART


def test_alter_broker_static_key_rejected(broker):
    res = ConfigResource(ConfigResource.Type.BROKER, "1", set_config={"num.partitions": "3"})
    with pytest.raises(ck.KafkaException) as e:
        admin(broker).alter_configs([res])[res].result(timeout=10)
    err = e.value.args[0]
    assert err.code() == ck.KafkaError.INVALID_REQUEST
    assert "Cannot update these configs dynamically: Set(num.partitions)" in err.str()


# ---- incremental ----

def test_incremental_topic_ops(broker):
    name = new_topic(broker, {"retention.ms": "1000"})
    r = incremental_alter(broker, [(TOPIC, name, [("cleanup.policy", OP_APPEND, "compact"),
                                                  ("retention.ms", OP_DELETE, None),
                                                  ("segment.ms", OP_SET, "60000")])])
    assert r == [(0, None, TOPIC, name)]
    cfg = describe(broker, ConfigResource.Type.TOPIC, name)
    assert cfg["cleanup.policy"].value == "delete,compact"
    assert cfg["retention.ms"].is_default
    assert cfg["segment.ms"].value == "60000"
    r = incremental_alter(broker, [(TOPIC, name, [("cleanup.policy", OP_SUBTRACT, "delete")])])
    assert r[0][0] == 0
    assert describe(broker, ConfigResource.Type.TOPIC, name)["cleanup.policy"].value == "compact"


def test_incremental_errors(broker):
    name = new_topic(broker)
    r = incremental_alter(broker, [(TOPIC, name, [("retention.ms", OP_APPEND, "5")])])
    assert r[0][:2] == (40, "Can't APPEND to key retention.ms because its type is not LIST.")
    r = incremental_alter(broker, [(TOPIC, name, [("retention.ms", OP_SET, "abc")])])
    assert r[0][:2] == (40, "Invalid value abc for configuration retention.ms: Not a number of type LONG")
    r = incremental_alter(broker, [(TOPIC, name, [("no.such.key", OP_SET, "1")])])
    assert r[0][:2] == (40, "Unknown topic config name: no.such.key")
    r = incremental_alter(broker, [(TOPIC, name, [("retention.ms", OP_SET, None)])])
    assert r[0][:2] == (42, "Null value not supported for : retention.ms")
    r = incremental_alter(broker, [(TOPIC, name, [("retention.ms", OP_SET, "1")]),
                                   (TOPIC, name, [("retention.ms", OP_SET, "2")])])
    assert [x[:2] for x in r] == [(42, "Each resource must appear at most once.")] * 2
    r = incremental_alter(broker, [(TOPIC, "gone-" + name, [("retention.ms", OP_SET, "1")])])
    assert r[0][:2] == (3, "The topic 'gone-%s' does not exist." % name)


def test_incremental_broker_dynamic(broker):
    r = incremental_alter(broker, [(BROKER, "1", [("log.retention.hours", OP_SET, "1")])])
    assert r[0][:2] == (42, "Cannot update these configs dynamically: Set(log.retention.hours)")
    r = incremental_alter(broker, [(BROKER, "", [("log.retention.ms", OP_SET, "3600000")])], validate_only=True)
    assert r[0][0] == 0
    r = incremental_alter(broker, [(BROKER, "1", [("message.max.bytes", OP_SET, "2000000")])])
    assert r[0][0] == 0
    try:
        cfg = describe(broker, ConfigResource.Type.BROKER, "1")
        assert cfg["message.max.bytes"].value == "2000000"
        assert cfg["message.max.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
        name = new_topic(broker)
        assert describe(broker, ConfigResource.Type.TOPIC, name)["max.message.bytes"].value == "2000000"
    finally:
        incremental_alter(broker, [(BROKER, "1", [("message.max.bytes", OP_DELETE, None)])])
