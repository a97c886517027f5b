"""Appends written at once (num.io.threads, issue 18): the partitions of one Produce request are
copied into their logs by up to num.io.threads threads (capped at the online CPUs; the request
loop is one of them), and the request is answered once every write is done. What a client sees
must not change: offsets, order, the answer per partition, the records after a kill -9. A
request that names a partition twice appends both batches in order. With num.io.threads=1 the
loop writes alone and no writer thread exists. The Produce requests of several connections that
arrive in the same turn of the loop are written together the same way, each connection's
requests still served in order. A follower writes the partitions of one fetch answer together
too, and its logs stay byte for byte the leader's."""
import os
import signal
import struct
import threading
import time
import uuid

import confluent_kafka
import pytest

from cluster import HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from test_bad_input import API_PRODUCE, call, connect, kstring, metadata_v1, record_batch, recv_frame, request
from test_cluster import leaders, metadata, wait_until
from test_network_threads import _thread_names
from test_replication import log_bytes, replicas_identical

PARTITIONS = 8
RECORDS = 64       # per partition per request
VALUE_BYTES = 1024  # 8 x 64 KiB per request: above the 256 KiB that goes to the writers


def produce_request(topic, parts, acks=-1):
    """Produce v8 of one topic; parts: [(partition, batch bytes)] in request order."""
    body = kstring(None) + struct.pack(">hi", acks, 30000)
    body += struct.pack(">i", 1) + kstring(topic) + struct.pack(">i", len(parts))
    for p, recs in parts:
        body += struct.pack(">ii", p, len(recs)) + recs
    return body


def parse_produce(payload):
    """-> [(partition, error_code, base_offset)] of a Produce v8 answer, in its order."""
    pos = 4
    (ntopics,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    out = []
    for _ in range(ntopics):
        (nlen,) = struct.unpack_from(">h", payload, pos)
        pos += 2 + nlen
        (nparts,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        for _ in range(nparts):
            index, err, base, _append_time, _start = struct.unpack_from(">ihqqq", payload, pos)
            pos += 4 + 2 + 8 + 8 + 8
            (nerrors,) = struct.unpack_from(">i", payload, pos)
            pos += 4
            for _ in range(max(nerrors, 0)):
                pos += 4
                (mlen,) = struct.unpack_from(">h", payload, pos)
                pos += 2 + max(mlen, 0)
            (mlen,) = struct.unpack_from(">h", payload, pos)
            pos += 2 + max(mlen, 0)
            out.append((index, err, base))
    return out


def values(tag, partition, n=RECORDS):
    return [f"{tag}/{partition}/{i}/".encode().ljust(VALUE_BYTES, b"x") for i in range(n)]


def new_topic(b, partitions=PARTITIONS):
    name = "pa-" + uuid.uuid4().hex[:8]
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", name,
                   "--partitions", str(partitions))
    assert r.returncode == 0, r.stderr
    return name


def read_partition(b, topic, partition, count, timeout=30):
    """The first count values of a partition, with their offsets."""
    c = confluent_kafka.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "pa-" + uuid.uuid4().hex[:6],
                                  "enable.auto.commit": False})
    try:
        c.assign([confluent_kafka.TopicPartition(topic, partition, 0)])
        out = []
        for _ in range(count * 4):
            if len(out) >= count:
                break
            for m in c.consume(count - len(out), timeout=timeout / 10):
                assert m.error() is None, m.error()
                out.append((m.offset(), m.value()))
        assert len(out) == count, f"{topic}-{partition}: read {len(out)} of {count}"
        return out
    finally:
        c.close()


def produce_rounds(b, topic, rounds, first=0):
    """Requests of every partition, rounds first.. first+rounds-1 (each RECORDS records on every
    partition, the topic empty before round 0); asserts each answer; -> {partition: [values]}"""
    s = connect(b)
    want = {p: [] for p in range(PARTITIONS)}
    try:
        for r in range(first, first + rounds):
            parts = [(p, record_batch(values(r, p))) for p in range(PARTITIONS)]
            answer = parse_produce(call(s, API_PRODUCE, 8, 100 + r, produce_request(topic, parts)))
            assert answer == [(p, 0, r * RECORDS) for p in range(PARTITIONS)]
            for p in range(PARTITIONS):
                want[p] += values(r, p)
    finally:
        s.close()
    return want


def check_logs(b, topic, want):
    for p, vals in want.items():
        got = read_partition(b, topic, p, len(vals))
        assert [o for o, _ in got] == list(range(len(vals)))
        assert [v for _, v in got] == vals, f"partition {p}"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: the loop writes alone")
def test_a_requests_partitions_are_written_at_once_and_survive_kill9(broker):
    topic = new_topic(broker)
    assert "partitions are written by up to" in broker.log_text()
    want = produce_rounds(broker, topic, 5)
    assert "append-writer-0" in _thread_names(broker.proc.pid)
    check_logs(broker, topic, want)
    # every answered record is in the log after a kill -9 (page cache kept, recovery on start)
    broker.kill9()
    broker.start()
    check_logs(broker, topic, want)
    more = produce_rounds(broker, topic, 2, first=5)
    for p in range(PARTITIONS):
        want[p] += more[p]
    check_logs(broker, topic, want)


def test_a_partition_named_twice_in_a_request_gets_both_batches_in_order(broker):
    topic = new_topic(broker, 3)
    s = connect(broker)
    try:
        parts = [(0, record_batch(values("a", 0))), (1, record_batch(values("a", 1))),
                 (0, record_batch(values("b", 0))), (2, record_batch(values("a", 2))),
                 (0, record_batch(values("c", 0)))]
        answer = parse_produce(call(s, API_PRODUCE, 8, 7, produce_request(topic, parts)))
    finally:
        s.close()
    assert answer == [(0, 0, 0), (1, 0, 0), (0, 0, RECORDS), (2, 0, 0), (0, 0, 2 * RECORDS)]
    got = read_partition(broker, topic, 0, 3 * RECORDS)
    assert [v for _, v in got] == values("a", 0) + values("b", 0) + values("c", 0)
    assert [v for _, v in read_partition(broker, topic, 2, RECORDS)] == values("a", 2)


def test_partitions_in_error_do_not_hold_back_the_others(broker):
    """A refused batch (bad CRC) and an unknown partition next to good ones: each answered on its own."""
    topic = new_topic(broker, 2)
    bad = bytearray(record_batch(values("bad", 1)))
    bad[-1] ^= 0xFF  # the CRC covers the records
    s = connect(broker)
    try:
        parts = [(0, record_batch(values("ok", 0))), (1, bytes(bad)), (7, record_batch(values("x", 7))),
                 (1, record_batch(values("ok", 1)))]
        answer = parse_produce(call(s, API_PRODUCE, 8, 9, produce_request(topic, parts)))
    finally:
        s.close()
    assert answer == [(0, 0, 0), (1, 2, -1), (7, 3, -1), (1, 0, 0)]  # CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION
    assert [v for _, v in read_partition(broker, topic, 1, RECORDS)] == values("ok", 1)


def test_one_io_thread_writes_on_the_loop_alone(broker_factory):
    b = broker_factory(num_io_threads=1)
    assert "Appends are written on the request loop alone (num.io.threads=1" in b.log_text()
    topic = new_topic(b)
    want = produce_rounds(b, topic, 2)
    assert not [n for n in _thread_names(b.proc.pid) if n.startswith("append-writer")]
    check_logs(b, topic, want)


def test_a_batch_larger_than_a_segment_is_refused_beside_written_ones(broker):
    """Kafka's RecordBatchTooLargeException for one partition, its neighbours written."""
    topic = "pa-small-" + uuid.uuid4().hex[:6]
    r = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", topic,
                        "--partitions", "3", "--config", "segment.bytes=50000")
    assert r.returncode == 0, r.stderr
    s = connect(broker)
    try:
        small = [f"s{i}".encode() for i in range(10)]
        parts = [(0, record_batch(small)), (1, record_batch(values("big", 1))), (2, record_batch(small))]
        answer = parse_produce(call(s, API_PRODUCE, 8, 11, produce_request(topic, parts)))
    finally:
        s.close()
    assert answer == [(0, 0, 0), (1, 18, -1), (2, 0, 0)]  # RECORD_LIST_TOO_LARGE
    assert "exceeds the maximum configured segment size of 50000" in broker.log_text()
    assert [v for _, v in read_partition(broker, topic, 2, 10)] == small


def writer_threads(b):
    return sorted(n for n in _thread_names(b.proc.pid) if n.startswith("append-writer"))


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: the loop writes alone")
def test_num_io_threads_changes_live(broker):
    """num.io.threads altered for this broker (kafka-configs --entity-type brokers --entity-name 1)
    applies without a restart, as Kafka resizes its request handler pool: down to 1, the writer
    thread goes and the loop writes alone; back up, the next request that needs one starts it."""
    topic = new_topic(broker)
    want = produce_rounds(broker, topic, 1)
    assert writer_threads(broker) == ["append-writer-0"]

    def alter(n, line):
        r = broker.run_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, "--alter", "--entity-type",
                            "brokers", "--entity-name", "1", "--add-config", f"num.io.threads={n}")
        assert r.returncode == 0, r.stderr
        deadline = time.time() + 15
        while time.time() < deadline and line not in broker.log_text():
            time.sleep(0.1)
        assert line in broker.log_text(), broker.log_text()[-2000:]

    alter(1, "Reconfiguring the append writers: num.io.threads 8 -> 1")
    assert writer_threads(broker) == []
    more = produce_rounds(broker, topic, 1, first=1)
    assert writer_threads(broker) == []
    alter(2, "Reconfiguring the append writers: num.io.threads 1 -> 2")
    more2 = produce_rounds(broker, topic, 1, first=2)
    assert writer_threads(broker) == ["append-writer-0"]
    for p in range(PARTITIONS):
        want[p] += more[p] + more2[p]
    check_logs(broker, topic, want)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: the loop writes alone")
def test_several_connections_requests_are_written_together(broker_factory):
    """Four producers, one partition each, one partition per request (the common case): requests
    that arrive in the same turn of the loop have their writes run at once, so a writer thread
    starts though no request names two partitions. Every answer, offset and record is right.

    To have the requests arrive together whatever the machine's speed, the broker is stopped
    (SIGSTOP) while each connection sends one whole request into its socket buffer, then resumed:
    it finds them all readable at once. With network threads the frames reach the loop through
    a mailbox and could still be split over turns, so a few rounds are allowed."""
    b = broker_factory(socket_receive_buffer_bytes=1 << 20)  # room for a whole request while stopped
    conns, rounds_max, per_request = 4, 6, 160  # 160 KiB requests: any two pass the 256 KiB floor
    topic = new_topic(b, conns)
    socks = [connect(b) for _ in range(conns)]
    errors, done = [], 0
    try:
        for r in range(rounds_max):
            def send(p):
                try:
                    body = produce_request(topic, [(p, record_batch(values(r, p, per_request)))])
                    socks[p].sendall(request(API_PRODUCE, 8, r, body))
                except Exception as e:  # a failure in a thread fails the test
                    errors.append(f"producer {p} round {r}: {e!r}")

            senders = [threading.Thread(target=send, args=(p,)) for p in range(conns)]
            # Round 0 runs as usual: the first bytes of a connection open its receive window only
            # so far, and a request a stopped broker cannot take whole would be read in parts.
            os.kill(b.proc.pid, signal.SIGSTOP if r > 0 else signal.SIGCONT)
            try:
                for t in senders:
                    t.start()
                for t in senders:
                    t.join(10)  # a request the buffers cannot hold is sent once the broker resumes
            finally:
                os.kill(b.proc.pid, signal.SIGCONT)
            for t in senders:
                t.join(30)
            assert not errors, errors
            for p in range(conns):
                payload = recv_frame(socks[p])
                assert payload is not None, f"broker closed connection {p}"
                assert struct.unpack_from(">i", payload)[0] == r
                assert parse_produce(payload) == [(p, 0, r * per_request)]
            done = r + 1
            if writer_threads(b):
                break
    finally:
        for s in socks:
            s.close()
    assert writer_threads(b), f"no two connections' requests were written together in {done} rounds"
    for p in range(conns):
        got = read_partition(b, topic, p, done * per_request)
        assert [o for o, _ in got] == list(range(done * per_request))
        assert [v for _, v in got] == [v for r in range(done) for v in values(r, p, per_request)]


def test_a_connections_next_request_sees_its_produce(broker):
    """A Produce is handled at the end of the loop's turn; the request the same connection sent
    right behind it (here in the same write) must still run after it: ListOffsets then gives the
    end offset with the records in, and the answers come back in order."""
    topic = new_topic(broker, 1)
    s = connect(broker)
    try:
        for r in range(5):
            produce = request(API_PRODUCE, 8, 2 * r, produce_request(topic, [(0, record_batch(values(r, 0)))], acks=1))
            offsets = struct.pack(">ib", -1, 0) + struct.pack(">i", 1) + kstring(topic)
            offsets += struct.pack(">i", 1) + struct.pack(">iq", 0, -1)  # latest
            s.sendall(produce + request(2, 2, 2 * r + 1, offsets))  # ListOffsets v2
            first, second = recv_frame(s), recv_frame(s)
            assert struct.unpack_from(">i", first)[0] == 2 * r
            assert parse_produce(first) == [(0, 0, r * RECORDS)]
            assert struct.unpack_from(">i", second)[0] == 2 * r + 1
            pos = 4 + 4 + 4
            (nl,) = struct.unpack_from(">h", second, pos)
            pos += 2 + nl + 4
            _index, err, _ts, end = struct.unpack_from(">ihqq", second, pos)
            assert (err, end) == (0, (r + 1) * RECORDS)
    finally:
        s.close()


@pytest.mark.parametrize("settings", [{}, {"num_io_threads": 1},
                                      {"num_network_threads": 2, "network_threads_min_cpus": 1}],
                         ids=["default", "loop-writes-alone", "network-threads"])
def test_pipelined_produce_requests_are_answered_in_order(broker_factory, settings):
    """A client that pipelines many small Produce requests on one connection: the requests already
    read are taken in rounds of the same turn and their answers leave together at its end. Every
    answer comes, in request order, with the offsets in order, acks=1 and acks=all mixed; a
    Metadata request among them is answered in its place; everything is in the log after."""
    b = broker_factory(**settings)
    topic = new_topic(b, 1)
    count = 400
    frames = []
    for i in range(count):
        if i % 50 == 25:
            frames.append(request(3, 1, i, metadata_v1([topic])))
            continue
        batch = record_batch([f"pipelined-{i}".encode()])
        frames.append(request(API_PRODUCE, 8, i, produce_request(topic, [(0, batch)], acks=(1 if i % 2 else -1))))
    s = connect(b)
    try:
        s.sendall(b"".join(frames))
        offset = 0
        for i in range(count):
            answer = recv_frame(s)
            assert answer is not None, f"connection closed after {i} answers"
            assert struct.unpack_from(">i", answer)[0] == i, f"answer {i} out of order"
            if i % 50 == 25:
                continue
            assert parse_produce(answer) == [(0, 0, offset)], f"request {i}"
            offset += 1
    finally:
        s.close()
    got = read_partition(b, topic, 0, offset)
    assert [o for o, _ in got] == list(range(offset))
    assert [v for _, v in got] == [f"pipelined-{i}".encode() for i in range(count) if i % 50 != 25]


def topic_led_by_node_1(c, prefix):
    """A topic of PARTITIONS partitions on a 2-node cluster, each led by node 1 and followed by
    node 2; -> (name, node 1)."""
    wait_until(lambda: len(metadata(c.node(1).bootstrap)["brokers"]) == 2, 10, "node 1 sees 2 brokers")
    topic = prefix + uuid.uuid4().hex[:6]
    r = c.run_tool("kafka-topics", "--bootstrap-server", c.node(1).bootstrap, "--create", "--topic", topic,
                   "--replica-assignment", ",".join(["1:2"] * PARTITIONS))
    assert r.returncode == 0, r.stdout + r.stderr
    leader = c.node(1)
    wait_until(lambda: set(leaders(metadata(leader.bootstrap, [topic]), topic).values()) == {1}, 15,
               "node 1 leads every partition")
    return topic, leader


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: the loop writes alone")
@pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")
def test_follower_writes_a_fetch_answers_partitions_together(samsa_cluster_factory):
    """A follower appends the partitions of one fetch answer as the leader appends those of a
    Produce request: their data writes run at once on the write pool. Node 1 leads all eight
    partitions and node 2 follows them all, so a writer thread on node 2 can only come from its
    follower appends. Its logs must end byte for byte the leader's, and after a kill -9 of the
    leader node 2 serves every acknowledged record."""
    c = samsa_cluster_factory(2, overrides={"replica.lag.time.max.ms": "10000", "min.insync.replicas": "2"})
    topic, leader = topic_led_by_node_1(c, "fpa-")
    s = connect(leader)
    rounds_max, done = 8, 0
    try:
        for r in range(rounds_max):
            parts = [(p, record_batch(values(r, p))) for p in range(PARTITIONS)]  # 8 x 64 KiB, acks=all
            answer = parse_produce(call(s, API_PRODUCE, 8, r, produce_request(topic, parts)))
            assert answer == [(p, 0, r * RECORDS) for p in range(PARTITIONS)]
            done = r + 1
            if writer_threads(c.node(2)) and done >= 3:
                break
    finally:
        s.close()
    assert writer_threads(c.node(2)), f"node 2 wrote no fetch answer's partitions together in {done} rounds"
    wait_until(lambda: replicas_identical(c, topic, PARTITIONS, nodes=(1, 2)), 20, "identical replicas")
    assert all(len(log_bytes(c, 2, topic, p)) > done * RECORDS * VALUE_BYTES for p in range(PARTITIONS))
    c.kill9(1)
    wait_until(lambda: set(leaders(metadata(c.node(2).bootstrap, [topic]), topic).values()) == {2}, 20,
               "node 2 leads every partition")
    for p in range(PARTITIONS):
        got = read_partition(c.node(2), topic, p, done * RECORDS)
        assert [o for o, _ in got] == list(range(done * RECORDS))
        assert [v for _, v in got] == [v for r in range(done) for v in values(r, p)]


def segment_bases(c, node_id, topic, partition):
    d = os.path.join(c.node(node_id).log_dir, f"{topic}-{partition}")
    return sorted(int(f[:-4]) for f in os.listdir(d) if f.endswith(".log"))


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: the loop writes alone")
@pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")
def test_a_follower_rolling_inside_a_fetch_answer_still_writes_it_at_once(samsa_cluster_factory):
    """A follower whose segments are smaller than its leader's rolls inside a fetch answer. Begin
    takes the batches that go into its active segment, written on the pool with the other
    partitions'; the rest is appended after, on the loop. Node 2 (log.segment.bytes 100000: one
    64 KiB batch a segment) is stopped while node 1 takes two requests with acks=1: one record a
    partition, which answers the fetch node 2 had in flight (too small for the pool), then 4
    batches of 64 KiB for each of the 8 partitions, so node 2's next fetch answer carries 4 batches
    a partition, each with rolls inside. Before the split such an answer was appended on the loop
    alone, and no writer thread appeared."""
    rounds = 4
    c = samsa_cluster_factory(2, overrides={"replica.lag.time.max.ms": "30000"},
                              node_overrides={2: {"log.segment.bytes": "100000"}})
    topic, leader = topic_led_by_node_1(c, "fra-")
    wait_until(lambda: all(os.path.isdir(os.path.join(c.node(2).log_dir, f"{topic}-{p}"))
                           for p in range(PARTITIONS)), 15, "node 2 holds every partition")
    assert not writer_threads(c.node(2))
    c.node(2).sigstop()
    try:
        s = connect(leader)
        try:
            small = [(p, record_batch(values("s", p, 1))) for p in range(PARTITIONS)]
            answer = parse_produce(call(s, API_PRODUCE, 8, 1, produce_request(topic, small, acks=1)))
            assert answer == [(p, 0, 0) for p in range(PARTITIONS)]
            parts = [(p, record_batch(values(r, p))) for r in range(rounds) for p in range(PARTITIONS)]
            answer = parse_produce(call(s, API_PRODUCE, 8, 2, produce_request(topic, parts, acks=1)))
            assert answer == [(p, 0, 1 + r * RECORDS) for r in range(rounds) for p in range(PARTITIONS)]
        finally:
            s.close()
    finally:
        c.node(2).sigcont()
    wait_until(lambda: replicas_identical(c, topic, PARTITIONS, nodes=(1, 2)), 30, "identical replicas")
    assert writer_threads(c.node(2)), "node 2 wrote no fetch answer's partitions together"
    for p in range(PARTITIONS):
        assert segment_bases(c, 1, topic, p) == [0]
        # the one record and the first batch share segment 0; each next batch rolls
        assert segment_bases(c, 2, topic, p) == [0] + [1 + r * RECORDS for r in range(1, rounds)]
    c.kill9(1)
    wait_until(lambda: set(leaders(metadata(c.node(2).bootstrap, [topic]), topic).values()) == {2}, 30,
               "node 2 leads every partition")
    for p in range(PARTITIONS):
        got = read_partition(c.node(2), topic, p, 1 + rounds * RECORDS)
        assert [o for o, _ in got] == list(range(1 + rounds * RECORDS))
        assert [v for _, v in got] == values("s", p, 1) + [v for r in range(rounds) for v in values(r, p)]


def gzip_batch(vals, garbage=False):
    """A v2 batch of the values, gzip-compressed (or with bytes no codec reads, CRC still right)."""
    import gzip
    import segment_writer as sw
    recs = b"".join(sw.record(i, 0, None, v) for i, v in enumerate(vals))
    data = b"\x1f\x8b not gzip at all" * 40 if garbage else gzip.compress(recs)
    ts = int(time.time() * 1000)
    n = len(vals)
    after_crc = struct.pack(">hiqqqhii", 1, n - 1, ts, ts, -1, -1, -1, n) + data
    body = struct.pack(">ibI", -1, 2, sw.crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(body)) + body


def produce_topics_request(topics, acks=-1):
    """Produce v8 of several topics; topics: [(name, [(partition, batch bytes)])]."""
    body = kstring(None) + struct.pack(">hi", acks, 30000) + struct.pack(">i", len(topics))
    for name, parts in topics:
        body += kstring(name) + struct.pack(">i", len(parts))
        for p, recs in parts:
            body += struct.pack(">ii", p, len(recs)) + recs
    return body


def new_compacted_topic(b, name):
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", name,
                   "--partitions", "1", "--config", "cleanup.policy=compact")
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: the loop validates alone")
def test_a_turns_batches_are_validated_on_the_pool_with_the_loops_answers(broker_factory):
    """The batches of a turn with 256 KiB or more are validated at once on the write pool before
    the requests are begun. The answer, byte for byte, must be the one of a broker that validates
    on the loop (num.io.threads=1), for good batches (plain, gzip, a partition named twice) and
    refused ones (a bad CRC, undecodable gzip, a wrong record count, a v1 message set, keyless
    records in a compacted topic); and the good ones must be stored. A request whose batches are
    all corrupt writes nothing, so only the validation can have started node's writer thread."""
    pooled, on_loop = broker_factory(), broker_factory(num_io_threads=1)
    topic, compacted = "va-" + uuid.uuid4().hex[:6], "vc-" + uuid.uuid4().hex[:6]
    for b in (pooled, on_loop):
        r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", topic,
                       "--partitions", str(PARTITIONS))
        assert r.returncode == 0, r.stderr
        new_compacted_topic(b, compacted)
    good = {0: [gzip_batch(values("g", 0))], 1: [record_batch(values("p", 1))], 5: [record_batch(values("p", 5))],
            6: [record_batch(values("a", 6)), record_batch(values("b", 6))]}
    parts = [(0, good[0][0]), (1, good[1][0]),
             (2, record_batch(values("crc", 2), crc=12345)),
             (3, gzip_batch(values("x", 3), garbage=True)),
             (4, record_batch(values("lod", 4), last_offset_delta=3)),
             (5, good[5][0]), (6, good[6][0]),
             (7, record_batch(values("m1", 7), magic=1)),
             (6, good[6][1])]
    request_body = produce_topics_request([(topic, parts), (compacted, [(0, record_batch(values("k", 0, 4)))])])
    assert sum(len(b) for _, b in parts) >= 256 << 10
    answers = {}
    for b in (pooled, on_loop):
        s = connect(b)
        try:
            answers[b] = call(s, API_PRODUCE, 8, 5, request_body)
        finally:
            s.close()
    assert answers[pooled] == answers[on_loop]
    got = parse_produce(answers[pooled])
    errors = {p: e for p, e, _ in got}
    assert [e for _, e, _ in got] == [0, 0, 2, 2, 87, 0, 0, errors[7], 0, 87], got
    assert errors[7] != 0
    assert b"Compacted topic cannot accept message without key" in answers[pooled]
    assert writer_threads(pooled)
    for p, batches in good.items():
        want = [v for tag in (("a", "b") if p == 6 else ("g",) if p == 0 else ("p",)) for v in values(tag, p)]
        assert [v for _, v in read_partition(pooled, topic, p, len(want))] == want

    # only corrupt batches: nothing is written, yet the validation took the pool
    b = broker_factory()
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", topic,
                   "--partitions", str(PARTITIONS))
    assert r.returncode == 0, r.stderr
    s = connect(b)
    try:
        bad = [(p, record_batch(values("c", p), crc=p + 1)) for p in range(PARTITIONS)]
        assert parse_produce(call(s, API_PRODUCE, 8, 6, produce_request(topic, bad))) == \
            [(p, 2, -1) for p in range(PARTITIONS)]
    finally:
        s.close()
    assert writer_threads(b), "the corrupt batches were not validated on the pool"
    assert not [n for n in os.listdir(os.path.join(b.log_dir, f"{topic}-0")) if n.endswith(".log")
                and os.path.getsize(os.path.join(b.log_dir, f"{topic}-0", n)) > 0]
