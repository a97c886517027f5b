"""The Prometheus endpoint (issue 17, metrics.listener), black box: a real
broker with the listener on a free loopback port, real clients, the Kafka
tools, and urllib scrapes read with a strict parser of the text format 0.0.4
written here. What the metrics say is checked against what the tools print
(kafka-get-offsets, kafka-consumer-groups --describe, kafka-topics
--describe --under-replicated-partitions)."""
import http.client
import math
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from cluster import HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401
from conftest import BIN, PYTHON, Broker, free_port, tool_env, wait_until

# ---------------------------------------------------------------- strict text-format parser

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
SAMPLE_RE = re.compile(rf"^({NAME})(\{{(.*)\}})? (\S+)$")
LABEL_RE = re.compile(rf'({LABEL})="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = {"counter", "gauge", "summary", "histogram", "untyped"}


def parse_exposition(text):
    """Parses Prometheus text format 0.0.4 strictly: every line is a HELP or
    TYPE line or `name{labels} value`; each family has one HELP and one TYPE
    before its samples, its samples are contiguous, no sample repeats, values
    are numbers. Returns ({(name, frozenset(labels.items())): value},
    {family: type})."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    samples, types, helps, seen_families = {}, {}, {}, set()
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        assert line, f"empty line at {n}"
        if line.startswith("#"):
            m = re.match(rf"^# (HELP|TYPE) ({NAME}) (.*)$", line)
            assert m, f"bad comment {where}"
            kind, fam, rest = m.groups()
            if kind == "HELP":
                assert fam not in helps, f"second HELP for {fam} {where}"
                assert fam not in seen_families, f"HELP after samples of {fam} {where}"
                helps[fam] = rest
            else:
                assert fam not in types, f"second TYPE for {fam} {where}"
                assert rest in TYPES, f"unknown type {where}"
                assert fam not in seen_families, f"TYPE after samples of {fam} {where}"
                types[fam] = rest
                current = fam
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample {where}"
        name, _, body, value = m.groups()
        assert current is not None and name == current, f"sample outside its family block {where}"
        seen_families.add(name)
        labels = {}
        if body is not None:
            pos = 0
            while pos < len(body):
                lm = LABEL_RE.match(body, pos)
                assert lm, f"bad label at {pos} {where}"
                key = lm.group(1)
                assert key not in labels, f"repeated label {key} {where}"
                labels[key] = lm.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
                pos = lm.end()
                if pos < len(body):
                    assert body[pos] == ",", f"labels not separated by a comma {where}"
                    pos += 1
                    assert pos < len(body), f"trailing comma {where}"
        v = float(value)
        assert not math.isnan(v), f"NaN {where}"
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"repeated sample {where}"
        samples[key] = v
    for fam in types:
        assert fam in helps, f"{fam} has no HELP"
    return samples, types


class Scrape:
    def __init__(self, text):
        self.text = text
        self.samples, self.types = parse_exposition(text)

    def get(self, name, **labels):
        """The value of the sample with exactly these labels, or None."""
        return self.samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))

    def series(self, name):
        return [(dict(k[1]), v) for k, v in self.samples.items() if k[0] == name]

    def total(self, name, **match):
        return sum(v for labels, v in self.series(name) if all(labels.get(k) == str(x) for k, x in match.items()))


def scrape(port, timeout=10):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return Scrape(r.read().decode("utf-8"))




def run(broker, name, *args, timeout=60):
    r = broker.run_tool(name, *args, timeout=timeout)
    assert r.returncode == 0, f"{name} {args}: {r.stdout}{r.stderr}"
    return r.stdout


@pytest.fixture
def metrics_broker(broker_factory):
    port = free_port()
    b = broker_factory(metrics_listener=f"http://127.0.0.1:{port}", group_initial_rebalance_delay_ms=0)
    b.metrics_port = port
    # the metrics listener opens just after the Kafka port the fixture waits for
    wait_until(lambda: _try_scrape(port), 10, "the metrics listener")
    return b


# ---------------------------------------------------------------- counters and gauges against the tools

N = 300


def produce_keyed(bootstrap, topic, n):
    script = f"""
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{bootstrap}", "linger.ms": 5}})
errors = []
def cb(err, msg):
    if err: errors.append(err)
for i in range({n}):
    p.produce("{topic}", key=b"key-%d" % i, value=b"value-%d" % i, on_delivery=cb)
assert p.flush(30) == 0 and not errors, errors
"""
    r = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def consume_and_commit(bootstrap, topic, group, n):
    script = f"""
from confluent_kafka import Consumer
c = Consumer({{"bootstrap.servers": "{bootstrap}", "group.id": "{group}", "auto.offset.reset": "earliest",
               "enable.auto.commit": False}})
c.subscribe(["{topic}"])
got = 0
import time
deadline = time.time() + 30
while got < {n} and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    got += 1
    if got == {n}:
        break
assert got == {n}, got
c.commit(asynchronous=False)
c.close()
"""
    r = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr


def test_counters_and_gauges_match_the_tools(metrics_broker):
    b = metrics_broker
    before = scrape(b.metrics_port)
    assert before.get("kafka_server_brokertopicmetrics_messagesin_total") == 0
    run(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "m1", "--partitions", "3")
    produce_keyed(b.bootstrap, "m1", N)

    s = scrape(b.metrics_port)
    assert s.get("kafka_server_brokertopicmetrics_messagesin_total") == N
    assert s.get("kafka_server_brokertopicmetrics_messagesin_total", topic="m1") == N
    assert s.get("kafka_server_brokertopicmetrics_bytesin_total", topic="m1") > N * len("value-0")
    assert s.get("kafka_server_brokertopicmetrics_failedproducerequests_total", topic="m1") == 0
    assert s.types["kafka_server_brokertopicmetrics_messagesin_total"] == "counter"

    # log end offset per partition == kafka-get-offsets; sizes and starts
    offsets = run(b, "kafka-get-offsets", "--bootstrap-server", b.bootstrap, "--topic", "m1")
    leo = {int(p): int(o) for _, p, o in (line.split(":") for line in offsets.split())}
    assert sorted(leo) == [0, 1, 2] and sum(leo.values()) == N
    assert min(leo.values()) > 0, "keys spread over the partitions"
    for p, o in leo.items():
        assert s.get("kafka_log_log_logendoffset", topic="m1", partition=p) == o
        assert s.get("kafka_log_log_logstartoffset", topic="m1", partition=p) == 0
        assert s.get("kafka_log_log_size", topic="m1", partition=p) > 0
        assert s.get("kafka_log_log_numlogsegments", topic="m1", partition=p) == 1

    # a group that read part of it: lag per partition == kafka-consumer-groups --describe
    consume_and_commit(b.bootstrap, "m1", "mg", N // 2)
    desc = run(b, "kafka-consumer-groups", "--bootstrap-server", b.bootstrap, "--describe", "--group", "mg")
    lines = [line.split() for line in desc.splitlines() if line.startswith("mg ")]
    header = next(line.split() for line in desc.splitlines() if line.startswith("GROUP"))
    col = {h: i for i, h in enumerate(header)}
    s = scrape(b.metrics_port)
    compared = 0
    for row in lines:
        p, cur, lag = int(row[col["PARTITION"]]), row[col["CURRENT-OFFSET"]], row[col["LAG"]]
        if cur == "-":
            assert s.get("kafka_consumergroup_lag", consumergroup="mg", topic="m1", partition=p) is None
            continue
        assert s.get("kafka_consumergroup_current_offset", consumergroup="mg", topic="m1", partition=p) == int(cur)
        assert s.get("kafka_consumergroup_lag", consumergroup="mg", topic="m1", partition=p) == int(lag), desc
        compared += 1
    assert compared >= 1, desc
    assert s.total("kafka_consumergroup_lag", consumergroup="mg") + N // 2 == N or compared < 3
    assert s.get("kafka_coordinator_group_groupmetadatamanager_numgroups") == 1
    assert s.get("kafka_coordinator_group_groupmetadatamanager_numgroupsempty") == 1
    assert s.get("kafka_server_brokertopicmetrics_bytesout_total", topic="m1") > 0
    assert s.get("kafka_server_brokertopicmetrics_bytesout_total") >= \
        s.get("kafka_server_brokertopicmetrics_bytesout_total", topic="m1")

    # request counts and times
    meta_before = s.total("kafka_network_requestmetrics_requests_total", request="Metadata")
    run(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--list")
    s2 = scrape(b.metrics_port)
    assert s2.total("kafka_network_requestmetrics_requests_total", request="Metadata") > meta_before
    produce_requests = s2.total("kafka_network_requestmetrics_requests_total", request="Produce")
    assert produce_requests >= 1
    assert s2.get("kafka_network_requestmetrics_totaltimems_count", request="Produce") == produce_requests
    assert s2.get("kafka_network_requestmetrics_errors_total", request="Produce", error="NONE") >= produce_requests
    assert s2.total("kafka_network_requestmetrics_requests_total", request="FetchConsumer") >= 1
    # every API's answers count their error codes: a topic created twice
    assert s2.get("kafka_network_requestmetrics_errors_total", request="Metadata", error="NONE") > 0
    assert s2.get("kafka_network_requestmetrics_errors_total", request="CreateTopics", error="NONE") == 1
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "m1")
    assert r.returncode != 0 and "already exists" in r.stdout + r.stderr
    s3 = scrape(b.metrics_port)
    assert s3.get("kafka_network_requestmetrics_errors_total", request="CreateTopics",
                  error="TOPIC_ALREADY_EXISTS") == 1, s3.series("kafka_network_requestmetrics_errors_total")
    assert s3.get("kafka_network_requestmetrics_errors_total", request="OffsetCommit", error="NONE") >= 1
    for q in ("0.50", "0.99"):
        for fam in ("totaltimems", "requestqueuetimems", "localtimems", "remotetimems", "responsesendtimems"):
            v = s2.get(f"kafka_network_requestmetrics_{fam}", request="Produce", quantile=q)
            assert v is not None and v >= 0, (fam, q)
    assert s2.get("kafka_network_requestmetrics_totaltimems", request="Produce", quantile="0.99") >= \
        s2.get("kafka_network_requestmetrics_totaltimems", request="Produce", quantile="0.50")
    assert s2.types["kafka_network_requestmetrics_totaltimems"] == "gauge"
    assert s2.types["kafka_network_requestmetrics_totaltimems_count"] == "counter"

    # replica manager and controller of a single node
    parts = 3 + 50  # m1 and __consumer_offsets
    assert s2.get("kafka_server_replicamanager_partitioncount") == parts
    assert s2.get("kafka_server_replicamanager_leadercount") == parts
    assert s2.get("kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert s2.get("kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert s2.get("kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert s2.get("kafka_server_socket_server_metrics_connection_count", listener="PLAINTEXT",
                  networkProcessor="0") >= 0
    idle = s2.get("kafka_network_socketserver_networkprocessoravgidle_percent")
    assert 0 < idle <= 1 and 0 < s2.get("kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent") <= 1
    assert s2.get("samsa_loop_idle_seconds_total") > 0
    # process
    assert s2.get("process_resident_memory_bytes") > 1 << 20
    assert s2.get("process_open_fds") > 3
    assert s2.get("process_cpu_seconds_total") > 0
    assert abs(s2.get("process_start_time_seconds") - time.time()) < 600


def test_failed_produce_and_errors_are_counted(metrics_broker):
    """A produce refused for a record without a key on a compacted topic:
    FailedProduceRequests and ErrorsPerSec{error=INVALID_RECORD}."""
    b = metrics_broker
    run(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "cmp", "--config",
        "cleanup.policy=compact")
    script = f"""
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{b.bootstrap}", "retries": 0}})
errs = []
p.produce("cmp", value=b"no key", on_delivery=lambda e, m: errs.append(e))
p.flush(20)
assert errs and errs[0] is not None, errs
"""
    r = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    s = scrape(b.metrics_port)
    assert s.get("kafka_server_brokertopicmetrics_failedproducerequests_total", topic="cmp") >= 1
    assert s.get("kafka_server_brokertopicmetrics_failedproducerequests_total") >= 1
    assert s.get("kafka_network_requestmetrics_errors_total", request="Produce", error="INVALID_RECORD") >= 1
    assert s.get("kafka_server_brokertopicmetrics_messagesin_total", topic="cmp") == 0


# ---------------------------------------------------------------- HTTP behaviour

def raw(port, data, timeout=5):
    """Sends data on a new connection; returns (everything answered, closed by the server)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            if not chunk:
                return out, True
            out += chunk
        return out, False
    finally:
        s.close()


def test_bad_http_closes_only_that_connection(metrics_broker):
    b = metrics_broker
    port = b.metrics_port
    keep = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    keep.request("GET", "/metrics")
    r = keep.getresponse()
    assert r.status == 200 and b"kafka_server_replicamanager_partitioncount" in r.read()

    for bad, status in [(b"GARBAGE\r\n\r\n", b"400"),
                        (b"GET  /metrics HTTP/1.1\r\n\r\n", b"400"),
                        (b"GET /metrics HTTP/1.1\n\n", b"400"),
                        (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n", b"431"),
                        (b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"413"),
                        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), b"400")]:
        out, closed = raw(port, bad)
        assert out.startswith(b"HTTP/1.1 " + status), (bad[:40], out[:100])
        assert closed, f"the server closes the connection after {status}"

    # keep-alive: 404 and 405 keep the connection; two pipelined requests are both answered
    out, closed = raw(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nDELETE /metrics HTTP/1.1\r\n\r\n"
                            b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
    answers = re.findall(rb"HTTP/1.1 (\d+)", out)
    assert answers[:3] == [b"404", b"405", b"200"], out[:300]
    assert closed
    out, _ = raw(port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"\r\n\r\n"), "HEAD: the head alone"

    # a client that sends half a request and vanishes, another that never reads
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metr")
    s.close()
    slow = socket.create_connection(("127.0.0.1", port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b"GET /metrics HTTP/1.1\r\n\r\n" * 50)

    # the first connection still works, and so does the Kafka port
    keep.request("GET", "/metrics")
    r = keep.getresponse()
    assert r.status == 200
    Scrape(r.read().decode())
    keep.close()
    assert b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--list").returncode == 0
    slow.close()
    assert scrape(port).get("kafka_controller_kafkacontroller_activecontrollercount") == 1


def broker_with(workdir, value):
    """A formatted node whose config then gets metrics.listener=value
    (kafka-storage format validates the config as Kafka's StorageTool does)."""
    b = Broker(workdir)
    with open(b.config, "a") as f:
        f.write(f"metrics.listener={value}\n")
    return b


def test_metrics_listener_is_validated(tmp_path):
    for value, message in [("127.0.0.1:9404", "Invalid value 127.0.0.1:9404 for configuration metrics.listener"),
                           ("http://127.0.0.1:99999", "the port must be a number from 0 to 65535"),
                           ("http://127.0.0.1:9404/metrics", "no path after the port")]:
        d = tmp_path / re.sub(r"\W", "_", value)
        d.mkdir()
        b = broker_with(str(d), value)
        with pytest.raises(RuntimeError) as e:
            b.start()
        assert message in str(e.value), str(e.value)[-2000:]
        assert b.proc.returncode == 1

    # a port already taken: a clear start-up error too
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    d = tmp_path / "taken"
    d.mkdir()
    b = broker_with(str(d), f"http://127.0.0.1:{taken.getsockname()[1]}")
    try:
        b.start()  # may see the Kafka port open before the metrics listener fails
    except RuntimeError:
        pass
    try:
        code = b.proc.wait(timeout=20)
    finally:
        taken.close()
    assert code == 1
    log = b.log_text()
    assert "metrics.listener" in log and "Address already in use" in log, log[-2000:]


def test_override_and_off_by_default(broker_factory, tmp_path):
    plain = broker_factory()
    assert "Prometheus" not in plain.log_text()
    port = free_port()
    d = tmp_path / "ovr"
    d.mkdir()
    b = Broker(str(d))
    out = open(os.path.join(str(d), "out"), "w")
    proc = subprocess.Popen([os.path.join(BIN, "kafka-server-start.sh"), b.config, "--override",
                             f"metrics.listener=http://127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT,
                            env=tool_env())
    try:
        s = wait_until(lambda: _try_scrape(port), 15, "the metrics listener set by --override")
        assert s.get("kafka_controller_kafkacontroller_activecontrollercount") == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        out.close()


def _try_scrape(port):
    try:
        return scrape(port, timeout=2)
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


# ---------------------------------------------------------------- a cluster

needs_etcd = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed")


@needs_etcd
def test_under_replicated_after_kill9(samsa_cluster_factory):
    from test_cluster import create_topic, wait_all_registered
    ports = {i: free_port() for i in (1, 2, 3)}
    c = samsa_cluster_factory(3, node_overrides={i: {"metrics.listener": f"http://127.0.0.1:{p}"}
                                                 for i, p in ports.items()})
    wait_all_registered(c)
    create_topic(c, 1, "ur", "--partitions", "6", "--replication-factor", "3")

    def scrapes(ids):
        return {i: _try_scrape(ports[i]) for i in ids}

    def all_in_sync():
        s = scrapes((1, 2, 3))
        return all(s.values()) and sum(x.get("kafka_server_replicamanager_underreplicatedpartitions") for x in s.values()) == 0 and s
    s = wait_until(all_in_sync, 20, "every partition in sync")
    assert sum(x.get("kafka_controller_kafkacontroller_activecontrollercount") for x in s.values()) == 1
    assert sum(x.get("kafka_server_replicamanager_leadercount") for x in s.values()) == 6
    assert all(x.get("kafka_server_replicamanager_partitioncount") == 6 for x in s.values())

    c.kill9(3)

    def under():
        s = scrapes((1, 2))
        if not all(s.values()):
            return False
        n = sum(x.get("kafka_server_replicamanager_underreplicatedpartitions") for x in s.values())
        return n == 6 and s
    s = wait_until(under, 30, "6 under-replicated partitions on the live nodes")
    out = c.run_tool("kafka-topics", "--bootstrap-server", c.bootstrap_of(1, 2), "--describe",
                     "--under-replicated-partitions").stdout
    listed = [line for line in out.splitlines() if "Partition:" in line and "ur" in line]
    assert len(listed) == 6, out
    assert sum(x.get("kafka_server_replicamanager_leadercount") for x in s.values()) == 6
    assert sum(x.get("kafka_controller_kafkacontroller_activecontrollercount") for x in s.values()) == 1
    # min.insync.replicas is 1: nothing under it
    assert sum(x.get("kafka_server_replicamanager_underminisrpartitioncount") for x in s.values()) == 0


def test_grafana_dashboard_uses_exported_names(metrics_broker):
    """Every metric contrib/grafana-samsa.json queries is one this endpoint
    exports, and every documented name too (docs/metrics.md)."""
    import json
    from conftest import ROOT
    with open(os.path.join(ROOT, "contrib", "grafana-samsa.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"]]
    used = set(re.findall(r"\b((?:kafka|process|samsa)_[a-z_]+)", " ".join(exprs)))
    assert len(used) > 15
    s = scrape(metrics_broker.metrics_port)
    missing = sorted(n for n in used if n not in s.types)
    assert not missing, missing
    with open(os.path.join(ROOT, "docs", "metrics.md")) as f:
        documented = set(re.findall(r"`((?:kafka|process|samsa)_[a-z_]+)`", f.read()))
    # names written with `...` shorthand in the table are families' prefixes
    undocumented = sorted(n for n in s.types if n not in documented and not any(
        n.startswith(d) for d in documented if d.endswith("_")))
    missing_doc = sorted(n for n in documented if not n.endswith("_") and n not in s.types)
    assert not missing_doc, missing_doc
    assert len(undocumented) < 25, undocumented


def test_connections_counted_per_listener(metrics_broker):
    """socket-server-metrics per listener: connection-count follows open connections,
    connection-creation-total and connection-close-total count them."""
    b = metrics_broker

    def sample(name):
        return scrape(b.metrics_port).get(f"kafka_server_socket_server_metrics_{name}", listener="PLAINTEXT",
                                          networkProcessor="0")

    open0, created0, closed0 = sample("connection_count"), sample("connection_creation_total"), \
        sample("connection_close_total")
    assert open0 is not None and created0 is not None and closed0 is not None
    socks = [socket.create_connection(("127.0.0.1", b.port), timeout=5) for _ in range(3)]
    try:
        wait_until(lambda: sample("connection_count") == open0 + 3, 10, "three more open connections")
        assert sample("connection_creation_total") == created0 + 3
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: sample("connection_count") == open0, 10, "the three connections closed")
    assert sample("connection_close_total") == closed0 + 3
    assert sample("connection_creation_total") == created0 + 3
