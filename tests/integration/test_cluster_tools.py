"""Kafka's command-line tools against a 3-node cluster (metadata.store=etcd,
real etcd) whose partitions and group coordinators are spread over the nodes,
every tool bootstrapped from ONE node: requests must reach the node they
belong to, as Kafka's AdminClient routes them (a group's coordinator, each
partition's leader, every broker for per-broker APIs, the broker of a broker
config resource).

One cluster for the module (starting one is the slow part); each test uses
its own topics and groups so they do not depend on each other's order.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import time

import pytest

from cluster import HAVE_ETCD, EtcdCluster, SamsaCluster
from conftest import BIN, BROKER_BIN, CHILD_THREAD_GUARD, PYTHON, tool_env

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="etcd not installed (scripts/install-deps.sh)")


def run_py(code, timeout=90):
    r = subprocess.run([PYTHON, "-c", CHILD_THREAD_GUARD + textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout, env=tool_env())
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def java_hash(s):
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


class Lab:
    def __init__(self, cluster):
        self.c = cluster
        self.n1 = cluster.node(1).bootstrap

    def tool(self, name, *args, ok=True, timeout=90):
        r = self.c.run_tool(name, *args, timeout=timeout)
        if ok:
            assert r.returncode == 0, f"{name} {args}: rc={r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def cg(self, *args, ok=True):
        return self.tool("kafka-consumer-groups", "--bootstrap-server", self.n1, *args, ok=ok)

    def leaders(self, topic):
        """{partition: leader id} from kafka-topics --describe."""
        out = {}
        deadline = time.time() + 20
        while True:
            r = self.tool("kafka-topics", "--bootstrap-server", self.n1, "--describe", "--topic", topic, ok=False)
            out = {int(p): int(l) for p, l in re.findall(r"Partition: (\d+)\tLeader: (-?\d+)", r.stdout)}
            if out and all(l > 0 for l in out.values()):
                return out
            assert time.time() < deadline, r.stdout + r.stderr
            time.sleep(0.3)

    def create_spread_topic(self, topic, partitions=6):
        self.tool("kafka-topics", "--bootstrap-server", self.n1, "--create", "--topic", topic,
                  "--partitions", str(partitions), "--replication-factor", "1")
        leaders = self.leaders(topic)
        assert set(leaders.values()) == {1, 2, 3}, leaders
        return leaders

    def produce(self, topic, counts):
        """counts: {partition: number of records}."""
        run_py(f"""
            from confluent_kafka import Producer
            p = Producer({{"bootstrap.servers": "{self.c.bootstrap}"}})
            for part, n in {counts!r}.items():
                for i in range(n):
                    p.produce("{topic}", value=b"v%d" % i, partition=part)
            assert p.flush(30) == 0
        """)

    def commit(self, group, topic, offsets):
        """Commit {partition: offset} for group without joining it."""
        tps = ", ".join(f'TopicPartition("{topic}", {p}, {o})' for p, o in offsets.items())
        run_py(f"""
            from confluent_kafka import Consumer, TopicPartition
            c = Consumer({{"bootstrap.servers": "{self.c.bootstrap}", "group.id": "{group}"}})
            c.commit(offsets=[{tps}], asynchronous=False)
            c.close()
        """)

    def group_on(self, node_id, prefix):
        """A group id whose coordinator (the leader of its __consumer_offsets
        partition) is node_id."""
        offsets_leaders = self.leaders("__consumer_offsets")
        n = len(offsets_leaders)
        for i in range(10000):
            g = f"{prefix}-{i}"
            h = java_hash(g)
            part = 0 if h == -(1 << 31) else abs(h) % n
            if offsets_leaders[part] == node_id:
                return g
        raise AssertionError(f"no group for node {node_id}")


@pytest.fixture(scope="module")
def lab():
    if not os.access(BROKER_BIN, os.X_OK):
        pytest.skip(f"{BROKER_BIN} not built")
    d = tempfile.mkdtemp(prefix="samsa-cluster-tools-")
    etcd = EtcdCluster(os.path.join(d, "etcd"), members=3)
    cluster = None
    try:
        cluster = SamsaCluster(os.path.join(d, "samsa"), etcd, nodes=3)
        lab = Lab(cluster)
        # __consumer_offsets comes with the first group lookup
        lab.create_spread_topic("warmup", 3)
        lab.commit("warmup-group", "warmup", {0: 0})
        yield lab
    finally:
        try:
            if cluster is not None:
                cluster.stop(check=True)  # a crashed node or sanitizer report fails here
        finally:
            etcd.stop()
            shutil.rmtree(d, ignore_errors=True)


def table(text, header_word):
    """Rows (lists of columns) of the table whose header starts with header_word."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith(header_word + " "):
            inside = True
            continue
        if inside:
            if not line.strip():
                inside = False
                continue
            rows.append(line.split())
    return rows


# ---------------------------------------------------------------- consumer groups


def test_describe_group_coordinated_by_another_node(lab):
    leaders = lab.create_spread_topic("cg-spread")
    counts = {p: 3 * (p + 1) for p in leaders}
    lab.produce("cg-spread", counts)
    for node in (1, 2, 3):
        g = lab.group_on(node, "desc")
        lab.commit(g, "cg-spread", {p: p for p in leaders})
        r = lab.cg("--describe", "--group", g)
        assert "NotCoordinator" not in r.stdout + r.stderr
        assert r.stderr.strip() == f"Consumer group '{g}' has no active members."
        rows = table(r.stdout, "GROUP")
        got = {int(row[2]): (int(row[3]), int(row[4]), int(row[5])) for row in rows}
        assert got == {p: (p, counts[p], counts[p] - p) for p in leaders}, r.stdout
        assert all(row[0] == g and row[1] == "cg-spread" and row[6:] == ["-", "-", "-"] for row in rows)

        r = lab.cg("--describe", "--group", g, "--state")
        coord = lab.c.node(node).bootstrap
        assert table(r.stdout, "GROUP") == [[g, coord, f"({node})", "Empty", "0"]], r.stdout


def test_describe_all_groups_and_active_member(lab):
    leaders = lab.create_spread_topic("cg-active")
    lab.produce("cg-active", {p: 5 for p in leaders})
    g = lab.group_on(3, "active")
    ready = os.path.join(tempfile.mkdtemp(prefix="cg-active-"), "ready")
    stop = ready + ".stop"
    code = CHILD_THREAD_GUARD + textwrap.dedent(f"""
        import os, time
        from confluent_kafka import Consumer
        c = Consumer({{"bootstrap.servers": "{lab.n1}", "group.id": "{g}", "client.id": "tool-test",
                       "auto.offset.reset": "earliest", "enable.auto.commit": False}})
        c.subscribe(["cg-active"])
        seen = 0
        while seen < {5 * len(leaders)}:
            m = c.poll(0.5)
            if m is not None and not m.error():
                seen += 1
        c.commit(asynchronous=False)
        open("{ready}", "w").close()
        end = time.time() + 60
        while not os.path.exists("{stop}") and time.time() < end:
            c.poll(0.2)
        c.close()
    """)
    p = subprocess.Popen([PYTHON, "-c", code], env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        deadline = time.time() + 60
        while not os.path.exists(ready):
            assert p.poll() is None, p.stdout.read()
            assert time.time() < deadline, "consumer did not finish reading"
            time.sleep(0.2)
        r = lab.cg("--describe", "--group", g)
        rows = table(r.stdout, "GROUP")
        assert sorted(int(row[2]) for row in rows) == sorted(leaders), r.stdout
        for row in rows:
            assert row[3:6] == ["5", "5", "0"], r.stdout
            assert row[6] != "-" and row[8] == "tool-test", r.stdout
        r = lab.cg("--describe", "--group", g, "--members", "--verbose")
        rows = table(r.stdout, "GROUP")
        assert len(rows) == 1 and rows[0][4] == str(len(leaders)), r.stdout
        assert r.stdout.rstrip().endswith("cg-active(" + ",".join(str(x) for x in sorted(leaders)) + ")"), r.stdout
        r = lab.cg("--describe", "--all-groups", "--state")
        assert any(row[:1] == [g] and row[-2:] == ["Stable", "1"] for row in table(r.stdout, "GROUP")), r.stdout
    finally:
        open(stop, "w").close()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        shutil.rmtree(os.path.dirname(ready), ignore_errors=True)


def test_list_groups_of_every_coordinator(lab):
    groups = {node: lab.group_on(node, "list") for node in (1, 2, 3)}
    for g in groups.values():
        lab.commit(g, "warmup", {0: 0})
    r = lab.cg("--list")
    listed = r.stdout.split()
    for g in groups.values():
        assert g in listed, r.stdout
    assert len(listed) == len(set(listed)), r.stdout
    r = lab.cg("--list", "--state")
    states = {row[0]: row[1] for row in table(r.stdout, "GROUP")}
    for g in groups.values():
        assert states.get(g) == "Empty", r.stdout
    r = lab.cg("--list", "--state", "Stable")
    assert not set(groups.values()) & {row[0] for row in table(r.stdout, "GROUP")}, r.stdout


def test_reset_offsets_on_remote_coordinator_and_leaders(lab):
    leaders = lab.create_spread_topic("cg-reset")
    counts = {p: 2 + p for p in leaders}
    lab.produce("cg-reset", counts)
    g = lab.group_on(2, "reset")
    lab.commit(g, "cg-reset", {p: 1 for p in leaders})
    r = lab.cg("--reset-offsets", "--group", g, "--topic", "cg-reset", "--to-latest", "--execute")
    plan = {int(row[2]): int(row[3]) for row in table(r.stdout, "GROUP")}
    assert plan == counts, r.stdout
    r = lab.cg("--describe", "--group", g)
    assert {int(row[2]): row[3:6] for row in table(r.stdout, "GROUP")} == \
        {p: [str(n), str(n), "0"] for p, n in counts.items()}, r.stdout
    r = lab.cg("--reset-offsets", "--group", g, "--topic", "cg-reset", "--shift-by", "-1", "--dry-run")
    assert {int(row[2]): int(row[3]) for row in table(r.stdout, "GROUP")} == \
        {p: n - 1 for p, n in counts.items()}, r.stdout
    r = lab.cg("--reset-offsets", "--group", g, "--all-topics", "--to-earliest", "--execute")
    assert {int(row[2]): int(row[3]) for row in table(r.stdout, "GROUP")} == {p: 0 for p in leaders}, r.stdout


def test_delete_offsets_and_groups_on_remote_coordinators(lab):
    leaders = lab.create_spread_topic("cg-delete")
    lab.produce("cg-delete", {p: 1 for p in leaders})
    g2, g3 = lab.group_on(2, "del"), lab.group_on(3, "del")
    for g in (g2, g3):
        lab.commit(g, "cg-delete", {p: 1 for p in leaders})
    r = lab.cg("--delete-offsets", "--group", g3, "--topic", "cg-delete:0")
    assert r.stdout.startswith(f"Request succeed for deleting offsets with topic cg-delete:0 group {g3}\n"), r.stdout
    assert table(r.stdout, "TOPIC") == [["cg-delete", "0", "Successful"]], r.stdout
    r = lab.cg("--describe", "--group", g3)
    assert sorted(int(row[2]) for row in table(r.stdout, "GROUP")) == sorted(p for p in leaders if p != 0)

    r = lab.cg("--delete", "--group", g2, "--group", g3)
    assert r.stdout.startswith("Deletion of requested consumer groups (") and "was successful" in r.stdout, r.stdout
    listed = lab.cg("--list").stdout.split()
    assert g2 not in listed and g3 not in listed


# ---------------------------------------------------------------- records and logs


def test_delete_records_on_leaders_of_other_nodes(lab):
    leaders = lab.create_spread_topic("dr-spread")
    lab.produce("dr-spread", {p: 10 for p in leaders})
    remote = sorted(p for p, l in leaders.items() if l in (2, 3))
    assert {leaders[p] for p in remote} == {2, 3}
    spec = {"version": 1, "partitions": [{"topic": "dr-spread", "partition": p, "offset": 3 + p} for p in remote]}
    path = os.path.join(lab.c.workdir, "dr.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    r = lab.tool("kafka-delete-records", "--bootstrap-server", lab.n1, "--offset-json-file", path)
    got = dict(re.findall(r"partition: dr-spread-(\d+)\tlow_watermark: (\d+)", r.stdout))
    assert {int(p): int(w) for p, w in got.items()} == {p: 3 + p for p in remote}, r.stdout
    r = lab.tool("kafka-get-offsets", "--bootstrap-server", lab.n1, "--topic", "dr-spread", "--time", "-2")
    earliest = {int(p): int(o) for p, o in re.findall(r"dr-spread:(\d+):(\d+)", r.stdout)}
    assert earliest == {p: (3 + p if p in remote else 0) for p in leaders}, r.stdout


def test_log_dirs_of_every_broker(lab):
    leaders = lab.create_spread_topic("ld-spread")
    r = lab.tool("kafka-log-dirs", "--bootstrap-server", lab.n1, "--describe", "--topic-list", "ld-spread")
    assert "Received log directory information from brokers 1,2,3\n" in r.stdout, r.stdout
    doc = json.loads(r.stdout.splitlines()[-1])
    held = {b["broker"]: sorted(int(p["partition"].rsplit("-", 1)[1]) for d in b["logDirs"] for p in d["partitions"])
            for b in doc["brokers"]}
    assert held == {n: sorted(p for p, l in leaders.items() if l == n) for n in (1, 2, 3)}, r.stdout
    r = lab.tool("kafka-log-dirs", "--bootstrap-server", lab.n1, "--describe", "--broker-list", "3",
                 "--topic-list", "ld-spread")
    assert "Received log directory information from brokers 3\n" in r.stdout, r.stdout
    assert [b["broker"] for b in json.loads(r.stdout.splitlines()[-1])["brokers"]] == [3]


def test_get_offsets_of_partitions_on_every_node(lab):
    leaders = lab.create_spread_topic("go-spread")
    lab.produce("go-spread", {p: p + 1 for p in leaders})
    r = lab.tool("kafka-get-offsets", "--bootstrap-server", lab.n1, "--topic", "go-spread")
    assert r.stdout == "".join(f"go-spread:{p}:{p + 1}\n" for p in sorted(leaders)), r.stdout


# ---------------------------------------------------------------- per-broker and cluster APIs


def test_broker_api_versions_lists_every_node(lab):
    r = lab.tool("kafka-broker-api-versions", "--bootstrap-server", lab.n1)
    heads = re.findall(r"^(\S+) \(id: (\d+) rack: null\) -> \($", r.stdout, re.M)
    assert sorted((int(i), hp) for hp, i in heads) == [(n.node_id, n.bootstrap) for n in lab.c.nodes], r.stdout
    assert r.stdout.count("\tApiVersions(18): 0 to 3 [usable: 3]") == 3, r.stdout


def test_broker_configs_go_to_that_broker(lab):
    for node in (2, 3):
        r = lab.tool("kafka-configs", "--bootstrap-server", lab.n1, "--describe", "--entity-type", "brokers",
                     "--entity-name", str(node), "--all")
        assert r.stdout.startswith(f"All configs for broker {node} are:\n"), r.stdout
        assert f"  node.id={node} sensitive=false" in r.stdout, r.stdout
        assert f"advertised.listeners=PLAINTEXT://{lab.c.node(node).bootstrap} " in r.stdout, r.stdout
    r = lab.tool("kafka-configs", "--bootstrap-server", lab.n1, "--alter", "--entity-type", "brokers",
                 "--entity-name", "3", "--add-config", "log.cleaner.backoff.ms=16000")
    assert r.stdout == "Completed updating config for broker 3.\n", r.stdout + r.stderr
    r = lab.tool("kafka-configs", "--bootstrap-server", lab.c.node(2).bootstrap, "--describe",
                 "--entity-type", "brokers", "--entity-name", "3")
    assert r.stdout == ("Dynamic configs for broker 3 are:\n  log.cleaner.backoff.ms=16000 sensitive=false "
                        "synonyms={DYNAMIC_BROKER_CONFIG:log.cleaner.backoff.ms=16000, "
                        "DEFAULT_CONFIG:log.cleaner.backoff.ms=15000}\n"), r.stdout + r.stderr
    r = lab.tool("kafka-configs", "--bootstrap-server", lab.n1, "--describe", "--entity-type", "brokers")
    assert r.stdout.startswith("Dynamic configs for broker 1 are:\nDynamic configs for broker 2 are:\n"
                               "Dynamic configs for broker 3 are:\n  log.cleaner.backoff.ms=16000 "), r.stdout
    r = lab.tool("kafka-configs", "--bootstrap-server", lab.n1, "--alter", "--entity-type", "brokers",
                 "--entity-name", "3", "--delete-config", "log.cleaner.backoff.ms")
    assert r.stdout == "Completed updating config for broker 3.\n", r.stdout + r.stderr
    r = lab.tool("kafka-configs", "--bootstrap-server", lab.n1, "--describe", "--entity-type", "broker-loggers",
                 "--entity-name", "2")
    assert r.stdout.startswith("Dynamic configs for broker-logger 2 are:\n"), r.stdout + r.stderr


def test_topics_from_any_node(lab):
    n2, n3 = lab.c.node(2).bootstrap, lab.c.node(3).bootstrap
    lab.tool("kafka-topics", "--bootstrap-server", n3, "--create", "--topic", "tp-any", "--partitions", "2")
    lab.tool("kafka-topics", "--bootstrap-server", n2, "--alter", "--topic", "tp-any", "--partitions", "5")
    assert len(lab.leaders("tp-any")) == 5
    r = lab.tool("kafka-topics", "--bootstrap-server", lab.n1, "--describe", "--topic", "tp-any")
    assert "PartitionCount: 5\t" in r.stdout, r.stdout
    lab.tool("kafka-topics", "--bootstrap-server", n3, "--delete", "--topic", "tp-any")
    deadline = time.time() + 20
    while "tp-any" in lab.tool("kafka-topics", "--bootstrap-server", lab.n1, "--list").stdout.split():
        assert time.time() < deadline
        time.sleep(0.3)


def test_cluster_id_features_and_quorum_from_any_node(lab):
    ids = set()
    for n in lab.c.nodes:
        r = lab.tool("kafka-cluster", "cluster-id", "--bootstrap-server", n.bootstrap)
        ids.add(r.stdout)
    assert ids == {f"Cluster ID: {lab.c.cluster_id}\n"}
    r = lab.tool("kafka-features", "--bootstrap-server", lab.c.node(3).bootstrap, "describe")
    assert r.stdout.startswith("Feature: metadata.version\t"), r.stdout
    r = lab.tool("kafka-metadata-quorum", "--bootstrap-server", lab.c.node(2).bootstrap, "describe", "--status")
    assert r.stdout.startswith(f"ClusterId:              {lab.c.cluster_id}\n"), r.stdout


# ---------------------------------------------------------------- last: restarts a node


def test_describe_waits_for_a_coordinator_coming_back(lab):
    """The admin client retries COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR /
    COORDINATOR_LOAD_IN_PROGRESS until --timeout: a describe started while the
    group's coordinator node is down answers once it is back."""
    leaders = lab.create_spread_topic("cg-back")
    lab.produce("cg-back", {p: 4 for p in leaders})
    g = lab.group_on(3, "back")
    lab.commit(g, "cg-back", {p: 1 for p in leaders})
    lab.c.stop_node(3)
    try:
        p = subprocess.Popen([os.path.join(BIN, "kafka-consumer-groups.sh"),
                              "--bootstrap-server", lab.n1, "--describe", "--group", g, "--state",
                              "--timeout", "30000"],
                             env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert p.poll() is None, p.communicate()
    finally:
        lab.c.start_node(3)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, out + err
    assert table(out, "GROUP") == [[g, lab.c.node(3).bootstrap, "(3)", "Empty", "0"]], out + err
