"""The benchmark harness keeps working: bench/run.sh --smoke runs every step
at a tiny scale and prints its results table. Speeds are not checked here;
benchmarks never fail CI on speed."""
import os
import re
import subprocess

import pytest

from cluster import HAVE_ETCD

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def smoke_run(script):
    """bench/<script> --smoke on the release build (built by the smoke run of `make bench`, or by the
    script itself); its stdout. A client that fails makes the script exit non-zero."""
    env = dict(os.environ)
    env["SAMSA_BUILD"] = "build/release"
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", script), "--smoke"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def test_bench_smoke_prints_table():
    env = dict(os.environ)
    # The smoke run builds and runs its own release broker in build/release;
    # sanitizer settings meant for the build-asan tools do not apply.
    env.pop("SAMSA_BUILD", None)
    r = subprocess.run([os.path.join(ROOT, "bench", "run.sh"), "--smoke"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "| Section | Measure | Figure | Ratio to machine limit | Target | Met |" in out
    for measure in ("Loopback TCP", "Sequential write", "Page-cache write rate", "librdkafka mock cluster", "Spawn to first accepted connection", "RSS idle",
                    "100 B, acks=1", "1024 B, acks=all", "Produce (raw)", "Latency", "idle connections", "Metadata v1 request",
                    "kafka-consumer-perf-test", "Consume (raw)", "sustained", "kill -9",
                    "Records present after recovery"):
        assert measure in out, f"{measure!r} missing from the smoke table:\n{out}"
    # Recovery must not lose acknowledged records, whatever the scale.
    line = next(l for l in out.splitlines() if "Records present after recovery" in l and l.startswith("|"))
    present, _, written = line.split("|")[3].strip().partition(" of ")
    assert present == written, line


def test_scaling_bench_smoke_prints_every_variant():
    """bench/scaling_bench.py at a tiny scale: a row per variant for produce and fetch (a produce
    error or a client that fails makes it exit non-zero)."""
    out = smoke_run("scaling_bench.py")
    for what in ("produce", "fetch"):
        rows = [l for l in out.splitlines() if l.startswith(f"| Scaling: {what} |")]
        assert any("sockets on the request loop" in l and "1.00x the loop" in l for l in rows), out
        assert any("1 network thread" in l for l in rows) and any("2 network threads" in l for l in rows), out


def test_turn_bench_smoke_prints_every_variant():
    """bench/turn_bench.py at a tiny scale: a row per variant (a producer that fails or gets an
    error answer makes it exit non-zero)."""
    out = smoke_run("turn_bench.py")
    rows = [l for l in out.splitlines() if l.startswith("| Producers on one partition each |")]
    assert len(rows) == 4, out
    assert any("num.io.threads=1 (the loop writes alone)" in l and "1.00x" in l for l in rows), out
    assert any("num.io.threads=8, socket.receive.buffer.bytes=-1" in l for l in rows), out


@pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")
def test_follower_bench_smoke_prints_both_variants():
    """bench/follower_bench.py at a tiny scale: a row per follower variant (a node that does not
    start, a producer that fails or a follower that does not rejoin every ISR makes it exit
    non-zero)."""
    out = smoke_run("follower_bench.py")
    rows = [l for l in out.splitlines() if l.startswith("| A returning follower's catch-up |")]
    assert len(rows) == 2, out
    assert any("num.io.threads=1" in l and "1.00x" in l for l in rows), out
    assert any("follower default" in l and "MB/s" in l for l in rows), out


def test_validate_bench_smoke_prints_every_variant():
    """bench/validate_bench.py at a tiny scale: a row per codec and variant (a raw producer that
    fails or gets an error answer makes it exit non-zero)."""
    out = smoke_run("validate_bench.py")
    rows = [l for l in out.splitlines() if l.startswith("| Produce, 8 partitions a request |")]
    assert len(rows) == 6, out
    for codec in ("none", "lz4", "zstd"):
        assert any(f", {codec}, " in l and "num.io.threads=1" in l and "1.00x" in l for l in rows), out
        assert any(f", {codec}, " in l and "default" in l and "MB/s" in l for l in rows), out


def test_page_window_bench_smoke_prints_every_variant():
    """bench/page_window_bench.py at a tiny scale: produce rows per variant at 1 and 8 partitions and
    the catch-up consume rows (a producer or consumer that fails makes it exit non-zero)."""
    out = smoke_run("page_window_bench.py")
    rows = [l for l in out.splitlines() if l.startswith("| Produce, 1 KiB, acks=all |")]
    assert len(rows) == 4, out
    assert any("kept to 64 MiB, 8 partition(s)" in l and "x the default's MB/s" in l for l in rows), out
    reads = [l for l in out.splitlines() if l.startswith("| Consume from the start (catch-up) |")]
    assert len(reads) == 2 and all("MB/s" in l for l in reads), out


def latency_rows(out):
    """The table rows of the producer's send-to-ack latency at 10,000 records/s."""
    return [l for l in out.splitlines() if l.startswith("| Produce at 10,000/s, 1 KiB acks=1, send to ack |")]


def test_cold_read_bench_smoke_prints_every_row():
    """bench/cold_read_bench.py at a tiny scale: the producer's latency alone, beside a reader on cached
    data and beside a reader on data dropped from the page cache (a client that fails makes it exit
    non-zero)."""
    out = smoke_run("cold_read_bench.py")
    rows = latency_rows(out)
    assert len(rows) == 3, out
    assert any("no other client" in l and "p99 " in l for l in rows), out
    assert any("on cached data" in l and "MB/s" in l for l in rows), out
    assert any("on cold data" in l and "MB/s" in l and "MiB of the old log cached" in l for l in rows), out


def test_create_bench_smoke_prints_every_row():
    """bench/create_bench.py at a tiny scale: the producer's latency alone, while a topic of 50
    partitions is created and while a filled topic of 200 is deleted (the bench checks that every
    partition directory was made, and that the deleted ones went; a client that fails makes it exit
    non-zero), and the loop's CPU time for a topic of 300 created and deleted."""
    out = smoke_run("create_bench.py")
    rows = latency_rows(out)
    assert len(rows) == 3, out
    assert any("no topic created" in l and "p99 " in l for l in rows), out
    assert any("50 partitions created" in l and "kafka-topics.sh" in l for l in rows), out
    assert any("200 partitions holding" in l and "deleted" in l and "kafka-topics.sh" in l for l in rows), out
    # the loop's own CPU time for 300 partitions created, then deleted (with no producer)
    cpu = [l for l in out.splitlines() if l.startswith("| The request loop's CPU time, a topic of 300 partitions")]
    assert len(cpu) == 2 and "created |" in cpu[0] and "deleted |" in cpu[1], out
    assert all(re.search(r"\| [0-9.]+ ms; [0-9]+ us a partition \|", l) for l in cpu), out


def test_pipeline_bench_smoke_prints_every_row():
    """bench/pipeline_bench.py at a tiny scale: requests/s and the broker's CPU per request for
    pipelined one-record and ten-record Produce requests (a raw producer that fails or gets an error
    makes the bench exit non-zero), and the p99 at 10,000 records/s."""
    out = smoke_run("pipeline_bench.py")
    rows = [l for l in out.splitlines() if l.startswith("| Pipelined Produce requests")]
    assert len(rows) == 2, out
    assert all(re.search(r"\| this build: .* \| [0-9,]+ requests/s; broker [0-9.]+ CPU-us a request \(loop [0-9.]+\) \|",
                         l) for l in rows), out
    lat = [l for l in out.splitlines() if l.startswith("| Latency at 10,000 records/s")]
    assert len(lat) == 1 and re.search(r"p99 [0-9.]+ ms", lat[0]), out
