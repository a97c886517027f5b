"""Hostile and broken input on raw sockets: the broker answers like Kafka
3.6.1 where Kafka answers (UNSUPPORTED_VERSION, CORRUPT_MESSAGE, ...) and
closes the connection where Kafka closes it, and nothing else is harmed.

Every test starts a "bystander" connection that produces before the bad
input; afterwards the broker must still be up, the bystander's connection
must still work (its next record lands at the next offset), everything
acknowledged before must still be readable, and each connection the broker
closed must have exactly one line in the broker log.

Requests are built by hand with struct (non-flexible versions, so the
layout is plain); record batches too, with a small CRC-32C.
"""
import os
import re
import socket
import struct
import subprocess
import time
import zlib

import pytest

import segment_writer as sw

# ---- encoding ----

API_PRODUCE, API_FETCH, API_METADATA, API_API_VERSIONS = 0, 1, 3, 18


def kstring(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def record_batch(values, magic=2, crc=None, last_offset_delta=None, timestamp=None, codec=0,
                 producer_id=-1, producer_epoch=-1, base_sequence=-1):
    """A v2 batch of uncompressed records with the given values (bytes)."""
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    recs = b"".join(sw.record(i, 0, None, v) for i, v in enumerate(values))
    n = len(values)
    lod = n - 1 if last_offset_delta is None else last_offset_delta
    after_crc = struct.pack(">hiqqqhii", codec, lod, ts, ts, producer_id, producer_epoch, base_sequence, n) + recs
    c = sw.crc32c(after_crc) if crc is None else crc
    body = struct.pack(">ibI", -1, magic, c) + after_crc  # leader epoch, magic, crc
    return struct.pack(">qi", 0, len(body)) + body


def request(api_key, version, corr, body, client_id="bad-input-test"):
    payload = struct.pack(">hhi", api_key, version, corr) + kstring(client_id) + body
    return struct.pack(">i", len(payload)) + payload


def produce_v8(topic, partition, records, acks=-1):
    body = kstring(None) + struct.pack(">hi", acks, 30000)
    body += struct.pack(">i", 1) + kstring(topic) + struct.pack(">i", 1)
    body += struct.pack(">ii", partition, len(records)) + records
    return body


def parse_produce_v8(payload):
    """-> (error_code, base_offset) of the single partition in the response."""
    pos = 4  # correlation id
    (ntopics,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    assert ntopics == 1
    (nlen,) = struct.unpack_from(">h", payload, pos)
    pos += 2 + nlen
    (nparts,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    assert nparts == 1
    _index, err, base = struct.unpack_from(">ihq", payload, pos)
    return err, base


def metadata_v1(topics):
    body = struct.pack(">i", len(topics)) + b"".join(kstring(t) for t in topics)
    return body


# ---- connections ----

def connect(b):
    s = socket.create_connection((b.host, b.port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv_frame(s):
    """One response frame's payload (correlation id first), or None if the broker closed."""
    head = recv_exact(s, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    assert 0 <= size < 64 << 20
    return recv_exact(s, size)


def assert_closed_by_broker(s, timeout=10):
    """The broker closes the connection (EOF or reset) without answering."""
    s.settimeout(timeout)
    try:
        data = s.recv(65536)
    except ConnectionResetError:
        data = b""
    assert data == b"", f"expected the broker to close, got {data[:64]!r}"


def call(s, api_key, version, corr, body):
    s.sendall(request(api_key, version, corr, body))
    payload = recv_frame(s)
    assert payload is not None, "broker closed the connection"
    assert struct.unpack_from(">i", payload)[0] == corr
    return payload


def produce(s, topic, values, corr, partition=0, **batch_kw):
    return parse_produce_v8(call(s, API_PRODUCE, 8, corr, produce_v8(topic, partition,
                                                                        record_batch(values, **batch_kw))))


def closing_lines(b, peer):
    """Broker log lines about closing the connection from peer ("host:port")."""
    pat = re.compile(r"connection from " + re.escape(peer) + r"(?!\d)", re.IGNORECASE)
    return [line for line in b.log_text().splitlines() if pat.search(line)]


def wait_for_log_lines(b, peer, want=1, deadline=5.0):
    end = time.time() + deadline
    lines = closing_lines(b, peer)
    while len(lines) < want and time.time() < end:
        time.sleep(0.05)
        lines = closing_lines(b, peer)
    return lines


# ---- the bystander and the after-checks ----

TOPIC = "bystander"


@pytest.fixture
def setup(broker):
    """A broker with a topic, and a bystander connection that already produced 3 records."""
    b = broker
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", TOPIC,
                   "--partitions", "1", "--replication-factor", "1")
    assert r.returncode == 0, r.stderr
    s = connect(b)
    err, base = produce(s, TOPIC, [b"a0", b"a1", b"a2"], corr=1)
    assert (err, base) == (0, 0)
    state = {"broker": b, "sock": s, "acked": [b"a0", b"a1", b"a2"], "corr": 100}
    yield state
    s.close()


def still_healthy(st):
    """The broker is up, the bystander still produces, and all acknowledged records are readable."""
    b, s = st["broker"], st["sock"]
    assert b.proc.poll() is None, "broker died:\n" + b.log_text()[-3000:]
    st["corr"] += 1
    err, base = produce(s, TOPIC, [b"after"], corr=st["corr"])
    assert (err, base) == (0, len(st["acked"]))
    st["acked"].append(b"after")
    # a brand-new connection works too: ApiVersions v0
    with connect(b) as fresh:
        payload = call(fresh, API_API_VERSIONS, 0, 7, b"")
        assert struct.unpack_from(">h", payload, 4)[0] == 0
    # and a different client reads back everything acknowledged
    out = subprocess.run(["kcat", "-b", b.bootstrap, "-C", "-t", TOPIC, "-p", "0", "-o", "beginning",
                          "-c", str(len(st["acked"])), "-e", "-q", "-f", "%s\n"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [v.decode() for v in st["acked"]]


def bad_connection(st, data, close_after_send=False):
    """Open a connection, send data; returns (socket, peer string as the broker logs it)."""
    s = connect(st["broker"])
    host, port = s.getsockname()[:2]
    if data:
        s.sendall(data)
    if close_after_send:
        s.close()
    return s, f"{host}:{port}"


def assert_one_close_line(st, peer):
    lines = wait_for_log_lines(st["broker"], peer, want=1)
    assert len(lines) == 1, f"want one log line for {peer}, got {lines}"


# ---- framing ----

def test_garbage_bytes(setup):
    # An HTTP request: its first 4 bytes read as a size of 1195725856, far above socket.request.max.bytes
    s, peer = bad_connection(setup, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    # Random bytes inside a plausible frame: the api key is unknown
    junk = os.urandom(64)
    s, peer = bad_connection(setup, struct.pack(">i", 64) + b"\x7f\x7f" + junk[2:])
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    # A TLS ClientHello on the plaintext port (a client configured for SSL)
    hello = bytes([0x16, 0x03, 0x01, 0x00, 0xA5, 0x01, 0x00, 0x00, 0xA1, 0x03, 0x03]) + os.urandom(32)
    s, peer = bad_connection(setup, hello)
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    still_healthy(setup)


def test_pipelined_requests_then_garbage(setup):
    """Requests sent back to back are answered in order; the bad one after them closes the connection."""
    b = setup["broker"]
    s = connect(b)
    data = b"".join(request(API_API_VERSIONS, 0, corr, b"") for corr in (1, 2, 3))
    data += request(API_METADATA, 1, 4, metadata_v1([TOPIC])) + request(999, 0, 5, b"")
    s.sendall(data)
    corrs = []
    for _ in range(4):
        payload = recv_frame(s)
        assert payload is not None
        corrs.append(struct.unpack_from(">i", payload)[0])
    assert corrs == [1, 2, 3, 4]
    assert_closed_by_broker(s)
    s.close()
    still_healthy(setup)


def test_negative_frame_size(setup):
    s, peer = bad_connection(setup, struct.pack(">i", -5) + b"xxxx")
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    still_healthy(setup)


def test_huge_frame_size(setup):
    # socket.request.max.bytes is 104857600 in the shipped config
    s, peer = bad_connection(setup, struct.pack(">i", 104857600 + 1) + b"\0" * 100)
    assert_closed_by_broker(s)
    s.close()
    lines = wait_for_log_lines(setup["broker"], peer)
    assert len(lines) == 1 and "104857601" in lines[0], lines
    # 2^31-1 too
    s, peer = bad_connection(setup, struct.pack(">i", 0x7FFFFFFF))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    still_healthy(setup)


def test_truncated_frame_then_close(setup):
    # Promise 1000 bytes, send 20, hang up: the broker drops the partial frame.
    frame = request(API_METADATA, 1, 5, metadata_v1([TOPIC]))
    data = struct.pack(">i", 1000) + frame[4:24]
    s, _ = bad_connection(setup, data, close_after_send=True)
    # and a frame cut mid-header on another connection, left open while we check
    s2, _ = bad_connection(setup, struct.pack(">i", 50) + b"\x00\x03")
    still_healthy(setup)
    s2.close()
    still_healthy(setup)


# ---- request header ----

def test_unknown_api_key(setup):
    s, peer = bad_connection(setup, request(999, 0, 11, b""))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    s, peer = bad_connection(setup, request(-7, 0, 12, b""))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    still_healthy(setup)


def test_unsupported_metadata_version(setup):
    s, peer = bad_connection(setup, request(API_METADATA, 13, 21, metadata_v1([TOPIC])))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    s, peer = bad_connection(setup, request(API_METADATA, -1, 22, metadata_v1([TOPIC])))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    still_healthy(setup)


def test_api_versions_v99_gets_unsupported_version_and_the_list(setup):
    b = setup["broker"]
    with connect(b) as s:
        # a future client sends a flexible header (v2: tagged fields after client id) and some body
        payload = struct.pack(">hhi", API_API_VERSIONS, 99, 31) + kstring("future") + b"\x00" + b"\x07junk!!\x00"
        s.sendall(struct.pack(">i", len(payload)) + payload)
        resp = recv_frame(s)
        assert resp is not None
        corr, err, n = struct.unpack_from(">ihi", resp)
        assert corr == 31 and err == 35  # UNSUPPORTED_VERSION
        # v0 layout: int32 count, then (key, min, max) int16 triples, and nothing after
        assert len(resp) == 4 + 2 + 4 + 6 * n
        versions = {k: (lo, hi) for k, lo, hi in (struct.unpack_from(">hhh", resp, 10 + 6 * i) for i in range(n))}
        assert versions[API_PRODUCE] == (0, 9)
        assert versions[API_FETCH] == (0, 15)
        assert versions[API_METADATA] == (0, 12)
        assert versions[API_API_VERSIONS] == (0, 3)
        # the connection stays usable: the client retries with a version from the list
        payload = call(s, API_API_VERSIONS, 0, 32, b"")
        assert struct.unpack_from(">h", payload, 4)[0] == 0
    still_healthy(setup)


# ---- produce payloads ----

def produce_raw(st, records, partition=0, version=8):
    """Produce v3-v8 share the request layout and the start of the response."""
    st["corr"] += 1
    return parse_produce_v8(call(st["sock"], API_PRODUCE, version, st["corr"],
                                 produce_v8(TOPIC, partition, records)))


def test_produce_bad_crc_is_corrupt_message(setup):
    good = record_batch([b"x"])
    bad = bytearray(good)
    bad[-1] ^= 0xFF  # flip the last byte of the value: the CRC no longer matches
    err, base = produce_raw(setup, bytes(bad))
    assert err == 2 and base == -1  # CORRUPT_MESSAGE
    err, _ = produce_raw(setup, record_batch([b"x"], crc=12345))
    assert err == 2
    still_healthy(setup)


def test_produce_bad_magic(setup):
    # magic 3 does not exist: Kafka's batch iterator calls it corrupt
    err, _ = produce_raw(setup, record_batch([b"x"], magic=3))
    assert err == 2  # CORRUPT_MESSAGE
    # a negative magic is just as corrupt
    err, _ = produce_raw(setup, record_batch([b"x"], magic=-1))
    assert err == 2
    # magic 1 (a legacy message set) on Produce v3+: INVALID_RECORD
    value = b"legacy"
    msg = struct.pack(">bbq", 1, 0, int(time.time() * 1000)) + struct.pack(">i", -1) + \
        struct.pack(">i", len(value)) + value
    msg = struct.pack(">I", zlib.crc32(msg)) + msg
    legacy = struct.pack(">qi", 0, len(msg)) + msg
    err, _ = produce_raw(setup, legacy)
    assert err == 87  # INVALID_RECORD
    still_healthy(setup)


def test_produce_last_offset_delta_mismatch(setup):
    err, _ = produce_raw(setup, record_batch([b"x", b"y"], last_offset_delta=5))
    assert err == 87  # INVALID_RECORD: inconsistent batch offset range
    err, _ = produce_raw(setup, record_batch([b"x", b"y"], last_offset_delta=0))
    assert err == 87
    err, _ = produce_raw(setup, record_batch([b"x"], last_offset_delta=-1))
    assert err == 87
    still_healthy(setup)


def test_produce_two_batches_and_empty_records(setup):
    # Produce v3+ must carry exactly one batch per partition
    err, _ = produce_raw(setup, record_batch([b"x"]) + record_batch([b"y"]))
    assert err == 87
    # ... and at least one
    err, _ = produce_raw(setup, b"")
    assert err == 87
    still_healthy(setup)


def test_produce_oversized_message(setup):
    # message.max.bytes is 1048588 by default
    err, base = produce_raw(setup, record_batch([b"z" * (1 << 20)]))
    assert err == 10 and base == -1  # MESSAGE_TOO_LARGE
    # the limit is on the whole batch (batchLength + 12): exactly at it is fine, one over is not
    limit = 1048588
    n = limit - len(record_batch([b""]))
    while len(record_batch([b"z" * n])) > limit:
        n -= 1
    assert len(record_batch([b"z" * n])) == limit
    err, base = produce_raw(setup, record_batch([b"z" * n]))
    assert err == 0
    setup["acked"].append(b"z" * n)
    err, base = produce_raw(setup, record_batch([b"z" * (n + 1)]))
    assert err == 10
    still_healthy(setup)


def test_produce_truncated_batch(setup):
    batch = record_batch([b"hello", b"world"])
    # batchLength promises more than is there: Kafka's iterator finds no whole batch
    err, _ = produce_raw(setup, batch[:-3])
    assert err == 87  # INVALID_RECORD
    # a batchLength below any record's minimum is corrupt framing
    bad = bytearray(batch)
    bad[8:12] = struct.pack(">i", 5)
    err, _ = produce_raw(setup, bytes(bad))
    assert err == 2  # CORRUPT_MESSAGE
    still_healthy(setup)


def test_produce_zstd_needs_v7(setup):
    # the codec bits say zstd; Produce v3-v6 may not carry it (checked before decompression)
    err, _ = produce_raw(setup, record_batch([b"x"], codec=4), version=6)
    assert err == 76  # UNSUPPORTED_COMPRESSION_TYPE
    still_healthy(setup)


# ---- malformed request bodies ----

def test_malformed_string_length(setup):
    # Metadata v1 with one topic whose name claims 30000 bytes; 5 follow
    body = struct.pack(">i", 1) + struct.pack(">h", 30000) + b"abcde"
    s, peer = bad_connection(setup, request(API_METADATA, 1, 41, body))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    # a produce whose topic name is negative-length (not -1 either)
    body = kstring(None) + struct.pack(">hi", 1, 1000) + struct.pack(">i", 1) + struct.pack(">h", -5)
    s, peer = bad_connection(setup, request(API_PRODUCE, 8, 42, body))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    # a client id longer than the frame
    payload = struct.pack(">hhi", API_METADATA, 1, 43) + struct.pack(">h", 2000) + b"short"
    s, peer = bad_connection(setup, struct.pack(">i", len(payload)) + payload)
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    still_healthy(setup)


def test_array_length_claiming_2_pow_31_elements(setup):
    for corr, count in ((51, 0x7FFFFFFF), (52, -2), (53, 0x40000000)):
        s, peer = bad_connection(setup, request(API_METADATA, 1, corr, struct.pack(">i", count)))
        assert_closed_by_broker(s)
        s.close()
        assert_one_close_line(setup, peer)
    # the same inside a produce: the partition array
    body = kstring(None) + struct.pack(">hi", 1, 1000) + struct.pack(">i", 1) + kstring(TOPIC) + \
        struct.pack(">i", 0x7FFFFFFF)
    s, peer = bad_connection(setup, request(API_PRODUCE, 8, 54, body))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    # a records field claiming 2 GiB
    body = kstring(None) + struct.pack(">hi", 1, 1000) + struct.pack(">i", 1) + kstring(TOPIC) + \
        struct.pack(">iii", 1, 0, 0x7FFFFFFF) + b"\0" * 16
    s, peer = bad_connection(setup, request(API_PRODUCE, 8, 55, body))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    still_healthy(setup)


def test_many_bad_connections_at_once(setup):
    """A burst of bad connections interleaved with good traffic leaves the broker intact."""
    socks = []
    for i in range(30):
        kind = i % 3
        if kind == 0:
            data = struct.pack(">i", -1)
        elif kind == 1:
            data = request(999, 0, i, b"")
        else:
            data = request(API_METADATA, 1, i, struct.pack(">i", 0x7FFFFFFF))
        socks.append(bad_connection(setup, data))
    for s, _ in socks:
        assert_closed_by_broker(s)
        s.close()
    for _, peer in socks:
        assert_one_close_line(setup, peer)
    still_healthy(setup)


# ---- mutated requests ----

def _base_frames():
    """Valid request payloads (header + body, no size prefix) for many APIs, built with
    kafka-python's encoders plus hand-built flexible ones."""
    from kafka.protocol import admin, commit, fetch, group, metadata, offset, produce
    reqs = [
        metadata.MetadataRequest[1](topics=["fuzz"]),
        metadata.MetadataRequest[5](topics=["fuzz"], allow_auto_topic_creation=True),
        produce.ProduceRequest[3](transactional_id=None, required_acks=1, timeout=1000,
                                  topics=[("fuzz", [(0, record_batch([b"p1", b"p2"]))])]),
        produce.ProduceRequest[7](transactional_id=None, required_acks=-1, timeout=1000,
                                  topics=[("fuzz", [(0, record_batch([b"p3"]))])]),
        fetch.FetchRequest[4](-1, 100, 1, 1 << 20, 0, [("fuzz", [(0, 0, 1 << 20)])]),
        fetch.FetchRequest[10](-1, 100, 1, 1 << 20, 0, 0, -1, [("fuzz", [(0, -1, 0, 0, 1 << 20)])], []),
        offset.OffsetRequest[1](-1, [("fuzz", [(0, -1)])]),
        offset.OffsetRequest[2](-1, 0, [("fuzz", [(0, 1000)])]),
        admin.CreateTopicsRequest[2](create_topic_requests=[("fuzz-new", 2, 1, [], [("retention.ms", "1000000")])],
                                     timeout=1000, validate_only=True),
        admin.DeleteTopicsRequest[1](topics=["fuzz-none"], timeout=1000),
        admin.DescribeConfigsRequest[1](resources=[(2, "fuzz", ["retention.ms"])], include_synonyms=True),
        admin.CreatePartitionsRequest[1](topic_partitions=[("fuzz", (3, None))], timeout=1000, validate_only=True),
        commit.GroupCoordinatorRequest[1]("fuzz-group", 0),
        commit.OffsetFetchRequest[3](consumer_group="fuzz-group", topics=[("fuzz", [0])]),
        commit.OffsetCommitRequest[2]("fuzz-group", -1, "", -1, [("fuzz", [(0, 1, "")])]),
        admin.ListGroupsRequest[1](),
        admin.DescribeGroupsRequest[1](groups=["fuzz-group"]),
        admin.DeleteGroupsRequest[1](groups_names=["fuzz-none"]),
        admin.AlterConfigsRequest[1](resources=[(2, "fuzz", [("retention.ms", "1000000")])], validate_only=True),
        admin.DescribeAclsRequest[1](2, "fuzz", 3, None, None, 1, 1),
        admin.CreateAclsRequest[1](creations=[(2, "fuzz", 3, "User:x", "*", 3, 3)]),
        admin.SaslHandShakeRequest[1]("PLAIN"),
        group.HeartbeatRequest[1]("fuzz-group", 1, "m-1"),
        group.LeaveGroupRequest[1]("fuzz-group", "m-1"),
        group.SyncGroupRequest[1]("fuzz-group", 1, "m-1", [("m-1", b"\x00\x01")]),
    ]
    frames = []
    for i, r in enumerate(reqs):
        frames.append(struct.pack(">hhi", r.API_KEY, r.API_VERSION, 1000 + i) + kstring("fuzz") + r.encode())
    # flexible: ApiVersions v3 and Metadata v12 (compact strings, tagged fields)
    frames.append(struct.pack(">hhi", API_API_VERSIONS, 3, 2000) + kstring("fuzz") + b"\x00" +
                  b"\x06samsa" + b"\x041.0" + b"\x00")
    frames.append(struct.pack(">hhi", API_METADATA, 12, 2001) + kstring("fuzz") + b"\x00" +
                  b"\x02" + b"\x00" * 16 + b"\x05fuzz" + b"\x00" + b"\x01\x00" + b"\x00")
    return frames


def _mutate(rng, frame):
    f = bytearray(frame)
    kind = rng.randrange(5)
    if kind == 0:  # flip a few bytes after the api key and version
        for _ in range(rng.randint(1, 4)):
            f[rng.randrange(4, len(f))] = rng.randrange(256)
    elif kind == 1:  # cut short
        f = f[:rng.randrange(8, len(f))]
    elif kind == 2:  # trailing junk
        f += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:  # a length-looking window set to an extreme
        at = rng.randrange(8, max(9, len(f) - 4))
        f[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\xff\xfe"])
    return bytes(f)


def test_mutated_requests_do_not_harm_the_broker(setup):
    """Seeded random mutations of valid requests of many APIs: each is answered or
    its connection closed; the broker stays healthy (and, under ASan, clean)."""
    import random
    b = setup["broker"]
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "fuzz",
                   "--partitions", "2", "--replication-factor", "1")
    assert r.returncode == 0, r.stderr
    # SAMSA_FUZZ_SEED / SAMSA_FUZZ_COUNT explore further than the fixed default
    rng = random.Random(int(os.environ.get("SAMSA_FUZZ_SEED", "20231206")))
    count = int(os.environ.get("SAMSA_FUZZ_COUNT", "600"))
    frames = _base_frames()
    # every base frame is valid and answered
    for frame in frames:
        with connect(b) as s:
            s.sendall(struct.pack(">i", len(frame)) + frame)
            assert recv_frame(s) is not None, frame[:4]
    deadline = time.time() + float(os.environ.get("SAMSA_FUZZ_SECONDS", "90"))
    sent = 0
    for i in range(count):
        if time.time() > deadline:
            break
        data = _mutate(rng, frames[i % len(frames)])
        with connect(b) as s:
            s.settimeout(3)
            s.sendall(struct.pack(">i", len(data)) + data)
            try:
                recv_frame(s)  # an answer, or None when the broker closed
            except (socket.timeout, ConnectionResetError, AssertionError):
                pass  # acks=0 or a held request: no answer is fine
        sent += 1
        if i % 100 == 99:
            assert b.proc.poll() is None, f"broker died after mutant {i}:\n" + b.log_text()[-3000:]
    assert sent >= 100
    still_healthy(setup)


def test_offset_commit_with_extreme_retention_time(setup):
    """OffsetCommit v2 with retention_time_ms = 2^63-1 is answered (and, under UBSan, without overflow)."""
    from kafka.protocol import commit
    b = setup["broker"]
    with connect(b) as s:
        for corr, retention in ((61, 0x7FFFFFFFFFFFFFFF), (62, -0x8000000000000000), (63, -2)):
            r = commit.OffsetCommitRequest[2]("extreme", -1, "", retention, [(TOPIC, [(0, 1, "")])])
            payload = call(s, r.API_KEY, 2, corr, r.encode())
            # topics[1] -> name -> partitions[1] -> (partition, error_code)
            (nlen,) = struct.unpack_from(">h", payload, 8)
            part, err = struct.unpack_from(">ih", payload, 10 + nlen + 4)
            assert part == 0 and err == 0
    still_healthy(setup)


# ---- mutations of what real clients send ----

class RecordingProxy:
    """A loopback TCP proxy that records every request frame clients send."""

    def __init__(self):
        import threading
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.target = None
        self.frames = []
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        import threading
        self.listener.settimeout(0.2)
        while not self.stopping:
            try:
                c, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                up = socket.create_connection(self.target, timeout=10)
            except OSError:
                c.close()
                continue
            for src, dst, record in ((c, up, True), (up, c, False)):
                t = threading.Thread(target=self._pump, args=(src, dst, record), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, record):
        buf = b""
        src.settimeout(0.5)
        try:
            while not self.stopping:
                try:
                    data = src.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                dst.sendall(data)
                if record:
                    buf += data
                    while len(buf) >= 4:
                        (size,) = struct.unpack_from(">i", buf)
                        if len(buf) < 4 + size:
                            break
                        with self.lock:
                            if len(self.frames) < 2000:
                                self.frames.append(buf[4:4 + size])
                        buf = buf[4 + size:]
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.stopping = True
        self.listener.close()
        for t in self.threads:
            t.join(timeout=2)
        assert not any(t.is_alive() for t in self.threads), "a proxy thread is stuck"


def test_mutated_real_client_requests(broker_factory):
    """Record the requests librdkafka and kafkajs really send (flexible versions included),
    then replay seeded mutations of them straight at the broker."""
    import random
    proxy = RecordingProxy()
    try:
        b = broker_factory(advertised_listeners=f"PLAINTEXT://127.0.0.1:{proxy.port}",
                           group_initial_rebalance_delay_ms="0")
        proxy.target = (b.host, b.port)
        via = f"127.0.0.1:{proxy.port}"
        code = f"""
import time
from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource
a = AdminClient({{"bootstrap.servers": "{via}"}})
for f in a.create_topics([NewTopic("rec", 2, 1, config={{"retention.ms": "9000000"}})]).values():
    f.result(30)
p = Producer({{"bootstrap.servers": "{via}", "enable.idempotence": True, "compression.type": "lz4"}})
for i in range(50):
    p.produce("rec", key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"x")])
assert p.flush(30) == 0
c = Consumer({{"bootstrap.servers": "{via}", "group.id": "rec-g", "auto.offset.reset": "earliest"}})
c.subscribe(["rec"])
n, end = 0, time.time() + 30
while n < 50 and time.time() < end:
    m = c.poll(0.2)
    if m is not None and not m.error():
        n += 1
c.commit(asynchronous=False)
c.offsets_for_times([TopicPartition("rec", 0, 0)], timeout=10)
c.close()
for f in a.describe_configs([ConfigResource("topic", "rec")]).values():
    f.result(30)
for f in a.create_partitions([NewPartitions("rec", 3)]).values():
    f.result(30)
a.list_groups(timeout=10)
for f in a.delete_topics(["rec"], operation_timeout=30).values():
    f.result(30)
print(n)
"""
        import subprocess
        from conftest import PYTHON, tool_env
        r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120, env=tool_env())
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout.split()[-1] == "50"
        js = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
        if os.path.isdir(os.path.join(js, "node_modules", "kafkajs")):
            r = subprocess.run(["node", os.path.join(js, "kafkajs_driver.js"), via, "rec-js", "20"],
                               capture_output=True, text=True, timeout=150, cwd=js)
            assert r.returncode == 0, r.stderr[-3000:]
    finally:
        proxy.close()
    with proxy.lock:
        frames = list(proxy.frames)
    apis = {struct.unpack_from(">h", f)[0] for f in frames}
    assert {API_PRODUCE, API_FETCH, API_METADATA, API_API_VERSIONS} <= apis, apis

    bystander = connect(b)
    rng = random.Random(int(os.environ.get("SAMSA_FUZZ_SEED", "7")))
    count = int(os.environ.get("SAMSA_FUZZ_COUNT", "1500"))
    deadline = time.time() + float(os.environ.get("SAMSA_FUZZ_SECONDS", "90"))
    skip = {11, 14}  # JoinGroup and SyncGroup may be held for the rebalance: slow, not unsafe
    bases = [f for f in frames if struct.unpack_from(">h", f)[0] not in skip]
    for i in range(count):
        if time.time() > deadline:
            break
        data = _mutate(rng, rng.choice(bases))
        with connect(b) as s:
            s.settimeout(2)
            s.sendall(struct.pack(">i", len(data)) + data)
            try:
                recv_frame(s)
            except (socket.timeout, ConnectionResetError, AssertionError):
                pass
        if i % 100 == 99:
            assert b.proc.poll() is None, f"broker died after mutant {i}:\n" + b.log_text()[-3000:]
    assert b.proc.poll() is None
    payload = call(bystander, API_API_VERSIONS, 0, 9, b"")
    assert struct.unpack_from(">h", payload, 4)[0] == 0
    bystander.close()


def test_acks_zero_produce(setup):
    """acks=0: no answer on success; on an error Kafka closes the connection so the producer notices."""
    b = setup["broker"]
    with connect(b) as s:
        s.sendall(request(API_PRODUCE, 8, 71, produce_v8(TOPIC, 0, record_batch([b"quiet"]), acks=0)))
        # the next request's answer is the first thing that comes back
        payload = call(s, API_API_VERSIONS, 0, 72, b"")
        assert struct.unpack_from(">h", payload, 4)[0] == 0
    setup["acked"].append(b"quiet")
    s, peer = bad_connection(setup, request(API_PRODUCE, 8, 73, produce_v8("no-such-topic", 0,
                                                                           record_batch([b"lost"]), acks=0)))
    assert_closed_by_broker(s)
    s.close()
    assert_one_close_line(setup, peer)
    still_healthy(setup)
