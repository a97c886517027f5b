"""__cluster_metadata snapshots (issue 15, KIP-630) on a real single node.

A node with many topics, configs, producer ids (and SCRAM users when the
build has them) restarted with a low metadata.log.max.record.bytes.between.snapshots
writes <offset>-<epoch>.checkpoint, moves the log start to a newer snapshot
under metadata.max.retention.bytes (old segments and snapshots deleted), and
comes back from the snapshot with everything as it was. kill -9 while
snapshots are being written leaves a node that starts; a leftover .part file
is removed. kafka-dump-log prints a snapshot as Kafka's does."""
import glob
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

SNAPSHOT_OVERRIDES = {
    "metadata.log.max.record.bytes.between.snapshots": "10000",
    "metadata.log.segment.bytes": "16384",
    "metadata.log.segment.min.bytes": "1024",
    "metadata.max.retention.bytes": "1",
}


def mdir(b):
    return os.path.join(b.log_dir, "__cluster_metadata-0")


def snapshots(b):
    return sorted(glob.glob(os.path.join(mdir(b), "*.checkpoint")))


def segments(b):
    return sorted(glob.glob(os.path.join(mdir(b), "*.log")))


def reconfigure(b, overrides):
    with open(b.config, "a") as f:
        f.write("\n# snapshot test\n")
        for k, v in overrides.items():
            f.write(f"{k}={v}\n")


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def create_topics(b, names, configs=None, partitions=2):
    a = admin(b)
    for i in range(0, len(names), 50):
        fs = a.create_topics([NewTopic(n, partitions, 1, config=(configs or {}).get(n, {})) for n in names[i:i + 50]],
                             operation_timeout=30)
        for n, f in fs.items():
            f.result(60)


def state(b):
    """What a user sees: topics with partitions and leaders, every topic's
    dynamic configs, broker configs, SCRAM users."""
    desc = b.run_tool("kafka-topics", "--describe", "--bootstrap-server", b.bootstrap)
    assert desc.returncode == 0, desc.stderr
    lines = []
    for line in desc.stdout.splitlines():
        # the topic line with its id and configs, partition lines with leader/ISR
        lines.append(re.sub(r"\s+", " ", line.strip()))
    a = admin(b)
    md = a.list_topics(timeout=30)
    topics = sorted(t for t in md.topics if not t.startswith("__"))
    res = [ConfigResource("topic", t) for t in topics]
    configs = {}
    for i in range(0, len(res), 100):
        for r, f in a.describe_configs(res[i:i + 100]).items():
            entries = f.result(60)
            configs[r.name] = sorted((k, e.value) for k, e in entries.items()
                                     if e.source == ck.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    brokers = []
    for args in (("--entity-default",), ("--entity-name", "1")):
        r = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "brokers",
                       *args)
        assert r.returncode == 0, r.stderr
        brokers.append(r.stdout)
    users = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "users")
    return {"topics": sorted(lines), "configs": configs, "brokers": brokers,
            "users": users.stdout if users.returncode == 0 else None}


def idempotent_pid(b, topic):
    p = ck.Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True})
    p.produce(topic, b"x", partition=0)
    assert p.flush(30) == 0
    out = b.run_tool("kafka-transactions", "--bootstrap-server", b.bootstrap, "describe-producers", "--topic", topic,
                     "--partition", "0").stdout.splitlines()
    return max(int(line.split("\t")[0]) for line in out[1:])


def test_snapshot_written_loaded_and_old_log_deleted(broker_factory):
    b = broker_factory()
    names = [f"snap-{i:03d}" for i in range(150)]
    create_topics(b, names, {n: {"retention.ms": str(100000 + i)} for i, n in enumerate(names) if i % 3 == 0})
    a = admin(b)
    for f in a.delete_topics(names[-10:], operation_timeout=30).values():
        f.result(60)
    for args in (("--entity-default", "--add-config", "log.retention.bytes=123456789"),
                 ("--entity-name", "1", "--add-config", "log.cleaner.backoff.ms=20000")):
        r = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "brokers", *args)
        assert r.returncode == 0, r.stderr
    scram = b.run_tool("kafka-configs", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "users",
                       "--entity-name", "alice", "--add-config", "SCRAM-SHA-256=[iterations=4096,password=alice-secret]")
    pid_before = idempotent_pid(b, names[0])
    before = state(b)
    assert len([l for l in before["topics"] if l.startswith("Topic: snap-") and "TopicId:" in l]) == 140
    assert snapshots(b) == [], "no snapshot below 20 MiB of metadata"

    # restart with a low threshold: the replayed log is over it, a snapshot follows at once
    assert b.stop() == 0
    reconfigure(b, SNAPSHOT_OVERRIDES)
    b.start()
    deadline = time.time() + 20
    while not snapshots(b) and time.time() < deadline:
        time.sleep(0.1)
    first = snapshots(b)
    assert len(first) == 1, os.listdir(mdir(b))
    assert re.fullmatch(r"\d{20}-0000000001\.checkpoint", os.path.basename(first[0]))
    assert os.stat(first[0]).st_mode & 0o222 == 0, "a snapshot is read-only"
    assert state(b) == before

    # more metadata: a second snapshot; over metadata.max.retention.bytes the
    # log start moves to it, the first segment and the first snapshot go
    more = [f"more-{i:03d}" for i in range(120)]
    create_topics(b, more, partitions=1)
    deadline = time.time() + 30
    while time.time() < deadline and (os.path.exists(first[0]) or len(snapshots(b)) != 1):
        time.sleep(0.1)
    latest = snapshots(b)
    assert len(latest) == 1 and latest != first, (first, os.listdir(mdir(b)))
    snap_offset = int(os.path.basename(latest[0])[:20])
    assert not os.path.exists(os.path.join(mdir(b), "00000000000000000000.log")), "segments below the snapshot go"
    assert all(int(os.path.basename(s)[:20]) <= snap_offset for s in segments(b)[:1])
    after_more = state(b)
    assert len([l for l in after_more["topics"] if l.startswith("Topic: more-") and "TopicId:" in l]) == 120

    # restart: the snapshot plus the log after it give the same metadata
    assert b.stop() == 0
    b.start()
    log = b.log_text()
    assert "Loaded snapshot " in log and os.path.basename(latest[0]) in log, log[-3000:]
    m = re.findall(r"Replayed (\d+) metadata records from offset (\d+)", log)
    assert m and int(m[-1][1]) == snap_offset, m
    assert state(b) == after_more
    for k in ("configs", "brokers", "users"):
        assert after_more[k] == before[k] or k == "configs"
    assert {t: c for t, c in after_more["configs"].items() if t in before["configs"]} == before["configs"]
    if scram.returncode == 0:
        assert "alice" in after_more["users"], after_more["users"]
    # producer ids are never handed out twice
    assert idempotent_pid(b, names[1]) > pid_before


def test_kill9_while_writing_snapshots(broker_factory):
    """Every metadata change writes a snapshot; kill -9 at random moments
    while topics are created, then start again: the node starts, no .part
    file stays, every acknowledged topic is there."""
    b = broker_factory(**{"metadata.log.max.record.bytes.between.snapshots": "1"})
    rnd = random.Random(15)
    acked = set()
    for round_no in range(4):
        stop = threading.Event()

        def create_loop(round_no=round_no):
            a = admin(b)
            i = 0
            while not stop.is_set() and i < 400:
                name = f"k{round_no}-{i}"
                try:
                    a.create_topics([NewTopic(name, 1, 1)], operation_timeout=5)[name].result(5)
                    acked.add(name)
                except Exception:
                    return
                i += 1

        t = threading.Thread(target=create_loop)
        t.start()
        time.sleep(0.5 + rnd.random())
        b.kill9()
        stop.set()
        t.join(30)
        if round_no == 1:
            # a crash mid-write leaves a .part file behind
            with open(os.path.join(mdir(b), "00000000000000009999-0000000001-123.checkpoint.part"), "wb") as f:
                f.write(b"\0" * 100)
        b.start()
        assert glob.glob(os.path.join(mdir(b), "*.part")) == []
        md = admin(b).list_topics(timeout=30)
        missing = acked - set(md.topics)
        assert not missing, sorted(missing)[:5]
    assert len(acked) > 10


def test_dump_log_prints_a_snapshot(broker_factory):
    b = broker_factory(**{"metadata.log.max.record.bytes.between.snapshots": "2000"})
    create_topics(b, [f"dump-{i}" for i in range(10)], {"dump-0": {"cleanup.policy": "compact"}})
    deadline = time.time() + 20
    while not snapshots(b) and time.time() < deadline:
        time.sleep(0.1)
    snap = snapshots(b)[-1]
    r = b.run_tool("kafka-dump-log", "--cluster-metadata-decoder", "--files", snap)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    name = os.path.basename(snap)
    assert lines[0] == "Dumping " + snap
    assert lines[1] == f"Snapshot end offset: {int(name[:20])}, epoch: 1"
    assert lines[2].startswith("baseOffset: 0 lastOffset: 0 count: 1 baseSequence: -1 lastSequence: -1 "
                               "producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 1 isTransactional: false "
                               "isControl: true deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: "), lines[2]
    assert re.fullmatch(r"\| offset: 0 CreateTime: \d+ keySize: 4 valueSize: 11 sequence: -1 headerKeys: \[\] "
                        r"SnapshotHeader \{\"version\":0,\"lastContainedLogTimestamp\":\d+\}", lines[3]), lines[3]
    assert re.fullmatch(r"\| offset: \d+ CreateTime: \d+ keySize: 4 valueSize: 3 sequence: -1 headerKeys: \[\] "
                        r"SnapshotFooter \{\"version\":0\}", lines[-1]), lines[-1]
    payloads = [json.loads(l.split(" payload: ", 1)[1]) for l in lines if " payload: " in l]
    assert payloads[0] == {"type": "FEATURE_LEVEL_RECORD", "version": 0,
                           "data": {"name": "metadata.version", "featureLevel": 14}}
    assert payloads[1] == {"type": "ZK_MIGRATION_STATE_RECORD", "version": 0, "data": {"zkMigrationState": 0}}
    assert payloads[2]["type"] == "REGISTER_BROKER_RECORD" and payloads[2]["version"] == 2
    assert payloads[2]["data"]["brokerId"] == 1
    topics = {p["data"]["name"]: p["data"]["topicId"] for p in payloads if p["type"] == "TOPIC_RECORD"}
    assert {f"dump-{i}" for i in range(10)} <= set(topics)
    ids = b.run_tool("kafka-topics", "--describe", "--topic", "dump-3", "--bootstrap-server", b.bootstrap).stdout
    assert f"TopicId: {topics['dump-3']}" in ids
    parts = [p for p in payloads if p["type"] == "PARTITION_RECORD" and p["data"]["topicId"] == topics["dump-3"]]
    assert parts and parts[0]["data"]["replicas"] == [1] and parts[0]["data"]["leader"] == 1
    assert {"type": "CONFIG_RECORD", "version": 0,
            "data": {"resourceType": 2, "resourceName": "dump-0", "name": "cleanup.policy", "value": "compact"}} \
        in payloads
    # every record of the data batches has a payload line
    assert sum(1 for l in lines if l.startswith("| offset: ")) == len(payloads) + 2
    # the metadata log itself decodes the same way
    seg = segments(b)[-1]
    r = b.run_tool("kafka-dump-log", "--cluster-metadata-decoder", "--files", seg)
    assert r.returncode == 0, r.stderr
    assert '"type":"TOPIC_RECORD"' in r.stdout and "Error at" not in r.stdout
