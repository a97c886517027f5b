"""Per-partition and per-topic error answers, field by field, as Kafka 3.6.1's
KRaft node gives them (issue 11), over raw requests; and long polls that are
never answered before their max_wait_ms.

References: ReplicaManager.createLogReadResult(Throwable) and KafkaApis
.handleFetchRequest (Fetch), KafkaApis.handleListOffsetRequestV1AndAbove,
ReplicaManager.deleteRecordsOnLocalLog / appendToLocalLog, KafkaApis
.handleProduceRequest, ControllerApis.createTopics/deleteTopics/
createPartitions and ReplicationControlManager (topics).
"""
import socket
import struct
import time

from test_bad_input import produce_v8, record_batch

NONE = 0
OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_LEADER_OR_FOLLOWER = 6
INVALID_TOPIC_EXCEPTION = 17
NOT_ENOUGH_REPLICAS = 19
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_CONFIG = 40
INVALID_REQUEST = 42
UNSUPPORTED_COMPRESSION_TYPE = 76
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


def s16(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v if len(v) > 1 else v[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.d[self.p:self.p + n].decode()
        self.p += n
        return s

    def uuid(self):
        u = self.d[self.p:self.p + 16]
        self.p += 16
        return u


class Client:
    def __init__(self, broker):
        self.sock = socket.create_connection((broker.host, broker.port), timeout=15)
        self.corr = 0

    def send(self, api_key, version, body):
        self.corr += 1
        frame = struct.pack(">hhi", api_key, version, self.corr) + s16("error-answers-test") + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)

    def recv(self):
        def exact(n):
            buf = b""
            while len(buf) < n:
                chunk = self.sock.recv(n - len(buf))
                assert chunk, "connection closed"
                buf += chunk
            return buf
        size = struct.unpack(">i", exact(4))[0]
        r = Reader(exact(size))
        assert r.take(">i") == self.corr
        return r

    def call(self, api_key, version, body):
        self.send(api_key, version, body)
        return self.recv()

    # ---- Fetch v4-11 (non-flexible) ----
    def fetch(self, parts, version=11, max_wait=0, min_bytes=1, isolation=0):
        """parts: [(topic, partition, offset, current_leader_epoch)] -> [(topic, p, err, hw, lso, lstart, aborted, nbytes)]"""
        body = struct.pack(">iiii", -1, max_wait, min_bytes, 1 << 20) + struct.pack(">b", isolation)
        if version >= 7:
            body += struct.pack(">ii", 0, -1)  # sessionless
        by_topic = []
        for t, p, off, epoch in parts:
            if not by_topic or by_topic[-1][0] != t:
                by_topic.append((t, []))
            by_topic[-1][1].append((p, off, epoch))
        body += struct.pack(">i", len(by_topic))
        for t, ps in by_topic:
            body += s16(t) + struct.pack(">i", len(ps))
            for p, off, epoch in ps:
                body += struct.pack(">i", p)
                if version >= 9:
                    body += struct.pack(">i", epoch)
                body += struct.pack(">q", off)
                if version >= 5:
                    body += struct.pack(">q", -1)
                body += struct.pack(">i", 1 << 20)
        if version >= 7:
            body += struct.pack(">i", 0)
        if version >= 11:
            body += s16("")
        r = self.call(1, version, body)
        r.take(">i")  # throttle
        if version >= 7:
            assert r.take(">h") == 0
            r.take(">i")
        out = []
        for _ in range(r.take(">i")):
            topic = r.string()
            for _ in range(r.take(">i")):
                p, err, hw = r.take(">ihq")
                lso = r.take(">q")
                lstart = r.take(">q") if version >= 5 else None
                naborted = r.take(">i")
                r.p += max(naborted, 0) * 16
                if version >= 11:
                    r.take(">i")
                nbytes = r.take(">i")
                r.p += max(nbytes, 0)
                out.append((topic, p, err, hw, lso, lstart, naborted, nbytes))
        return out

    # ---- Produce v8 ----
    def produce(self, topic, partition, records, acks=1):
        """-> (index, error, base_offset, log_append_time, log_start_offset, record_errors, error_message)"""
        r = self.call(0, 8, produce_v8(topic, partition, records, acks=acks))
        assert r.take(">i") == 1
        r.string()
        assert r.take(">i") == 1
        index, err, base, append_time, log_start = r.take(">ihqqq")
        errors = []
        for _ in range(r.take(">i")):
            errors.append((r.take(">i"), r.string()))
        return index, err, base, append_time, log_start, errors, r.string()

    # ---- ListOffsets v5 ----
    def list_offsets(self, parts):
        """parts: [(topic, partition, timestamp, current_leader_epoch)] -> [(p, err, ts, offset, epoch)]"""
        body = struct.pack(">ib", -1, 0) + struct.pack(">i", len(parts))
        for t, p, ts, epoch in parts:
            body += s16(t) + struct.pack(">i", 1) + struct.pack(">iiq", p, epoch, ts)
        r = self.call(2, 5, body)
        r.take(">i")
        out = []
        for _ in range(r.take(">i")):
            r.string()
            for _ in range(r.take(">i")):
                out.append(r.take(">ihqqi"))
        return out

    # ---- OffsetForLeaderEpoch v3 ----
    def offset_for_leader_epoch(self, parts):
        body = struct.pack(">i", -1) + struct.pack(">i", len(parts))
        for t, p, current, epoch in parts:
            body += s16(t) + struct.pack(">i", 1) + struct.pack(">iii", p, current, epoch)
        r = self.call(23, 3, body)
        r.take(">i")
        out = []
        for _ in range(r.take(">i")):
            r.string()
            for _ in range(r.take(">i")):
                out.append(r.take(">hiiq"))
        return out

    # ---- DeleteRecords v1 ----
    def delete_records(self, parts):
        body = struct.pack(">i", len(parts))
        for t, p, off in parts:
            body += s16(t) + struct.pack(">i", 1) + struct.pack(">iq", p, off)
        body += struct.pack(">i", 10000)
        r = self.call(21, 1, body)
        r.take(">i")
        out = []
        for _ in range(r.take(">i")):
            r.string()
            for _ in range(r.take(">i")):
                out.append(r.take(">iqh"))
        return out

    # ---- CreateTopics v4 ----
    def create_topics(self, topics, validate_only=False):
        """topics: [(name, partitions, rf, assignments {p: [ids]}, configs {k: v})] -> [(name, err, msg)]"""
        body = struct.pack(">i", len(topics))
        for name, np, rf, assignments, configs in topics:
            body += s16(name) + struct.pack(">ih", np, rf)
            body += struct.pack(">i", len(assignments))
            for p, ids in assignments.items():
                body += struct.pack(">ii", p, len(ids)) + b"".join(struct.pack(">i", x) for x in ids)
            body += struct.pack(">i", len(configs))
            for k, v in configs.items():
                body += s16(k) + s16(v)
        body += struct.pack(">ib", 30000, 1 if validate_only else 0)
        r = self.call(19, 4, body)
        r.take(">i")
        out = []
        for _ in range(r.take(">i")):
            name = r.string()
            err = r.take(">h")
            out.append((name, err, r.string()))
        return out

    # ---- CreatePartitions v1 ----
    def create_partitions(self, topics):
        """topics: [(name, count, assignments or None)] -> [(name, err, msg)]"""
        body = struct.pack(">i", len(topics))
        for name, count, assignments in topics:
            body += s16(name) + struct.pack(">i", count)
            if assignments is None:
                body += struct.pack(">i", -1)
            else:
                body += struct.pack(">i", len(assignments))
                for ids in assignments:
                    body += struct.pack(">i", len(ids)) + b"".join(struct.pack(">i", x) for x in ids)
        body += struct.pack(">ib", 30000, 0)
        r = self.call(37, 1, body)
        r.take(">i")
        out = []
        for _ in range(r.take(">i")):
            name = r.string()
            err = r.take(">h")
            out.append((name, err, r.string()))
        return out

    # ---- DeleteTopics v5 (flexible) ----
    def delete_topics(self, names):
        def cstr(x):
            b = x.encode()
            return bytes([len(b) + 1]) + b
        self.corr += 1
        body = bytes([len(names) + 1]) + b"".join(cstr(n) for n in names) + struct.pack(">i", 30000) + b"\0"
        frame = struct.pack(">hhi", 20, 5, self.corr) + s16("error-answers-test") + b"\0" + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        r = self.recv()
        assert r.take(">b") == 0  # header tags
        r.take(">i")

        def cstring():
            n = r.take(">B") - 1
            if n < 0:
                return None
            v = r.d[r.p:r.p + n].decode()
            r.p += n
            return v
        out = []
        for _ in range(r.take(">B") - 1):
            name = cstring()
            err = r.take(">h")
            msg = cstring()
            assert r.take(">B") == 0
            out.append((name, err, msg))
        return out


def create(broker, topic, partitions=1, *config):
    args = ["--create", "--topic", topic, "--partitions", str(partitions), "--bootstrap-server", broker.bootstrap]
    for c in config:
        args += ["--config", c]
    r = broker.run_tool("kafka-topics", *args)
    assert r.returncode == 0, r.stdout + r.stderr


def produce_n(broker, topic, n, partition=0):
    res = Client(broker).produce(topic, partition, record_batch([b"v%d" % i for i in range(n)]))
    assert res[1] == 0, res
    return res[2]


# ---------------------------------------------------------------- topics


def test_alter_to_fewer_or_equal_partitions_prints_the_kraft_message(broker):
    create(broker, "t", 2)
    r = broker.run_tool("kafka-topics", "--alter", "--topic", "t", "--partitions", "1",
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 1
    assert r.stdout.splitlines()[0] == ("Error while executing topic command : The topic t currently has 2 "
                                        "partition(s); 1 would not be an increase.")
    r = broker.run_tool("kafka-topics", "--alter", "--topic", "t", "--partitions", "2",
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 1
    assert r.stdout.splitlines()[0] == "Error while executing topic command : Topic already has 2 partition(s)."


def test_create_partitions_errors(broker):
    create(broker, "cp", 1)
    c = Client(broker)
    res = c.create_partitions([("cp", 1, None)])
    assert res == [("cp", INVALID_PARTITIONS, "Topic already has 1 partition(s).")]
    # unknown topic: UnknownTopicOrPartitionException() without a message
    assert c.create_partitions([("nope", 3, None)]) == [("nope", UNKNOWN_TOPIC_OR_PARTITION, None)]
    # duplicates: one answer per name, "Duplicate topic name."
    res = c.create_partitions([("cp", 3, None), ("cp", 4, None)])
    assert res == [("cp", INVALID_REQUEST, "Duplicate topic name.")]
    # the count is checked before the assignments
    assert c.create_partitions([("cp", 1, [[1], [1]])]) == [("cp", INVALID_PARTITIONS,
                                                              "Topic already has 1 partition(s).")]
    assert c.create_partitions([("cp", 3, [[1]])]) == [(
        "cp", INVALID_REPLICA_ASSIGNMENT,
        "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.")]
    # broker ids are checked in ascending order
    assert c.create_partitions([("cp", 2, [[9, 5]])]) == [(
        "cp", INVALID_REPLICA_ASSIGNMENT,
        "The manual partition assignment includes broker 5, but no such broker is registered.")]
    assert c.create_partitions([("cp", 2, [[1, 1]])]) == [(
        "cp", INVALID_REPLICA_ASSIGNMENT, "The manual partition assignment includes the broker 1 more than once.")]
    assert c.create_partitions([("cp", 2, [[]])]) == [(
        "cp", INVALID_REPLICA_ASSIGNMENT, "The manual partition assignment includes an empty replica list.")]
    assert c.create_partitions([("cp", 2, [[1]])]) == [("cp", NONE, None)]


def test_create_topics_errors(broker):
    c = Client(broker)
    # duplicated names are answered once, after the others
    res = c.create_topics([("d", 1, 1, {}, {}), ("ok1", 1, 1, {}, {}), ("d", 1, 1, {}, {})], validate_only=True)
    assert res == [("ok1", NONE, None), ("d", INVALID_REQUEST, "Duplicate topic name.")]
    # __cluster_metadata is dropped without an answer
    assert c.create_topics([("__cluster_metadata", 1, 1, {}, {})]) == []
    # Topic.validate's texts
    assert c.create_topics([("", 1, 1, {}, {})]) == [
        ("", INVALID_TOPIC_EXCEPTION, "Topic name is invalid: the empty string is not allowed")]
    assert c.create_topics([("..", 1, 1, {}, {})]) == [
        ("..", INVALID_TOPIC_EXCEPTION, "Topic name is invalid: '..' is not allowed")]
    assert c.create_topics([("a/b", 1, 1, {}, {})]) == [
        ("a/b", INVALID_TOPIC_EXCEPTION, "Topic name is invalid: 'a/b' contains one or more characters other "
                                         "than ASCII alphanumerics, '.', '_' and '-'")]
    long = "x" * 250
    assert c.create_topics([(long, 1, 1, {}, {})]) == [
        (long, INVALID_TOPIC_EXCEPTION, f"Topic name is invalid: the length of '{long}' is longer than the max "
                                        "allowed length 249")]
    # the replication factor is checked before the partition count, configs before both
    assert c.create_topics([("z", 0, 0, {}, {})]) == [
        ("z", INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0, or -1 to use the default value.")]
    assert c.create_topics([("z", -5, 1, {}, {})]) == [
        ("z", INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value.")]
    assert c.create_topics([("z", 0, 0, {}, {"retention.ms": None, "cleanup.policy": "delete",
                                               "segment.ms": None})]) == [
        ("z", INVALID_CONFIG, "Null value not supported for topic configs: retention.ms,segment.ms")]
    # manual assignments
    assert c.create_topics([("m", 1, -1, {0: [1]}, {})]) == [
        ("m", INVALID_REQUEST, "A manual partition assignment was specified, but numPartitions was not set to -1.")]
    assert c.create_topics([("m", -1, 1, {0: [1]}, {})]) == [
        ("m", INVALID_REQUEST,
         "A manual partition assignment was specified, but replication factor was not set to -1.")]
    assert c.create_topics([("m", -1, -1, {0: [1], 2: [1]}, {})]) == [
        ("m", INVALID_REPLICA_ASSIGNMENT, "partitions should be a consecutive 0-based integer sequence")]
    assert c.create_topics([("m", -1, -1, {0: [7, 3]}, {})]) == [
        ("m", INVALID_REPLICA_ASSIGNMENT,
         "The manual partition assignment includes broker 3, but no such broker is registered.")]
    assert c.create_topics([("m", -1, -1, {0: [1], 1: [1, 1]}, {})]) == [
        ("m", INVALID_REPLICA_ASSIGNMENT, "The manual partition assignment includes the broker 1 more than once.")]
    assert c.create_topics([("m", -1, -1, {0: [1], 1: [1]}, {})]) == [("m", NONE, None)]


def test_delete_topics_errors(broker):
    create(broker, "del1", 1)
    c = Client(broker)
    res = c.delete_topics(["del1", "gone", "del1"])
    assert sorted(res) == [("del1", INVALID_REQUEST, "Duplicate topic name."),
                           ("gone", UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")]
    assert c.delete_topics(["del1"]) == [("del1", NONE, None)]


# ---------------------------------------------------------------- per-partition answers


def test_fetch_errors_answer_no_watermarks(broker):
    create(broker, "f", 1)
    produce_n(broker, "f", 5)
    c = Client(broker)
    assert c.delete_records([("f", 0, 3)]) == [(0, 3, NONE)]
    # below the log start: OFFSET_OUT_OF_RANGE with -1 everywhere and no records
    # (the unknown partition goes after the partitions read)
    res = c.fetch([("f", 5, 0, -1), ("f", 0, 1, -1)])
    assert res == [("f", 0, OFFSET_OUT_OF_RANGE, -1, -1, -1, -1, 0),
                   ("f", 5, UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1, -1, 0)]
    # past the end, fenced and unknown leader epochs
    assert c.fetch([("f", 0, 99, -1)]) == [("f", 0, OFFSET_OUT_OF_RANGE, -1, -1, -1, -1, 0)]
    assert c.fetch([("f", 0, 3, 5)]) == [("f", 0, UNKNOWN_LEADER_EPOCH, -1, -1, -1, -1, 0)]
    # a good read still carries the watermarks (null aborted list for read_uncommitted)
    res = c.fetch([("f", 0, 3, 0)])
    assert res[0][:7] == ("f", 0, NONE, 5, 5, 3, -1) and res[0][7] > 0
    res = c.fetch([("f", 0, 3, 0)], isolation=1)
    assert res[0][:7] == ("f", 0, NONE, 5, 5, 3, 0)


def test_fetch_zstd_topic_below_v10(broker):
    create(broker, "z", 1, "compression.type=zstd")
    produce_n(broker, "z", 2)
    c = Client(broker)
    # KafkaApis.maybeConvertFetchedData: the error alone, null records
    assert c.fetch([("z", 0, 0, -1)], version=9) == [("z", 0, UNSUPPORTED_COMPRESSION_TYPE, -1, -1, -1, -1, -1)]
    res = c.fetch([("z", 0, 0, -1)], version=10)
    assert res[0][2] == NONE and res[0][7] > 0


def test_unknown_partition_does_not_cut_a_long_poll_short(broker):
    create(broker, "lp", 1)
    c = Client(broker)
    t0 = time.monotonic()
    res = c.fetch([("lp", 0, 0, -1), ("nope", 0, 0, -1)], max_wait=300)
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.3, elapsed
    assert res == [("lp", 0, NONE, 0, 0, 0, -1, 0), ("nope", 0, UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1, -1, 0)]


def test_list_offsets_errors(broker):
    create(broker, "lo", 1)
    produce_n(broker, "lo", 3)
    c = Client(broker)
    # a partition named twice: INVALID_REQUEST both times, -1 timestamp/offset/epoch
    res = c.list_offsets([("lo", 0, -1, -1), ("lo", 0, -2, -1)])
    assert res == [(0, INVALID_REQUEST, -1, -1, -1), (0, INVALID_REQUEST, -1, -1, -1)]
    assert c.list_offsets([("lo", 0, -1, 3)]) == [(0, UNKNOWN_LEADER_EPOCH, -1, -1, -1)]
    assert c.list_offsets([("lo", 4, -1, -1)]) == [(4, UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1)]
    assert c.list_offsets([("lo", 0, -1, -1)]) == [(0, NONE, -1, 3, 0)]


def test_offset_for_leader_epoch_errors(broker):
    create(broker, "oe", 1)
    c = Client(broker)
    assert c.offset_for_leader_epoch([("oe", 0, 2, 0)]) == [(UNKNOWN_LEADER_EPOCH, 0, -1, -1)]
    assert c.offset_for_leader_epoch([("oe", 3, -1, 0)]) == [(UNKNOWN_TOPIC_OR_PARTITION, 3, -1, -1)]


def test_delete_records_errors(broker):
    create(broker, "dr", 1)
    produce_n(broker, "dr", 2)
    c = Client(broker)
    assert c.delete_records([("dr", 0, 5)]) == [(0, -1, OFFSET_OUT_OF_RANGE)]
    assert c.delete_records([("dr", 1, 1)]) == [(1, -1, UNKNOWN_TOPIC_OR_PARTITION)]
    # internal topics: "Cannot delete records of internal topic"
    kc = Client(broker)
    kc.call(10, 1, s16("g") + struct.pack(">b", 0))  # FindCoordinator creates __consumer_offsets
    deadline = time.time() + 10
    while time.time() < deadline:
        res = c.delete_records([("__consumer_offsets", 0, 0)])
        if res[0][2] != UNKNOWN_TOPIC_OR_PARTITION:
            break
        time.sleep(0.1)
    assert res == [(0, -1, INVALID_TOPIC_EXCEPTION)]


def test_produce_errors(broker_factory):
    b = broker_factory(min_insync_replicas=2)
    create(b, "pe", 1)
    c = Client(b)
    # acks=1 ignores min.insync.replicas
    assert c.produce("pe", 0, record_batch([b"a", b"b"]), acks=1) == (0, NONE, 0, -1, 0, [], None)
    # NotEnoughReplicasException: no offset, no time, the log start, no message
    assert c.produce("pe", 0, record_batch([b"x"]), acks=-1) == (0, NOT_ENOUGH_REPLICAS, -1, -1, 0, [], None)
    # two batches in a v3+ request: INVALID_RECORD alone (ProduceRequest.validateRecords)
    assert c.produce("pe", 0, record_batch([b"a"]) + record_batch([b"b"])) == (0, 87, -1, -1, -1, [], None)
    # a corrupt batch: CORRUPT_MESSAGE alone
    assert c.produce("pe", 0, record_batch([b"a"], crc=1)) == (0, 2, -1, -1, -1, [], None)
    # an unknown partition
    assert c.produce("pe", 7, record_batch([b"a"])) == (7, UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1, [], None)


# ---------------------------------------------------------------- long polls


def test_long_poll_never_answers_before_max_wait(broker):
    create(broker, "wait", 1)
    c = Client(broker)
    shortest = []
    for i in range(20):
        max_wait = 5 + (i * 7) % 80
        t0 = time.monotonic()
        res = c.fetch([("wait", 0, 0, -1)], max_wait=max_wait)
        elapsed_ms = (time.monotonic() - t0) * 1000
        assert res == [("wait", 0, NONE, 0, 0, 0, -1, 0)]
        shortest.append((elapsed_ms - max_wait, max_wait))
        assert elapsed_ms >= max_wait, (max_wait, elapsed_ms)
