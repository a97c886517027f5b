"""TLS listeners (issue 16): SSL next to PLAINTEXT, Kafka's ssl.* settings in PEM form,
client authentication and principal mapping, certificate reload, our tools and three
client libraries over SSL, TLS between brokers.

Certificates are made by each test module with the `openssl` command line in a temporary
directory: a CA, a server certificate for 127.0.0.1/localhost, a client certificate
(CN=client,OU=test,O=samsa), and a second, unrelated CA.
"""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import BROKER_BIN, PYTHON, Broker, free_port, tool_env


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-days", "2", "-subj", f"/CN={name}", cwd=d)


def make_cert(d, ca, name, subj, san=None, key_pass=None):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.raw.key", "-out", f"{name}.csr",
            "-subj", subj, cwd=d)
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if san:
            f.write(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", ext, cwd=d)
    # Kafka's PEM keys are PKCS#8, encrypted when ssl.key.password is set
    if key_pass:
        openssl("pkcs8", "-topk8", "-in", f"{name}.raw.key", "-out", f"{name}.key", "-passout", f"pass:{key_pass}",
                cwd=d)
    else:
        openssl("pkcs8", "-topk8", "-nocrypt", "-in", f"{name}.raw.key", "-out", f"{name}.key", cwd=d)
    with open(os.path.join(d, f"{name}.keystore.pem"), "w") as out:
        for part in (f"{name}.key", f"{name}.crt"):
            out.write(open(os.path.join(d, part)).read())


class Certs:
    def __init__(self, d):
        self.dir = d
        make_ca(d, "ca")
        make_ca(d, "otherca")
        make_cert(d, "ca", "server", "/CN=localhost/O=samsa", "IP:127.0.0.1,DNS:localhost", key_pass="serverpw")
        make_cert(d, "ca", "client", "/O=samsa/OU=test/CN=client")
        make_cert(d, "otherca", "stranger", "/CN=stranger")
        # a second server certificate from the same CA, for the reload test
        make_cert(d, "ca", "server2", "/CN=localhost/O=samsa", "IP:127.0.0.1,DNS:localhost", key_pass="serverpw")

    def path(self, name):
        return os.path.join(self.dir, name)

    def text(self, name):
        return open(self.path(name)).read()


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="samsa-tls-certs-")
    yield Certs(d)
    shutil.rmtree(d, ignore_errors=True)


def inline(pem):
    """A PEM value inline in a properties file, as Kafka's docs show it: lines joined with '\\'."""
    return " \\\n".join(pem.strip().splitlines())


class TlsBroker(Broker):
    def __init__(self, workdir, certs, extra=None, ssl_port=None):
        self.ssl_port = ssl_port or free_port()
        port, cport = free_port(), free_port()
        o = {
            "listeners": f"PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{self.ssl_port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{self.ssl_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": certs.path("server.keystore.pem"),
            "ssl.key.password": "serverpw",
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": certs.path("ca.pem"),
        }
        o.update(extra or {})
        self._fixed_port = port
        super().__init__(workdir, o)
        # Broker.__init__ picked its own port for PLAINTEXT: use ours
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.ssl_bootstrap = f"127.0.0.1:{self.ssl_port}"

    def start(self, timeout=15):
        super().start(timeout)
        deadline = time.time() + timeout  # PLAINTEXT is bound first: wait for the SSL port too
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.ssl_port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the SSL listener did not open:\n" + self.log_text())


@pytest.fixture
def tls_factory(certs):
    started, dirs = [], []

    def make(extra=None, start=True):
        d = tempfile.mkdtemp(prefix="samsa-tls-")
        dirs.append(d)
        b = TlsBroker(d, certs, extra)
        if start:
            b.start()
            started.append(b)
        return b

    yield make
    failures = []
    for b in started:
        code = b.stop()
        if code not in (0, None, -9):
            failures.append(f"broker exited with {code}:\n{b.log_text()[-4000:]}")
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    assert not failures, "\n".join(failures)


def client_ssl_conf(certs, with_cert=False, ca="ca.pem"):
    c = {"security.protocol": "SSL", "ssl.ca.location": certs.path(ca)}
    if with_cert:
        c["ssl.certificate.location"] = certs.path("client.crt")
        c["ssl.key.location"] = certs.path("client.key")
    return c


def ck_produce_consume(bootstrap, conf, topic, n=20, timeout=30):
    """confluent-kafka in a child process: produce n records, read them back."""
    code = f"""
import json, sys
from confluent_kafka import Producer, Consumer
conf = json.loads({repr(__import__('json').dumps(conf))})
p = Producer(dict(conf, **{{"bootstrap.servers": "{bootstrap}"}}))
for i in range({n}):
    p.produce("{topic}", value=b"v%d" % i, key=b"k%d" % i)
left = p.flush(20)
assert left == 0, left
c = Consumer(dict(conf, **{{"bootstrap.servers": "{bootstrap}", "group.id": "g-{topic}",
                           "auto.offset.reset": "earliest"}}))
c.subscribe(["{topic}"])
got = []
import time
deadline = time.time() + 20
while len(got) < {n} and time.time() < deadline:
    m = c.poll(0.5)
    if m is None: continue
    if m.error(): print("ERR", m.error(), file=sys.stderr); continue
    got.append(m.value().decode())
c.close()
print(",".join(got))
"""
    return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=timeout, env=tool_env())


def create_topic(b, topic, partitions=1, rf=1, bootstrap=None):
    r = b.run_tool("kafka-topics", "--bootstrap-server", bootstrap or b.bootstrap, "--create", "--topic", topic,
                   "--partitions", str(partitions), "--replication-factor", str(rf))
    assert r.returncode == 0, r.stdout + r.stderr


def tls_connect(port, certs, ca="ca.pem", cert=None, key=None):
    ctx = ssl.create_default_context(cafile=certs.path(ca))
    if cert:
        ctx.load_cert_chain(certs.path(cert), certs.path(key))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")


def api_versions_roundtrip(sock):
    """ApiVersions v0 over an open (TLS) socket; returns the error code."""
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (7).to_bytes(4, "big") + (4).to_bytes(2, "big") + b"test"
    sock.sendall(len(body).to_bytes(4, "big") + body)
    size = int.from_bytes(recv_exact(sock, 4), "big")
    resp = recv_exact(sock, size)
    assert int.from_bytes(resp[:4], "big") == 7
    return int.from_bytes(resp[4:6], "big", signed=True)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


# ---- tests ----

def test_plaintext_and_ssl_listeners_at_once(tls_factory, certs):
    b = tls_factory()
    topic = "t-" + uuid.uuid4().hex[:8]
    create_topic(b, topic)
    r = ck_produce_consume(b.ssl_bootstrap, client_ssl_conf(certs), topic)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ",".join(f"v{i}" for i in range(20)), r.stdout + r.stderr
    # the same records over PLAINTEXT
    r2 = ck_produce_consume(b.bootstrap, {}, topic + "-plain")
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout.strip() == ",".join(f"v{i}" for i in range(20))
    log = b.log_text()
    assert "ListenerName(SSL)" in log and "ListenerName(PLAINTEXT)" in log


def _maps_libssl(b):
    with open(f"/proc/{b.proc.pid}/maps") as f:
        return "libssl.so" in f.read()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the broker links OpenSSL elsewhere")
def test_openssl_is_loaded_by_the_first_use_only(broker_factory, tls_factory, certs):
    # A PLAINTEXT broker serving produce and consume never maps libssl (its 1.7 MB of RSS) ...
    plain = broker_factory()
    topic = "t-" + uuid.uuid4().hex[:8]
    create_topic(plain, topic)
    r = ck_produce_consume(plain.bootstrap, {}, topic)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ",".join(f"v{i}" for i in range(20))
    assert not _maps_libssl(plain)
    # ... and one with an SSL listener loads it when it builds its context, and serves TLS.
    b = tls_factory()
    assert _maps_libssl(b)
    r = ck_produce_consume(b.ssl_bootstrap, client_ssl_conf(certs), topic)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ",".join(f"v{i}" for i in range(20)), r.stdout + r.stderr


def test_metadata_answers_with_the_listener_of_the_request(tls_factory, certs):
    from confluent_kafka.admin import AdminClient
    b = tls_factory()
    code = f"""
from confluent_kafka.admin import AdminClient
import json
for bs, conf in (("{b.bootstrap}", {{}}), ("{b.ssl_bootstrap}", {{"security.protocol": "SSL", "ssl.ca.location": "{certs.path('ca.pem')}"}})):
    a = AdminClient(dict(conf, **{{"bootstrap.servers": bs}}))
    md = a.list_topics(timeout=10)
    print(",".join("%s:%d" % (x.host, x.port) for x in md.brokers.values()))
"""
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60, env=tool_env())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines == [f"127.0.0.1:{b.port}", f"127.0.0.1:{b.ssl_port}"], r.stdout


def test_inline_pem_keystore_and_truststore(tls_factory, certs):
    b = tls_factory({
        "ssl.keystore.location": "",
        "listener.name.ssl.ssl.keystore.certificate.chain": inline(certs.text("server.crt")),
        "listener.name.ssl.ssl.keystore.key": inline(certs.text("server.key")),
        "listener.name.ssl.ssl.truststore.certificates": inline(certs.text("ca.pem")),
        "ssl.truststore.location": "",
    })
    s = tls_connect(b.ssl_port, certs)
    assert api_versions_roundtrip(s) == 0
    s.close()


def test_kafka_python_and_kcat_over_ssl(tls_factory, certs):
    b = tls_factory()
    topic = "kp-" + uuid.uuid4().hex[:8]
    create_topic(b, topic)
    code = f"""
from kafka import KafkaProducer, KafkaConsumer
p = KafkaProducer(bootstrap_servers="{b.ssl_bootstrap}", security_protocol="SSL", ssl_cafile="{certs.path('ca.pem')}")
for i in range(10):
    p.send("{topic}", b"kp%d" % i)
p.flush(20)
p.close()
c = KafkaConsumer("{topic}", bootstrap_servers="{b.ssl_bootstrap}", security_protocol="SSL",
                  ssl_cafile="{certs.path('ca.pem')}", auto_offset_reset="earliest", consumer_timeout_ms=10000)
print(",".join(m.value.decode() for m in c))
c.close()
"""
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60, env=tool_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ",".join(f"kp{i}" for i in range(10)), r.stdout + r.stderr
    kc = ["kcat", "-b", b.ssl_bootstrap, "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={certs.path('ca.pem')}"]
    r = subprocess.run(kc + ["-P", "-t", topic], input="kc1\nkc2\n", capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(kc + ["-C", "-t", topic, "-o", "beginning", "-e", "-q"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"kp{i}" for i in range(10)] + ["kc1", "kc2"], r.stdout


def test_client_auth_required(tls_factory, certs):
    b = tls_factory({"ssl.client.auth": "required",
                     "ssl.principal.mapping.rules": "RULE:^CN=([^,]*),OU=test,O=samsa$/$1@samsa/U,DEFAULT"})
    # without a certificate: refused during the handshake
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        s = tls_connect(b.ssl_port, certs)
        api_versions_roundtrip(s)
    # with one: served
    s = tls_connect(b.ssl_port, certs, cert="client.crt", key="client.key")
    assert api_versions_roundtrip(s) == 0
    s.close()
    topic = "ca-" + uuid.uuid4().hex[:8]
    create_topic(b, topic)
    r = ck_produce_consume(b.ssl_bootstrap, client_ssl_conf(certs, with_cert=True), topic, n=5)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "v0,v1,v2,v3,v4"
    r = ck_produce_consume(b.ssl_bootstrap, client_ssl_conf(certs), topic, n=1, timeout=40)
    assert r.returncode != 0 or r.stdout.strip() == ""
    log = b.log_text()
    assert "Failed authentication with /127.0.0.1" in log and "SSL handshake failed" in log, log[-3000:]
    # the principal of the client with a certificate, through the mapping rule
    assert "principal=User:CLIENT@SAMSA" in log, log[-3000:]


def test_wrong_ca_fails_handshake_and_broker_serves_others(tls_factory, certs):
    b = tls_factory()
    # the client does not trust the broker's CA
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(b.ssl_port, certs, ca="otherca.pem")
    r = subprocess.run(["kcat", "-b", b.ssl_bootstrap, "-X", "security.protocol=ssl", "-X",
                        f"ssl.ca.location={certs.path('otherca.pem')}", "-L", "-m", "5"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "certificate verify failed" in (r.stdout + r.stderr), r.stdout + r.stderr
    # a client certificate from an untrusted CA with ssl.client.auth=requested
    s = tls_connect(b.ssl_port, certs)
    assert api_versions_roundtrip(s) == 0
    s.close()


def test_garbage_on_the_ssl_port_closes_only_that_connection(tls_factory, certs):
    b = tls_factory()
    good = tls_connect(b.ssl_port, certs)
    assert api_versions_roundtrip(good) == 0
    for payload in (b"\x00\x00\x00\x10" + b"x" * 16, os.urandom(4096), b"GET / HTTP/1.1\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", b.ssl_port), timeout=5)
        s.sendall(payload)
        s.settimeout(5)
        try:
            data = s.recv(65536)
            # an alert at most, then the close
            while data:
                data = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
    # a plaintext Kafka client on the TLS port
    s = socket.create_connection(("127.0.0.1", b.ssl_port), timeout=5)
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big") + (0).to_bytes(2, "big")
    s.sendall(len(body).to_bytes(4, "big") + body)
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    assert api_versions_roundtrip(good) == 0  # the open TLS connection is untouched
    good.close()
    assert b.proc.poll() is None


def test_bad_ssl_settings_refuse_start(certs):
    d = tempfile.mkdtemp(prefix="samsa-tls-")
    try:
        b = TlsBroker(d, certs, {"ssl.key.password": "wrong"})
        r = subprocess.run([BROKER_BIN, b.config], capture_output=True, text=True,
                           timeout=30, env=tool_env())
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert "Invalid SSL configuration of listener SSL" in out and "Private key could not be loaded" in out, out
    finally:
        shutil.rmtree(d, ignore_errors=True)
def test_tools_with_command_config_over_ssl(tls_factory, certs):
    b = tls_factory()
    cfg = os.path.join(b.workdir, "client-ssl.properties")
    with open(cfg, "w") as f:
        f.write("security.protocol=SSL\nssl.truststore.type=PEM\n")
        f.write(f"ssl.truststore.location={certs.path('ca.pem')}\n")
    topic = "tool-" + uuid.uuid4().hex[:8]
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.ssl_bootstrap, "--command-config", cfg, "--create",
                   "--topic", topic, "--partitions", "2", "--replication-factor", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.ssl_bootstrap, "--command-config", cfg, "--list")
    assert r.returncode == 0 and topic in r.stdout.split(), r.stdout + r.stderr
    # inline truststore certificates, as Java clients read them
    cfg2 = os.path.join(b.workdir, "client-ssl-inline.properties")
    with open(cfg2, "w") as f:
        f.write("security.protocol=SSL\nssl.truststore.type=PEM\n")
        f.write("ssl.truststore.certificates=" + inline(certs.text("ca.pem")) + "\n")
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.ssl_bootstrap, "--command-config", cfg2, "--describe",
                   "--topic", topic)
    assert r.returncode == 0 and f"Topic: {topic}" in r.stdout, r.stdout + r.stderr
    r = b.run_tool("kafka-console-producer", "--bootstrap-server", b.ssl_bootstrap, "--producer.config", cfg2,
                   "--topic", topic, input="a\nb\nc\n")
    assert r.returncode == 0, r.stdout + r.stderr
    r = b.run_tool("kafka-console-consumer", "--bootstrap-server", b.ssl_bootstrap, "--consumer.config", cfg2,
                   "--topic", topic, "--from-beginning", "--max-messages", "3", "--timeout-ms", "20000")
    assert sorted(r.stdout.split()) == ["a", "b", "c"], r.stdout + r.stderr


def server_cert_serial(port, certs):
    ctx = ssl.create_default_context(cafile=certs.path("ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            der = t.getpeercert(binary_form=True)
    return __import__("hashlib").sha256(der).hexdigest()


def test_certificate_reload_with_kafka_configs(tls_factory, certs):
    b = tls_factory()
    before = server_cert_serial(b.ssl_port, certs)
    open_conn = tls_connect(b.ssl_port, certs)
    assert api_versions_roundtrip(open_conn) == 0
    # a keystore that cannot be loaded is refused, the old one stays
    bad = os.path.join(b.workdir, "bad.pem")
    with open(bad, "w") as f:
        f.write("not a keystore\n")
    r = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--entity-type", "brokers", "--entity-name", "1",
                   "--alter", "--add-config", f"listener.name.ssl.ssl.keystore.location={bad}")
    assert r.returncode != 0, r.stdout
    assert "Validation of dynamic config update of SSLFactory failed" in r.stdout + r.stderr, r.stdout + r.stderr
    assert server_cert_serial(b.ssl_port, certs) == before
    # a keystore for another name is refused, as Kafka's SslFactory does
    r = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--entity-type", "brokers", "--entity-name", "1",
                   "--alter", "--add-config",
                   f"listener.name.ssl.ssl.keystore.location={certs.path('client.keystore.pem')}")
    assert r.returncode != 0, r.stdout
    assert ("Keystore DistinguishedName does not match:  existing={alias=mykey, DN=O=samsa,CN=localhost}, "
            "new={alias=mykey, DN=CN=client,OU=test,O=samsa}") in r.stdout + r.stderr, r.stdout + r.stderr
    assert server_cert_serial(b.ssl_port, certs) == before
    # the new keystore: new connections get the new certificate, without a restart
    r = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--entity-type", "brokers", "--entity-name", "1",
                   "--alter", "--add-config", f"listener.name.ssl.ssl.keystore.location={certs.path('server2.keystore.pem')}")
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.time() + 10
    while time.time() < deadline and server_cert_serial(b.ssl_port, certs) == before:
        time.sleep(0.1)
    after = server_cert_serial(b.ssl_port, certs)
    assert after != before
    assert after == __import__("hashlib").sha256(
        ssl.PEM_cert_to_DER_cert(certs.text("server2.crt"))).hexdigest()
    # the connection made before keeps working
    assert api_versions_roundtrip(open_conn) == 0
    open_conn.close()
    assert "Reconfigured the SSL keystore and truststore of listener SSL" in b.log_text()
    # a file replaced under the same name: altering the same value again reloads it (Kafka re-reads the file)
    ks = os.path.join(b.workdir, "ks.pem")
    shutil.copy(certs.path("server.keystore.pem"), ks)
    r = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--entity-type", "brokers", "--entity-name", "1",
                   "--alter", "--add-config", f"listener.name.ssl.ssl.keystore.location={ks}")
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.time() + 10
    while time.time() < deadline and server_cert_serial(b.ssl_port, certs) != before:
        time.sleep(0.1)
    assert server_cert_serial(b.ssl_port, certs) == before
    time.sleep(0.01)
    shutil.copy(certs.path("server2.keystore.pem"), ks)
    r = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--entity-type", "brokers", "--entity-name", "1",
                   "--alter", "--add-config", f"listener.name.ssl.ssl.keystore.location={ks}")
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.time() + 10
    while time.time() < deadline and server_cert_serial(b.ssl_port, certs) != after:
        time.sleep(0.1)
    assert server_cert_serial(b.ssl_port, certs) == after


# ---- a cluster whose brokers talk TLS to each other ----

from cluster import samsa_cluster_factory, etcd_cluster, etcd_cluster_factory  # noqa: E402,F401 (fixtures)


def test_cluster_with_inter_broker_listener_on_ssl(samsa_cluster_factory, certs):
    node_overrides = {}
    ssl_ports = {}
    for i in (1, 2, 3):
        ssl_ports[i] = free_port()
    common = {
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
        "listener.name.internal.ssl.keystore.type": "PEM",
        "listener.name.internal.ssl.keystore.location": certs.path("server.keystore.pem"),
        "listener.name.internal.ssl.key.password": "serverpw",
        "listener.name.internal.ssl.truststore.type": "PEM",
        "listener.name.internal.ssl.truststore.location": certs.path("ca.pem"),
        # brokers present their certificate to each other
        "listener.name.internal.ssl.client.auth": "required",
    }
    c = samsa_cluster_factory(nodes=3, overrides=common, start=False)
    for n in c.nodes:
        p = ssl_ports[n.node_id]
        n.overrides["listeners"] = (f"PLAINTEXT://127.0.0.1:{n.port},INTERNAL://127.0.0.1:{p},"
                                    f"CONTROLLER://127.0.0.1:{n.controller_port}")
        n.overrides["advertised.listeners"] = f"PLAINTEXT://127.0.0.1:{n.port},INTERNAL://127.0.0.1:{p}"
        n.write_config()
    c.start()
    # every node registered before an RF 3 topic
    deadline = time.time() + 30
    while time.time() < deadline:
        r = c.run_tool("kafka-broker-api-versions", "--bootstrap-server", c.bootstrap)
        if r.returncode == 0 and r.stdout.count("(id: ") >= 3:
            break
        time.sleep(0.3)
    topic = "rf3-" + uuid.uuid4().hex[:8]
    r = c.run_tool("kafka-topics", "--bootstrap-server", c.bootstrap, "--create", "--topic", topic, "--partitions",
                   "3", "--replication-factor", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    code = f"""
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{c.bootstrap}", "acks": "all", "message.timeout.ms": 20000}})
errs = []
for i in range(300):
    p.produce("{topic}", value=b"r%d" % i, key=b"k%d" % (i % 7), on_delivery=lambda e, m: e and errs.append(str(e)))
assert p.flush(30) == 0
assert not errs, errs[:3]
print("ok")
"""
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=90, env=tool_env())
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    # every partition keeps its three replicas in sync over the TLS listener
    deadline = time.time() + 30
    while time.time() < deadline:
        r = c.run_tool("kafka-topics", "--bootstrap-server", c.bootstrap, "--describe", "--topic", topic)
        isrs = [line.split("Isr:")[1].split()[0] for line in r.stdout.splitlines() if "Isr:" in line]
        if len(isrs) == 3 and all(len(x.split(",")) == 3 for x in isrs):
            break
        time.sleep(0.3)
    assert len(isrs) == 3 and all(len(x.split(",")) == 3 for x in isrs), r.stdout
    code = f"""
import sys
from confluent_kafka import Consumer
c = Consumer({{"bootstrap.servers": "{c.bootstrap}", "group.id": "g", "auto.offset.reset": "earliest"}})
c.subscribe(["{topic}"])
n = 0
import time
deadline = time.time() + 30
while n < 300 and time.time() < deadline:
    m = c.poll(0.5)
    if m is not None and m.error():
        print("ERR", m.error(), file=sys.stderr)
    elif m is not None:
        n += 1
c.close()
print(n)
"""
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60, env=tool_env())
    assert r.stdout.strip() == "300", r.stdout + r.stderr
    # the followers came in with their certificates on the INTERNAL listener
    logs = "".join(n.log_text() for n in c.nodes)
    assert "on listener INTERNAL with TLSv1.3: principal=User:O=samsa,CN=localhost" in logs, logs[-3000:]


def test_client_auth_requested(tls_factory, certs):
    b = tls_factory({"ssl.client.auth": "requested"})
    # no certificate: served, as User:ANONYMOUS
    s = tls_connect(b.ssl_port, certs)
    assert api_versions_roundtrip(s) == 0
    s.close()
    # a certificate from the CA: served, its principal is the DN (DEFAULT rule)
    s = tls_connect(b.ssl_port, certs, cert="client.crt", key="client.key")
    assert api_versions_roundtrip(s) == 0
    s.close()
    # a certificate nobody trusts: refused even though one was only requested
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        s = tls_connect(b.ssl_port, certs, cert="stranger.crt", key="stranger.key")
        api_versions_roundtrip(s)
    deadline = time.time() + 5
    while time.time() < deadline and "principal=User:CN=client,OU=test,O=samsa" not in b.log_text():
        time.sleep(0.1)
    log = b.log_text()
    assert "principal=User:CN=client,OU=test,O=samsa" in log, log[-2000:]
    assert "Failed authentication with /127.0.0.1" in log


def test_enabled_protocols_and_cipher_suites(tls_factory, certs):
    b = tls_factory({"listener.name.ssl.ssl.enabled.protocols": "TLSv1.2",
                     "listener.name.ssl.ssl.cipher.suites": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"})
    ctx = ssl.create_default_context(cafile=certs.path("ca.pem"))
    with socket.create_connection(("127.0.0.1", b.ssl_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() == "TLSv1.2"
            assert s.cipher()[0] == "ECDHE-RSA-AES256-GCM-SHA384"
            assert api_versions_roundtrip(s) == 0
    # a client that only speaks TLSv1.3 is refused
    ctx13 = ssl.create_default_context(cafile=certs.path("ca.pem"))
    ctx13.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", b.ssl_port), timeout=5) as raw:
            ctx13.wrap_socket(raw, server_hostname="127.0.0.1")
    # a client without that cipher suite is refused
    ctx12 = ssl.create_default_context(cafile=certs.path("ca.pem"))
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx12.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", b.ssl_port), timeout=5) as raw:
            ctx12.wrap_socket(raw, server_hostname="127.0.0.1")


def tools_create_produce_consume(b, cfg, topic):
    """kafka-topics --create, the console producer and consumer, all on the SSL listener with the
    client properties file cfg."""
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.ssl_bootstrap, "--command-config", cfg, "--create",
                   "--topic", topic, "--partitions", "1", "--replication-factor", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    r = b.run_tool("kafka-console-producer", "--bootstrap-server", b.ssl_bootstrap, "--producer.config", cfg,
                   "--topic", topic, input="x\ny\n")
    assert r.returncode == 0, r.stdout + r.stderr
    r = b.run_tool("kafka-console-consumer", "--bootstrap-server", b.ssl_bootstrap, "--consumer.config", cfg,
                   "--topic", topic, "--from-beginning", "--max-messages", "2", "--timeout-ms", "20000")
    assert r.stdout.split() == ["x", "y"], r.stdout + r.stderr


def test_tools_with_a_client_certificate(tls_factory, certs):
    b = tls_factory({"ssl.client.auth": "required"})
    cfg = os.path.join(b.workdir, "mtls.properties")
    with open(cfg, "w") as f:
        f.write("security.protocol=SSL\nssl.truststore.type=PEM\n")
        f.write(f"ssl.truststore.location={certs.path('ca.pem')}\n")
        f.write(f"ssl.keystore.type=PEM\nssl.keystore.location={certs.path('client.keystore.pem')}\n")
    tools_create_produce_consume(b, cfg, "mtls-" + uuid.uuid4().hex[:8])
    # without the keystore the admin tool fails with the handshake's reason
    nocert = os.path.join(b.workdir, "nocert.properties")
    with open(nocert, "w") as f:
        f.write("security.protocol=SSL\nssl.truststore.type=PEM\n")
        f.write(f"ssl.truststore.location={certs.path('ca.pem')}\n")
        f.write("default.api.timeout.ms=3000\n")
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.ssl_bootstrap, "--command-config", nocert, "--list",
                   timeout=60)
    assert r.returncode != 0
    assert "failed authentication due to: SSL handshake failed" in r.stderr, r.stdout + r.stderr
    assert "certificate required" in r.stderr, r.stderr
    assert b.proc.poll() is None


JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")


@pytest.mark.skipif(not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")),
                    reason="kafkajs not installed (cd tests/integration/js && npm install)")
def test_kafkajs_over_ssl(tls_factory, certs):
    b = tls_factory({"group.initial.rebalance.delay.ms": "0"})
    topic = "js-" + uuid.uuid4().hex[:8]
    script = f"""
const fs = require('fs');
const {{ Kafka, logLevel }} = require('kafkajs');
const kafka = new Kafka({{ clientId: 'tls-js', brokers: ['{b.ssl_bootstrap}'], logLevel: logLevel.NOTHING,
  ssl: {{ ca: [fs.readFileSync('{certs.path('ca.pem')}', 'utf-8')],
         cert: fs.readFileSync('{certs.path('client.crt')}', 'utf-8'),
         key: fs.readFileSync('{certs.path('client.key')}', 'utf-8') }} }});
(async () => {{
  const admin = kafka.admin(); await admin.connect();
  await admin.createTopics({{ topics: [{{ topic: '{topic}', numPartitions: 1 }}] }});
  await admin.disconnect();
  const p = kafka.producer(); await p.connect();
  await p.send({{ topic: '{topic}', messages: [...Array(10).keys()].map(i => ({{ value: 'js' + i }})) }});
  await p.disconnect();
  const c = kafka.consumer({{ groupId: 'g-{topic}' }}); await c.connect();
  await c.subscribe({{ topic: '{topic}', fromBeginning: true }});
  const got = [];
  await new Promise((resolve, reject) => {{
    const t = setTimeout(() => reject(new Error('timeout')), 30000);
    c.run({{ eachMessage: async ({{ message }}) => {{ got.push(message.value.toString());
      if (got.length === 10) {{ clearTimeout(t); resolve(); }} }} }});
  }});
  await c.disconnect();
  console.log('RESULT ' + got.join(','));
}})().catch(e => {{ console.error(e); process.exit(1); }});
"""
    r = subprocess.run([shutil.which("node") or "/usr/bin/node", "-e", script], capture_output=True, text=True,
                       timeout=90, cwd=JS_DIR)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"RESULT {','.join(f'js{i}' for i in range(10))}" in r.stdout, r.stdout


KEYSTORES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "keystores")


@pytest.mark.parametrize("store_type", ["JKS", "PKCS12"])
def test_jks_and_pkcs12_keystores_made_by_keytool(tls_factory, certs, store_type):
    """ssl.keystore.type / ssl.truststore.type JKS (Kafka's default) and PKCS12, files made by
    keytool (tests/data/keystores): clients that trust the broker's certificate are served, mutual
    TLS checks the client's certificate against the truststore, the principal comes from it."""
    ext = "jks" if store_type == "JKS" else "p12"
    ks = {
        "ssl.keystore.type": store_type,
        "ssl.keystore.location": os.path.join(KEYSTORES, f"broker.{ext}"),
        "ssl.keystore.password": "broker-store",
        "ssl.truststore.type": store_type,
        "ssl.truststore.location": os.path.join(KEYSTORES, f"truststore.{ext}"),
        "ssl.truststore.password": "trust-store",
        "ssl.client.auth": "required",
    }
    if store_type == "JKS":
        ks["ssl.key.password"] = "broker-key"  # keytool -keypass: unlike the store's
    else:
        ks["ssl.key.password"] = "broker-store"
    b = tls_factory(ks)
    conf = {"security.protocol": "SSL", "ssl.ca.location": os.path.join(KEYSTORES, "broker.pem"),
            "ssl.certificate.location": os.path.join(KEYSTORES, "client.pem"),
            "ssl.key.location": os.path.join(KEYSTORES, "client-key.pem")}
    topic = "ks-" + uuid.uuid4().hex[:8]
    create_topic(b, topic)
    r = ck_produce_consume(b.ssl_bootstrap, conf, topic, n=5)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "v0,v1,v2,v3,v4"
    assert "principal=User:CN=client,O=Samsa" in b.log_text(), b.log_text()[-3000:]
    # a client whose certificate the truststore does not hold is refused in the handshake
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        ctx = ssl.create_default_context(cafile=os.path.join(KEYSTORES, "broker.pem"))
        ctx.load_cert_chain(certs.path("client.crt"), certs.path("client.key"))
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", b.ssl_port), timeout=5),
                            server_hostname="localhost")
        api_versions_roundtrip(s)
    deadline = time.time() + 10
    while "SSL handshake failed" not in b.log_text() and time.time() < deadline:
        time.sleep(0.1)
    assert "SSL handshake failed" in b.log_text(), b.log_text()[-3000:]


def test_wrong_keystore_password_refuses_start(certs, tmp_path):
    """Kafka's words for a JKS keystore whose password is wrong; the broker does not start."""
    b = TlsBroker(str(tmp_path), certs, {"ssl.keystore.type": "JKS",
                                         "ssl.keystore.location": os.path.join(KEYSTORES, "broker.jks"),
                                         "ssl.keystore.password": "not-the-password",
                                         "ssl.key.password": "broker-key"})
    with pytest.raises(RuntimeError) as e:
        b.start()
    assert "Failed to load SSL keystore" in str(e.value) and \
        "Keystore was tampered with, or password was incorrect" in str(e.value), str(e.value)[-2000:]


def test_tools_with_jks_client_stores(tls_factory, certs):
    """The tools' client properties with Kafka's default store type: a JKS truststore holding the
    broker's certificate and a JKS keystore (own key password) for mutual TLS, in the admin tools
    and in the console producer and consumer (librdkafka gets them as PEM)."""
    b = tls_factory({"ssl.keystore.type": "JKS", "ssl.keystore.location": os.path.join(KEYSTORES, "broker.jks"),
                     "ssl.keystore.password": "broker-store", "ssl.key.password": "broker-key",
                     "ssl.truststore.type": "JKS", "ssl.truststore.location": os.path.join(KEYSTORES, "truststore.jks"),
                     "ssl.truststore.password": "trust-store", "ssl.client.auth": "required"})
    cfg = os.path.join(b.workdir, "jks.properties")
    with open(cfg, "w") as f:  # no ssl.*.type lines: JKS is the default
        f.write("security.protocol=SSL\n")
        f.write(f"ssl.truststore.location={os.path.join(KEYSTORES, 'client-truststore.jks')}\n")
        f.write("ssl.truststore.password=client-trust\n")
        f.write(f"ssl.keystore.location={os.path.join(KEYSTORES, 'client.jks')}\n")
        f.write("ssl.keystore.password=client-store\nssl.key.password=client-key\n")
    topic = "jks-" + uuid.uuid4().hex[:8]
    tools_create_produce_consume(b, cfg, topic)
    # a wrong store password: Kafka's words, before any connection
    with open(cfg, "a") as f:
        f.write("ssl.truststore.password=wrong\n")
    r = b.run_tool("kafka-console-producer", "--bootstrap-server", b.ssl_bootstrap, "--producer.config", cfg,
                   "--topic", topic, input="z\n")
    assert r.returncode != 0
    assert "Keystore was tampered with, or password was incorrect" in r.stderr, r.stdout + r.stderr
