"""Partition directories are made and removed off the request loop (src/broker/partition_dirs.h).
What a user must be able to rely on: when CreateTopics or CreatePartitions answers, every new
partition takes a produce at once; each has Kafka's files; a deleted topic's directories go (renamed
as Kafka does, <topic>-<partition>.<id>-delete, then removed), also when it is deleted while its
partitions are still being made, and its name can be used again at once; such directories left by a
crash are removed at the next start, and so are Kafka's stray logs (a deleted topic's directory
that a crash left under its name); the first FindCoordinator (which creates __consumer_offsets or
__transaction_state, 50 partitions) names this node at once, and the first consumer group on a
fresh broker commits and reads back its offsets. Seconds each."""
import base64
import os
import re
import sys
import threading
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kproto  # noqa: E402
from conftest import wait_until  # noqa: E402
from segment_writer import batch  # noqa: E402

pytestmark = pytest.mark.skipif(not kproto.have_specs(), reason="Kafka's message definitions not found")

FILES = {"00000000000000000000.log", "00000000000000000000.index", "00000000000000000000.timeindex",
         "partition.metadata"}


def _conn(b):
    return kproto.Conn(b.host, b.port)


def _create(c, name, partitions):
    r = c.call("CreateTopics", 7, {"Topics": [{"Name": name, "NumPartitions": partitions, "ReplicationFactor": 1,
                                                "Assignments": [], "Configs": []}], "timeoutMs": 30000})
    return r["Topics"][0]["ErrorCode"]


def _produce_all(c, name, first, last):
    """One acks=1 Produce to partitions first..last-1, one record each; the error code of each."""
    parts = [{"Index": i, "Records": batch(0, [(b"k", b"v%d" % i, ())])} for i in range(first, last)]
    r = c.call("Produce", 9, {"TransactionalId": None, "Acks": 1, "TimeoutMs": 10000,
                              "TopicData": [{"Name": name, "PartitionData": parts}]})
    return {p["Index"]: p["ErrorCode"] for t in r["Responses"] for p in t["PartitionResponses"]}


def _dirs(b, name):
    """The topic's partition directories."""
    return sorted(d for d in os.listdir(b.log_dir) if d.rsplit("-", 1)[0] == name)


def _deleted_dirs(b):
    """Directories of deleted logs still there (Kafka's <topic>-<partition>.<id>-delete)."""
    return sorted(d for d in os.listdir(b.log_dir) if re.fullmatch(r".+-\d+\.[0-9a-f]{32}-delete", d))


def test_new_partitions_take_a_produce_as_soon_as_the_answer_comes(broker):
    c = _conn(broker)
    try:
        assert _create(c, "wide", 200) == 0
        errors = _produce_all(c, "wide", 0, 200)
        assert errors == {i: 0 for i in range(200)}, "a new partition refused the first produce"
        r = c.call("CreatePartitions", 3, {"Topics": [{"Name": "wide", "Count": 260, "Assignments": None}],
                                           "TimeoutMs": 30000, "ValidateOnly": False})
        assert r["Results"][0]["ErrorCode"] == 0, r
        errors = _produce_all(c, "wide", 200, 260)
        assert errors == {i: 0 for i in range(200, 260)}, "an added partition refused the first produce"
    finally:
        c.close()
    dirs = _dirs(broker, "wide")
    assert len(dirs) == 260
    for d in dirs:
        assert FILES <= set(os.listdir(os.path.join(broker.log_dir, d))), d
        # as Kafka's leader writes it when it starts epoch 0 at offset 0
        with open(os.path.join(broker.log_dir, d, "leader-epoch-checkpoint")) as f:
            assert f.read() == "0\n1\n0 0\n", d
    # a restart opens them all, with the records acknowledged above
    broker.restart()
    out = broker.run_tool("kafka-get-offsets", "--bootstrap-server", broker.bootstrap, "--topic", "wide").stdout
    ends = dict(line.rsplit(":", 2)[1:] for line in out.split())
    assert len(ends) == 260 and set(ends.values()) == {"1"}, out


def test_a_topic_deleted_while_its_partitions_are_made_leaves_nothing(broker):
    """Deleted by another connection while the creation's answer still waits (200 partitions take tens
    of milliseconds to make): the directories all go, and the name is free again."""
    created = {}

    def create():
        c = _conn(broker)
        try:
            created["rc"] = _create(c, "brief", 200)
        finally:
            c.close()

    d = _conn(broker)
    try:
        th = threading.Thread(target=create)
        th.start()
        deleted = None
        for _ in range(2000):  # until the topic exists, at most a few seconds
            r = d.call("DeleteTopics", 6, {"Topics": [{"Name": "brief", "TopicId": b"\0" * 16}], "TimeoutMs": 30000})
            deleted = r["Responses"][0]["ErrorCode"]
            if deleted != 3:  # UNKNOWN_TOPIC_OR_PARTITION: not created yet
                break
        th.join(30)
        assert not th.is_alive()
        assert created["rc"] == 0 and deleted == 0, (created, deleted)
        # the name is free at once: the old directories are renamed before the new ones are made
        assert _create(d, "brief", 3) == 0
        assert _produce_all(d, "brief", 0, 3) == {0: 0, 1: 0, 2: 0}
        wait_until(lambda: not _deleted_dirs(broker), 30, "the deleted topic's directories to be removed")
        assert _dirs(broker, "brief") == ["brief-0", "brief-1", "brief-2"]
    finally:
        d.close()
    assert "Failed to open" not in broker.log_text()


def test_first_group_on_a_fresh_broker_commits_and_reads_its_offsets(broker):
    out = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", "g",
                          "--partitions", "2").stdout
    assert "Created topic g." in out
    broker.run_tool("kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", "g",
                    input="a\nb\nc\n")
    out = broker.run_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", "g",
                          "--group", "first", "--from-beginning", "--max-messages", "3",
                          "--timeout-ms", "20000").stdout
    assert sorted(out.split()) == ["a", "b", "c"], out
    assert len(_dirs(broker, "__consumer_offsets")) == 50
    out = broker.run_tool("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--describe",
                          "--group", "first").stdout
    rows = [line.split() for line in out.splitlines() if line.startswith("first ")]
    committed = [x for x in rows if x[3].isdigit()]  # the producer may have put all three in one partition
    assert committed and sum(int(x[3]) for x in committed) == 3 and all(x[5] == "0" for x in committed), out


def test_a_deleted_topic_s_files_go_and_leftovers_of_a_crash_go_at_start(broker):
    c = _conn(broker)
    try:
        assert _create(c, "full", 20) == 0
        for _ in range(20):  # about 10 MB in all
            errors = _produce_all_big(c, "full", 20)
            assert set(errors.values()) == {0}, errors
        r = c.call("DeleteTopics", 6, {"Topics": [{"Name": "full", "TopicId": b"\0" * 16}], "TimeoutMs": 30000})
        assert r["Responses"][0]["ErrorCode"] == 0, r
        wait_until(lambda: not _dirs(broker, "full") and not _deleted_dirs(broker), 30,
                   "the deleted topic's directories to be renamed and removed")
        assert _create(c, "full", 2) == 0  # the name is free again
    finally:
        c.close()
    # a crash between the rename and the removal leaves such a directory: the next start removes it
    broker.stop()
    left = os.path.join(broker.log_dir, "old-3." + "ab" * 16 + "-delete")
    os.mkdir(left)
    with open(os.path.join(left, "00000000000000000000.log"), "wb") as f:
        f.write(b"\0" * 4096)
    broker.start()
    wait_until(lambda: not os.path.exists(left), 30, "the leftover deleted log to be removed")
    assert _dirs(broker, "full") == ["full-0", "full-1"]


def _fake_log_dir(path, topic_id_b64, records=5):
    """A partition directory as another topic's: its partition.metadata and a segment of records."""
    os.mkdir(path)
    with open(os.path.join(path, "partition.metadata"), "w") as f:
        f.write("version: 0\ntopic_id: " + topic_id_b64 + "\n")
    with open(os.path.join(path, "00000000000000000000.log"), "wb") as f:
        f.write(batch(0, [(None, b"old", ())] * records))


def _random_topic_id():
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def test_stray_logs_go_at_start(broker):
    """Kafka's stray logs (found once at start-up): a partition directory whose topic id the
    metadata does not hold (a topic deleted just before a crash, before its rename), or a partition
    the topic does not have, is deleted before the partitions open, so a topic created again under
    that name starts empty. A directory without a readable partition.metadata is left alone."""
    c = _conn(broker)
    try:
        assert _create(c, "kept", 2) == 0
        assert _produce_all(c, "kept", 0, 2) == {0: 0, 1: 0}
        kept_id = open(os.path.join(broker.log_dir, "kept-0", "partition.metadata")).read().split()[-1]
    finally:
        c.close()
    broker.stop()
    _fake_log_dir(os.path.join(broker.log_dir, "ghost-0"), _random_topic_id())
    _fake_log_dir(os.path.join(broker.log_dir, "kept-7"), kept_id)  # a partition "kept" does not have
    unknown = os.path.join(broker.log_dir, "odd-0")
    os.mkdir(unknown)  # no partition.metadata: not ours to judge
    broker.start()
    log = broker.log_text()
    assert "Found stray log dir " + os.path.join(broker.log_dir, "ghost-0") + ": the topicId" in log, log[-3000:]
    assert "Found stray log dir " + os.path.join(broker.log_dir, "kept-7") in log, log[-3000:]
    wait_until(lambda: not _deleted_dirs(broker), 30, "the stray logs to be removed")
    assert sorted(d for d in os.listdir(broker.log_dir) if d.startswith(("ghost", "kept", "odd"))) == \
        ["kept-0", "kept-1", "odd-0"]
    c = _conn(broker)
    try:
        assert _create(c, "ghost", 1) == 0
        assert _produce_all(c, "ghost", 0, 1) == {0: 0}
    finally:
        c.close()
    out = broker.run_tool("kafka-get-offsets", "--bootstrap-server", broker.bootstrap, "--topic", "ghost").stdout
    assert out.split() == ["ghost:0:1"], out  # the new record only
    out = broker.run_tool("kafka-get-offsets", "--bootstrap-server", broker.bootstrap, "--topic", "kept").stdout
    assert sorted(out.split()) == ["kept:0:1", "kept:1:1"], out


def test_another_topic_s_directory_where_a_partition_is_made_goes(broker):
    """A directory naming another topic id where a new partition is made (put there while the
    broker runs; a crash's leftovers go at start-up already) is retired, and the partition is made
    anew."""
    _fake_log_dir(os.path.join(broker.log_dir, "ghost-0"), _random_topic_id())
    c = _conn(broker)
    try:
        assert _create(c, "ghost", 2) == 0
        assert _produce_all(c, "ghost", 0, 2) == {0: 0, 1: 0}
    finally:
        c.close()
    out = broker.run_tool("kafka-get-offsets", "--bootstrap-server", broker.bootstrap, "--topic", "ghost").stdout
    assert sorted(out.split()) == ["ghost:0:1", "ghost:1:1"], out  # the new records only
    wait_until(lambda: not _deleted_dirs(broker), 30, "the old directory to be removed")
    assert "held the log of another topic id" in broker.log_text()
    assert "Failed to open" not in broker.log_text()


def _produce_all_big(c, name, n):
    """acks=1 Produce of 25 records of 1 KiB to each of partitions 0..n-1."""
    parts = [{"Index": i, "Records": batch(0, [(None, b"x" * 1024, ())] * 25)} for i in range(n)]
    r = c.call("Produce", 9, {"TransactionalId": None, "Acks": 1, "TimeoutMs": 10000,
                              "TopicData": [{"Name": name, "PartitionData": parts}]})
    return {p["Index"]: p["ErrorCode"] for t in r["Responses"] for p in t["PartitionResponses"]}


@pytest.mark.parametrize("key_type,topic", [(0, "__consumer_offsets"), (1, "__transaction_state")])
def test_first_find_coordinator_answers_once_the_internal_topic_is_open(broker, key_type, topic):
    """The first FindCoordinator creates the internal topic (50 partitions, made off the loop): its
    answer waits for them and names this node, and every partition is there when it comes."""
    c = _conn(broker)
    try:
        r = c.call("FindCoordinator", 4, {"KeyType": key_type, "CoordinatorKeys": ["k1", "k2"]})
        assert [(x["Key"], x["ErrorCode"], x["NodeId"]) for x in r["Coordinators"]] == [("k1", 0, 1), ("k2", 0, 1)], r
        assert len(_dirs(broker, topic)) == 50
        r = c.call("FindCoordinator", 3, {"Key": "k3", "KeyType": key_type})  # the single-key versions too
        assert (r["ErrorCode"], r["NodeId"]) == (0, 1), r
    finally:
        c.close()
