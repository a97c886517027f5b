#!/usr/bin/python3
"""Pipelined small requests (issue 18): what the broker spends per request when a producer keeps
several small Produce requests in flight on one connection (librdkafka, Java and kafkajs all
pipeline). Measured as the broker's CPU per request (all its threads, and the request loop alone)
and requests/s, with `samsa-bench rawproduce` (8 requests in flight, one partition) sending
requests of one 100-byte record (acks=1) and of ten (acks=all); then the p99 of `samsa-bench
latency` at 10,000 records/s (1 KiB, acks=1), which must stay at or under 1 ms. With --before, the
same runs of another build's broker alternate with this build's, each on a fresh broker.

    SAMSA_BUILD=build/release /usr/bin/python3 bench/pipeline_bench.py [--smoke] [--out F.md] [--before BUILD_DIR]

The client runs on the same CPUs as the broker and is often the limit of requests/s on two
cores; the broker's CPU per request is the figure to compare.
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402
from turn_bench import thread_cpu  # noqa: E402

B.use_build()

SCALES = {
    "rounds": (3, 1),
    "seconds": (5, 1),
    "latency_seconds": (5, 1),
}
# (label, record bytes, batch bytes (rawproduce's BATCH_BYTES: records of size+8 bytes fit), acks)
WORKLOADS = (("1 record of 100 B a request, acks=1", 100, 108, "1"),
             ("10 records of 100 B a request, acks=all", 100, 1080, "-1"))


def loop_cpu(pid):
    """CPU seconds of the main thread (the request loop): its own task, not every thread of its name."""
    with open(f"/proc/{pid}/task/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fresh_broker(work, binary, k):
    b = B.Broker(os.path.join(work, f"b{k}"), {}, binary=binary)
    b.start()
    b.create_topic("pipe", 1)
    return b


def drop(b):
    b.stop()
    B.ALL_BROKERS.remove(b)
    shutil.rmtree(b.workdir, ignore_errors=True)


def produce_run(work, binary, S, k, size, batch_bytes, acks):
    b = fresh_broker(work, binary, k)
    try:
        t0, l0 = thread_cpu(b.pid), loop_cpu(b.pid)
        r = subprocess.run([B.BENCH_BIN, "rawproduce", "127.0.0.1", str(b.port), "pipe", "1", str(size),
                            str(S["seconds"]), acks, "none", str(batch_bytes)],
                           capture_output=True, text=True, timeout=S["seconds"] + 60, env=B.tool_env())
        t1, l1 = thread_cpu(b.pid), loop_cpu(b.pid)
        lines = [l for l in r.stdout.splitlines() if "requests=" in l]
        if r.returncode != 0 or not lines:
            raise RuntimeError(f"rawproduce exited {r.returncode}: {r.stderr[-1000:]}")
        got = B.kv(lines[-1])
        requests = got["requests"]
        spent = {n: t1.get(n, 0.0) - t0.get(n, 0.0) for n in t1}
        return {"req_per_s": got["req_per_s"], "broker_us": sum(spent.values()) * 1e6 / requests,
                "loop_us": (l1 - l0) * 1e6 / requests}
    finally:
        drop(b)


def latency_run(work, binary, S, k):
    b = fresh_broker(work, binary, k)
    try:
        r = subprocess.run([B.BENCH_BIN, "latency", b.bootstrap, "pipe", "10000", str(S["latency_seconds"]), "1024"],
                           capture_output=True, text=True, timeout=S["latency_seconds"] + 60, env=B.tool_env())
        lines = [l for l in r.stdout.splitlines() if "p99_us=" in l]
        if r.returncode != 0 or not lines:
            raise RuntimeError(f"latency exited {r.returncode}: {r.stderr[-1000:]}")
        got = B.kv(lines[-1])
        return {"p50": got["p50_us"] / 1000, "p99": got["p99_us"] / 1000}
    finally:
        drop(b)


def steps(rep, S, work, before):
    builds = [("this build", None)] + ([(f"before ({before})", os.path.join(before, "samsa-broker"))] if before else [])
    got = {}
    k = 0
    for rnd in range(S["rounds"]):
        for label, binary in builds:
            for wl, size, batch_bytes, acks in WORKLOADS:
                B.section(f"round {rnd + 1}: {label}, {wl}")
                got.setdefault((wl, label), []).append(produce_run(work, binary, S, k, size, batch_bytes, acks))
                k += 1
            B.section(f"round {rnd + 1}: {label}, latency at 10,000 records/s")
            got.setdefault(("latency", label), []).append(latency_run(work, binary, S, k))
            k += 1
    sec = "Pipelined Produce requests (rawproduce: 8 in flight, one partition)"
    for wl, *_ in WORKLOADS:
        for label, _ in builds:
            runs = got[(wl, label)]
            ratio = ""
            base = statistics.median(r["broker_us"] for r in got[(wl, builds[-1][0])])
            if before and label == builds[0][0] and base > 0:  # a tiny run may spend under one clock tick
                ratio = (f"broker CPU per request {statistics.median(r['broker_us'] for r in runs) / base:.2f}x "
                         f"the before build's (medians)")
            rep.add(sec, f"{label}: {wl}",
                    f"{B.span([r['req_per_s'] for r in runs])} requests/s; broker "
                    f"{B.span([r['broker_us'] for r in runs], '{:.1f}')} CPU-us a request (loop "
                    f"{B.span([r['loop_us'] for r in runs], '{:.1f}')})", ratio)
    sec = "Latency at 10,000 records/s, 1 KiB acks=1 (target: p99 <= 1 ms)"
    for label, _ in builds:
        runs = got[("latency", label)]
        rep.add(sec, label, f"p50 {B.span([r['p50'] for r in runs], '{:.2f}')} ms, "
                            f"p99 {B.span([r['p99'] for r in runs], '{:.2f}')} ms")


if __name__ == "__main__":
    before = B.before_build_arg()
    B.standalone("pipeline", "Pipelined small requests", SCALES,
                 lambda rep, S, work: steps(rep, S, work, before), 600)
