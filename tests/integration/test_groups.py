"""Consumer groups end to end: real Kafka clients (kafka-python and
confluent-kafka from Debian) against the broker, and kafka-consumer-groups.

Clients run in a child /usr/bin/python3 so the test runner's Python does not
need the client libraries.
"""
import json
import subprocess
import textwrap
import time

from conftest import CHILD_THREAD_GUARD, PYTHON, tool_env

FAST = {"group_initial_rebalance_delay_ms": "0", "offsets_topic_num_partitions": "5"}


def run_py(code, timeout=90):
    r = subprocess.run([PYTHON, "-c", CHILD_THREAD_GUARD + textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout, env=tool_env())
    assert r.returncode == 0, f"client failed:\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-4000:]}"
    return r.stdout


def create_topic(b, name, partitions):
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", name,
                   "--partitions", str(partitions), "--replication-factor", "1")
    assert r.returncode == 0, r.stderr


def produce(b, topic, n, partitions):
    run_py(f"""
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}"}})
        for i in range({n}):
            p.produce("{topic}", value=b"v%d" % i, partition=i % {partitions})
        assert p.flush(30) == 0
    """)


def test_two_kafka_python_consumers_split_and_rebalance(broker_factory):
    b = broker_factory(**FAST)
    create_topic(b, "split", 4)
    out = run_py(f"""
        import json, threading, time
        from kafka import KafkaConsumer
        stop = threading.Event()
        assigned = {{}}
        def run(name):
            # kafka-python blocks inside poll() while it rejoins: one thread per consumer
            c = KafkaConsumer("split", bootstrap_servers="{b.bootstrap}", group_id="g-split",
                              client_id=name, session_timeout_ms=10000, heartbeat_interval_ms=500,
                              max_poll_interval_ms=20000)
            while not stop.is_set():
                c.poll(timeout_ms=100)
                assigned[name] = sorted(tp.partition for tp in c.assignment())
            c.close()
        def settle(names, want, deadline=60):
            end = time.time() + deadline
            while time.time() < end:
                sizes = [len(assigned.get(n, [])) for n in names]
                parts = set(p for n in names for p in assigned.get(n, []))
                if sorted(sizes) == sorted(want) and len(parts) == 4:
                    return sizes
                time.sleep(0.1)
            raise SystemExit("no settle: %r" % assigned)
        ts = [threading.Thread(target=run, args=(n,)) for n in ("c1", "c2")]
        for t in ts: t.start()
        first = settle(["c1", "c2"], [2, 2])
        t3 = threading.Thread(target=run, args=("c3",))
        t3.start()
        second = settle(["c1", "c2", "c3"], [2, 1, 1])
        stop.set()
        for t in ts + [t3]: t.join(60)
        assert not any(t.is_alive() for t in ts + [t3])
        print(json.dumps([first, second]))
    """)
    first, second = json.loads(out.strip().splitlines()[-1])
    assert sorted(first) == [2, 2]
    assert sorted(second) == [1, 1, 2]


def test_confluent_commit_and_resume_after_restart(broker_factory):
    b = broker_factory(**FAST)
    create_topic(b, "resume", 2)
    produce(b, "resume", 20, 2)
    consume = f"""
        import json
        from confluent_kafka import Consumer
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "g-resume",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False}})
        c.subscribe(["resume"])
        got = []
        import time
        end = time.time() + 40
        while len(got) < LIMIT and time.time() < end:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append(m.value().decode())
        c.commit(asynchronous=False)
        committed = c.committed([__import__("confluent_kafka").TopicPartition("resume", p) for p in (0, 1)], 10)
        c.close()
        print(json.dumps({{"got": got, "committed": sorted(tp.offset for tp in committed)}}))
    """
    first = json.loads(run_py(consume.replace("LIMIT", "12")).strip().splitlines()[-1])
    assert len(first["got"]) >= 12
    assert sum(first["committed"]) == len(first["got"])
    b.restart()
    second = json.loads(run_py(consume.replace("LIMIT", "100").replace("time.time() + 40", "time.time() + 8"))
                        .strip().splitlines()[-1])
    assert len(first["got"]) + len(second["got"]) == 20
    assert not set(first["got"]) & set(second["got"])
    assert second["committed"] == [10, 10]


def test_offsets_survive_kill9(broker_factory):
    b = broker_factory(**FAST)
    create_topic(b, "durable", 3)
    run_py(f"""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "g-durable"}})
        c.commit(offsets=[TopicPartition("durable", 0, 5), TopicPartition("durable", 2, 7)],
                 asynchronous=False)
        c.close()
    """)
    b.kill9()
    b.start()
    out = run_py(f"""
        import json
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "g-durable"}})
        tps = c.committed([TopicPartition("durable", p) for p in range(3)], 20)
        print(json.dumps([tp.offset for tp in tps]))
        c.close()
    """)
    assert json.loads(out.strip().splitlines()[-1]) == [5, -1001, 7]


def test_kafka_python_group_admin(broker_factory):
    """ListGroups / DescribeGroups / DeleteGroups through kafka-python's admin client."""
    b = broker_factory(**FAST)
    create_topic(b, "adm", 1)
    out = run_py(f"""
        import json
        from kafka import KafkaConsumer, TopicPartition
        from kafka.admin import KafkaAdminClient
        from kafka.structs import OffsetAndMetadata
        c = KafkaConsumer(bootstrap_servers="{b.bootstrap}", group_id="g-adm", enable_auto_commit=False)
        c.assign([TopicPartition("adm", 0)])
        c.commit({{TopicPartition("adm", 0): OffsetAndMetadata(3, "meta")}})
        c.close()
        a = KafkaAdminClient(bootstrap_servers="{b.bootstrap}")
        groups = a.list_consumer_groups()
        offsets = a.list_consumer_group_offsets("g-adm")
        desc = a.describe_consumer_groups(["g-adm"])[0]
        deleted = a.delete_consumer_groups(["g-adm", "nope"])
        after = a.list_consumer_groups()
        a.close()
        print(json.dumps({{"groups": groups, "offset": offsets[TopicPartition("adm", 0)].offset,
                          "meta": offsets[TopicPartition("adm", 0)].metadata, "state": desc.state,
                          "deleted": [[g, getattr(e, "__name__", type(e).__name__)] for g, e in deleted], "after": after}}))
    """)
    r = json.loads(out.strip().splitlines()[-1])
    assert ["g-adm", ""] in r["groups"]
    assert r["offset"] == 3 and r["meta"] == "meta"
    assert r["state"] == "Empty"
    assert r["deleted"][0] == ["g-adm", "NoError"]
    assert r["deleted"][1][1] == "GroupIdNotFoundError"
    assert r["after"] == []


def commit_simple(b, group, offsets):
    """Commit offsets for a group without joining it (generation -1)."""
    tps = ", ".join(f'TopicPartition("{t}", {p}, {o})' for t, p, o in offsets)
    run_py(f"""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "{group}"}})
        c.commit(offsets=[{tps}], asynchronous=False)
        c.close()
    """)


def test_consumer_groups_tool(broker_factory):
    b = broker_factory(**FAST)
    create_topic(b, "cg", 2)
    produce(b, "cg", 10, 2)
    commit_simple(b, "tool-g", [("cg", 0, 2), ("cg", 1, 5)])
    bs = b.bootstrap

    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--list")
    assert r.returncode == 0 and r.stdout == "tool-g\n", r.stdout + r.stderr

    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--list", "--state")
    assert r.stdout == "GROUP           STATE\ntool-g          Empty\n"

    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--describe", "--group", "tool-g")
    assert r.stderr.strip() == "Consumer group 'tool-g' has no active members."
    head = ("GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             "
            "CONSUMER-ID     HOST            CLIENT-ID")
    row0 = ("tool-g          cg              0          2               5               3               "
            "-               -               -")
    row1 = ("tool-g          cg              1          5               5               0               "
            "-               -               -")
    assert r.stdout == f"\n{head}\n{row0}\n{row1}\n", r.stdout

    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--describe", "--group", "nope")
    assert r.stdout == "\nError: Consumer group 'nope' does not exist.\n"

    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--describe", "--group", "tool-g", "--state")
    assert "tool-g" in r.stdout and "Empty" in r.stdout and f"({1})" in r.stdout

    # reset: dry run by default, then executed
    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--reset-offsets", "--group", "tool-g",
                   "--all-topics", "--to-earliest")
    assert "WARN: No action will be performed as the --execute option is missing." in r.stderr
    plan_head = "GROUP                          TOPIC                          PARTITION  NEW-OFFSET     "
    assert r.stdout.splitlines()[1] == plan_head
    assert r.stdout.splitlines()[2].split() == ["tool-g", "cg", "0", "0"]
    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--reset-offsets", "--group", "tool-g",
                   "--topic", "cg:1", "--shift-by", "-2", "--execute")
    assert r.stdout.splitlines()[2].split() == ["tool-g", "cg", "1", "3"]
    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--reset-offsets", "--group", "tool-g",
                   "--topic", "cg", "--to-offset", "99", "--dry-run", "--export")
    assert r.stdout == "cg,0,5\ncg,1,5\n\n", r.stdout

    # offsets as the committed view sees them
    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--describe", "--group", "tool-g")
    assert [l.split()[3] for l in r.stdout.splitlines()[2:]] == ["2", "3"]

    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--delete-offsets", "--group", "tool-g",
                   "--topic", "cg:0")
    assert r.stdout.splitlines()[0] == "Request succeed for deleting offsets with topic cg:0 group tool-g"
    assert r.stdout.splitlines()[-1].split() == ["cg", "0", "Successful"]

    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--delete", "--group", "tool-g",
                   "--group", "missing")
    assert "* Group 'missing' could not be deleted due to: org.apache.kafka.common.errors." \
           "GroupIdNotFoundException: The group id does not exist." in r.stdout
    assert "These consumer groups were deleted successfully: 'tool-g'" in r.stdout
    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--list")
    assert r.stdout == ""

    r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", bs, "--describe")
    assert r.returncode == 1 and "Option [describe] takes one of these options: [group], [all-groups]" in r.stderr


def test_consumer_groups_tool_members(broker_factory):
    b = broker_factory(**FAST)
    create_topic(b, "mem", 3)
    script = f"""
        import subprocess, sys, time
        from confluent_kafka import Consumer
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "mg", "client.id": "cli-1",
                      "group.instance.id": "i1"}})
        c.subscribe(["mem"])
        end = time.time() + 30
        while not c.assignment() and time.time() < end:
            c.poll(0.2)
        out = subprocess.run(["{b.bin}/kafka-consumer-groups.sh", "--bootstrap-server", "{b.bootstrap}",
                              "--describe", "--group", "mg", "--members", "--verbose"],
                             capture_output=True, text=True)
        print(out.stdout, end="")
        c.close()
    """
    out = run_py(script)
    lines = out.splitlines()
    assert lines[1].split() == ["GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS",
                                "ASSIGNMENT"]
    f = lines[2].split()
    assert f[0] == "mg" and f[1].startswith("i1-") and f[2] == "i1" and f[3] == "/127.0.0.1"
    assert f[4] == "cli-1" and f[5] == "3" and f[6] == "mem(0,1,2)"


def test_shutdown_with_parked_join(broker_factory):
    """A JoinGroup parked in the initial rebalance delay is answered at shutdown."""
    b = broker_factory(group_initial_rebalance_delay_ms="10000")
    create_topic(b, "park", 1)
    p = subprocess.Popen([PYTHON, "-c", textwrap.dedent(f"""
        import time
        from confluent_kafka import Consumer
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "parked"}})
        c.subscribe(["park"])
        end = time.time() + 6
        while time.time() < end:
            c.poll(0.2)
    """)], env=tool_env())
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", b.bootstrap, "--list", "--state")
            if "PreparingRebalance" in r.stdout:
                break
            time.sleep(0.2)
        assert "PreparingRebalance" in r.stdout, r.stdout
        assert b.stop() == 0, b.log_text()[-3000:]
    finally:
        p.kill()
        p.wait()
