"""Black-box tests of the librdkafka-based tools: console producer/consumer,
kafka-get-offsets and the two perf tools, following the lab's flows.

Tests taking the `broker` fixture (tests/integration/conftest.py) run
against a live Samsa broker; the others only need build/samsa-tools.
"""
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "bin")


def tool(name, *args, input=None, timeout=30):
    return subprocess.run([os.path.join(BIN, name + ".sh"), *args], input=input,
                          capture_output=True, text=True, timeout=timeout)


def fresh_topic(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def create_topic(broker, name, partitions=1):
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def produce(broker, topic, lines, *extra):
    r = broker.run_tool("kafka-console-producer", "--topic", topic, "--bootstrap-server",
                        broker.bootstrap, *extra, input="".join(l + "\n" for l in lines))
    assert r.returncode == 0, r.stderr
    return r


def offsets(broker, *extra):
    r = broker.run_tool("kafka-get-offsets", "--bootstrap-server", broker.bootstrap, *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def start_consumer(broker, *args):
    return subprocess.Popen([os.path.join(broker.bin, "kafka-console-consumer.sh"),
                             "--bootstrap-server", broker.bootstrap, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_lines(proc, n, timeout=20):
    """Reads n stdout lines from a running consumer (it flushes per record)."""
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line.rstrip("\n"))
    return out


def interrupt(proc):
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    return proc.returncode, err


# ---- no broker needed ------------------------------------------------------

def test_producer_requires_bootstrap_and_topic():
    r = tool("kafka-console-producer")
    assert r.returncode == 1
    assert r.stderr.startswith("Missing required option(s) [bootstrap-server]\n")
    r = tool("kafka-console-producer", "--bootstrap-server", "localhost:9092")
    assert r.returncode == 1
    assert r.stderr.startswith('Missing required argument "[topic]"\n')
    assert "Option" in r.stderr and "Description" in r.stderr
    r = tool("kafka-console-producer", "--bootstrap-server", "nohost", "--topic", "x")
    assert r.returncode == 1
    assert r.stderr.startswith("Please provide valid host:port like host1:9091,host2:9092\n")


def test_unknown_option_and_help():
    r = tool("kafka-console-consumer", "--bogus")
    assert r.returncode == 1
    assert r.stderr.startswith("bogus is not a recognized option\n")
    r = tool("kafka-console-consumer", "--help")
    assert r.returncode == 1
    assert r.stderr.startswith("This tool helps to read data from Kafka topics and outputs it to standard output.\n")
    assert "--from-beginning" in r.stderr
    r = tool("kafka-console-consumer", "--version")
    assert r.returncode == 0 and r.stdout.strip() == "3.6.1"


def test_consumer_argument_rules():
    r = tool("kafka-console-consumer", "--bootstrap-server", "localhost:9092")
    assert r.stderr.startswith("Exactly one of --include/--topic is required. ()")
    r = tool("kafka-console-consumer", "--topic", "a", "--offset", "3", "--bootstrap-server", "localhost:9092")
    assert r.stderr.startswith("The partition is required when offset is specified.")
    r = tool("kafka-console-consumer", "--topic", "a", "--partition", "0", "--group", "g",
             "--bootstrap-server", "localhost:9092")
    assert r.stderr.startswith("Options group and partition cannot be specified together.")
    r = tool("kafka-console-consumer", "--topic", "a", "--partition", "0", "--offset", "x",
             "--bootstrap-server", "localhost:9092")
    assert r.stderr.startswith("The provided offset value 'x' is incorrect.")
    r = tool("kafka-console-consumer", "--topic", "a")
    assert r.stderr.startswith('Missing required argument "[bootstrap-server]"')


def test_get_offsets_errors_go_to_stdout():
    r = tool("kafka-get-offsets", "--bogus")
    assert r.returncode == 1
    assert r.stdout == "Error occurred: bogus is not a recognized option\n"
    r = tool("kafka-get-offsets", "--bootstrap-server", "localhost:9092", "--time", "soon")
    assert r.returncode == 1
    assert r.stdout.startswith("Error occurred: Malformed time argument soon")


def test_producer_perf_argument_errors():
    r = tool("kafka-producer-perf-test", "--topic", "x")
    assert r.returncode == 1
    assert "producer-performance: error: argument --num-records is required" in r.stderr
    r = tool("kafka-producer-perf-test", "--topic", "x", "--num-records", "1", "--throughput", "1",
             "--record-size", "1")
    assert "producer-performance: error: Either --producer-props or --producer.config must be specified." in r.stderr
    r = tool("kafka-producer-perf-test")
    assert r.returncode == 0 and r.stdout.startswith("usage: producer-performance")


def test_consumer_perf_requires_topic_and_messages():
    r = tool("kafka-consumer-perf-test", "--bootstrap-server", "localhost:9092")
    assert r.returncode == 1
    assert r.stderr.startswith('Missing required argument "[topic]"')


# ---- the lab against a broker ----------------------------------------------

def test_lab_produce_offsets_consume(broker):
    topic = fresh_topic("lab")
    create_topic(broker, topic)
    r = produce(broker, topic, ["hello", "world", "!"])
    # Not a terminal: like Java (System.console() == null) no ">" prompt.
    assert r.stdout == ""
    assert "%s:0:3" % topic in offsets(broker)
    assert offsets(broker, "--topic", topic, "--time", "earliest") == ["%s:0:0" % topic]
    assert offsets(broker, "--topic", topic, "--time", "-1") == ["%s:0:3" % topic]

    r = broker.run_tool("kafka-console-consumer", "--topic", topic, "--bootstrap-server", broker.bootstrap,
                        "--from-beginning", "--max-messages", "3")
    assert r.returncode == 0
    assert r.stdout == "hello\nworld\n!\n"
    assert "Processed a total of 3 messages" in r.stderr

    # Reading does not delete: read again, by partition and offset.
    r = broker.run_tool("kafka-console-consumer", "--topic", topic, "--bootstrap-server", broker.bootstrap,
                        "--partition", "0", "--offset", "1", "--max-messages", "2")
    assert r.stdout == "world\n!\n"
    assert "Processed a total of 2 messages" in r.stderr


def test_sigint_prints_processed_total(broker):
    topic = fresh_topic("sig")
    create_topic(broker, topic)
    produce(broker, topic, ["hello", "world", "!"])
    p = start_consumer(broker, "--topic", topic, "--from-beginning")
    assert read_lines(p, 3) == ["hello", "world", "!"]
    rc, err = interrupt(p)
    assert "Processed a total of 3 messages" in err
    assert rc == 130  # the JVM's exit status after SIGINT

    p = start_consumer(broker, "--topic", topic, "--partition", "0", "--offset", "1")
    assert read_lines(p, 2) == ["world", "!"]
    rc, err = interrupt(p)
    assert "Processed a total of 2 messages" in err


def test_timeout_ms_ends_consumer(broker):
    topic = fresh_topic("tmo")
    create_topic(broker, topic)
    produce(broker, topic, ["a"])
    t0 = time.time()
    r = broker.run_tool("kafka-console-consumer", "--topic", topic, "--bootstrap-server", broker.bootstrap,
                        "--from-beginning", "--timeout-ms", "8000", timeout=60)
    assert r.returncode == 0
    assert r.stdout == "a\n"
    assert "Processed a total of 1 messages" in r.stderr
    assert "TimeoutException" in r.stderr
    assert time.time() - t0 < 45


def test_two_consumers_both_see_new_messages(broker):
    topic = fresh_topic("multi")
    create_topic(broker, topic)
    c1 = start_consumer(broker, "--topic", topic)
    c2 = start_consumer(broker, "--topic", topic)
    time.sleep(8)  # both groups joined and positioned at the end
    produce(broker, topic, ["1", "2", "3", "4", "5"])
    assert read_lines(c1, 5) == ["1", "2", "3", "4", "5"]
    assert read_lines(c2, 5) == ["1", "2", "3", "4", "5"]
    for c in (c1, c2):
        _, err = interrupt(c)
        assert "Processed a total of 5 messages" in err


def test_keyed_split_over_two_partitions(broker):
    topic = fresh_topic("keyed")
    create_topic(broker, topic, partitions=2)
    produce(broker, topic, ["%d:hello%d" % (i, i) for i in range(1, 6)],
            "--property", "parse.key=true", "--property", "key.separator=:")
    assert offsets(broker, "--topic", topic) == ["%s:0:2" % topic, "%s:1:3" % topic]
    r0 = broker.run_tool("kafka-console-consumer", "--topic", topic, "--bootstrap-server", broker.bootstrap,
                         "--partition", "0", "--offset", "earliest", "--max-messages", "2")
    r1 = broker.run_tool("kafka-console-consumer", "--topic", topic, "--bootstrap-server", broker.bootstrap,
                         "--partition", "1", "--offset", "earliest", "--max-messages", "3",
                         "--property", "print.key=true")
    assert r0.stdout == "hello2\nhello5\n"
    assert r1.stdout == "1\thello1\n3\thello3\n4\thello4\n"


def test_keyed_split_matches_java_murmur2(broker):
    """Same placement as kafka-python's Java-compatible murmur2 partitioner."""
    from kafka.partitioner.default import murmur2
    topic = fresh_topic("murmur")
    create_topic(broker, topic, partitions=3)
    keys = ["k%d" % i for i in range(30)]
    produce(broker, topic, ["%s:v" % k for k in keys], "--property", "parse.key=true",
            "--property", "key.separator=:")
    r = broker.run_tool("kafka-console-consumer", "--topic", topic, "--bootstrap-server", broker.bootstrap,
                        "--from-beginning", "--max-messages", "30", "--property", "print.key=true",
                        "--property", "print.partition=true", "--property", "print.value=false")
    seen = {}
    for line in r.stdout.splitlines():
        part, key = line.split("\t")
        seen[key] = int(part.split(":")[1])
    assert len(seen) == 30
    for k in keys:
        assert seen[k] == (murmur2(k.encode()) & 0x7fffffff) % 3, k


def test_headers_and_formatter_properties(broker):
    topic = fresh_topic("hdr")
    create_topic(broker, topic)
    produce(broker, topic, ["h1:v1,h2:v2\tk\tval", "h3:NUL\tNUL\tx"], "--property", "parse.headers=true",
            "--property", "parse.key=true", "--property", "null.marker=NUL")
    r = broker.run_tool("kafka-console-consumer", "--topic", topic, "--bootstrap-server", broker.bootstrap,
                        "--from-beginning", "--max-messages", "2", "--property", "print.headers=true",
                        "--property", "print.key=true", "--property", "print.offset=true",
                        "--property", "print.timestamp=true", "--property", "key.separator=|")
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"CreateTime:\d+\|Offset:0\|h1:v1,h2:v2\|k\|val", lines[0]), lines
    assert re.fullmatch(r"CreateTime:\d+\|Offset:1\|h3:null\|null\|x", lines[1]), lines


def test_group_offsets_are_committed(broker):
    topic, group = fresh_topic("grp"), fresh_topic("g")
    create_topic(broker, topic)
    produce(broker, topic, ["a", "b", "c"])
    r = broker.run_tool("kafka-console-consumer", "--topic", topic, "--bootstrap-server", broker.bootstrap,
                        "--group", group, "--from-beginning", "--max-messages", "2")
    assert r.stdout == "a\nb\n"
    r = broker.run_tool("kafka-console-consumer", "--topic", topic, "--bootstrap-server", broker.bootstrap,
                        "--group", group, "--max-messages", "1")
    assert r.stdout == "c\n"


def test_producer_perf_report(broker):
    topic = fresh_topic("pperf")
    create_topic(broker, topic)
    r = broker.run_tool("kafka-producer-perf-test", "--topic", topic, "--num-records", "20000",
                        "--record-size", "100", "--throughput", "-1", "--producer-props",
                        "bootstrap.servers=" + broker.bootstrap, timeout=120)
    assert r.returncode == 0, r.stderr
    last = r.stdout.splitlines()[-1]
    m = re.fullmatch(r"20000 records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                     r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.",
                     last)
    assert m, last
    rate, mb = float(m.group(1)), float(m.group(2))
    assert rate > 0 and abs(mb - rate * 100 / 1048576) < 0.02
    p50, p95, p99, p999 = map(int, m.groups()[4:])
    assert p50 <= p95 <= p99 <= p999 <= float(m.group(4))
    assert offsets(broker, "--topic", topic) == ["%s:0:20000" % topic]


def test_producer_perf_throttles(broker):
    topic = fresh_topic("throttle")
    create_topic(broker, topic)
    t0 = time.time()
    r = broker.run_tool("kafka-producer-perf-test", "--topic", topic, "--num-records", "1500",
                        "--record-size", "10", "--throughput", "500", "--producer-props",
                        "bootstrap.servers=" + broker.bootstrap, "acks=1", timeout=60)
    assert r.returncode == 0, r.stderr
    assert time.time() - t0 >= 2.5


def test_consumer_perf_report(broker):
    topic = fresh_topic("cperf")
    create_topic(broker, topic)
    broker.run_tool("kafka-producer-perf-test", "--topic", topic, "--num-records", "5000", "--record-size", "200",
                    "--throughput", "-1", "--producer-props", "bootstrap.servers=" + broker.bootstrap, timeout=120)
    r = broker.run_tool("kafka-consumer-perf-test", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                        "--messages", "5000", timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                        "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
    f = lines[1].split(", ")
    assert len(f) == 10
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}", f[0])
    assert f[2] == "0.9537"  # 5000 * 200 bytes in MB, 4 decimals
    assert f[4] == "5000"
    assert int(f[6]) >= 0 and int(f[7]) > 0
