"""kafka-dump-log --offsets-decoder (issue 15): __consumer_offsets records
as Kafka 3.6.1's GroupMetadataManager.formatRecordKeyAndValue prints them,
on a segment written here byte by byte (every kind of record, the expected
lines written from Kafka's code) and on a real broker's __consumer_offsets."""
import glob
import json
import os
import re
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import segment_writer as sw  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(REPO, "bin", "kafka-dump-log.sh")


def run(*args):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=30, env=env)


def s16(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def b32(b):
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def offset_key(group, topic, partition, version=1):
    return struct.pack(">h", version) + s16(group) + s16(topic) + struct.pack(">i", partition)


def offset_value_v1(offset, metadata):
    return struct.pack(">hq", 1, offset) + s16(metadata) + struct.pack(">qq", 1700000000000, -1)


def offset_value_v3(offset, epoch, metadata):
    return struct.pack(">hqi", 3, offset, epoch) + s16(metadata) + struct.pack(">q", 1700000000000)


def group_key(group):
    return struct.pack(">h", 2) + s16(group)


def assignment(parts, user_data=None, version=1):
    """ConsumerProtocolAssignment: [(topic, [partitions])], nullable user data."""
    out = struct.pack(">hi", version, len(parts))
    for t, ps in parts:
        out += s16(t) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
    return out + b32(user_data)


def group_value_v3(protocol_type, generation, protocol, leader, members):
    out = struct.pack(">h", 3) + s16(protocol_type) + struct.pack(">i", generation) + s16(protocol) + s16(leader)
    out += struct.pack(">qi", 1700000000000, len(members))
    for member_id, asg in members:
        out += s16(member_id) + s16(None) + s16("client") + s16("/127.0.0.1") + struct.pack(">ii", 30000, 10000)
        out += b32(b"") + b32(asg)
    return out


def test_offsets_decoder_every_record_kind(tmp_path):
    records = [
        (offset_key("g1", "t", 0), offset_value_v1(42, "meta")),
        (offset_key("g1", "t", 1, version=0), offset_value_v3(7, 5, "")),
        (offset_key("g1", "t", 0), None),
        # members put b then a: the Scala HashMap prints "a" (bucket 1) before "b" (bucket 2)
        (group_key("grp"), group_value_v3("consumer", 4, "range", "b", [
            ("b", assignment([("t", [0, 1])])),
            ("a", assignment([("t", [2])], user_data=b"\x00\x01\xab")),
        ])),
        (group_key("conn"), group_value_v3("connect", 1, None, None, [("m", b"\x00\x0f")])),
        (group_key("empty"), group_value_v3("", 0, None, None, [])),
        (group_key("grp"), None),
        (struct.pack(">h", 9) + b"whatever", b"x"),
    ]
    seg = sw.write_segment(str(tmp_path), 0, [sw.batch(0, [(k, v, ()) for k, v in records])])
    r = run("--files", seg, "--offsets-decoder")
    assert r.returncode == 0, r.stderr
    got = [re.sub(r"^\| offset: \d+ CreateTime: \d+ keySize: -?\d+ valueSize: -?\d+ sequence: -1 headerKeys: \[\] ",
                  "", line) for line in r.stdout.splitlines() if line.startswith("| ")]
    assert got == [
        "key: offset_commit::group=g1,partition=t-0 payload: offset=42,metadata=meta",
        "key: offset_commit::group=g1,partition=t-1 payload: offset=7",
        "key: offset_commit::group=g1,partition=t-0 payload: <DELETE>",
        'key: group_metadata::group=grp payload: {"protocolType":"consumer","protocol":"range","generationId":4,'
        '"assignment":"{a=[t-2]:1AB,b=[t-0, t-1]}"}',
        'key: group_metadata::group=conn payload: {"protocolType":"connect","protocol":null,"generationId":1,'
        '"assignment":"{m=F}"}',
        'key: group_metadata::group=empty payload: {"protocolType":"","protocol":null,"generationId":0,'
        '"assignment":"{}"}',
        "key: group_metadata::group=grp payload: <DELETE>",
        "key: unknown::version=9",
    ]
    # --skip-record-metadata leaves the decoded key and payload alone
    r = run("--files", seg, "--offsets-decoder", "--skip-record-metadata")
    assert "| key: offset_commit::group=g1,partition=t-0 payload: offset=42,metadata=meta" in r.stdout.splitlines()


def test_offsets_decoder_missing_key_stops_as_kafka(tmp_path):
    seg = sw.write_segment(str(tmp_path), 0, [sw.batch(0, [(None, b"v", ())])])
    r = run("--files", seg, "--offsets-decoder")
    assert r.returncode == 1
    assert ("org.apache.kafka.common.KafkaException: Failed to decode message using offset topic decoder "
            "(message had a missing key)") in r.stderr


def test_offsets_decoder_on_a_broker(broker):
    ck = pytest.importorskip("confluent_kafka")
    r = broker.run_tool("kafka-topics", "--create", "--topic", "dl-t", "--partitions", "1", "--bootstrap-server",
                        broker.bootstrap)
    assert r.returncode == 0, r.stderr
    p = ck.Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(5):
        p.produce("dl-t", b"v%d" % i)
    assert p.flush(30) == 0
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "dl-group", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    c.subscribe(["dl-t"])
    got = 0
    for _ in range(100):
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got += 1
            if got == 3:
                c.commit(message=m, asynchronous=False)
                break
    c.close()
    text = ""
    for seg in glob.glob(os.path.join(broker.log_dir, "__consumer_offsets-*", "*.log")):
        r = broker.run_tool("kafka-dump-log", "--files", seg, "--offsets-decoder")
        assert r.returncode == 0, r.stderr
        text += r.stdout
    assert "key: offset_commit::group=dl-group,partition=dl-t-0 payload: offset=3" in text, text
    groups = re.findall(r"key: group_metadata::group=dl-group payload: (\{.*\})$", text, re.M)
    assert groups, text
    stable = [json.loads(g) for g in groups if re.fullmatch(r"\{rdkafka-[^=]+=\[dl-t-0\]\}", json.loads(g)["assignment"])]
    assert stable and stable[0]["protocolType"] == "consumer" and stable[0]["protocol"] in ("range", "roundrobin"), groups
    # after the consumer left: an empty group, no protocol
    assert json.loads(groups[-1]) == {"protocolType": "consumer", "protocol": None,
                                      "generationId": stable[-1]["generationId"] + 1, "assignment": "{}"}, groups


def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def cstr(s):
    """A compact (nullable) string."""
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def carray32(values):
    return uvarint(len(values) + 1) + b"".join(struct.pack(">i", v) for v in values)


def test_cluster_metadata_decoder_json(tmp_path):
    """Records written byte by byte; the expected JSON follows Kafka's generated
    JsonConverters: schema order, tagged fields only when not their default
    (an empty array against a null default prints), null strings, uuids in
    url-safe base64, unknown types as Kafka's error line."""
    topic_id = bytes(range(16))
    frame = lambda api, ver: uvarint(1) + uvarint(api) + uvarint(ver)  # noqa: E731
    change = (frame(5, 0) + struct.pack(">i", 3) + topic_id
              + uvarint(3)  # tagged: isr, leader, removingReplicas
              + uvarint(0) + uvarint(9) + carray32([1, 2])
              + uvarint(1) + uvarint(4) + struct.pack(">i", 2)
              + uvarint(3) + uvarint(1) + carray32([]))
    unchanged_leader = (frame(5, 0) + struct.pack(">i", 0) + topic_id + uvarint(1)
                        + uvarint(1) + uvarint(4) + struct.pack(">i", -2))
    config_delete = frame(4, 0) + bytes([2]) + cstr("t") + cstr("retention.ms") + cstr(None) + uvarint(0)
    weird = frame(2, 0) + cstr('a"b\\c\n\x01é') + topic_id + uvarint(0)
    unknown = frame(99, 0)
    garbage = frame(2, 0) + cstr("t") + topic_id + uvarint(0) + b"xx"
    values = [change, unchanged_leader, config_delete, weird, unknown, garbage]
    seg = sw.write_segment(str(tmp_path), 0, [sw.batch(0, [(None, v, ()) for v in values])])
    r = run("--files", seg, "--cluster-metadata-decoder")
    assert r.returncode == 0, r.stderr
    got = [line.split(" payload: ", 1)[1] for line in r.stdout.splitlines() if " payload: " in line]
    tid = "AAECAwQFBgcICQoLDA0ODw"
    assert got == [
        '{"type":"PARTITION_CHANGE_RECORD","version":0,"data":{"partitionId":3,"topicId":"%s","isr":[1,2],'
        '"leader":2,"removingReplicas":[]}}' % tid,
        '{"type":"PARTITION_CHANGE_RECORD","version":0,"data":{"partitionId":0,"topicId":"%s"}}' % tid,
        '{"type":"CONFIG_RECORD","version":0,"data":{"resourceType":2,"resourceName":"t","name":"retention.ms",'
        '"value":null}}',
        '{"type":"TOPIC_RECORD","version":0,"data":{"name":"a\\"b\\\\c\\n\\u0001é","topicId":"%s"}}' % tid,
        "Error at 4, skipping. Unknown metadata id 99",
        "Error at 5, skipping. Found 2 byte(s) of garbage after 2",
    ]


def test_bootstrap_checkpoint(tmp_path):
    """kafka-storage format writes bootstrap.checkpoint; dump-log prints it as
    Kafka's 'KRaft bootstrap snapshot' with its records."""
    props = tmp_path / "s.properties"
    props.write_text("process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093\n"
                     "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n"
                     f"controller.listener.names=CONTROLLER\nlog.dirs={tmp_path}/data\n")
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    storage = os.path.join(REPO, "bin", "kafka-storage.sh")
    cid = subprocess.run([storage, "random-uuid"], capture_output=True, text=True, env=env, timeout=30).stdout.strip()
    r = subprocess.run([storage, "format", "-t", cid, "-c", str(props), "--add-scram",
                        "SCRAM-SHA-256=[name=bob,password=pw]"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    f = str(tmp_path / "data" / "bootstrap.checkpoint")
    r = run("--cluster-metadata-decoder", "--files", f)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["Dumping " + f, "KRaft bootstrap snapshot"]
    payloads = [json.loads(l.split(" payload: ", 1)[1]) for l in lines if " payload: " in l]
    assert payloads[0]["data"] == {"name": "metadata.version", "featureLevel": 14}
    scram = [p["data"] for p in payloads if p["type"] == "USER_SCRAM_CREDENTIAL_RECORD"]
    assert len(scram) == 1 and scram[0]["name"] == "bob" and scram[0]["mechanism"] == 1
    assert "SnapshotHeader" in lines[3] and "SnapshotFooter" in lines[-1]
