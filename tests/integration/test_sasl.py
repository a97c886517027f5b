"""SASL on a SASL_PLAINTEXT listener, as a Kafka operator configures it.

One node with a PLAINTEXT listener (for set-up) and a SASL_PLAINTEXT
listener with PLAIN (users from listener.name.sasl_plaintext.plain.sasl.jaas.config)
and SCRAM-SHA-256/512 (credentials created with kafka-configs.sh, stored as
UserScramCredentialRecords in the metadata log). Clients: confluent-kafka
(librdkafka), kafka-python, kcat, kafkajs and our own tools. Wrong passwords
fail with each client's authentication error while the broker keeps serving;
a request before authentication closes only its own connection.
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, Broker, free_port, tool_env

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
NODE = shutil.which("node") or "/usr/bin/node"
KCAT = shutil.which("kcat")

ADMIN_PW = "admin-secret"
ALICE_PW = "alice-secret"
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              f'password="{ADMIN_PW}" user_admin="{ADMIN_PW}" user_alice="{ALICE_PW}";')


class SaslNode:
    def __init__(self, workdir, extra=None, format_args=()):
        self.sasl_port = free_port()
        overrides = {
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
            "inter.broker.listener.name": "PLAINTEXT",
            "connection.failed.authentication.delay.ms": "10",
        }
        overrides.update(extra or {})
        self.b = Broker(workdir, overrides)
        # Broker() formatted the node with PLAINTEXT listeners only; add the SASL one.
        port = self.b.port
        cport = self.b.overrides["listeners"].split("CONTROLLER://127.0.0.1:")[1]
        with open(self.b.config, "a") as f:
            f.write(f"listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},"
                    f"CONTROLLER://127.0.0.1:{cport}\n")
            f.write(f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},"
                    f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}\n")
        if format_args:
            shutil.rmtree(self.b.log_dir, ignore_errors=True)
            r = self.b.run_tool("kafka-storage", "format", "-t", self.b.cluster_id, "-c", self.b.config, *format_args)
            assert r.returncode == 0, r.stdout + r.stderr
            self.format_output = r.stdout
        self.b.start()
        self.bootstrap = self.b.bootstrap
        self.sasl_bootstrap = f"127.0.0.1:{self.sasl_port}"
        self.workdir = workdir

    def tool(self, name, *args, **kw):
        return self.b.run_tool(name, *args, **kw)

    def command_config(self, mechanism, user, password, name="client.properties"):
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write("security.protocol=SASL_PLAINTEXT\n")
            f.write(f"sasl.mechanism={mechanism}\n")
            f.write(f'sasl.jaas.config={module} required username="{user}" password="{password}";\n')
        return path

    def add_scram(self, user, password, mechanism="SCRAM-SHA-256", iterations=None, via_sasl=False):
        spec = f"{mechanism}=[password={password}]" if iterations is None else \
            f"{mechanism}=[iterations={iterations},password={password}]"
        args = ["--bootstrap-server", self.bootstrap]
        if via_sasl:
            args = ["--bootstrap-server", self.sasl_bootstrap, "--command-config",
                    self.command_config("PLAIN", "admin", ADMIN_PW, "admin.properties")]
        return self.tool("kafka-configs", *args, "--entity-type", "users", "--entity-name", user,
                         "--alter", "--add-config", spec)


@pytest.fixture
def node():
    d = tempfile.mkdtemp(prefix="samsa-sasl-")
    n = SaslNode(d)
    yield n
    code = n.b.stop()
    log = n.b.log_text()
    shutil.rmtree(d, ignore_errors=True)
    assert code in (0, None), f"broker exited with {code}:\n{log[-4000:]}"


def ck_conf(node, mechanism, user, password, **extra):
    c = {"bootstrap.servers": node.sasl_bootstrap, "security.protocol": "SASL_PLAINTEXT",
         "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
    c.update(extra)
    return c


def ck_roundtrip(node, mechanism, user, password, topic, count=5):
    from confluent_kafka import Consumer, Producer
    p = Producer(ck_conf(node, mechanism, user, password))
    for i in range(count):
        p.produce(topic, value=f"{mechanism}-{i}".encode())
    assert p.flush(30) == 0
    c = Consumer(ck_conf(node, mechanism, user, password, **{"group.id": f"g-{topic}",
                                                              "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < count and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    return got


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_confluent_kafka_produces_and_consumes(node, mechanism):
    if mechanism != "PLAIN":
        r = node.add_scram("alice", ALICE_PW, mechanism, iterations=8192)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "Completed updating config for user alice.\n"
    topic = "t-" + mechanism.lower()
    r = node.tool("kafka-topics", "--bootstrap-server", node.bootstrap, "--create", "--topic", topic)
    assert r.returncode == 0, r.stderr
    got = ck_roundtrip(node, mechanism, "alice", ALICE_PW, topic)
    assert got == [f"{mechanism}-{i}" for i in range(5)]


def test_kafka_python_plain_and_scram(node):
    from kafka import KafkaConsumer, KafkaProducer
    assert node.add_scram("bob", "bob-pw", "SCRAM-SHA-512").returncode == 0
    for mech, user, pw in [("PLAIN", "alice", ALICE_PW), ("SCRAM-SHA-512", "bob", "bob-pw")]:
        topic = "kp-" + mech.lower()
        common = dict(bootstrap_servers=node.sasl_bootstrap, security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism=mech, sasl_plain_username=user, sasl_plain_password=pw)
        p = KafkaProducer(**common)
        for i in range(3):
            p.send(topic, f"{i}".encode()).get(timeout=30)
        p.close()
        c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **common)
        assert [m.value for m in c] == [b"0", b"1", b"2"]
        c.close()


@pytest.mark.skipif(not KCAT, reason="kcat not installed")
def test_kcat_scram_sha_256(node):
    assert node.add_scram("carol", "carol-pw", "SCRAM-SHA-256").returncode == 0
    sasl = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-256",
            "-X", "sasl.username=carol", "-X", "sasl.password=carol-pw"]
    r = subprocess.run([KCAT, "-b", node.sasl_bootstrap, *sasl, "-P", "-t", "kc"], input="a\nb\nc\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([KCAT, "-b", node.sasl_bootstrap, *sasl, "-C", "-t", "kc", "-o", "beginning", "-e", "-q"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["a", "b", "c"]
    bad = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-256",
           "-X", "sasl.username=carol", "-X", "sasl.password=wrong"]
    r = subprocess.run([KCAT, "-b", node.sasl_bootstrap, *bad, "-L", "-m", "5"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "Authentication failed" in r.stderr, r.stderr


@pytest.mark.skipif(not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")),
                    reason="kafkajs not installed")
@pytest.mark.parametrize("mechanism,user,pw", [("plain", "alice", ALICE_PW), ("scram-sha-256", "dave", "dave-pw"),
                                               ("scram-sha-512", "dave", "dave-pw"),
                                               ("scram-sha-256", "dave", "wrong")])
def test_kafkajs(node, mechanism, user, pw):
    for m in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        assert node.add_scram("dave", "dave-pw", m).returncode == 0
    topic = "js-" + mechanism
    r = subprocess.run([NODE, os.path.join(JS_DIR, "sasl_kafkajs.js"), node.sasl_bootstrap, mechanism, user, pw,
                        topic, "4"], capture_output=True, text=True, timeout=150, cwd=JS_DIR)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads([l for l in r.stdout.splitlines() if l.startswith("RESULT ")][-1][7:])
    if pw == "wrong":
        assert res["error"] == "KafkaJSSASLAuthenticationError", res
        assert "SASL SCRAM SHA256 authentication failed" in res["message"], res
    else:
        assert res == {"consumed": [f"v-{i}" for i in range(4)]}


def test_wrong_password_fails_and_broker_keeps_serving(node):
    from confluent_kafka import KafkaException, Producer
    from confluent_kafka.admin import AdminClient
    errors = []
    a = AdminClient(ck_conf(node, "PLAIN", "alice", "not-her-password",
                            error_cb=lambda e: errors.append(e)))
    with pytest.raises(KafkaException):
        a.list_topics(timeout=5)
    deadline = time.time() + 10
    while not errors and time.time() < deadline:
        a.poll(0.2)
    assert any(e.code() == -169 for e in errors), errors  # _AUTHENTICATION
    assert any("Authentication failed: Invalid username or password" in e.str() for e in errors), errors
    # the broker logged it once per attempt and keeps serving the others
    assert "Failed authentication with /127.0.0.1" in node.b.log_text()
    ok = AdminClient(ck_conf(node, "PLAIN", "admin", ADMIN_PW))
    assert ok.list_topics(timeout=10).brokers
    p = Producer(ck_conf(node, "PLAIN", "admin", ADMIN_PW))
    p.produce("after-bad-login", b"x")
    assert p.flush(30) == 0


def kafka_request(sock, api_key, version, corr, body, client_id=b"raw"):
    hdr = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    msg = hdr + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)


def read_frame(sock, timeout=5):
    sock.settimeout(timeout)
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            return None
        data += chunk
    n = struct.unpack(">i", data)[0]
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def test_request_before_authentication_closes_only_that_connection(node):
    other = socket.create_connection(("127.0.0.1", node.sasl_port))
    s = socket.create_connection(("127.0.0.1", node.sasl_port))
    kafka_request(s, 3, 1, 7, struct.pack(">i", 0))  # Metadata v1, no topics
    assert read_frame(s) is None  # closed without an answer
    s.close()
    # the other connection, opened before, still authenticates and is served
    mech = b"PLAIN"
    kafka_request(other, 17, 1, 1, struct.pack(">h", len(mech)) + mech)
    resp = read_frame(other)
    corr, err, n = struct.unpack(">ihi", resp[:10])
    assert (corr, err) == (1, 0)
    names, pos = [], 10
    for _ in range(n):
        ln = struct.unpack(">h", resp[pos:pos + 2])[0]
        names.append(resp[pos + 2:pos + 2 + ln].decode())
        pos += 2 + ln
    assert names == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    token = b"\0alice\0" + ALICE_PW.encode()
    kafka_request(other, 36, 1, 2, struct.pack(">i", len(token)) + token)  # SaslAuthenticate v1
    resp = read_frame(other)
    corr, err = struct.unpack(">ih", resp[:6])
    assert (corr, err) == (2, 0)
    kafka_request(other, 3, 1, 3, struct.pack(">i", 0))
    resp = read_frame(other)
    assert resp is not None and struct.unpack(">i", resp[:4])[0] == 3
    other.close()


def test_unsupported_mechanism_and_sasl_on_plaintext_listener(node):
    s = socket.create_connection(("127.0.0.1", node.sasl_port))
    kafka_request(s, 17, 1, 1, struct.pack(">h", 6) + b"GSSAPI")
    resp = read_frame(s)
    corr, err, n = struct.unpack(">ihi", resp[:10])
    assert (corr, err, n) == (1, 33, 3)  # UNSUPPORTED_SASL_MECHANISM with the enabled list
    assert read_frame(s) is None  # then closed
    s.close()
    p = socket.create_connection(("127.0.0.1", node.b.port))
    kafka_request(p, 17, 1, 1, struct.pack(">h", 5) + b"PLAIN")
    corr, err = struct.unpack(">ih", read_frame(p)[:6])
    assert (corr, err) == (1, 34)  # ILLEGAL_SASL_STATE on a PLAINTEXT listener
    p.close()


def test_scram_user_added_live_used_then_deleted(node):
    r = node.add_scram("erin", "erin-pw", "SCRAM-SHA-256", iterations=8192, via_sasl=True)
    assert r.returncode == 0, r.stderr
    admin_cfg = os.path.join(node.workdir, "admin.properties")
    r = node.add_scram("erin", "erin-pw-512", "SCRAM-SHA-512", via_sasl=True)
    assert r.returncode == 0, r.stderr
    r = node.tool("kafka-configs", "--bootstrap-server", node.sasl_bootstrap, "--command-config", admin_cfg,
                  "--describe", "--entity-type", "users", "--entity-name", "erin")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("SCRAM credential configs for user-principal 'erin' are "
                        "SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096\n")
    # our admin tool logs in with it
    erin_cfg = node.command_config("SCRAM-SHA-256", "erin", "erin-pw", "erin.properties")
    r = node.tool("kafka-topics", "--bootstrap-server", node.sasl_bootstrap, "--command-config", erin_cfg,
                  "--create", "--topic", "erin-topic")
    assert r.returncode == 0, r.stderr
    assert ck_roundtrip(node, "SCRAM-SHA-256", "erin", "erin-pw", "erin-topic", 2) == ["SCRAM-SHA-256-0",
                                                                                     "SCRAM-SHA-256-1"]
    r = node.tool("kafka-configs", "--bootstrap-server", node.sasl_bootstrap, "--command-config", admin_cfg,
                  "--alter", "--entity-type", "users", "--entity-name", "erin", "--delete-config", "SCRAM-SHA-256")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Completed updating config for user erin.\n"
    r = node.tool("kafka-topics", "--bootstrap-server", node.sasl_bootstrap, "--command-config", erin_cfg, "--list")
    assert r.returncode != 0
    assert r.stdout == ("Error while executing topic command : Authentication failed during authentication due "
                        "to invalid credentials with SASL mechanism SCRAM-SHA-256\n"), r.stdout + r.stderr
    r = node.tool("kafka-configs", "--bootstrap-server", node.bootstrap, "--describe", "--entity-type", "users")
    assert r.stdout == "SCRAM credential configs for user-principal 'erin' are SCRAM-SHA-512=iterations=4096\n"
    # errors as Kafka's ConfigCommand and ScramControlManager give them
    r = node.add_scram("erin", "x", "SCRAM-SHA-256", iterations=1000)
    assert r.returncode == 1
    assert r.stderr == "Iterations 1000 is less than the minimum 4096 required for SCRAM-SHA-256\n"
    r = node.add_scram("erin", "x", "SCRAM-SHA-256", iterations=20000)
    assert r.returncode == 1
    assert "org.apache.kafka.common.errors.UnacceptableCredentialException: Too many iterations" in r.stderr
    r = node.tool("kafka-configs", "--bootstrap-server", node.bootstrap, "--alter", "--entity-type", "users",
                  "--entity-name", "nobody", "--delete-config", "SCRAM-SHA-512")
    assert r.returncode == 1
    assert ("org.apache.kafka.common.errors.ResourceNotFoundException: Attempt to delete a user credential that "
            "does not exist") in r.stderr
    # credentials survive a restart (replayed from the metadata log)
    node.b.restart()
    assert ck_roundtrip(node, "SCRAM-SHA-512", "erin", "erin-pw-512", "erin-topic", 2) == \
        ["SCRAM-SHA-512-0", "SCRAM-SHA-512-1"]


def test_kafka_storage_format_add_scram():
    import base64
    import hashlib
    salted = base64.b64encode(hashlib.pbkdf2_hmac("sha512", b"frank-512", b"pepper", 8192)).decode()
    d = tempfile.mkdtemp(prefix="samsa-sasl-")
    try:
        n = SaslNode(d, format_args=(
            "--add-scram", "SCRAM-SHA-256=[name=frank,password=frank-pw]",
            "--add-scram", f"SCRAM-SHA-512=[name=frank,salt={base64.b64encode(b'pepper').decode()},"
                           f"saltedpassword={salted},iterations=8192]"))
        assert n.format_output == f"Formatting {n.b.log_dir} with metadata.version 3.6-IV2.\n"
        assert os.path.exists(os.path.join(n.b.log_dir, "bootstrap.checkpoint"))
        r = n.tool("kafka-configs", "--bootstrap-server", n.bootstrap, "--describe", "--entity-type", "users",
                   "--entity-name", "frank")
        assert r.stdout == ("SCRAM credential configs for user-principal 'frank' are "
                            "SCRAM-SHA-256=iterations=4096, SCRAM-SHA-512=iterations=8192\n"), r.stdout + r.stderr
        assert ck_roundtrip(n, "SCRAM-SHA-256", "frank", "frank-pw", "boot", 1) == ["SCRAM-SHA-256-0"]
        assert ck_roundtrip(n, "SCRAM-SHA-512", "frank", "frank-512", "boot", 1) == ["SCRAM-SHA-512-0"]
        # a restart does not apply the bootstrap file again (the log has the records)
        n.b.restart()
        assert ck_roundtrip(n, "SCRAM-SHA-256", "frank", "frank-pw", "boot", 1) == ["SCRAM-SHA-256-0"]
        assert n.b.stop() == 0
        for arg, msg in [("SCRAM-SHA-1=[name=x,password=y]", "The add-scram mechanism SCRAM-SHA-1 is not supported."),
                         ("SCRAM-SHA-256=[password=y]", "You must supply 'name' to add-scram"),
                         ("SCRAM-SHA-256=[name=x]", "You must supply one of 'password' or 'saltedpassword' to add-scram"),
                         ("SCRAM-SHA-256=[name=x,saltedpassword=YWJj]",
                          "You must supply 'salt' with 'saltedpassword' to add-scram"),
                         ("SCRAM-SHA-256=[name=x,salt=YWJj,password=p,iterations=100]",
                          "The 'iterations' value must be >= 4096 for add-scram")]:
            r = n.tool("kafka-storage", "format", "-t", n.b.cluster_id, "-c", n.b.config, "--ignore-formatted",
                       "--add-scram", arg)
            assert (r.returncode, r.stderr) == (1, msg + "\n"), (arg, r.stdout, r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sasl_ssl_listener_plain_and_scram():
    """SASL over TLS (T's SSL listeners): certificates made with the openssl CLI."""
    from test_tls import Certs
    from confluent_kafka.admin import AdminClient
    from kafka import KafkaProducer
    d = tempfile.mkdtemp(prefix="samsa-sasl-ssl-")
    try:
        for sub in ("certs", "node"):
            os.makedirs(os.path.join(d, sub))
        certs = Certs(os.path.join(d, "certs"))
        port, sport, cport = free_port(), free_port(), free_port()
        b = Broker(os.path.join(d, "node"), {
            "listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sport},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sport}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "ssl.keystore.type": "PEM", "ssl.keystore.location": certs.path("server.keystore.pem"),
            "ssl.key.password": "serverpw",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        })
        b.port, b.bootstrap = port, f"127.0.0.1:{port}"
        b.start()
        try:
            r = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "users",
                           "--entity-name", "ivy", "--add-config", "SCRAM-SHA-256=[password=ivy-pw]")
            assert r.returncode == 0, r.stderr
            tls = {"bootstrap.servers": f"127.0.0.1:{sport}", "security.protocol": "SASL_SSL",
                   "ssl.ca.location": certs.path("ca.pem")}
            for mech, user, pw in [("PLAIN", "alice", ALICE_PW), ("SCRAM-SHA-256", "ivy", "ivy-pw")]:
                a = AdminClient(dict(tls, **{"sasl.mechanism": mech, "sasl.username": user, "sasl.password": pw}))
                assert a.list_topics(timeout=15).brokers, mech
            p = KafkaProducer(bootstrap_servers=f"127.0.0.1:{sport}", security_protocol="SASL_SSL",
                              ssl_cafile=certs.path("ca.pem"), sasl_mechanism="PLAIN", sasl_plain_username="alice",
                              sasl_plain_password=ALICE_PW)
            p.send("over-tls", b"x").get(timeout=30)
            p.close()
            # our tools over SASL_SSL with --command-config
            cfg = os.path.join(d, "tls-client.properties")
            with open(cfg, "w") as f:
                f.write("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\n"
                        f"ssl.truststore.type=PEM\nssl.truststore.location={certs.path('ca.pem')}\n"
                        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required '
                        'username="ivy" password="ivy-pw";\n')
            r = b.run_tool("kafka-topics", "--bootstrap-server", f"127.0.0.1:{sport}", "--command-config", cfg,
                           "--list")
            assert (r.returncode, r.stdout) == (0, "over-tls\n"), r.stdout + r.stderr
        finally:
            assert b.stop() == 0, b.log_text()[-3000:]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def sasl_plain_login(sock, corr, user=b"alice", pw=ALICE_PW.encode()):
    kafka_request(sock, 17, 1, corr, struct.pack(">h", 5) + b"PLAIN")
    assert struct.unpack(">ih", read_frame(sock)[:6]) == (corr, 0)
    token = b"\0" + user + b"\0" + pw
    kafka_request(sock, 36, 1, corr + 1, struct.pack(">i", len(token)) + token)
    resp = read_frame(sock)
    c, err, mlen = struct.unpack(">ihh", resp[:8])
    pos = 8 + max(mlen, 0)
    blen = struct.unpack(">i", resp[pos:pos + 4])[0]
    lifetime = struct.unpack(">q", resp[pos + 4 + blen:pos + 12 + blen])[0]
    return c, err, lifetime


def test_reauthentication_and_expired_sessions():
    d = tempfile.mkdtemp(prefix="samsa-sasl-")
    try:
        n = SaslNode(d, extra={"connections.max.reauth.ms": "1500"})
        try:
            s = socket.create_connection(("127.0.0.1", n.sasl_port))
            assert sasl_plain_login(s, 1) == (2, 0, 1500)  # KIP-368: the session lifetime
            time.sleep(1.0)
            # re-authenticate before the end: the connection goes on with a new lifetime
            assert sasl_plain_login(s, 3) == (4, 0, 1500)
            time.sleep(1.0)
            kafka_request(s, 3, 1, 5, struct.pack(">i", 0))
            assert struct.unpack(">i", read_frame(s)[:4])[0] == 5
            # a re-authentication may not change the principal
            kafka_request(s, 17, 1, 6, struct.pack(">h", 5) + b"PLAIN")
            read_frame(s)
            token = b"\0admin\0" + ADMIN_PW.encode()
            kafka_request(s, 36, 1, 7, struct.pack(">i", len(token)) + token)
            resp = read_frame(s)
            c, err, mlen = struct.unpack(">ihh", resp[:8])
            assert (c, err) == (7, 58)
            assert resp[8:8 + mlen] == b"Cannot change principals during re-authentication from User:alice: User:admin"
            assert read_frame(s) is None
            s.close()
            # without re-authentication, the first request after the lifetime closes the connection
            s = socket.create_connection(("127.0.0.1", n.sasl_port))
            sasl_plain_login(s, 1)
            time.sleep(1.7)
            kafka_request(s, 3, 1, 3, struct.pack(">i", 0))
            assert read_frame(s) is None
            s.close()
            # librdkafka re-authenticates on its own and keeps producing past several lifetimes
            from confluent_kafka import Producer
            p = Producer(ck_conf(n, "PLAIN", "alice", ALICE_PW))
            deadline = time.time() + 5
            sent = 0
            while time.time() < deadline:
                p.produce("reauth", b"x")
                p.poll(0.1)
                sent += 1
            assert p.flush(30) == 0 and sent > 20
        finally:
            assert n.b.stop() == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_oauthbearer_unsecured_jws():
    """Kafka's default OAUTHBEARER validator: librdkafka's unsecured JWT (alg none) with a sub claim."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    d = tempfile.mkdtemp(prefix="samsa-sasl-")
    try:
        n = SaslNode(d, extra={
            "sasl.enabled.mechanisms": "PLAIN,OAUTHBEARER",
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                'unsecuredValidatorRequiredScope="kafka";'})
        try:
            def admin(extra):
                c = {"bootstrap.servers": n.sasl_bootstrap, "security.protocol": "SASL_PLAINTEXT",
                     "sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True}
                c.update(extra)
                return AdminClient(c)
            a = admin({"sasl.oauthbearer.config": "principal=olga scope=kafka"})
            assert a.list_topics(timeout=15).brokers
            errors = []
            a = admin({"sasl.oauthbearer.config": "principal=olga scope=other", "error_cb": errors.append})
            with pytest.raises(KafkaException):
                a.list_topics(timeout=5)
            deadline = time.time() + 10
            while not errors and time.time() < deadline:
                a.poll(0.2)
            assert any('{"status":"invalid_token"}' in e.str() for e in errors), errors
            assert "The provided scope was missing a required scope (kafka)" in n.b.log_text()
        finally:
            assert n.b.stop() == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_console_tools_with_sasl_config_files(node):
    """The librdkafka-based tools take Java's SASL settings from --producer.config / --consumer.config."""
    assert node.add_scram("jay", "jay-pw", "SCRAM-SHA-512").returncode == 0
    cfg = node.command_config("SCRAM-SHA-512", "jay", "jay-pw", "jay.properties")
    r = node.tool("kafka-console-producer", "--bootstrap-server", node.sasl_bootstrap, "--topic", "console",
                  "--producer.config", cfg, input="one\ntwo\n")
    assert r.returncode == 0, r.stdout + r.stderr
    r = node.tool("kafka-console-consumer", "--bootstrap-server", node.sasl_bootstrap, "--topic", "console",
                  "--consumer.config", cfg, "--from-beginning", "--max-messages", "2", "--timeout-ms", "20000")
    assert r.stdout == "one\ntwo\n", r.stdout + r.stderr
    bad = node.command_config("SCRAM-SHA-512", "jay", "nope", "bad.properties")
    r = node.tool("kafka-console-consumer", "--bootstrap-server", node.sasl_bootstrap, "--topic", "console",
                  "--consumer.config", bad, "--from-beginning", "--max-messages", "1", "--timeout-ms", "5000")
    assert r.stdout == "" and "Authentication failed" in r.stderr, r.stdout + r.stderr


def test_admin_tools_open_broker_connections_with_the_command_config(node):
    """Tools that connect to each broker (or the leader) after bootstrapping use --command-config's
    SASL settings on those connections too, as Java's admin client does."""
    cfg = node.command_config("PLAIN", "admin", ADMIN_PW, "admin-tools.properties")
    r = node.tool("kafka-topics", "--bootstrap-server", node.bootstrap, "--create", "--topic", "dirs")
    assert r.returncode == 0, r.stdout + r.stderr
    r = node.tool("kafka-console-producer", "--bootstrap-server", node.bootstrap, "--topic", "dirs",
                  input="a\nb\nc\n")
    assert r.returncode == 0, r.stdout + r.stderr
    r = node.tool("kafka-log-dirs", "--bootstrap-server", node.sasl_bootstrap, "--command-config", cfg,
                  "--describe", "--topic-list", "dirs")
    assert r.returncode == 0 and '"partition":"dirs-0"' in r.stdout, r.stdout + r.stderr
    offsets = os.path.join(node.workdir, "dirs-offsets.json")
    with open(offsets, "w") as f:
        f.write('{"partitions":[{"topic":"dirs","partition":0,"offset":2}],"version":1}')
    r = node.tool("kafka-delete-records", "--bootstrap-server", node.sasl_bootstrap, "--command-config", cfg,
                  "--offset-json-file", offsets)
    assert r.returncode == 0 and "partition: dirs-0\tlow_watermark: 2" in r.stdout, r.stdout + r.stderr


def test_failed_authentication_answered_after_the_delay():
    """connection.failed.authentication.delay.ms: the failure response comes when the delay is over,
    then the connection closes; other connections are served meanwhile."""
    d = tempfile.mkdtemp(prefix="samsa-sasl-")
    try:
        n = SaslNode(d, extra={"connection.failed.authentication.delay.ms": "700"})
        try:
            s = socket.create_connection(("127.0.0.1", n.sasl_port))
            kafka_request(s, 17, 1, 1, struct.pack(">h", 5) + b"PLAIN")
            read_frame(s)
            token = b"\0alice\0wrong-password"
            t0 = time.time()
            kafka_request(s, 36, 1, 2, struct.pack(">i", len(token)) + token)
            other = socket.create_connection(("127.0.0.1", n.sasl_port))
            assert sasl_plain_login(other, 1)[:2] == (2, 0)  # served while the first waits
            other.close()
            resp = read_frame(s)
            waited = time.time() - t0
            c, err, mlen = struct.unpack(">ihh", resp[:8])
            assert (c, err) == (2, 58)
            assert resp[8:8 + mlen] == b"Authentication failed: Invalid username or password"
            assert 0.6 <= waited < 5, waited
            assert read_frame(s) is None
            s.close()
        finally:
            assert n.b.stop() == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_api_versions_before_authentication(node):
    s = socket.create_connection(("127.0.0.1", node.sasl_port))
    # a newer ApiVersions than the broker knows: UNSUPPORTED_VERSION, and the client may ask again (KIP-511)
    hdr = struct.pack(">hhih", 18, 4, 1, 3) + b"raw" + b"\0"
    msg = hdr + b"\x04raw\x021\0"
    s.sendall(struct.pack(">i", len(msg)) + msg)
    corr, err = struct.unpack(">ih", read_frame(s)[:6])
    assert (corr, err) == (1, 35)
    kafka_request(s, 18, 0, 2, b"")
    corr, err = struct.unpack(">ih", read_frame(s)[:6])
    assert (corr, err) == (2, 0)
    # a second ApiVersions after a good one is not part of the exchange: closed
    kafka_request(s, 18, 0, 3, b"")
    assert read_frame(s) is None
    s.close()


def test_frame_limits_before_and_after_authentication(node):
    # before authentication, sasl.server.max.receive.size (524288) bounds a frame, as in Kafka
    s = socket.create_connection(("127.0.0.1", node.sasl_port))
    s.sendall(struct.pack(">i", 600000) + b"\0" * 1000)
    assert read_frame(s) is None
    s.close()
    assert "Invalid receive (size = 600000 larger than 524288)" in node.b.log_text()
    # after a v0 handshake a raw token shorter than a request header is a token, not a bad request
    s = socket.create_connection(("127.0.0.1", node.sasl_port))
    kafka_request(s, 17, 0, 1, struct.pack(">h", 5) + b"PLAIN")
    assert struct.unpack(">ih", read_frame(s)[:6]) == (1, 0)
    s.sendall(struct.pack(">i", 4) + b"\0a\0b")
    assert read_frame(s) is None  # v0: a failure is the closed connection
    s.close()
    deadline = time.time() + 5
    while "Failed authentication with /127.0.0.1" not in node.b.log_text() and time.time() < deadline:
        time.sleep(0.05)
    assert "(Authentication failed: Invalid username or password)" in node.b.log_text()
    # authenticated, a client may send up to socket.request.max.bytes: a 700 KB record
    from confluent_kafka import Producer
    p = Producer(ck_conf(node, "PLAIN", "alice", ALICE_PW))
    p.produce("big", b"x" * 700000)
    assert p.flush(30) == 0


def test_transactions_over_sasl(node):
    """A transactional producer and a read_committed consumer on the SASL listener: the partition
    leader verifies the transaction with the coordinator (KIP-890) and the coordinator writes the
    markers over the inter-broker listener, not the client's (they failed with NETWORK_EXCEPTION
    when they went to the SASL listener without credentials)."""
    from confluent_kafka import Consumer, Producer
    r = node.tool("kafka-topics", "--bootstrap-server", node.bootstrap, "--create", "--topic", "t-txn")
    assert r.returncode == 0, r.stderr
    p = Producer(ck_conf(node, "PLAIN", "alice", ALICE_PW, **{"transactional.id": "sasl-tid"}))
    p.init_transactions(30)
    for committed in (True, False, True):
        p.begin_transaction()
        for i in range(3):
            p.produce("t-txn", value=f"{'c' if committed else 'a'}-{i}".encode())
        if committed:
            p.commit_transaction(30)
        else:
            p.flush(30)
            p.abort_transaction(30)
    c = Consumer(ck_conf(node, "PLAIN", "alice", ALICE_PW, **{"group.id": "g-txn", "auto.offset.reset": "earliest",
                                                              "isolation.level": "read_committed"}))
    c.subscribe(["t-txn"])
    got = []
    deadline = time.time() + 30
    while len(got) < 6 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    assert got == ["c-0", "c-1", "c-2"] * 2, got
