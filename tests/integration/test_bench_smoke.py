"""The benchmark harness keeps working: bench/run.sh --smoke runs every step
at a tiny scale and prints its results table. Speeds are not checked here;
benchmarks never fail CI on speed."""
import os
import subprocess

import pytest

from cluster import HAVE_ETCD

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


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
    env = dict(os.environ)
    env["SAMSA_BUILD"] = "build/release"  # built by the smoke run above, or by the script itself
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "scaling_bench.py"), "--smoke"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for what in ("produce", "fetch"):
        rows = [l for l in r.stdout.splitlines() if l.startswith(f"| Scaling: {what} |")]
        assert any("sockets on the request loop" in l and "1.00x the loop" in l for l in rows), r.stdout
        assert any("1 network thread" in l for l in rows) and any("2 network threads" in l for l in rows), r.stdout


def test_turn_bench_smoke_prints_every_variant():
    """bench/turn_bench.py at a tiny scale: a row per variant (a producer that fails or gets an
    error answer makes it exit non-zero)."""
    env = dict(os.environ)
    env["SAMSA_BUILD"] = "build/release"
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "turn_bench.py"), "--smoke"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [l for l in r.stdout.splitlines() if l.startswith("| Producers on one partition each |")]
    assert len(rows) == 4, r.stdout
    assert any("num.io.threads=1 (the loop writes alone)" in l and "1.00x" in l for l in rows), r.stdout
    assert any("num.io.threads=8, socket.receive.buffer.bytes=-1" in l for l in rows), r.stdout


@pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")
def test_follower_bench_smoke_prints_both_variants():
    """bench/follower_bench.py at a tiny scale: a row per follower variant (a node that does not
    start, a producer that fails or a follower that does not rejoin every ISR makes it exit
    non-zero)."""
    env = dict(os.environ)
    env["SAMSA_BUILD"] = "build/release"
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "follower_bench.py"), "--smoke"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [l for l in r.stdout.splitlines() if l.startswith("| A returning follower's catch-up |")]
    assert len(rows) == 2, r.stdout
    assert any("num.io.threads=1" in l and "1.00x" in l for l in rows), r.stdout
    assert any("follower default" in l and "MB/s" in l for l in rows), r.stdout


def test_validate_bench_smoke_prints_every_variant():
    """bench/validate_bench.py at a tiny scale: a row per codec and variant (a raw producer that
    fails or gets an error answer makes it exit non-zero)."""
    env = dict(os.environ)
    env["SAMSA_BUILD"] = "build/release"
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "validate_bench.py"), "--smoke"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [l for l in r.stdout.splitlines() if l.startswith("| Produce, 8 partitions a request |")]
    assert len(rows) == 6, r.stdout
    for codec in ("none", "lz4", "zstd"):
        assert any(f", {codec}, " in l and "num.io.threads=1" in l and "1.00x" in l for l in rows), r.stdout
        assert any(f", {codec}, " in l and "default" in l and "MB/s" in l for l in rows), r.stdout


def test_page_window_bench_smoke_prints_every_variant():
    """bench/page_window_bench.py at a tiny scale: produce rows per variant at 1 and 8 partitions and
    the catch-up consume rows (a producer or consumer that fails makes it exit non-zero)."""
    env = dict(os.environ)
    env["SAMSA_BUILD"] = "build/release"
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "page_window_bench.py"), "--smoke"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [l for l in r.stdout.splitlines() if l.startswith("| Produce, 1 KiB, acks=all |")]
    assert len(rows) == 4, r.stdout
    assert any("kept to 64 MiB, 8 partition(s)" in l and "x the default's MB/s" in l for l in rows), r.stdout
    reads = [l for l in r.stdout.splitlines() if l.startswith("| Consume from the start (catch-up) |")]
    assert len(reads) == 2 and all("MB/s" in l for l in reads), r.stdout


def test_cold_read_bench_smoke_prints_every_row():
    """bench/cold_read_bench.py at a tiny scale: the producer's latency alone, beside a reader on cached
    data and beside a reader on data dropped from the page cache (a client that fails makes it exit
    non-zero)."""
    env = dict(os.environ)
    env["SAMSA_BUILD"] = "build/release"
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "cold_read_bench.py"), "--smoke"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [l for l in r.stdout.splitlines() if l.startswith("| Produce at 10,000/s, 1 KiB acks=1, send to ack |")]
    assert len(rows) == 3, r.stdout
    assert any("no other client" in l and "p99 " in l for l in rows), r.stdout
    assert any("on cached data" in l and "MB/s" in l for l in rows), r.stdout
    assert any("on cold data" in l and "MB/s" in l and "MiB of the old log cached" in l for l in rows), r.stdout
