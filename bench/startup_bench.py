#!/usr/bin/python3
"""Start-up time with a long history: committed offsets and the metadata log (issue 15).

    SAMSA_BUILD=build/release /usr/bin/python3 bench/startup_bench.py [--out FILE.md] [--smoke]

Offsets: one release-build node (offsets.topic.num.partitions=1, so every commit lands in one
__consumer_offsets partition that start-up must replay, offsets.topic.segment.bytes=64 MiB, the
cleaner off at first). A raw-protocol client commits offsets for the 100 partitions of one topic
to one group, 100 per OffsetCommit request, pipelined, up to COMMITS offsets or COMMIT_SECONDS,
whichever comes first (the count reached is printed). Then:
  - restart, cleaner still off: time from spawn to the first OffsetFetch that answers the last
    committed offset (the coordinator has replayed every commit);
  - restart with the cleaner on, wait until it has cleaned __consumer_offsets-0, restart again:
    the same time, now over the compacted log.
Metadata log: a node with snapshots out of reach gets many metadata records (topics, then
batches of topic config changes: AlterConfigs through confluent-kafka), up to
METADATA_RECORDS or METADATA_SECONDS. Then start-up time to the first Metadata answer that lists
every topic, without a snapshot; then with one (a restart with a 1 MiB
metadata.log.max.record.bytes.between.snapshots writes it, the next start-up loads it and
replays only what follows).
Figures only: nothing here fails on speed. Every load and wait is bounded; the run is cut off at
SAMSA_BENCH_BUDGET_S (default 600 s).
"""
import os
import re
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402  (bench.py: Broker, Report, the standalone main)

B.use_build()

PARTITIONS = 100
GROUP = "startup-bench"
TOPIC = "committed"

# (full, smoke)
SCALES = {
    "commits": (10_000_000, 20_000),
    "commit_seconds": (150, 5),
    "offsets_segment_bytes": (64 << 20, 256 << 10),
    "clean_wait_seconds": (180, 30),
    "metadata_topics": (200, 20),
    "metadata_records": (1_000_000, 2_000),
    "metadata_seconds": (150, 5),
    "snapshot_bytes": (1 << 20, 64 << 10),
    "repeat": (3, 1),
}

OFFSETS_NODE = {"offsets.topic.num.partitions": "1", "offsets.topic.replication.factor": "1",
                "log.cleaner.enable": "false",
                "log.cleaner.backoff.ms": "500"}
# numeric topic configs an AlterConfigs sets together (values move each round)
TOPIC_CONFIGS = {"retention.ms": "3600000", "retention.bytes": "1000000000", "segment.bytes": "100000000",
                 "segment.ms": "3600000", "segment.index.bytes": "1048576", "segment.jitter.ms": "1",
                 "delete.retention.ms": "3600000", "min.compaction.lag.ms": "1", "max.compaction.lag.ms": "3600000",
                 "file.delete.delay.ms": "60000", "flush.messages": "1000000", "flush.ms": "3600000",
                 "index.interval.bytes": "4096", "max.message.bytes": "1000000",
                 "message.timestamp.difference.max.ms": "3600000", "local.retention.ms": "-2",
                 "local.retention.bytes": "-2"}
META_NODE = {"metadata.log.max.record.bytes.between.snapshots": str((1 << 63) - 1),
             "metadata.log.max.snapshot.interval.ms": "0"}


# ---- raw Kafka protocol: just what the bench needs ----

def s16(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def frame(api_key, version, corr, body):
    head = struct.pack(">hhi", api_key, version, corr) + s16("startup-bench")
    return struct.pack(">i", len(head) + len(body)) + head + body


def read_frame(sock):
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    n = struct.unpack(">i", head)[0]
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(1 << 20, n - len(data)))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return bytes(data)


def commit_body(offset):
    """OffsetCommit v2: a standalone group (generation -1), every partition at `offset`."""
    parts = b"".join(struct.pack(">iq", p, offset) + struct.pack(">h", -1) for p in range(PARTITIONS))
    return (s16(GROUP) + struct.pack(">i", -1) + s16("") + struct.pack(">q", -1) + struct.pack(">i", 1) + s16(TOPIC)
            + struct.pack(">i", PARTITIONS) + parts)


def commit_errors(resp):
    """Error codes of an OffsetCommit v2 response (after the correlation id)."""
    pos = 4
    codes = []
    ntopics = struct.unpack_from(">i", resp, pos)[0]
    pos += 4
    for _ in range(ntopics):
        n = struct.unpack_from(">h", resp, pos)[0]
        pos += 2 + n
        nparts = struct.unpack_from(">i", resp, pos)[0]
        pos += 4
        for _ in range(nparts):
            codes.append(struct.unpack_from(">h", resp, pos + 4)[0])
            pos += 6
    return codes


def commit_many(b, limit, seconds):
    """Pipelined commits until `limit` offsets or `seconds`; returns (offsets committed, seconds, last offset)."""
    sock = socket.create_connection(("127.0.0.1", b.port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    sent = acked = 0
    inflight = 32
    requests = limit // PARTITIONS
    corr = 0
    while acked < requests:
        while sent < requests and sent - acked < inflight and time.perf_counter() - t0 < seconds:
            corr += 1
            sock.sendall(frame(8, 2, corr, commit_body(sent + 1)))
            sent += 1
        if sent == acked:
            break
        resp = read_frame(sock)
        codes = commit_errors(resp)
        if any(codes):
            raise RuntimeError(f"OffsetCommit failed: {sorted(set(codes))}")
        acked += 1
    sock.close()
    return acked * PARTITIONS, time.perf_counter() - t0, acked


def fetch_offset(port, timeout=0.5):
    """OffsetFetch v3 for partition 0: its committed offset, or None while loading / unreachable."""
    body = s16(GROUP) + struct.pack(">i", 1) + s16(TOPIC) + struct.pack(">ii", 1, 0)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(frame(9, 3, 1, body))
            resp = read_frame(s)
    except OSError:
        return None
    pos = 8  # correlation id, throttle time
    ntopics = struct.unpack_from(">i", resp, pos)[0]
    pos += 4
    if ntopics < 1:
        return None
    n = struct.unpack_from(">h", resp, pos)[0]
    pos += 2 + n + 4
    _, offset = struct.unpack_from(">iq", resp, pos)
    pos += 12
    mlen = struct.unpack_from(">h", resp, pos)[0]
    pos += 2 + max(mlen, 0)
    err = struct.unpack_from(">h", resp, pos)[0]
    top_err = struct.unpack_from(">h", resp, len(resp) - 2)[0]
    return None if err or top_err else offset


def metadata_topic_count(port, timeout=0.5):
    """Metadata v1 for all topics: the number of topics, None when unreachable."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(frame(3, 1, 1, struct.pack(">i", -1)))
            resp = read_frame(s)
    except OSError:
        return None
    pos = 4
    nbrokers = struct.unpack_from(">i", resp, pos)[0]
    pos += 4
    for _ in range(nbrokers):
        pos += 4
        n = struct.unpack_from(">h", resp, pos)[0]
        pos += 2 + n + 4
        n = struct.unpack_from(">h", resp, pos)[0]
        pos += 2 + max(n, 0)
    pos += 4  # controller id
    return struct.unpack_from(">i", resp, pos)[0]


def time_to(b, ready, limit=300):
    """Seconds from spawn until ready(port) is true."""
    out = open(b.log_path, "a")
    t0 = time.perf_counter()
    b.proc = subprocess.Popen([B.BROKER_BIN, b.config], stdout=out, stderr=subprocess.STDOUT)
    out.close()
    while time.perf_counter() - t0 < limit:
        if b.proc.poll() is not None:
            raise RuntimeError(f"broker exited {b.proc.returncode}")
        if ready(b.port):
            return time.perf_counter() - t0
        time.sleep(0.002)
    raise RuntimeError("not serving in time")


def reconfigure(b, settings):
    with open(b.config, "a") as f:
        f.write("\n# startup bench\n" + "".join(f"{k}={v}\n" for k, v in settings.items()))


def dir_bytes(path):
    total = 0
    for dp, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dp, f))
            except OSError:
                pass
    return total


def median_start(b, ready, n):
    times = []
    for _ in range(n):
        times.append(time_to(b, ready))
        b.stop()
    times.sort()
    return times[len(times) // 2], times


def measure_offsets(rep, S, work):
    B.section("committed offsets")
    b = B.Broker(os.path.join(work, "offsets"), dict(OFFSETS_NODE, **{
        "offsets.topic.segment.bytes": str(S["offsets_segment_bytes"])}))
    b.start()
    b.create_topic(TOPIC, PARTITIONS)
    n, secs, last = commit_many(b, S["commits"], S["commit_seconds"])
    rep.add("offsets", f"offsets committed to one group ({PARTITIONS} partitions per OffsetCommit, pipelined)",
            f"{n:,} in {secs:.1f} s ({n / secs:,.0f}/s)")
    b.stop()
    part = os.path.join(b.workdir, "data", "__consumer_offsets-0")
    size_before = dir_bytes(part)
    ready = lambda port: fetch_offset(port) == last  # noqa: E731
    med, all_t = median_start(b, ready, S["repeat"])
    rep.add("offsets", f"start-up to the first OffsetFetch answering the last commit, uncompacted "
            f"__consumer_offsets ({size_before / 1e6:,.0f} MB, {n:,} commits)",
            f"{med * 1000:,.0f} ms (median of {len(all_t)}: " + ", ".join(f"{t * 1000:.0f}" for t in all_t) + ")")
    reconfigure(b, {"log.cleaner.enable": "true"})
    b.start()
    log_before = os.path.getsize(b.log_path)
    deadline = time.time() + S["clean_wait_seconds"]
    cleaned = False
    while time.time() < deadline and not cleaned:
        with open(b.log_path, errors="replace") as f:
            f.seek(log_before)
            cleaned = re.search(r"cleaned log __consumer_offsets-0", f.read()) is not None
        time.sleep(0.5)
    b.stop()
    size_after = dir_bytes(part)
    if not cleaned:
        rep.note(f"the cleaner did not report cleaning __consumer_offsets-0 within {S['clean_wait_seconds']} s")
    med2, all_t2 = median_start(b, ready, S["repeat"])
    rep.add("offsets", f"the same after the cleaner compacted it ({size_after / 1e6:,.1f} MB)",
            f"{med2 * 1000:,.0f} ms (median of {len(all_t2)}: " + ", ".join(f"{t * 1000:.0f}" for t in all_t2) + ")",
            ratio=f"{med / med2:,.1f}x faster" if med2 > 0 else "")
    rep.note(f"the active segment (up to offsets.topic.segment.bytes = {S['offsets_segment_bytes'] >> 10:,} KiB) is "
             "never cleaned, as in Kafka: start-up after compaction still replays it")


def grow_metadata(b, S):
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    names = [f"m-{i:05d}" for i in range(S["metadata_topics"])]
    for i in range(0, len(names), 200):
        for f in a.create_topics([NewTopic(n, 1, 1) for n in names[i:i + 200]], operation_timeout=60).values():
            f.result(120)
    records = len(names) * 2
    t0 = time.perf_counter()
    round_no = 0
    while records < S["metadata_records"] and time.perf_counter() - t0 < S["metadata_seconds"]:
        round_no += 1
        batch = names[(round_no * 100) % len(names):][:100] or names[:100]
        # one commit (one fsync) per topic carries its whole config: many records per commit
        configs = {k: str(int(v) + round_no) for k, v in TOPIC_CONFIGS.items()}
        res = [ConfigResource("topic", n, set_config=configs) for n in batch]
        for f in a.alter_configs(res).values():
            f.result(60)
        records += len(batch) * len(configs)
    return names, records


def measure_metadata(rep, S, work):
    B.section("metadata log")
    b = B.Broker(os.path.join(work, "meta"), META_NODE)
    b.start()
    names, records = grow_metadata(b, S)
    b.stop()
    mdir = os.path.join(b.workdir, "data", "__cluster_metadata-0")
    log_bytes = sum(os.path.getsize(os.path.join(mdir, f)) for f in os.listdir(mdir) if f.endswith(".log"))
    rep.add("metadata", "metadata log written", f"~{records:,} records ({len(names):,} topics, then topic config "
            f"changes), {log_bytes / 1e6:,.1f} MB")
    want = len(names)
    ready = lambda port: (metadata_topic_count(port) or 0) >= want  # noqa: E731
    med, all_t = median_start(b, ready, S["repeat"])
    rep.add("metadata", "start-up to a Metadata answer listing every topic, no snapshot (whole log replayed)",
            f"{med * 1000:,.0f} ms (median of {len(all_t)}: " + ", ".join(f"{t * 1000:.0f}" for t in all_t) + ")")
    with open(b.log_path, errors="replace") as f:
        replayed = re.findall(r"Replayed (\d+) metadata records from offset 0", f.read())
    if replayed:
        rep.note(f"the broker replayed {int(replayed[-1]):,} metadata records at each start-up without a snapshot")
    reconfigure(b, {"metadata.log.max.record.bytes.between.snapshots": str(S["snapshot_bytes"])})
    log_before = os.path.getsize(b.log_path)
    time_to(b, ready)
    b.stop()
    with open(b.log_path, errors="replace") as f:
        f.seek(log_before)
        wrote = re.findall(r"Successfully wrote snapshot (\S+) \((\d+) bytes in ([\d.]+) ms\)", f.read())
    if wrote:
        rep.add("metadata", f"snapshot written at start-up (the replayed log is over {S['snapshot_bytes'] >> 10:,} KiB)",
                f"{int(wrote[-1][1]) / 1e6:,.2f} MB in {float(wrote[-1][2]):,.0f} ms")
    med2, all_t2 = median_start(b, ready, S["repeat"])
    rep.add("metadata", "the same start-up from the snapshot (then only the log after it)",
            f"{med2 * 1000:,.0f} ms (median of {len(all_t2)}: " + ", ".join(f"{t * 1000:.0f}" for t in all_t2) + ")",
            ratio=f"{med / med2:,.1f}x faster" if med2 > 0 else "")


def main():
    def steps(rep, S, work):
        measure_offsets(rep, S, work)
        measure_metadata(rep, S, work)
    B.standalone("startup", "Start-up benchmark", SCALES, steps, 600, needs_bench_bin=False)


if __name__ == "__main__":
    main()
