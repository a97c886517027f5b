"""Client quotas (issue 16): kafka-configs --entity-type users|clients|ips
with Kafka 3.6.1's output, AlterClientQuotas validation with Kafka's error
texts (hand-encoded v0, the Debian client libraries have no quota API),
quotas kept across a restart (metadata log and snapshot)."""
import socket
import struct


def _str(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _recv(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


def _call(broker, api_key, body):
    msg = struct.pack(">hhi", api_key, 0, 11) + _str("quota-test") + body
    host, port = broker.bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", _recv(s, 4))[0]
        return _recv(s, size)[4:]  # without the correlation id


def _read_str(data, pos):
    (n,) = struct.unpack_from(">h", data, pos)
    pos += 2
    if n < 0:
        return None, pos
    return data[pos:pos + n].decode(), pos + n


def alter_quotas(broker, entries, validate_only=False):
    """entries: [([(type, name)], [(key, value or None)])] -> [(code, message)]"""
    body = struct.pack(">i", len(entries))
    for entity, ops in entries:
        body += struct.pack(">i", len(entity))
        for t, n in entity:
            body += _str(t) + _str(n)
        body += struct.pack(">i", len(ops))
        for k, v in ops:
            body += _str(k) + struct.pack(">d?", 0.0 if v is None else v, v is None)
    body += struct.pack(">?", validate_only)
    data = _call(broker, 49, body)
    pos = 4  # throttle time
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    out = []
    for _ in range(n):
        (code,) = struct.unpack_from(">h", data, pos)
        msg, pos = _read_str(data, pos + 2)
        (ne,) = struct.unpack_from(">i", data, pos)
        pos += 4
        for _ in range(ne):
            _, pos = _read_str(data, pos)
            _, pos = _read_str(data, pos)
        out.append((code, msg))
    return out


def describe_quotas(broker, components, strict=False):
    """components: [(type, match_type, match)] -> (code, message, [({type: name}, {key: value})])"""
    body = struct.pack(">i", len(components))
    for t, mt, m in components:
        body += _str(t) + struct.pack(">b", mt) + _str(m)
    body += struct.pack(">?", strict)
    data = _call(broker, 48, body)
    pos = 4
    (code,) = struct.unpack_from(">h", data, pos)
    msg, pos = _read_str(data, pos + 2)
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    out = []
    for _ in range(max(n, 0)):
        (ne,) = struct.unpack_from(">i", data, pos)
        pos += 4
        ent = {}
        for _ in range(ne):
            t, pos = _read_str(data, pos)
            nm, pos = _read_str(data, pos)
            ent[t] = nm
        (nv,) = struct.unpack_from(">i", data, pos)
        pos += 4
        vals = {}
        for _ in range(nv):
            k, pos = _read_str(data, pos)
            (v,) = struct.unpack_from(">d", data, pos)
            pos += 8
            vals[k] = v
        out.append((ent, vals))
    return code, msg, out


def configs(broker, *args):
    return broker.run_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, *args)


def test_kafka_configs_quota_alter_and_describe(broker):
    r = configs(broker, "--entity-type", "users", "--entity-name", "alice", "--alter", "--add-config",
                "producer_byte_rate=1024,consumer_byte_rate=2048,request_percentage=50")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Completed updating config for user alice.\n"
    r = configs(broker, "--entity-type", "users", "--entity-name", "alice", "--describe")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("Quota configs for user-principal 'alice' are request_percentage=50.0, "
                        "producer_byte_rate=1024.0, consumer_byte_rate=2048.0\n")

    r = configs(broker, "--entity-type", "clients", "--entity-default", "--alter", "--add-config",
                "producer_byte_rate=10000000")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Completed updating default config for clients in the cluster.\n"
    r = configs(broker, "--entity-type", "clients", "--entity-default", "--describe")
    assert r.stdout == "Quota configs for the default client-id are producer_byte_rate=1.0E7\n"

    r = configs(broker, "--entity-type", "clients", "--entity-name", "c1", "--alter", "--add-config",
                "consumer_byte_rate=4096")
    assert r.stdout == "Completed updating config for client c1.\n", r.stderr
    r = configs(broker, "--entity-type", "clients", "--describe")
    lines = sorted(r.stdout.splitlines())
    assert lines == ["Quota configs for client-id 'c1' are consumer_byte_rate=4096.0",
                     "Quota configs for the default client-id are producer_byte_rate=1.0E7"]

    r = configs(broker, "--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients",
                "--entity-name", "c1", "--alter", "--add-config", "producer_byte_rate=300")
    assert r.returncode == 0, r.stderr
    r = configs(broker, "--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients",
                "--entity-name", "c1", "--describe")
    assert r.stdout == "Quota configs for user-principal 'alice', client-id 'c1' are producer_byte_rate=300.0\n"

    r = configs(broker, "--entity-type", "ips", "--entity-name", "127.0.0.1", "--alter", "--add-config",
                "connection_creation_rate=10")
    assert r.stdout == "Completed updating config for ip 127.0.0.1.\n", r.stderr
    r = configs(broker, "--entity-type", "ips", "--entity-name", "127.0.0.1", "--describe")
    assert r.stdout == "Quota configs for ip '127.0.0.1' are connection_creation_rate=10.0\n"

    # deletions: known keys go, unknown ones are refused as Kafka's tool does
    r = configs(broker, "--entity-type", "users", "--entity-name", "alice", "--alter", "--delete-config",
                "request_percentage")
    assert r.returncode == 0, r.stderr
    r = configs(broker, "--entity-type", "users", "--entity-name", "alice", "--describe")
    assert r.stdout == "Quota configs for user-principal 'alice' are producer_byte_rate=1024.0, consumer_byte_rate=2048.0\n"
    r = configs(broker, "--entity-type", "clients", "--entity-name", "c1", "--alter", "--delete-config",
                "producer_byte_rate")
    assert r.returncode == 1 and r.stderr == "Invalid config(s): producer_byte_rate\n"

    # tool-side checks
    r = configs(broker, "--entity-type", "clients", "--entity-name", "c1", "--alter", "--add-config", "foo=1")
    assert r.returncode == 1
    assert r.stderr == ("Only quota configs can be added for 'clients' using --bootstrap-server. "
                        "Unexpected config names: Set(foo)\n")
    r = configs(broker, "--entity-type", "ips", "--entity-name", "127.0.0.1", "--alter", "--add-config",
                "producer_byte_rate=1")
    assert r.stderr == ("Only connection quota configs can be added for 'ips' using --bootstrap-server. "
                        "Unexpected config names: producer_byte_rate\n")
    r = configs(broker, "--entity-type", "users", "--entity-name", "bob", "--alter", "--add-config",
                "producer_byte_rate=abc")
    assert r.stderr == "Cannot parse quota configuration value for producer_byte_rate: abc\n"

    # kept across a restart
    broker.restart()
    r = configs(broker, "--entity-type", "clients", "--describe")
    assert sorted(r.stdout.splitlines()) == lines


def test_alter_client_quotas_validation(broker):
    user = [("user", "u1")]
    assert alter_quotas(broker, [(user, [("producer_byte_rate", 1000.0)])]) == [(0, None)]
    cases = [
        ([], [("producer_byte_rate", 1.0)], "Invalid empty client quota entity"),
        ([("group", "g")], [("producer_byte_rate", 1.0)], "Unhandled client quota entity type: group"),
        ([("user", "")], [("producer_byte_rate", 1.0)], "Empty user not supported"),
        ([("user", "a"), ("user", "b")], [("producer_byte_rate", 1.0)],
         "Invalid client quota entity, duplicate entity entry user"),
        ([("ip", "1.2.3.4"), ("user", "a")], [("connection_creation_rate", 1.0)],
         "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"),
        (user, [("foo", 1.0)], "Invalid configuration key foo"),
        (user, [("connection_creation_rate", 1.0)], "Invalid configuration key connection_creation_rate"),
        ([("ip", "1.2.3.4")], [("producer_byte_rate", 1.0)], "Invalid configuration key producer_byte_rate"),
        (user, [("producer_byte_rate", 0.0)], "Quota producer_byte_rate must be greater than 0"),
        (user, [("producer_byte_rate", 1.5)], "producer_byte_rate cannot be a fractional value."),
        ([("ip", "not an ip")], [("connection_creation_rate", 1.0)],
         "not an ip is not a valid IP or resolvable host."),
    ]
    for entity, ops, text in cases:
        assert alter_quotas(broker, [(entity, ops)]) == [(42, text)], text
    # validate_only writes nothing
    assert alter_quotas(broker, [([("client-id", "v")], [("producer_byte_rate", 5.0)])], True) == [(0, None)]
    code, msg, entries = describe_quotas(broker, [("client-id", 0, "v")])
    assert (code, entries) == (0, [])
    code, msg, entries = describe_quotas(broker, [("user", 0, "u1")])
    assert entries == [({"user": "u1"}, {"producer_byte_rate": 1000.0})]
    # describe filters as ClientQuotasImage.describe
    code, msg, _ = describe_quotas(broker, [("ip", 2, None), ("user", 2, None)])
    assert code == 42 and msg == ("Invalid entity filter component combination. IP filter component should not "
                                  "be used with user or clientId filter component.")
    code, msg, _ = describe_quotas(broker, [("user", 0, None)])
    assert (code, msg) == (42, "Request specified MATCH_TYPE_EXACT, but set match string to null.")
    code, msg, _ = describe_quotas(broker, [("topic", 2, None)])
    assert (code, msg) == (35, "Unsupported entity type topic")
    # removal
    assert alter_quotas(broker, [(user, [("producer_byte_rate", None)])]) == [(0, None)]
    assert describe_quotas(broker, [("user", 0, "u1")])[2] == []


# ---- enforcement (ClientQuotaManager): timing bounds are loose lower bounds ----

import time  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402

QUOTA = 100_000         # bytes/s
TOTAL = 2_000_000       # bytes written or read
# Kafka's Rate spans at least (11 - 1) windows of 1 s, so about 10 s of quota
# goes before the first throttle: the rest takes (TOTAL / QUOTA - 10) s.
# Half of that is the bound (slack for the window and the machine).
MIN_SECONDS = (TOTAL / QUOTA - 10) / 2


def _new_topic(broker):
    name = "quota-" + uuid.uuid4().hex[:8]
    r = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", name,
                        "--partitions", "1", "--replication-factor", "1")
    assert r.returncode == 0, r.stderr
    return name


def _produce(ck, broker, topic, client_id, total):
    throttles = []
    p = ck.Producer({"bootstrap.servers": broker.bootstrap, "client.id": client_id, "linger.ms": 5,
                     "batch.size": 65536, "throttle_cb": lambda ev: throttles.append(ev.throttle_time)})
    value = b"x" * 10_000
    start = time.time()
    for _ in range(total // len(value)):
        while True:
            try:
                p.produce(topic, value)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(120) == 0
    return time.time() - start, throttles


def test_producer_byte_rate_throttles_only_that_client(broker):
    ck = pytest.importorskip("confluent_kafka")
    topic = _new_topic(broker)
    r = configs(broker, "--entity-type", "clients", "--entity-name", "slow-producer", "--alter", "--add-config",
                f"producer_byte_rate={QUOTA}")
    assert r.returncode == 0, r.stderr
    fast, fast_throttles = _produce(ck, broker, topic, "fast-producer", TOTAL)
    slow, slow_throttles = _produce(ck, broker, topic, "slow-producer", TOTAL)
    assert slow >= MIN_SECONDS, (slow, fast)
    assert slow_throttles and max(slow_throttles) > 0
    assert fast < MIN_SECONDS and not any(fast_throttles), (fast, fast_throttles)
    # about the quota: never much faster than it once past the burst
    assert TOTAL / slow < QUOTA * 2.5, TOTAL / slow


def _consume(ck, broker, topic, client_id, total):
    throttles = []
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "client.id": client_id, "group.id": client_id,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "throttle_cb": lambda ev: throttles.append(ev.throttle_time)})
    c.subscribe([topic])
    got = 0
    start = time.time()
    deadline = start + 120
    while got < total and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += len(m.value())
    elapsed = time.time() - start
    c.close()
    assert got >= total, got
    return elapsed, throttles


def test_consumer_byte_rate_throttles_only_that_client(broker):
    ck = pytest.importorskip("confluent_kafka")
    topic = _new_topic(broker)
    _produce(ck, broker, topic, "loader", TOTAL)
    r = configs(broker, "--entity-type", "clients", "--entity-name", "slow-consumer", "--alter", "--add-config",
                f"consumer_byte_rate={QUOTA}")
    assert r.returncode == 0, r.stderr
    fast, fast_throttles = _consume(ck, broker, topic, "fast-consumer", TOTAL)
    slow, slow_throttles = _consume(ck, broker, topic, "slow-consumer", TOTAL)
    assert slow >= MIN_SECONDS, (slow, fast)
    assert slow_throttles and max(slow_throttles) > 0
    assert fast < MIN_SECONDS and not any(fast_throttles), (fast, fast_throttles)


def test_user_quota_with_sasl_plain():
    """A user quota follows the authenticated principal (User:alice), whatever its client id."""
    ck = pytest.importorskip("confluent_kafka")
    import shutil
    import tempfile

    from test_sasl import ADMIN_PW, ALICE_PW, SaslNode, ck_conf

    d = tempfile.mkdtemp(prefix="samsa-quota-sasl-")
    n = SaslNode(d)
    try:
        topic = _new_topic(n.b)
        r = configs(n.b, "--entity-type", "users", "--entity-name", "alice", "--alter", "--add-config",
                    f"producer_byte_rate={QUOTA}")
        assert r.returncode == 0, r.stderr

        # batch.size keeps requests small: a broker answers a throttled request
        # at once and mutes the connection after it (KIP-219), so with 1 MB
        # batches the whole 2 MB may be acknowledged before any mute matters.
        def produce(user, password):
            throttles, failed = [], []
            p = ck.Producer(ck_conf(n, "PLAIN", user, password, **{
                "client.id": "same-client", "linger.ms": 5, "batch.size": 65536,
                "throttle_cb": lambda ev: throttles.append(ev.throttle_time),
                "on_delivery": lambda err, msg: err and failed.append(str(err))}))
            start = time.time()
            for _ in range(TOTAL // 10_000):
                while True:
                    try:
                        p.produce(topic, b"y" * 10_000)
                        break
                    except BufferError:
                        p.poll(0.05)
                p.poll(0)
            assert p.flush(120) == 0
            assert not failed, (user, len(failed), failed[:3])
            return time.time() - start, throttles

        fast, fast_throttles = produce("admin", ADMIN_PW)
        slow, slow_throttles = produce("alice", ALICE_PW)
        assert slow >= MIN_SECONDS and slow_throttles, (slow, fast, slow_throttles)
        assert fast < MIN_SECONDS and not any(fast_throttles), (fast, fast_throttles)
    finally:
        code = n.b.stop()
        log = n.b.log_text()
        shutil.rmtree(d, ignore_errors=True)
        assert code in (0, None), log[-4000:]


def _api_versions_answered(broker, client_id, count, seconds):
    """ApiVersions v0 one after the other on one connection: how many are answered in time."""
    host, port = broker.bootstrap.rsplit(":", 1)
    msg = struct.pack(">hhi", 18, 0, 1) + _str(client_id)
    answered = 0
    deadline = time.time() + seconds
    with socket.create_connection((host, int(port)), timeout=seconds) as s:
        for _ in range(count):
            s.settimeout(max(0.01, deadline - time.time()))
            try:
                s.sendall(struct.pack(">i", len(msg)) + msg)
                size = struct.unpack(">i", _recv(s, 4))[0]
                _recv(s, size)
            except (socket.timeout, OSError):
                break
            answered += 1
            if time.time() > deadline:
                break
    return answered


def test_request_percentage_mutes_that_client(broker):
    # 0.001 % of a thread is about 100 us of handling per 10 s: a few hundred
    # requests go over it, and each one after is muted for up to a window (1 s)
    r = configs(broker, "--entity-type", "clients", "--entity-name", "busy", "--alter", "--add-config",
                "request_percentage=0.001")
    assert r.returncode == 0, r.stderr
    idle = _api_versions_answered(broker, "idle", 500, 20)
    busy = _api_versions_answered(broker, "busy", 500, 4)
    assert idle == 500, idle
    assert busy < 250, busy


def _connections_served(broker, count, source=None):
    """New connections one after the other, each asking ApiVersions: how many
    are answered before the first one is closed unanswered (and how long that took)."""
    host, port = broker.bootstrap.rsplit(":", 1)
    msg = struct.pack(">hhi", 18, 0, 1) + _str("conn-rate")
    for i in range(count):
        start = time.time()
        with socket.create_connection((host, int(port)), timeout=5,
                                      source_address=(source, 0) if source else None) as s:
            s.sendall(struct.pack(">i", len(msg)) + msg)
            try:
                size = struct.unpack(">i", _recv(s, 4))[0]
                _recv(s, size)
            except (AssertionError, OSError):
                return i, time.time() - start
    return count, None


def test_connection_creation_rate_per_ip(broker):
    # 2 connections/s over the 10 s the rate spans: about 20 go, then a new one
    # is held (up to one window) and closed unanswered, as ConnectionQuotas
    r = configs(broker, "--entity-type", "ips", "--entity-name", "127.0.0.1", "--alter", "--add-config",
                "connection_creation_rate=2")
    assert r.returncode == 0, r.stderr
    served, held = _connections_served(broker, 60)
    assert 10 <= served <= 40, served
    assert held is not None and held >= 0.05, held
    # another address is not limited
    served, held = _connections_served(broker, 60, source="127.0.0.2")
    assert served == 60 and held is None, (served, held)


# -- controller_mutation_rate (KIP-599): CreateTopics v7 and v5, hand-encoded
# (flexible versions; the Debian clients send CreateTopics below v6, where the
# quota only throttles).

def _uvarint(n):
    out = b""
    while True:
        if n < 0x80:
            return out + bytes([n])
        out += bytes([(n & 0x7f) | 0x80])
        n >>= 7


def _read_uvarint(data, pos):
    shift = n = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7f) << shift
        if b < 0x80:
            return n, pos
        shift += 7


def create_topic_flexible(broker, version, client_id, name, partitions):
    """One CreateTopics (v5+) -> (throttle_time_ms, error_code, error_message)."""
    nb = name.encode()
    body = (_uvarint(2) + _uvarint(len(nb) + 1) + nb + struct.pack(">ih", partitions, 1)
            + _uvarint(1) + _uvarint(1) + _uvarint(0)   # no assignments, no configs, no tags
            + struct.pack(">i?", 30000, False) + _uvarint(0))
    cid = client_id.encode()
    msg = struct.pack(">hhih", 19, version, 7, len(cid)) + cid + _uvarint(0) + body
    host, port = broker.bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, size)
    pos = 5  # correlation id, header tags
    (throttle,) = struct.unpack_from(">i", data, pos)
    n, pos = _read_uvarint(data, pos + 4)
    assert n == 2, n
    ln, pos = _read_uvarint(data, pos)
    pos += ln - 1 + (16 if version >= 7 else 0)  # name, topic id (v7+)
    (code,) = struct.unpack_from(">h", data, pos)
    ln, pos = _read_uvarint(data, pos + 2)
    return throttle, code, (data[pos:pos + ln - 1].decode() if ln else None)


def test_controller_mutation_rate(broker):
    r = configs(broker, "--entity-type", "clients", "--entity-name", "mutator", "--alter", "--add-config",
                "controller_mutation_rate=1")
    assert r.returncode == 0, r.stderr
    # a bucket of 11 partitions (11 windows of 1/s): 20 go through, leaving it 9 below zero
    assert create_topic_flexible(broker, 7, "mutator", "mut-a", 20) == (0, 0, None)
    # v6+ is strict: refused with the time until the bucket is back at zero
    throttle, code, msg = create_topic_flexible(broker, 7, "mutator", "mut-b", 1)
    assert code == 89 and msg == "The throttling quota has been exceeded.", (code, msg)
    assert 5000 < throttle <= 9000, throttle
    # v5 is permissive: created, and only the response is throttled
    throttle, code, _ = create_topic_flexible(broker, 5, "mutator", "mut-c", 1)
    assert code == 0 and 5000 < throttle <= 10000, (code, throttle)
    # other clients are not limited
    assert create_topic_flexible(broker, 7, "other", "mut-d", 1) == (0, 0, None)
    r = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--list")
    assert sorted(t for t in r.stdout.split() if t.startswith("mut-")) == ["mut-a", "mut-c", "mut-d"], r.stdout


def test_kafka_topics_waits_out_the_mutation_quota(broker, tmp_path):
    """kafka-topics asks again for a topic refused with THROTTLING_QUOTA_EXCEEDED once the throttle
    time is over, as Java's admin client does by default (retryOnQuotaViolation)."""
    r = configs(broker, "--entity-type", "clients", "--entity-name", "slow-admin", "--alter", "--add-config",
                "controller_mutation_rate=1")
    assert r.returncode == 0, r.stderr
    cfg = tmp_path / "admin.properties"
    cfg.write_text("client.id=slow-admin\n")

    def topics(*args):
        return broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--command-config", str(cfg),
                               *args)
    # 16 partitions from a bucket of 11 leave it 5 below zero: 5 s until the next topic is allowed
    r = topics("--create", "--topic", "wait-a", "--partitions", "16")
    assert r.stdout == "Created topic wait-a.\n", r.stdout + r.stderr
    start = time.time()
    r = topics("--create", "--topic", "wait-b", "--partitions", "1")
    assert r.stdout == "Created topic wait-b.\n", r.stdout + r.stderr
    # (a lower bound only: a slow machine makes it longer; 4.5 s of slack for starting the tool)
    assert time.time() - start >= 0.5, "created without waiting for the quota"
    # the bucket is below zero again (wait-b's partition): CreatePartitions and DeleteTopics wait too
    r = topics("--alter", "--topic", "wait-b", "--partitions", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    r = topics("--delete", "--topic", "wait-a")
    assert r.returncode == 0, r.stdout + r.stderr
    r = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--list")
    assert [t for t in r.stdout.split() if t.startswith("wait-")] == ["wait-b"], r.stdout
    r = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--describe", "--topic", "wait-b")
    assert "PartitionCount: 2" in r.stdout, r.stdout


def test_kafka_configs_entity_shorthands(broker):
    """ConfigCommand's --user/--client/--ip and --user-defaults/--client-defaults/--ip-defaults."""
    r = configs(broker, "--user", "sh-alice", "--client", "sh-c1", "--alter", "--add-config", "producer_byte_rate=300")
    assert r.returncode == 0, r.stderr
    r = configs(broker, "--entity-type", "users", "--entity-name", "sh-alice", "--entity-type", "clients",
                "--entity-name", "sh-c1", "--describe")
    assert r.stdout == "Quota configs for user-principal 'sh-alice', client-id 'sh-c1' are producer_byte_rate=300.0\n"
    r = configs(broker, "--user-defaults", "--alter", "--add-config", "consumer_byte_rate=5000")
    assert r.stdout == "Completed updating default config for users in the cluster.\n", r.stdout + r.stderr
    r = configs(broker, "--entity-type", "users", "--entity-default", "--describe")
    assert r.stdout == "Quota configs for the default user-principal are consumer_byte_rate=5000.0\n", r.stdout
    r = configs(broker, "--client-defaults", "--alter", "--add-config", "request_percentage=70")
    assert r.returncode == 0, r.stderr
    r = configs(broker, "--client-defaults", "--describe")
    assert r.stdout == "Quota configs for the default client-id are request_percentage=70.0\n", r.stdout
    r = configs(broker, "--ip", "127.0.0.9", "--alter", "--add-config", "connection_creation_rate=100")
    assert r.stdout == "Completed updating config for ip 127.0.0.9.\n", r.stdout + r.stderr
    r = configs(broker, "--ip-defaults", "--alter", "--add-config", "connection_creation_rate=200")
    assert r.returncode == 0, r.stderr
    r = configs(broker, "--entity-type", "ips", "--describe")
    assert sorted(r.stdout.splitlines()) == ["Quota configs for ip '127.0.0.9' are connection_creation_rate=100.0",
                                             "Quota configs for the default ip are connection_creation_rate=200.0"], \
        r.stdout
    r = configs(broker, "--user", "sh-alice", "--entity-type", "clients", "--entity-name", "sh-c1", "--describe")
    assert r.stdout == "Quota configs for user-principal 'sh-alice', client-id 'sh-c1' are producer_byte_rate=300.0\n"
