"""kafka-topics --describe's partition reports (--under-replicated-partitions,
--under-min-isr-partitions, --at-min-isr-partitions, --unavailable-partitions)
and kafka-log-dirs --describe, as Kafka 3.6.1's TopicCommand and
LogDirsCommand print them: on one node, on a cluster whose nodes die
(kill -9), and with replication factor 3.

Kafka's rules (TopicCommand.PartitionDescription): under-replicated =
replicas - ISR > 0; under-min-ISR = no leader, or ISR < the topic's
min.insync.replicas (read through DescribeConfigs); at-min-ISR = ISR ==
min.insync.replicas; unavailable = no leader, or a leader that
DescribeCluster does not list. Only the matching partitions are printed,
without the topic header line. The options exclude each other and
--topics-with-overrides, and work only with --describe.
"""
import json
import re
import time

import pytest

from cluster import HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from conftest import PYTHON, tool_env  # noqa: F401

PART_LINE = re.compile(r"^\tTopic: (\S+)\tPartition: (\d+)\tLeader: (none|\d+)\tReplicas: ([\d,]*)\tIsr: ([\d,]*)$")


def topics(node, *args, ok=True, timeout=60):
    r = node.run_tool("kafka-topics", "--bootstrap-server", node.bootstrap, *args, timeout=timeout)
    if ok:
        assert r.returncode == 0, f"kafka-topics {args}: rc={r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def partition_lines(text):
    """{(topic, partition): (leader, replicas, isr)}; every line must be a partition line."""
    out = {}
    for line in text.splitlines():
        m = PART_LINE.match(line)
        assert m, f"not a partition line: {line!r}\n{text}"
        t, p, leader, replicas, isr = m.groups()
        ids = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
        out[(t, int(p))] = (None if leader == "none" else int(leader), ids(replicas), ids(isr))
    return out


def wait_for(what, check, timeout=60, interval=0.3):
    """Calls check() until it returns a true value (returned) or timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def java_hash(s):
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h


def java_hashmap_order(names):
    """Iteration order of a java.util.HashMap(n) filled with names in sorted
    order (describeTopics' allTopicNames(), which TopicCommand walks)."""
    n, cap = len(names), 1
    while cap < n:
        cap *= 2
    while n > cap * 3 // 4:
        cap *= 2

    def bucket(s):
        h = java_hash(s)
        return (h ^ (h >> 16)) & (cap - 1)
    return sorted(sorted(names), key=bucket)


# ---------------------------------------------------------------- one node


def test_reports_on_one_node(broker):
    topics(broker, "--create", "--topic", "rep-a", "--partitions", "2")
    topics(broker, "--create", "--topic", "rep-b", "--partitions", "1", "--config", "min.insync.replicas=2")
    # One replica, in sync, led: nothing under-replicated or unavailable.
    for flag in ("--under-replicated-partitions", "--unavailable-partitions"):
        r = topics(broker, "--describe", flag)
        assert (r.stdout, r.stderr) == ("", ""), flag
    # ISR 1 < min.insync.replicas 2 (from DescribeConfigs): only rep-b.
    r = topics(broker, "--describe", "--under-min-isr-partitions")
    assert r.stdout == "\tTopic: rep-b\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n"
    # ISR 1 == the default min.insync.replicas 1: rep-a's partitions, no header line.
    r = topics(broker, "--describe", "--at-min-isr-partitions", "--topic", "rep-a")
    assert r.stdout == ("\tTopic: rep-a\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n"
                        "\tTopic: rep-a\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1\n")
    r = topics(broker, "--describe", "--at-min-isr-partitions", "--topic", "rep-b")
    assert r.stdout == ""
    # A report that matches nothing for an existing --topic prints nothing, rc 0.
    r = topics(broker, "--describe", "--under-min-isr-partitions", "--topic", "rep-a")
    assert r.stdout == ""
    # --topics-with-overrides: header lines only, of topics with a non-default config.
    r = topics(broker, "--describe", "--topics-with-overrides")
    lines = r.stdout.splitlines()
    assert lines and all(line.startswith("Topic: ") for line in lines), r.stdout
    b_line = [line for line in lines if line.startswith("Topic: rep-b\t")]
    assert len(b_line) == 1 and "min.insync.replicas=2" in b_line[0].split("\tConfigs: ")[1], r.stdout


def test_reports_leave_out_internal_topics_with_exclude_internal(broker):
    topics(broker, "--create", "--topic", "ex-a")
    # __consumer_offsets appears with the first group lookup.
    r = broker.run_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", "ex-a",
                        "--group", "ex-g", "--timeout-ms", "1500")
    wait_for("__consumer_offsets", lambda: "__consumer_offsets" in topics(broker, "--list").stdout)
    got = partition_lines(topics(broker, "--describe", "--at-min-isr-partitions").stdout)
    assert ("ex-a", 0) in got and any(t == "__consumer_offsets" for t, _ in got)
    got = partition_lines(topics(broker, "--describe", "--at-min-isr-partitions", "--exclude-internal").stdout)
    assert ("ex-a", 0) in got and not any(t == "__consumer_offsets" for t, _ in got)
    # getTopicIds lists topics without the internal ones too.
    out = topics(broker, "--describe", "--topic", "__consumer_offsets").stdout
    offsets_id = re.search(r"\tTopicId: (\S+)\t", out).group(1)
    assert topics(broker, "--describe", "--topic-id", offsets_id).stdout == out
    r = topics(broker, "--describe", "--topic-id", offsets_id, "--exclude-internal", ok=False)
    assert (r.returncode, r.stdout) == (1, f"Error while executing topic command : TopicId '{offsets_id}' does not "
                                           "exist as expected\n")


def test_describe_prints_topics_in_kafkas_hashmap_order(broker):
    names = ["alpha", "beta", "gamma"]
    for n in names:
        topics(broker, "--create", "--topic", n)
    r = topics(broker, "--describe", "--exclude-internal")
    heads = [line.split("\t")[0][len("Topic: "):] for line in r.stdout.splitlines() if line.startswith("Topic: ")]
    assert heads == java_hashmap_order(names) == ["beta", "gamma", "alpha"], r.stdout
    r = topics(broker, "--describe", "--exclude-internal", "--at-min-isr-partitions")
    assert [t for t, _ in partition_lines(r.stdout)] == ["beta", "gamma", "alpha"], r.stdout


def test_describe_by_topic_id(broker):
    topics(broker, "--create", "--topic", "by-id", "--partitions", "2")
    by_name = topics(broker, "--describe", "--topic", "by-id").stdout
    topic_id = re.search(r"\tTopicId: (\S+)\t", by_name).group(1)
    assert topics(broker, "--describe", "--topic-id", topic_id).stdout == by_name
    r = topics(broker, "--describe", "--topic-id", topic_id, "--at-min-isr-partitions")
    assert sorted(partition_lines(r.stdout)) == [("by-id", 0), ("by-id", 1)]
    missing = "AAAAAAAAAAAAAAAAAAAAAQ"
    r = topics(broker, "--describe", "--topic-id", missing, ok=False)
    assert (r.returncode, r.stdout) == (1, f"Error while executing topic command : TopicId '{missing}' does not "
                                           "exist as expected\n")
    assert topics(broker, "--describe", "--topic-id", missing, "--if-exists").stdout == ""
    # Uuid.fromString's own refusals (java.util.Base64's URL decoder).
    for bad, message in [
        ("abc", "Input string `abc` decoded as 2 bytes, which is not equal to the expected 16 bytes of a "
                "base64-encoded UUID"),
        ("a.bc", "Illegal base64 character 2e"),
        ("a", "Input byte[] should at least have 2 bytes for base64 bytes"),
        ("abcde", "Last unit does not have enough valid bits"),
        ("A" * 25, "Input string with prefix `" + "A" * 24 + "` is too long to be decoded as a base64 UUID"),
    ]:
        r = topics(broker, "--describe", "--topic-id", bad, ok=False)
        assert (r.returncode, r.stdout) == (1, "Error while executing topic command : " + message + "\n"), bad


@pytest.mark.parametrize("args, message", [
    (["--describe", "--under-replicated-partitions", "--unavailable-partitions"],
     'Option "[under-replicated-partitions]" can\'t be used with option "[unavailable-partitions]"'),
    (["--describe", "--under-min-isr-partitions", "--at-min-isr-partitions"],
     'Option "[under-min-isr-partitions]" can\'t be used with option "[at-min-isr-partitions]"'),
    (["--describe", "--at-min-isr-partitions", "--topics-with-overrides"],
     'Option "[at-min-isr-partitions]" can\'t be used with option "[topics-with-overrides]"'),
    (["--describe", "--unavailable-partitions", "--topics-with-overrides"],
     'Option "[unavailable-partitions]" can\'t be used with option "[topics-with-overrides]"'),
    (["--list", "--under-replicated-partitions"],
     'Option "[under-replicated-partitions]" can\'t be used with option "[list]"'),
    (["--delete", "--topic", "x", "--unavailable-partitions"],
     'Option "[unavailable-partitions]" can\'t be used with option "[delete]"'),
    (["--list", "--topics-with-overrides"],
     'Option "[topics-with-overrides]" can\'t be used with option "[list]"'),
    (["--create", "--topic", "x", "--exclude-internal"],
     'Option "[exclude-internal]" can\'t be used with option "[create]"'),
])
def test_report_option_combinations_are_refused(broker, args, message):
    r = topics(broker, *args, ok=False)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines()[0] == message, r.stderr
    assert "--under-replicated-partitions" in r.stderr  # followed by the usage


# ---------------------------------------------------------------- a cluster


needs_etcd = pytest.mark.skipif(not HAVE_ETCD, reason="etcd not installed (scripts/install-deps.sh)")


def started(factory):
    """A 3-node cluster whose node 1 sees every node registered."""
    c = factory(3)
    n1 = c.node(1)

    def all_seen():
        r = n1.run_tool("kafka-broker-api-versions", "--bootstrap-server", n1.bootstrap)
        return r.returncode == 0 and sorted(re.findall(r"\(id: (\d+) rack", r.stdout)) == ["1", "2", "3"]
    wait_for("every node registered", all_seen)
    return c


def describe_partitions(node, *args):
    return partition_lines("\n".join(line for line in topics(node, "--describe", *args).stdout.splitlines()
                                     if line.startswith("\t")))


@needs_etcd
def test_unavailable_and_under_min_isr_when_the_only_replica_dies(samsa_cluster_factory):
    c = started(samsa_cluster_factory)
    n1 = c.node(1)
    topics(n1, "--create", "--topic", "on3", "--replica-assignment", "3,3")
    topics(n1, "--create", "--topic", "on12", "--replica-assignment", "1,2")
    wait_for("leaders", lambda: all(v[0] is not None for v in describe_partitions(n1).values()))
    for flag in ("--unavailable-partitions", "--under-min-isr-partitions", "--under-replicated-partitions"):
        assert topics(n1, "--describe", flag).stdout == "", flag

    c.kill9(3)
    # Fenced after broker.session.timeout.ms: its partitions lose their leader.
    wait_for("on3 without a leader",
             lambda: all(v[0] is None for k, v in describe_partitions(n1, "--topic", "on3").items()))
    expected = ("\tTopic: on3\tPartition: 0\tLeader: none\tReplicas: 3\tIsr: 3\n"
                "\tTopic: on3\tPartition: 1\tLeader: none\tReplicas: 3\tIsr: 3\n")
    assert topics(n1, "--describe", "--unavailable-partitions").stdout == expected
    # No leader counts as under min ISR whatever the ISR.
    assert topics(n1, "--describe", "--under-min-isr-partitions").stdout == expected
    # The ISR keeps its last member: not under-replicated.
    assert topics(n1, "--describe", "--under-replicated-partitions").stdout == ""
    # Every node answers the same.
    assert topics(c.node(2), "--describe", "--unavailable-partitions").stdout == expected


@needs_etcd
def test_log_dirs_queries_every_live_broker(samsa_cluster_factory):
    c = started(samsa_cluster_factory)
    n1 = c.node(1)
    topics(n1, "--create", "--topic", "ld", "--replica-assignment", "1,2,3")
    wait_for("leaders", lambda: all(v[0] is not None for v in describe_partitions(n1, "--topic", "ld").values()))
    r = n1.run_tool("kafka-log-dirs", "--bootstrap-server", n1.bootstrap, "--describe", "--topic-list", "ld")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[:2] == ["Querying brokers for log directories information",
                         "Received log directory information from brokers 1,2,3"], r.stdout
    doc = json.loads(lines[2])
    assert list(doc) == ["brokers", "version"] and doc["version"] == 1
    assert [b["broker"] for b in doc["brokers"]] == [1, 2, 3]
    for b in doc["brokers"]:
        (d,) = b["logDirs"]
        assert list(d) == ["partitions", "error", "logDir"] and d["error"] is None
        assert d["partitions"] == [{"partition": f"ld-{b['broker'] - 1}", "size": 0, "offsetLag": 0,
                                    "isFuture": False}], r.stdout
    c.kill9(2)

    def without_2():
        r = n1.run_tool("kafka-log-dirs", "--bootstrap-server", n1.bootstrap, "--describe", "--topic-list", "ld")
        return r if r.returncode == 0 and "from brokers 1,3\n" in r.stdout else None
    r = wait_for("node 2 fenced", without_2)
    assert [b["broker"] for b in json.loads(r.stdout.split("\n")[2])["brokers"]] == [1, 3]
    r = n1.run_tool("kafka-log-dirs", "--bootstrap-server", n1.bootstrap, "--describe", "--broker-list", "1,2")
    assert r.returncode == 1
    assert r.stderr == ("ERROR: The given brokers do not exist from --broker-list: 2. "
                        "Current existent brokers: 1,3\n")


# ---------------------------------------------------------------- replication factor 3


def produce(cluster, topic, partitions, per_partition):
    from conftest import CHILD_THREAD_GUARD
    import subprocess
    import textwrap
    code = CHILD_THREAD_GUARD + textwrap.dedent(f"""
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{cluster.bootstrap}", "acks": "all"}})
        for part in range({partitions}):
            for i in range({per_partition}):
                p.produce("{topic}", value=b"v%d" % i, partition=part)
        assert p.flush(30) == 0
    """)
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=90, env=tool_env())
    assert r.returncode == 0, r.stdout + r.stderr


def replication_supported(node):
    r = topics(node, "--create", "--topic", "rf-probe", "--partitions", "1", "--replication-factor", "3", ok=False)
    if r.returncode != 0 and "not supported yet" in r.stdout:
        return False
    assert r.returncode == 0, r.stdout + r.stderr
    return True


def log_dir_sizes(node, topic):
    """kafka-log-dirs --describe: [{partition: size}] per broker in the
    order printed; checks the replicas' offsetLag and isFuture."""
    r = node.run_tool("kafka-log-dirs", "--bootstrap-server", node.bootstrap, "--describe", "--topic-list", topic)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    doc = json.loads(lines[2])
    ids = [b["broker"] for b in doc["brokers"]]
    assert lines[1] == "Received log directory information from brokers " + ",".join(map(str, ids)), r.stdout
    out = []
    for b in doc["brokers"]:
        parts = {p["partition"]: p for d in b["logDirs"] for p in d["partitions"]}
        assert all(p["offsetLag"] == 0 and p["isFuture"] is False for p in parts.values()), r.stdout
        out.append({k: p["size"] for k, p in parts.items()})
    return out


@needs_etcd
def test_reports_with_replication_factor_3(samsa_cluster_factory):
    c = started(samsa_cluster_factory)
    n1 = c.node(1)
    if not replication_supported(n1):
        pytest.skip("replication factor > 1 is not supported yet")
    topics(n1, "--create", "--topic", "urp", "--partitions", "3", "--replication-factor", "3")
    topics(n1, "--create", "--topic", "mi3", "--partitions", "3", "--replication-factor", "3",
           "--config", "min.insync.replicas=3")

    def full_isr():
        got = describe_partitions(n1, "--exclude-internal")
        ok = len(got) == 7 and all(v[0] is not None and sorted(v[2]) == [1, 2, 3] for v in got.values())
        return got if ok else None
    before = wait_for("full ISRs", full_isr)
    produce(c, "urp", 3, 5)
    for flag in ("--under-replicated-partitions", "--under-min-isr-partitions", "--unavailable-partitions"):
        assert topics(n1, "--describe", flag, "--exclude-internal").stdout == "", flag
    # ISR 3 == min.insync.replicas 3 for mi3 only.
    got = describe_partitions(n1, "--at-min-isr-partitions", "--exclude-internal")
    assert sorted(got) == [("mi3", p) for p in range(3)]
    # Every replica (acks=all: each holds the records) on every broker, same sizes.
    before_kill_sizes = log_dir_sizes(n1, "urp")
    assert len(before_kill_sizes) == 3 and before_kill_sizes[0] == before_kill_sizes[1] == before_kill_sizes[2]
    assert sorted(before_kill_sizes[0]) == ["urp-0", "urp-1", "urp-2"], before_kill_sizes
    assert all(size > 0 for size in before_kill_sizes[0].values()), before_kill_sizes

    c.kill9(3)

    def urp_without_3():
        got = describe_partitions(n1, "--under-replicated-partitions", "--exclude-internal")
        return got if len(got) == 7 and all(3 not in v[2] for v in got.values()) else None
    got = wait_for("node 3 out of every ISR", urp_without_3)
    for key, (leader, replicas, isr) in got.items():
        assert replicas == before[key][1], key
        assert sorted(isr) == sorted(set(replicas) - {3}) and leader in isr, (key, got[key])
    # The lines are Kafka's, partitions in order within a topic.
    out = topics(n1, "--describe", "--under-replicated-partitions", "--topic", "urp").stdout
    assert [line.split("\t")[2] for line in out.splitlines()] == ["Partition: 0", "Partition: 1", "Partition: 2"]
    # ISR 2 < 3 for mi3; urp's min.insync.replicas is 1.
    got = describe_partitions(n1, "--under-min-isr-partitions", "--exclude-internal")
    assert sorted(got) == [("mi3", p) for p in range(3)]
    assert topics(n1, "--describe", "--at-min-isr-partitions", "--topic", "mi3").stdout == ""
    # Leaders moved to live replicas: nothing unavailable.
    assert topics(n1, "--describe", "--unavailable-partitions", "--exclude-internal").stdout == ""

    # kafka-log-dirs: the live brokers each hold every partition, leader or follower.
    assert log_dir_sizes(n1, "urp") == before_kill_sizes[:2]  # brokers 1 and 2

    c.kill9(2)

    def only_1():
        got = describe_partitions(n1, "--exclude-internal")
        return got if all(v[2] == [1] for v in got.values()) else None
    wait_for("ISRs of node 1 alone", only_1)
    # ISR 1 == urp's min.insync.replicas 1; everything under-replicated.
    got = describe_partitions(n1, "--at-min-isr-partitions", "--exclude-internal")
    assert sorted(got) == [("rf-probe", 0)] + [("urp", p) for p in range(3)]
    assert len(describe_partitions(n1, "--under-replicated-partitions", "--exclude-internal")) == 7
    assert topics(n1, "--describe", "--unavailable-partitions", "--exclude-internal").stdout == ""
