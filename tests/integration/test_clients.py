"""The broker core through real clients: kafka-python, confluent-kafka
(librdkafka) and kcat, each writing what another one reads back.

Covers produce/fetch with keys, headers and timestamps, every compression
codec, LogAppendTime topics, the topic admin APIs and their errors, list
offsets by time, auto topic creation, message.max.bytes, and that data
survives a clean restart and a kill -9.

Python clients run in a child /usr/bin/python3 (see run_py) so the test
runner's Python does not need the client libraries; each child prints one
JSON line as its last line of output.
"""
import json
import subprocess
import textwrap
import time

import pytest

from conftest import PYTHON, tool_env

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def run_py(code, timeout=90, prelude=""):
    """Run client code (after the helper definitions in prelude) in a child
    Python; returns its last stdout line parsed as JSON."""
    r = subprocess.run([PYTHON, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout, env=tool_env())
    assert r.returncode == 0, f"client failed:\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-4000:]}"
    lines = r.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def kcat(b, *args, input=None, timeout=60):
    r = subprocess.run(["kcat", "-b", b.bootstrap, *args], input=input, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"kcat {args} failed:\n{r.stderr}"
    return r.stdout


def create_topic(b, name, partitions=1, *configs):
    args = ["--bootstrap-server", b.bootstrap, "--create", "--topic", name, "--partitions", str(partitions),
            "--replication-factor", "1"]
    for c in configs:
        args += ["--config", c]
    r = b.run_tool("kafka-topics", *args)
    assert r.returncode == 0, r.stderr


# Child-side helpers, pasted in front of client code that needs them.
KP_READ = """
import json, time
from kafka import KafkaConsumer, TopicPartition
def kp_read(bootstrap, topic, want, partition=0, deadline=30):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    tp = TopicPartition(topic, partition)
    c.assign([tp])
    c.seek_to_beginning(tp)
    out = []
    end = time.time() + deadline
    while len(out) < want and time.time() < end:
        for recs in c.poll(timeout_ms=200).values():
            for m in recs:
                out.append({"offset": m.offset, "key": m.key.decode() if m.key is not None else None,
                            "value": m.value.decode() if m.value is not None else None,
                            "headers": [[k, v.decode()] for k, v in m.headers],
                            "ts": m.timestamp, "ts_type": m.timestamp_type})
    c.close()
    return out
"""

CK_READ = """
import json, time
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
def ck_read(bootstrap, topic, want, partition=0, deadline=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "ck-reader", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    out = []
    end = time.time() + deadline
    while len(out) < want and time.time() < end:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        ts_type, ts = m.timestamp()
        out.append({"offset": m.offset(), "key": m.key().decode() if m.key() is not None else None,
                    "value": m.value().decode() if m.value() is not None else None,
                    "headers": [[k, v.decode()] for k, v in (m.headers() or [])],
                    "ts": ts, "ts_type": ts_type})
    c.close()
    return out
"""


def kcat_read(b, topic, want, partition=0):
    """Read `want` records with kcat; each as {key, value, headers, ts, offset}."""
    out = kcat(b, "-C", "-t", topic, "-p", str(partition), "-o", "beginning", "-c", str(want), "-e", "-q",
               "-f", "%o\t%k\t%s\t%h\t%T\n")
    recs = []
    for line in out.splitlines():
        off, key, value, headers, ts = line.split("\t")
        recs.append({"offset": int(off), "key": key, "value": value, "headers": headers, "ts": int(ts)})
    return recs


def kcat_read_all(b, topic, partition):
    """Everything in the partition, as {offset, key, value}."""
    out = kcat(b, "-C", "-t", topic, "-p", str(partition), "-o", "beginning", "-e", "-q",
               "-f", "%o\t%k\t%s\n")
    return [dict(zip(("offset", "key", "value"), line.split("\t"))) | {"offset": int(line.split("\t")[0])}
            for line in out.splitlines()]


# ---- keys, headers, timestamps across clients ----

def test_confluent_writes_kafka_python_and_kcat_read(broker):
    b = broker
    create_topic(b, "ck-keyed")
    run_py(f"""
        import json
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all"}})
        for i in range(10):
            p.produce("ck-keyed", key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"x%d" % i), ("n", b"1")],
                      timestamp=1700000000000 + i, partition=0)
        assert p.flush(30) == 0
        print(json.dumps(True))
    """)
    recs = run_py(prelude=KP_READ, code=f"""
        print(json.dumps(kp_read("{b.bootstrap}", "ck-keyed", 10)))
    """)
    assert [r["offset"] for r in recs] == list(range(10))
    for i, r in enumerate(recs):
        assert r["key"] == f"k{i}" and r["value"] == f"v{i}"
        assert r["headers"] == [["h", f"x{i}"], ["n", "1"]]
        assert r["ts"] == 1700000000000 + i and r["ts_type"] == 0  # CreateTime
    krecs = kcat_read(b, "ck-keyed", 10)
    assert [(r["key"], r["value"], r["ts"]) for r in krecs] == \
        [(f"k{i}", f"v{i}", 1700000000000 + i) for i in range(10)]
    assert krecs[3]["headers"] == "h=x3,n=1"


def test_kafka_python_writes_confluent_reads(broker):
    b = broker
    create_topic(b, "kp-keyed")
    run_py(f"""
        import json
        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers="{b.bootstrap}", acks="all")
        futs = [p.send("kp-keyed", key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"y%d" % i)],
                       timestamp_ms=1600000000000 + i, partition=0) for i in range(10)]
        offs = [f.get(timeout=30).offset for f in futs]
        p.close()
        print(json.dumps(offs))
    """)
    recs = run_py(prelude=CK_READ, code=f"""
        print(json.dumps(ck_read("{b.bootstrap}", "kp-keyed", 10)))
    """)
    assert [r["offset"] for r in recs] == list(range(10))
    for i, r in enumerate(recs):
        assert (r["key"], r["value"]) == (f"k{i}", f"v{i}")
        assert r["headers"] == [["h", f"y{i}"]]
        assert r["ts"] == 1600000000000 + i and r["ts_type"] == 1  # TIMESTAMP_CREATE_TIME


def test_kcat_writes_kafka_python_reads(broker):
    b = broker
    create_topic(b, "kc-keyed")
    before = int(time.time() * 1000)
    kcat(b, "-P", "-t", "kc-keyed", "-p", "0", "-K", ":", "-H", "src=kcat",
         input="".join(f"k{i}:v{i}\n" for i in range(5)))
    recs = run_py(prelude=KP_READ, code=f"""
        print(json.dumps(kp_read("{b.bootstrap}", "kc-keyed", 5)))
    """)
    assert [(r["key"], r["value"]) for r in recs] == [(f"k{i}", f"v{i}") for i in range(5)]
    assert all(r["headers"] == [["src", "kcat"]] for r in recs)
    assert all(before - 1000 <= r["ts"] <= time.time() * 1000 + 1000 for r in recs)


def test_old_protocol_versions_kafka_python(broker):
    """kafka-python pinned to old broker versions: magic 0 and 1 message sets on
    Produce v0-v2 and Fetch v0-v3 (converted to v2 batches and back)."""
    b = broker
    create_topic(b, "old")
    res = run_py(f"""
        import json, time
        from kafka import KafkaProducer, KafkaConsumer, TopicPartition
        out = {{}}
        for ver in [(0, 9), (0, 10, 1), (0, 11), (2, 0)]:
            p = KafkaProducer(bootstrap_servers="{b.bootstrap}", api_version=ver,
                              compression_type=None if ver < (0, 10) else "gzip")
            offs = [p.send("old", key=b"k", value=b"%s-%d" % (str(ver).encode(), i), partition=0)
                    .get(timeout=30).offset for i in range(3)]
            p.close()
            c = KafkaConsumer(bootstrap_servers="{b.bootstrap}", api_version=ver, enable_auto_commit=False)
            tp = TopicPartition("old", 0)
            c.assign([tp])
            c.seek_to_beginning(tp)
            got, end = [], time.time() + 20
            while len(got) < offs[-1] + 1 and time.time() < end:
                for recs in c.poll(timeout_ms=200).values():
                    got += [[m.offset, m.key.decode(), m.value.decode(), m.timestamp] for m in recs]
            c.close()
            out[str(ver)] = [offs, got]
        print(json.dumps(out))
    """)
    produced = []
    for ver in ["(0, 9)", "(0, 10, 1)", "(0, 11)", "(2, 0)"]:
        offs, got = res[ver]
        assert offs == list(range(len(produced), len(produced) + 3))
        produced += [f"{ver}-{i}" for i in range(3)]
        assert [g[0] for g in got] == list(range(len(produced)))
        assert [g[2] for g in got] == produced and all(g[1] == "k" for g in got)
        if ver == "(0, 9)":  # magic 0 readers see no timestamps
            assert all(g[3] is None or g[3] == -1 for g in got)
    # magic 0 records carry no timestamp; the later ones do
    krecs = kcat_read(b, "old", 12)
    assert [r["ts"] for r in krecs[:3]] == [-1, -1, -1]
    assert all(r["ts"] > 0 for r in krecs[3:])


# ---- compression ----

@pytest.mark.parametrize("codec", CODECS)
def test_compression_codecs(broker, codec):
    b = broker
    topic = f"z-{codec}"
    create_topic(b, topic, 2)
    # confluent_kafka writes partition 0, kcat writes partition 1; both read back by kafka-python and kcat
    n = 200
    run_py(f"""
        import json
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "compression.type": "{codec}",
                       "linger.ms": 50}})
        for i in range({n}):
            p.produce("{topic}", key=b"k%d" % i, value=(b"value-%d-" % i) * 20, partition=0)
        assert p.flush(30) == 0
        print(json.dumps(True))
    """)
    kcat(b, "-P", "-t", topic, "-p", "1", "-K", ":", "-z", codec, "-X", "linger.ms=50",
         input="".join(f"k{i}:" + f"value-{i}-" * 20 + "\n" for i in range(n)))
    for part in (0, 1):
        recs = run_py(prelude=KP_READ, code=f"""
            print(json.dumps(kp_read("{b.bootstrap}", "{topic}", {n}, partition={part})))
        """)
        assert [r["offset"] for r in recs] == list(range(n)), part
        assert [(r["key"], r["value"]) for r in recs] == [(f"k{i}", f"value-{i}-" * 20) for i in range(n)]
        krecs = kcat_read(b, topic, n, partition=part)
        assert [(r["offset"], r["key"], r["value"]) for r in krecs] == \
            [(i, f"k{i}", f"value-{i}-" * 20) for i in range(n)]


def test_log_append_time_topic_gets_broker_timestamps(broker):
    b = broker
    create_topic(b, "lat", 1, "message.timestamp.type=LogAppendTime")
    before = int(time.time() * 1000)
    res = run_py(f"""
        import json
        from confluent_kafka import Producer
        got = []
        p = Producer({{"bootstrap.servers": "{b.bootstrap}"}})
        for i in range(5):
            p.produce("lat", value=b"v%d" % i, timestamp=1000 + i,
                      on_delivery=lambda err, m: got.append([str(err) if err else None, m.timestamp()]))
        assert p.flush(30) == 0
        print(json.dumps(got))
    """)
    after = int(time.time() * 1000)
    assert len(res) == 5
    for err, (ts_type, ts) in res:
        assert err is None
        assert ts_type == 2 and before <= ts <= after  # TIMESTAMP_LOG_APPEND_TIME in the delivery report
    recs = run_py(prelude=KP_READ, code=f"""
        print(json.dumps(kp_read("{b.bootstrap}", "lat", 5)))
    """)
    assert len(recs) == 5
    for r in recs:
        assert r["ts_type"] == 1 and before <= r["ts"] <= after  # LogAppendTime, not the 1000s sent


# ---- admin ----

def test_confluent_admin_topics(broker):
    b = broker
    res = run_py(f"""
        import json
        from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions
        from confluent_kafka import KafkaException
        a = AdminClient({{"bootstrap.servers": "{b.bootstrap}"}})
        def outcome(futs):
            out = {{}}
            for name, f in futs.items():
                try:
                    f.result(30)
                    out[name] = "OK"
                except KafkaException as e:
                    out[name] = e.args[0].name()
            return out
        r = {{}}
        r["create"] = outcome(a.create_topics([NewTopic("adm1", 3, 1), NewTopic("adm2", 1, 1,
                                              config={{"retention.ms": "12345"}})]))
        r["again"] = outcome(a.create_topics([NewTopic("adm1", 3, 1)]))
        r["rf3"] = outcome(a.create_topics([NewTopic("adm-rf3", 1, 3)]))
        r["badname"] = outcome(a.create_topics([NewTopic("bad/name", 1, 1)]))
        r["dotdot"] = outcome(a.create_topics([NewTopic("..", 1, 1)]))
        r["toolong"] = outcome(a.create_topics([NewTopic("x" * 250, 1, 1)]))
        md = a.list_topics(timeout=30)
        r["parts"] = {{t: len(md.topics[t].partitions) for t in ("adm1", "adm2")}}
        r["more"] = outcome(a.create_partitions([NewPartitions("adm1", 5)]))
        r["fewer"] = outcome(a.create_partitions([NewPartitions("adm1", 2)]))
        r["same"] = outcome(a.create_partitions([NewPartitions("adm1", 5)]))
        r["parts_after"] = len(a.list_topics("adm1", timeout=30).topics["adm1"].partitions)
        r["delete"] = outcome(a.delete_topics(["adm2"], operation_timeout=30))
        r["delete_missing"] = outcome(a.delete_topics(["nope"], operation_timeout=30))
        r["listed"] = sorted(t for t in a.list_topics(timeout=30).topics if not t.startswith("__"))
        print(json.dumps(r))
    """)
    assert res["create"] == {"adm1": "OK", "adm2": "OK"}
    assert res["again"] == {"adm1": "TOPIC_ALREADY_EXISTS"}
    assert res["rf3"] == {"adm-rf3": "INVALID_REPLICATION_FACTOR"}
    assert res["badname"] == {"bad/name": "TOPIC_EXCEPTION"}  # librdkafka's name for INVALID_TOPIC_EXCEPTION
    assert res["dotdot"] == {"..": "TOPIC_EXCEPTION"}
    assert res["toolong"] == {"x" * 250: "TOPIC_EXCEPTION"}
    assert res["parts"] == {"adm1": 3, "adm2": 1}
    assert res["more"] == {"adm1": "OK"}
    assert res["fewer"] == {"adm1": "INVALID_PARTITIONS"}
    assert res["same"] == {"adm1": "INVALID_PARTITIONS"}
    assert res["parts_after"] == 5
    assert res["delete"] == {"adm2": "OK"}
    assert res["delete_missing"] == {"nope": "UNKNOWN_TOPIC_OR_PART"}
    assert res["listed"] == ["adm1"]


def test_kafka_python_admin_topics(broker):
    b = broker
    res = run_py(f"""
        import json
        from kafka.admin import KafkaAdminClient, NewTopic, NewPartitions
        from kafka.errors import KafkaError
        a = KafkaAdminClient(bootstrap_servers="{b.bootstrap}", request_timeout_ms=30000)
        def codes(resp):
            # CreateTopics/CreatePartitions responses: (name, error_code, ...) tuples
            return {{t[0]: t[1] for t in resp.topic_errors}}
        def attempt(fn):
            try:
                return codes(fn())
            except KafkaError as e:
                return type(e).__name__
        r = {{}}
        r["create"] = attempt(lambda: a.create_topics([NewTopic("kpa", 2, 1)]))
        r["again"] = attempt(lambda: a.create_topics([NewTopic("kpa", 2, 1)]))
        r["rf3"] = attempt(lambda: a.create_topics([NewTopic("kpa-rf3", 1, 3)]))
        r["badname"] = attempt(lambda: a.create_topics([NewTopic("bad name", 1, 1)]))
        r["more"] = attempt(lambda: a.create_partitions({{"kpa": NewPartitions(4)}}))
        r["fewer"] = attempt(lambda: a.create_partitions({{"kpa": NewPartitions(1)}}))
        r["described"] = [[t["topic"], len(t["partitions"]), t["error_code"]] for t in a.describe_topics(["kpa"])]
        r["listed"] = sorted(t for t in a.list_topics() if not t.startswith("__"))
        d = a.delete_topics(["kpa"], timeout_ms=30000)
        r["delete"] = [list(x) for x in d.topic_error_codes]
        try:
            d = a.delete_topics(["nope"], timeout_ms=30000)
            r["delete_missing"] = [list(x) for x in d.topic_error_codes]
        except KafkaError as e:
            r["delete_missing"] = type(e).__name__
        a.close()
        print(json.dumps(r))
    """)
    assert res["create"] == {"kpa": 0}
    assert res["again"] in ({"kpa": 36}, "TopicAlreadyExistsError")
    assert res["rf3"] in ({"kpa-rf3": 38}, "InvalidReplicationFactorError")
    assert res["badname"] in ({"bad name": 17}, "InvalidTopicError")
    assert res["more"] == {"kpa": 0}
    assert res["fewer"] in ({"kpa": 37}, "InvalidPartitionsError")
    assert res["described"] == [["kpa", 4, 0]]
    assert res["listed"] == ["kpa"]
    assert res["delete"] == [["kpa", 0]]
    assert res["delete_missing"] in ([["nope", 3]], "UnknownTopicOrPartitionError")


# ---- list offsets by time ----

def test_offsets_for_times(broker):
    b = broker
    create_topic(b, "times")
    res = run_py(f"""
        import json
        from kafka import KafkaProducer, KafkaConsumer, TopicPartition
        p = KafkaProducer(bootstrap_servers="{b.bootstrap}")
        for i in range(10):
            p.send("times", value=b"v%d" % i, timestamp_ms=1000000 + 100 * i, partition=0)
        p.flush(30)
        p.close()
        c = KafkaConsumer(bootstrap_servers="{b.bootstrap}")
        tp = TopicPartition("times", 0)
        r = {{}}
        r["earliest"] = c.beginning_offsets([tp])[tp]
        r["latest"] = c.end_offsets([tp])[tp]
        def at(ts):
            x = c.offsets_for_times({{tp: ts}})[tp]
            return None if x is None else [x.offset, x.timestamp]
        r["exact"] = at(1000300)
        r["between"] = at(1000350)
        r["first"] = at(0)
        r["past"] = at(2000000)
        c.close()
        print(json.dumps(r))
    """)
    assert res["earliest"] == 0 and res["latest"] == 10
    assert res["exact"] == [3, 1000300]
    assert res["between"] == [4, 1000400]
    assert res["first"] == [0, 1000000]
    assert res["past"] is None
    # confluent_kafka's offsets_for_times and watermarks agree
    ck = run_py(f"""
        import json
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "ot"}})
        lo, hi = c.get_watermark_offsets(TopicPartition("times", 0), timeout=30)
        got = c.offsets_for_times([TopicPartition("times", 0, 1000550)], timeout=30)
        c.close()
        print(json.dumps([lo, hi, got[0].offset]))
    """)
    assert ck == [0, 10, 6]
    # and kcat -Q (offsets by timestamp, librdkafka again but through the CLI)
    out = kcat(b, "-Q", "-t", "times:0:1000300")
    assert "offset 3" in out, out


def test_fetch_out_of_range_resets(broker):
    b = broker
    create_topic(b, "oor")
    kcat(b, "-P", "-t", "oor", "-p", "0", input="".join(f"m{i}\n" for i in range(10)))
    res = run_py(f"""
        import json, time
        from confluent_kafka import Consumer, TopicPartition
        from kafka import KafkaConsumer, TopicPartition as KTP
        out = {{}}
        for reset in ("earliest", "latest", "error"):
            c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "g-" + reset,
                           "auto.offset.reset": reset}})
            c.assign([TopicPartition("oor", 0, 1000)])
            got, end = [], time.time() + (3 if reset == "latest" else 20)
            while len(got) < 10 and time.time() < end:
                m = c.poll(0.2)
                if m is not None:
                    got.append(m.error().name() if m.error() else m.offset())
                    if m.error():
                        break
            c.close()
            out[reset] = got
        kc = KafkaConsumer(bootstrap_servers="{b.bootstrap}", auto_offset_reset="earliest")
        tp = KTP("oor", 0)
        kc.assign([tp])
        kc.seek(tp, 1000)
        got, end = [], time.time() + 20
        while len(got) < 10 and time.time() < end:
            for recs in kc.poll(timeout_ms=200).values():
                got += [m.offset for m in recs]
        kc.close()
        out["kafka-python"] = got
        print(json.dumps(out))
    """)
    assert res["earliest"] == list(range(10))
    assert res["latest"] == []
    assert res["error"] == ["_AUTO_OFFSET_RESET"]  # OFFSET_OUT_OF_RANGE surfaced
    assert res["kafka-python"] == list(range(10))


# ---- auto topic creation ----

def test_auto_topic_creation_on_metadata_and_produce(broker):
    b = broker
    res = run_py(f"""
        import json
        from kafka import KafkaProducer
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient
        kp = KafkaProducer(bootstrap_servers="{b.bootstrap}")
        off = kp.send("auto-kp", value=b"x").get(timeout=30).offset
        kp.close()
        p = Producer({{"bootstrap.servers": "{b.bootstrap}"}})
        errs = []
        p.produce("auto-ck", value=b"y", on_delivery=lambda e, m: errs.append(str(e) if e else None))
        assert p.flush(30) == 0
        md = AdminClient({{"bootstrap.servers": "{b.bootstrap}"}}).list_topics(timeout=30)
        print(json.dumps([off, errs, {{t: len(md.topics[t].partitions) for t in ("auto-kp", "auto-ck")}}]))
    """)
    off, errs, parts = res
    assert off == 0 and errs == [None]
    assert parts == {"auto-kp": 1, "auto-ck": 1}  # num.partitions=1 in the shipped config
    # kafka-topics sees them as ordinary topics
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--list")
    assert r.returncode == 0 and {"auto-kp", "auto-ck"} <= set(r.stdout.split())


def test_consumer_metadata_does_not_auto_create(broker):
    """librdkafka consumers ask with allow_auto_topic_creation=false (Metadata v4+): no topic appears."""
    b = broker
    res = run_py(f"""
        import json, time
        from confluent_kafka import Consumer
        from confluent_kafka.admin import AdminClient
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "nc", "allow.auto.create.topics": False}})
        c.subscribe(["not-created"])
        end = time.time() + 3
        while time.time() < end:
            c.poll(0.2)
        c.close()
        md = AdminClient({{"bootstrap.servers": "{b.bootstrap}"}}).list_topics(timeout=30)
        print(json.dumps(sorted(md.topics)))
    """)
    assert "not-created" not in res
    # while an old-style (v1-v3) metadata request for it does create it
    res = run_py(f"""
        import json
        from kafka import KafkaClient
        from kafka.protocol.metadata import MetadataRequest
        cl = KafkaClient(bootstrap_servers="{b.bootstrap}")
        node = cl.least_loaded_node()
        while not cl.ready(node):
            cl.poll(timeout_ms=100)
        answers = []
        for _ in range(2):
            f = cl.send(node, MetadataRequest[1](topics=["now-created"]))
            cl.poll(future=f, timeout_ms=10000)
            answers += [[t[1], t[0], len(t[3])] for t in f.value.topics]
        cl.close()
        print(json.dumps(answers))
    """)
    # Kafka 3.6.1 in KRaft mode forwards the creation to the controller and first answers
    # UNKNOWN_TOPIC_OR_PARTITION; the next request sees the topic
    assert res == [["now-created", 3, 0], ["now-created", 0, 1]]
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--list")
    assert "now-created" in r.stdout.split() and "not-created" not in r.stdout.split()


def test_auto_create_disabled(broker_factory):
    b = broker_factory(auto_create_topics_enable="false")
    res = run_py(f"""
        import json
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "message.timeout.ms": 3000}})
        errs = []
        p.produce("no-auto", value=b"y", on_delivery=lambda e, m: errs.append(e.name() if e else None))
        p.flush(10)
        print(json.dumps(errs))
    """)
    assert res and res[0] in ("_MSG_TIMED_OUT", "UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC")
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--list")
    assert "no-auto" not in r.stdout.split()


# ---- message.max.bytes ----

def test_message_too_large(broker_factory):
    b = broker_factory(message_max_bytes="10000")
    create_topic(b, "big")
    res = run_py(f"""
        import json
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "message.max.bytes": 100000,
                       "compression.type": "none"}})
        errs = []
        p.produce("big", value=b"x" * 20000, on_delivery=lambda e, m: errs.append(e.name() if e else None))
        p.flush(30)  # separately: in one batch with the big one, the small one would fail too
        p.produce("big", value=b"x" * 100, on_delivery=lambda e, m: errs.append(e.name() if e else None))
        p.flush(30)
        print(json.dumps(errs))
    """)
    assert res == ["MSG_SIZE_TOO_LARGE", None]
    # the topic-level override lifts the limit for that topic only
    create_topic(b, "big2", 1, "max.message.bytes=50000")
    res = run_py(f"""
        import json
        from kafka import KafkaProducer
        from kafka.errors import KafkaError
        p = KafkaProducer(bootstrap_servers="{b.bootstrap}", max_request_size=200000)
        out = []
        for t in ("big2", "big"):
            try:
                out.append(p.send(t, value=b"x" * 20000).get(timeout=30).offset)
            except KafkaError as e:
                out.append(type(e).__name__)
        p.close()
        print(json.dumps(out))
    """)
    assert res == [0, "MessageSizeTooLargeError"]


def test_delete_and_recreate_topic_starts_empty_with_new_id(broker):
    b = broker
    create_topic(b, "again", 2)
    kcat(b, "-P", "-t", "again", "-p", "0", input="old1\nold2\n")

    def topic_id():
        r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--describe", "--topic", "again")
        assert r.returncode == 0, r.stderr
        return r.stdout.split("TopicId: ")[1].split()[0], r.stdout.split("PartitionCount: ")[1].split()[0]

    first_id, parts = topic_id()
    assert parts == "2"
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--delete", "--topic", "again")
    assert r.returncode == 0, r.stderr
    create_topic(b, "again", 1)
    second_id, parts = topic_id()
    assert second_id != first_id and parts == "1"
    kcat(b, "-P", "-t", "again", "-p", "0", input="new\n")
    assert [(r["offset"], r["value"]) for r in kcat_read(b, "again", 1)] == [(0, "new")]
    assert b.stop() == 0
    b.start()
    assert topic_id() == (second_id, "1")
    assert [(r["offset"], r["value"]) for r in kcat_read(b, "again", 1)] == [(0, "new")]


def test_idempotent_producer_in_order_without_duplicates(broker):
    b = broker
    create_topic(b, "idem", 3)
    res = run_py(f"""
        import json
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "enable.idempotence": True, "linger.ms": 2}})
        errs = []
        for i in range(3000):
            p.produce("idem", key=b"k%d" % (i % 30), value=b"%d" % i,
                      on_delivery=lambda e, m: errs.append(str(e)) if e else None)
            p.poll(0)
        assert p.flush(30) == 0
        print(json.dumps(errs))
    """)
    assert res == []
    seen = []
    for part in range(3):
        recs = kcat_read_all(b, "idem", part)
        assert [r["offset"] for r in recs] == list(range(len(recs)))
        by_key = {}
        for r in recs:
            by_key.setdefault(r["key"], []).append(int(r["value"]))
        assert all(v == sorted(v) for v in by_key.values())  # per-key order kept
        seen += [int(r["value"]) for r in recs]
    assert sorted(seen) == list(range(3000))  # each exactly once


# ---- persistence ----

def test_restart_keeps_data_topics_and_ids(broker):
    b = broker
    create_topic(b, "keep", 3)
    create_topic(b, "keep2", 1, "cleanup.policy=compact")

    def end_offsets():
        return run_py(f"""
            import json
            from kafka import KafkaConsumer, TopicPartition
            c = KafkaConsumer(bootstrap_servers="{b.bootstrap}")
            tps = [TopicPartition("keep", i) for i in range(3)]
            end = c.end_offsets(tps)
            c.close()
            print(json.dumps([end[tp] for tp in tps]))
        """)

    run_py(f"""
        import json
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all"}})
        for i in range(300):
            p.produce("keep", key=b"k%d" % i, value=b"v%d" % i, partition=i % 3)
        for i in range(5):
            p.produce("keep2", key=b"same", value=b"c%d" % i)
        assert p.flush(30) == 0
        print(json.dumps(True))
    """)

    def describe():
        r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--describe")
        assert r.returncode == 0, r.stderr
        ids = {}
        for line in r.stdout.splitlines():
            if line.startswith("Topic:") and "TopicId:" in line:
                fields = dict(f.split(": ", 1) for f in line.split("\t") if ": " in f)
                ids[fields["Topic"]] = (fields["TopicId"], fields["PartitionCount"], fields.get("Configs", ""))
        return ids

    before = describe()
    assert end_offsets() == [100, 100, 100]
    assert b.stop() == 0
    b.start()
    assert describe() == before
    assert end_offsets() == [100, 100, 100]
    for part in range(3):
        recs = kcat_read(b, "keep", 100, partition=part)
        assert [r["value"] for r in recs] == [f"v{i}" for i in range(part, 300, 3)]
    assert [r["value"] for r in kcat_read(b, "keep2", 5)] == [f"c{i}" for i in range(5)]
    # and the restarted broker takes new writes after the old ones
    kcat(b, "-P", "-t", "keep", "-p", "0", input="after\n")
    last = kcat_read(b, "keep", 101)[-1]
    assert (last["offset"], last["value"]) == (100, "after")


def test_kill9_keeps_every_acknowledged_record(broker):
    b = broker
    create_topic(b, "crash", 2)
    n = 5000
    acked = run_py(f"""
        import json
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all", "linger.ms": 5,
                       "enable.idempotence": False}})
        acked = []
        def dr(err, m):
            if err is None:
                acked.append([m.partition(), m.offset(), m.value().decode()])
        for i in range({n}):
            p.produce("crash", value=b"r%d" % i, partition=i % 2, on_delivery=dr)
            p.poll(0)
        assert p.flush(30) == 0
        print(json.dumps(acked))
    """)
    assert len(acked) == n
    b.kill9()
    b.start()
    for part in (0, 1):
        mine = sorted((off, v) for p, off, v in acked if p == part)
        recs = run_py(prelude=KP_READ, code=f"""
            print(json.dumps(kp_read("{b.bootstrap}", "crash", {len(mine)}, partition={part})))
        """)
        got = [(r["offset"], r["value"]) for r in recs]
        assert got == mine  # every acknowledged record, once, at its acknowledged offset, in order
        assert [v for _, v in got] == [f"r{i}" for i in range(part, n, 2)]


def test_kill9_during_produce_keeps_acknowledged_prefix(broker):
    """Kill the broker while a producer is still sending: whatever was acknowledged is there."""
    b = broker
    create_topic(b, "crash2")
    proc = subprocess.Popen([PYTHON, "-c", textwrap.dedent(f"""
        import json, sys, time
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all", "linger.ms": 2,
                       "message.timeout.ms": 5000, "enable.idempotence": False,
                       "max.in.flight.requests.per.connection": 1}})
        def dr(err, m):
            if err is None:
                print(json.dumps([m.offset(), m.value().decode()]), flush=True)
        end = time.time() + 20
        i = 0
        while time.time() < end:
            try:
                p.produce("crash2", value=b"r%d" % i, partition=0, on_delivery=dr)
                i += 1
            except BufferError:
                pass
            p.poll(0.001)
        p.flush(10)
    """)], stdout=subprocess.PIPE, text=True, env=tool_env())
    acked = []
    deadline = time.time() + 30
    while len(acked) < 2000 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(json.loads(line))
    b.kill9()
    try:
        out, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    acked += [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(acked) >= 2000
    b.start()
    recs = run_py(prelude=KP_READ, code=f"""
        print(json.dumps(kp_read("{b.bootstrap}", "crash2", {len(acked)})))
    """)
    got = [(r["offset"], r["value"]) for r in recs][:len(acked)]
    assert got == sorted((o, v) for o, v in acked)
    values = [r["value"] for r in recs]
    assert len(set(values)) == len(values)  # nothing written twice
