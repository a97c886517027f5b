#!/usr/bin/python3
"""Log compaction: the cleaner's throughput and produce latency while it runs (issue 15).

    SAMSA_BUILD=build/release /usr/bin/python3 bench/cleaner_bench.py [--out FILE.md] [--smoke]

Measures the disk first (bench.py's sequential-write steps, the ratio's base), then starts one
release-build node (log.cleaner.backoff.ms=500) and:
  - produces a compacted topic's dirty log: 1 KiB values over 10,000 keys (confluent-kafka),
    in segments of 1/20 of it, as cleanup.policy=delete so nothing is cleaned yet;
  - produce latency at 10,000 records/s on another topic (samsa-bench latency, 1 KiB, acks=1)
    without cleaning;
  - the same again while the cleaner runs: the topic is altered (kafka-configs, live) to
    cleanup.policy=compact just before the latency run starts;
  - the cleaner's throughput: MB of log read (both passes, Kafka's "MB of log processed") per
    second of cleaning, from the broker's log lines, against the disk's sustained rate.
Figures only: nothing here fails on speed. Every load and wait is bounded; the run is cut off at
SAMSA_BENCH_BUDGET_S (default 300 s).
"""
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402  (bench.py: machine limits, Broker, Report, samsa-bench runner, the standalone main)

ROOT = B.ROOT
BUILD = B.use_build()

KEYS = 10000
SIZE = 1024

# (full, smoke)
SCALES = {
    "iperf_seconds": (3, 1),
    "disk_mib": (512, 16),
    "disk_sustained": ((2048, 5), (64, 1)),
    "dirty_mb": (400, 8),
    "latency_seconds": (6, 1),
}

NODE = {"log.cleaner.backoff.ms": "500", "offsets.topic.replication.factor": "1"}


def tool(b, name, *args):
    env = dict(os.environ, SAMSA_BUILD=BUILD)
    return subprocess.run([os.path.join(ROOT, "bin", name + ".sh"), *args], capture_output=True, text=True,
                          timeout=120, env=env)


def produce_dirty(b, topic, mb):
    import confluent_kafka
    p = confluent_kafka.Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                                  "acks": 1, "queue.buffering.max.kbytes": 262144})
    value = b"v" * SIZE
    n = mb * 1000 * 1000 // SIZE
    t0 = time.perf_counter()
    for i in range(n):
        while True:
            try:
                p.produce(topic, key=b"key-%05d" % (i % KEYS), value=value, partition=0)
                break
            except BufferError:
                p.poll(0.01)
    if p.flush(120) != 0:
        raise RuntimeError("dirty data not all delivered")
    return n, time.perf_counter() - t0


def latency(b, topic, S):
    return B.bench("latency", b.bootstrap, topic, 10000, S["latency_seconds"], SIZE,
                   timeout=S["latency_seconds"] + 60)


def lat_figure(r):
    return (f"p50 {r['p50_us'] / 1000:.2f} / p99 {r['p99_us'] / 1000:.2f} / p99.9 {r['p999_us'] / 1000:.2f} / "
            f"max {r['max_us'] / 1000:.2f} ms (achieved {r['achieved_rate']:,.0f} rec/s)")


CLEANED = re.compile(r"cleaned log (\S+) .*?\n?\s*([\d.]+) MB of log processed in ([\d.]+) seconds")


def measure(rep, S, b, limits):
    B.section("log cleaner")
    r = tool(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "table",
             "--partitions", "1", "--config", "cleanup.policy=delete", "--config",
             f"segment.bytes={max(1 << 20, S['dirty_mb'] * 1000 * 1000 // 20)}",
             "--config", "min.cleanable.dirty.ratio=0.01")
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    b.create_topic("lat-alone", 1)
    b.create_topic("lat-cleaning", 1)
    n, secs = produce_dirty(b, "table", S["dirty_mb"])
    rep.add("cleaner", f"dirty log written: {n:,} records of 1 KiB over {KEYS:,} keys", f"{n * SIZE / 1e6:,.0f} MB "
            f"in {secs:.1f} s")
    alone = latency(b, "lat-alone", S)
    rep.add("cleaner", "produce latency, 1 KiB at 10,000 rec/s, acks=1, no clean running", lat_figure(alone),
            target="p99 ≤ 1 ms", met=B.verdict(alone["p99_us"] <= 1000))
    log_before = os.path.getsize(b.log_path)
    result = {}

    def run_latency():
        result["r"] = latency(b, "lat-cleaning", S)
    t = threading.Thread(target=run_latency)
    r = tool(b, "kafka-configs", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "topics",
             "--entity-name", "table", "--add-config", "cleanup.policy=compact")
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    t.start()
    t.join(S["latency_seconds"] + 90)
    # the cleaner's own account of its work
    deadline = time.time() + 60
    cleaned = []
    text = ""
    while time.time() < deadline:
        with open(b.log_path, errors="replace") as f:
            f.seek(log_before)
            text = f.read()
        cleaned = [(float(m.group(2)), float(m.group(3))) for m in CLEANED.finditer(text) if
                   m.group(1) == "table-0"]
        if cleaned:
            break
        time.sleep(0.5)
    if "r" in result:
        during = result["r"]
        rep.add("cleaner", "produce latency, same load, while the cleaner cleans the topic above", lat_figure(during),
                target="p99 ≤ 1 ms", met=B.verdict(during["p99_us"] <= 1000))
    if cleaned:
        mb = sum(x for x, _ in cleaned)
        s = sum(y for _, y in cleaned) or 1e-9
        disk = limits.get("disk_sustained")
        rep.add("cleaner", f"cleaner throughput ({len(cleaned)} clean(s), 1 thread, offset map 128 MiB)",
                f"{mb / s:,.0f} MB/s of log read ({mb:,.0f} MB in {s:.1f} s: the offset map pass and the copy pass, "
                f"Kafka's 'MB of log processed')", B.pct(mb / s, disk) if disk else "")
        rep.note(f"the clean(s) took {s:.1f} s of the {S['latency_seconds']} s latency run: only that part of "
                 "the second latency row overlaps cleaning (the dirty log is in the page cache, so the cleaner "
                 "reads at memory speed)")
    else:
        rep.note("the cleaner did not report a clean of table-0 in time; broker log: "
                 + " | ".join(l for l in text.splitlines() if "Cleaner" in l or "cleaner" in l)[-600:])


def main():
    def steps(rep, S, work):
        limits = {}
        B.measure_disk(rep, S, work, limits)
        b = B.Broker(os.path.join(work, "node"), NODE)
        b.start()
        measure(rep, S, b, limits)
    B.standalone("cleaner", "Log cleaner benchmark", SCALES, steps, 300)


if __name__ == "__main__":
    main()
