"""Hostile input over the wire: random request bodies and path-like topic names.

1. A few thousand frames with a correct size prefix, a supported api key and
   version and the right header for it, but random bodies, or real requests
   (the fuzz seeds in tests/fuzz/corpus/request) with bytes flipped, cut or
   added, over many raw connections, bounded in count and time.
   Afterwards the broker must still be running, serve a normal client, and
   still hold every record acknowledged before the storm.
2. Topic names that look like paths ("../x", "a/b", ".", "..", 250 chars,
   non-ASCII, ...) through CreateTopics, Metadata and Produce: Kafka 3.6.1's
   answers (INVALID_TOPIC_EXCEPTION from CreateTopics and Metadata;
   UNKNOWN_TOPIC_OR_PARTITION from Produce, which never creates topics), and
   no file or directory appears outside log.dirs, nor any for those names
   inside it.
"""
import os
import random
import select
import socket
import struct
import threading
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

INVALID_TOPIC_EXCEPTION = 17
UNKNOWN_TOPIC_OR_PARTITION = 3

# First flexible request version per api key (Kafka 3.6.1 schemas); None:
# never flexible. Decides the request header version (2 when flexible).
FIRST_FLEXIBLE = {0: 9, 1: 12, 2: 6, 3: 9, 4: 4, 5: 2, 6: 6, 7: 3, 8: 8, 9: 6, 10: 3, 11: 6, 12: 4, 13: 4,
                  14: 4, 15: 5, 16: 3, 17: None, 18: 3, 19: 5, 20: 4, 21: 2, 22: 2, 23: 4, 24: 3, 25: 3,
                  26: 3, 27: 1, 28: 3, 29: 2, 30: 2, 31: 2, 32: 4, 33: 2, 34: 2, 35: 2, 36: 2, 37: 2, 38: 2,
                  39: 2, 40: 2, 41: 2, 42: 2, 43: 2, 44: 1, 45: 0, 46: 0, 47: None, 48: 1, 49: 1, 50: 0,
                  51: 0, 52: 0, 53: None, 54: None, 55: 0, 56: 0, 57: 0, 58: 0, 59: 0, 60: 0, 61: 0, 62: 0,
                  63: 0, 64: 0, 65: 0, 66: 0, 67: 0, 68: 0}

# HOSTILE_FRAMES / HOSTILE_SEED make longer or different storms (torture runs).
STORM_FRAMES = int(os.environ.get("HOSTILE_FRAMES", "4000"))
STORM_SEED = int(os.environ.get("HOSTILE_SEED", "1000"))
STORM_SECONDS = int(os.environ.get("HOSTILE_SECONDS", "90"))
STORM_THREADS = 12


# ---- a minimal raw client ----

def header(key, version, corr, client_id=b"hostile"):
    h = struct.pack(">hhih", key, version, corr, len(client_id)) + client_id
    ff = FIRST_FLEXIBLE.get(key)
    if key == 7 and version == 0:
        return struct.pack(">hhi", key, version, corr)  # ControlledShutdown v0: header v0
    if ff is not None and version >= ff:
        h += b"\x00"  # empty tagged fields
    return h


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def roundtrip(bootstrap, payload, timeout=10):
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(frame(payload))
        (n,) = struct.unpack(">i", recv_exact(s, 4))
        return recv_exact(s, n)


def s16(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


def api_versions(bootstrap):
    """{api_key: (min, max)} from ApiVersions v0."""
    body = roundtrip(bootstrap, header(18, 0, 1))
    corr, err, n = struct.unpack(">ihi", body[:10])
    assert err == 0
    out = {}
    for i in range(n):
        key, lo, hi = struct.unpack(">hhh", body[10 + 6 * i:16 + 6 * i])
        out[key] = (lo, hi)
    return out


# ---- 1. random bodies ----

def random_body(rng):
    kind = rng.random()
    if kind < 0.3:
        return b""
    if kind < 0.6:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
    if kind < 0.8:
        # plausible lengths and counts: small ints, -1s, zeros
        parts = [rng.choice([b"\x00\x00\x00\x01", b"\xff\xff\xff\xff", b"\x00\x01", b"\xff\xff",
                             b"\x00", b"\x01", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00"])
                 for _ in range(rng.randint(1, 24))]
        return b"".join(parts)
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(64, 2048)))


SEED_DIR = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "request")


def load_seed_frames(apis):
    """Real requests (the fuzz seeds) by (key, version), without size prefix."""
    out = []
    if not os.path.isdir(SEED_DIR):
        return out
    for name in sorted(os.listdir(SEED_DIR)):
        with open(os.path.join(SEED_DIR, name), "rb") as f:
            data = f.read()
        if len(data) < 8:
            continue
        key, version = struct.unpack(">hh", data[4:8])
        if key in apis and apis[key][0] <= version <= apis[key][1]:
            out.append(data[4:])
    return out


def mutate(rng, payload):
    """Flip, overwrite, cut or extend a real request past its first 8 bytes."""
    b = bytearray(payload)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        if len(b) <= 8 or op < 0.15:
            b += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 16)))
        elif op < 0.6:
            b[rng.randrange(8, len(b))] = rng.getrandbits(8)
        elif op < 0.8:
            i = rng.randrange(8, len(b))
            b[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00", b"\x80"])
        else:
            del b[rng.randrange(8, len(b)):]
    return bytes(b)


def storm_worker(bootstrap, apis, seeds, seed, quota, deadline, counters, lock):
    rng = random.Random(seed)
    host, port = bootstrap.split(":")
    keys = sorted(apis)
    sent = answered = closed = 0
    sock = None
    while sent < quota and time.time() < deadline:
        if sock is None:
            try:
                sock = socket.create_connection((host, int(port)), timeout=5)
            except OSError:
                time.sleep(0.05)
                continue
        if seeds and rng.random() < 0.4:
            payload = mutate(rng, rng.choice(seeds))
        else:
            key = rng.choice(keys)
            lo, hi = apis[key]
            version = rng.randint(lo, hi)
            payload = header(key, version, sent + 1, b"hostile-%d" % seed) + random_body(rng)
        try:
            sock.sendall(frame(payload))
            sent += 1
            # Wait briefly for an answer; a malformed request may close the
            # connection (as Kafka does) or a parked one (Fetch wait) may
            # answer late: then start over on a new connection.
            r, _, _ = select.select([sock], [], [], 0.3)
            if not r:
                sock.close()
                sock = None
                continue
            (n,) = struct.unpack(">i", recv_exact(sock, 4))
            recv_exact(sock, n)
            answered += 1
        except (OSError, ConnectionError, struct.error):
            closed += 1
            try:
                sock.close()
            except OSError:
                pass
            sock = None
    if sock is not None:
        sock.close()
    with lock:
        counters["sent"] += sent
        counters["answered"] += answered
        counters["closed"] += closed


def test_random_framed_requests_do_not_hurt(broker):
    bs = broker.bootstrap
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15000)
    admin.create_topics([NewTopic("precious", 2, 1)])
    producer = KafkaProducer(bootstrap_servers=bs, acks="all", linger_ms=0)
    acked = []
    for i in range(200):
        md = producer.send("precious", key=b"k%d" % (i % 7), value=b"value-%d" % i).get(timeout=30)
        acked.append((md.partition, md.offset, b"value-%d" % i))
    producer.close()

    apis = api_versions(bs)
    seeds = load_seed_frames(apis)
    # Requests that would only change the cluster (ours or a test's) in ways
    # the assertions below cannot tell apart from loss: none are excluded;
    # random bytes hitting "precious" by name are practically impossible.
    counters = {"sent": 0, "answered": 0, "closed": 0}
    lock = threading.Lock()
    deadline = time.time() + STORM_SECONDS
    threads = [threading.Thread(target=storm_worker,
                                args=(bs, apis, seeds, STORM_SEED + i, STORM_FRAMES // STORM_THREADS, deadline, counters, lock))
               for i in range(STORM_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(STORM_SECONDS + 60)
    assert not any(t.is_alive() for t in threads), "a storm worker is stuck"
    print("storm:", counters)
    assert counters["sent"] >= min(STORM_FRAMES // 2, 500), counters
    assert broker.proc.poll() is None, "broker died:\n" + broker.log_text()[-4000:]

    # a normal client still works ...
    producer = KafkaProducer(bootstrap_servers=bs, acks="all")
    producer.send("precious", value=b"after-storm").get(timeout=30)
    producer.close()
    # ... and everything acknowledged before is still there
    consumer = KafkaConsumer(bootstrap_servers=bs, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    tps = [TopicPartition("precious", p) for p in (0, 1)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = {}
    want = len(acked) + 1
    deadline = time.time() + 30
    while len(got) < want and time.time() < deadline:
        for recs in consumer.poll(timeout_ms=1000).values():
            for r in recs:
                got[(r.partition, r.offset)] = r.value
    consumer.close()
    for p, off, value in acked:
        assert got.get((p, off)) == value, f"lost or changed record p{p}@{off}"
    assert b"after-storm" in got.values()
    admin.close()


# ---- 2. path-like topic names ----

BAD_NAMES = ["../x", "a/b", ".", "..", "t" * 250, "tøpic", "../../../../tmp/samsa-escape", "/abs",
             "a\\b", "x\x00y", "név", "with space"]


def snapshot_tree(root, skip=None):
    """Every path under root (relative), not descending into skip."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != skip]
        for n in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, n), root))
    return found


def escapes():
    return sorted(p for p in os.listdir("/tmp") if p.startswith("samsa-escape"))


def create_topics_v4(names):
    body = struct.pack(">i", len(names))
    for n in names:
        body += s16(n) + struct.pack(">ihii", 1, 1, 0, 0)  # partitions, rf, no assignments, no configs
    body += struct.pack(">ib", 10000, 0)  # timeout, validate_only=false
    return header(19, 4, 11) + body


def parse_create_topics_v4(resp):
    pos = 4 + 4  # correlation id, throttle
    (n,) = struct.unpack(">i", resp[pos:pos + 4])
    pos += 4
    out = {}
    for _ in range(n):
        (ln,) = struct.unpack(">h", resp[pos:pos + 2])
        name = resp[pos + 2:pos + 2 + ln].decode("utf-8", "replace")
        pos += 2 + ln
        (err,) = struct.unpack(">h", resp[pos:pos + 2])
        pos += 2
        (ml,) = struct.unpack(">h", resp[pos:pos + 2])
        pos += 2 + max(ml, 0)
        out[name] = err
    return out


def metadata_v4(names):
    body = struct.pack(">i", len(names)) + b"".join(s16(n) for n in names) + b"\x01"  # allow auto-create
    return header(3, 4, 12) + body


def parse_metadata_v4_topics(resp):
    pos = 4 + 4  # correlation id, throttle
    (nb,) = struct.unpack(">i", resp[pos:pos + 4])
    pos += 4
    for _ in range(nb):
        pos += 4
        (hl,) = struct.unpack(">h", resp[pos:pos + 2])
        pos += 2 + hl + 4
        (rl,) = struct.unpack(">h", resp[pos:pos + 2])
        pos += 2 + max(rl, 0)
    (cl,) = struct.unpack(">h", resp[pos:pos + 2])
    pos += 2 + max(cl, 0) + 4  # cluster id, controller id
    (nt,) = struct.unpack(">i", resp[pos:pos + 4])
    pos += 4
    out = {}
    for _ in range(nt):
        (err,) = struct.unpack(">h", resp[pos:pos + 2])
        pos += 2
        (ln,) = struct.unpack(">h", resp[pos:pos + 2])
        name = resp[pos + 2:pos + 2 + ln].decode("utf-8", "replace")
        pos += 2 + ln + 1  # is_internal
        (np_,) = struct.unpack(">i", resp[pos:pos + 4])
        pos += 4
        for _ in range(np_):
            pos += 2 + 4 + 4  # error, index, leader (v4: no epoch, no offline replicas)
            for _ in range(2):  # replicas, isr
                (k,) = struct.unpack(">i", resp[pos:pos + 4])
                pos += 4 + 4 * max(k, 0)
        out[name] = err
    return out


def produce_v3(names):
    # one minimal v2 batch: crc is not checked before the topic lookup fails
    batch = bytes(61 + 7)
    body = struct.pack(">h", -1)  # transactional id: null
    body += struct.pack(">hi", -1, 10000)  # acks=all, timeout
    body += struct.pack(">i", len(names))
    for n in names:
        body += s16(n) + struct.pack(">i", 1) + struct.pack(">ii", 0, len(batch)) + batch
    return header(0, 3, 13) + body


def parse_produce_v3(resp):
    pos = 4
    (nt,) = struct.unpack(">i", resp[pos:pos + 4])
    pos += 4
    out = {}
    for _ in range(nt):
        (ln,) = struct.unpack(">h", resp[pos:pos + 2])
        name = resp[pos + 2:pos + 2 + ln].decode("utf-8", "replace")
        pos += 2 + ln
        (np_,) = struct.unpack(">i", resp[pos:pos + 4])
        pos += 4
        errs = []
        for _ in range(np_):
            _, err = struct.unpack(">ih", resp[pos:pos + 6])
            pos += 6 + 8 + 8  # base offset, log append time
            errs.append(err)
        out[name] = errs
    return out


def test_path_like_topic_names_are_refused(broker):
    bs = broker.bootstrap
    log_dir = os.path.realpath(broker.log_dir)
    workdir = os.path.dirname(log_dir)  # the test's own dir around log.dirs
    before_outside = snapshot_tree(workdir, skip=log_dir)
    before_inside = snapshot_tree(log_dir)
    before_escapes = escapes()

    created = parse_create_topics_v4(roundtrip(bs, create_topics_v4(BAD_NAMES + [""])))
    for name in BAD_NAMES + [""]:
        assert created.get(name) == INVALID_TOPIC_EXCEPTION, (name, created)

    md = parse_metadata_v4_topics(roundtrip(bs, metadata_v4(BAD_NAMES)))
    for name in BAD_NAMES:
        assert md.get(name) == INVALID_TOPIC_EXCEPTION, (name, md)

    produced = parse_produce_v3(roundtrip(bs, produce_v3(BAD_NAMES)))
    for name in BAD_NAMES:
        assert produced.get(name) == [UNKNOWN_TOPIC_OR_PARTITION], (name, produced)

    # none of it exists now, as far as a client can see
    md = parse_metadata_v4_topics(roundtrip(bs, header(3, 4, 14) + struct.pack(">i", -1) + b"\x00"))
    assert not set(md) & set(BAD_NAMES), md

    # and nothing was made on disk: no new entry outside log.dirs, and inside
    # it only the broker's own files (checkpoints, the metadata log)
    assert snapshot_tree(workdir, skip=log_dir) == before_outside
    for entry in snapshot_tree(log_dir) - before_inside:
        top = entry.split(os.sep)[0]
        assert top.startswith("__cluster_metadata") or "checkpoint" in top or top.endswith(".lock") \
            or top == "meta.properties", entry
    assert escapes() == before_escapes
    assert not os.path.exists("/abs-0")
    assert broker.proc.poll() is None


POLICY_VIOLATION = 44


def test_huge_partition_counts_are_refused(broker):
    """Found by the storm: CreateTopics with 2^31-1 partitions sized an
    allocation from the request (the ASan build died of it). Kafka 3.6.1's
    controller refuses any operation of more than 10000 records."""
    bs = broker.bootstrap
    body = struct.pack(">i", 1) + s16("huge") + struct.pack(">ihii", 0x7FFFFFFF, 1, 0, 0) + struct.pack(">ib", 10000, 0)
    assert parse_create_topics_v4(roundtrip(bs, header(19, 4, 21) + body)) == {"huge": POLICY_VIOLATION}
    body = struct.pack(">i", 1) + s16("big") + struct.pack(">ihii", 10000, 1, 0, 0) + struct.pack(">ib", 10000, 1)
    assert parse_create_topics_v4(roundtrip(bs, header(19, 4, 22) + body)) == {"big": POLICY_VIOLATION}
    # CreatePartitions v1: topics [name, count, assignments (null)], timeout, validate_only
    body = struct.pack(">i", 1) + s16("small") + struct.pack(">ihii", 1, 1, 0, 0) + struct.pack(">ib", 10000, 0)
    assert parse_create_topics_v4(roundtrip(bs, header(19, 4, 23) + body)) == {"small": 0}
    body = struct.pack(">i", 1) + s16("small") + struct.pack(">ii", 0x7FFFFFFF, -1) + struct.pack(">ib", 10000, 0)
    resp = roundtrip(bs, header(37, 1, 24) + body)
    # response v1: correlation id, throttle, results [name, error, message]
    (ln,) = struct.unpack(">h", resp[12:14])
    assert resp[14:14 + ln] == b"small"
    (err,) = struct.unpack(">h", resp[14 + ln:16 + ln])
    assert err == POLICY_VIOLATION
    assert broker.proc.poll() is None
