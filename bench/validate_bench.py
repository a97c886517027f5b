#!/usr/bin/python3
"""Produce into several partitions, compressed and not (issue 18): the batches of a turn of the request loop
are validated at once on the write pool (records_validate: CRC, decompression, every record), then
written there, so the loop does neither alone. Compared in alternating rounds, each on a fresh broker:
num.io.threads=1 (the loop validates and writes alone) and the default (num.io.threads=8: the loop and
up to CPUs - 1 helper threads).

    SAMSA_BUILD=build/release /usr/bin/python3 bench/validate_bench.py [--smoke] [--out F.md]

Client: `samsa-bench rawproduce` on one connection, 8 partitions in every request, one batch of
256 KiB of 1 KiB records a partition (random capital letters, different in every record), acks=all,
8 requests in flight, uncompressed, lz4 and zstd. A librdkafka producer cannot show this: it sends one
partition per Produce request (and with keyless records its sticky partitioner fills one partition at
a time anyway), so only requests of several connections in one turn would share the pool. MB/s counts
the records' uncompressed bytes; beside it the broker's CPU per MB in all, and split per thread: the
request loop (the main thread) and the helpers (append-writer-N). The client runs on the same CPUs.
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
    "cold_wait_s": (3, 0),  # no run reuses page-cache memory the run before it freed
}
PARTITIONS = 8
CODECS = ("none", "lz4", "zstd")
VARIANTS = (("num.io.threads=1 (the loop alone)", {"num.io.threads": "1"}),
            ("default (num.io.threads=8)", {}))


def one_run(work, overrides, codec, S, k):
    b = B.Broker(os.path.join(work, f"v{k}"), overrides)
    try:
        b.start()
        b.create_topic("v", PARTITIONS)
        time.sleep(S["cold_wait_s"])
        with open(f"/proc/{b.pid}/comm") as f:
            loop_name = f.read().strip()  # the main thread: the request loop
        t0 = thread_cpu(b.pid)
        r = B.run([B.BENCH_BIN, "rawproduce", "127.0.0.1", str(b.port), "v", str(PARTITIONS), "1024",
                   str(S["seconds"]), "-1", codec], S["seconds"] + 60)
        t1 = thread_cpu(b.pid)
        lines = [l for l in r.stdout.splitlines() if "=" in l]
        if not lines:
            raise RuntimeError("rawproduce printed no result line:\n" + r.stdout + r.stderr)
        res = B.kv(lines[-1])
        if res["errors"]:
            raise RuntimeError(f"rawproduce: {res['errors']:.0f} requests refused")
        mb = res["records"] * 1024 / 1e6
        spent = {n: t1.get(n, 0.0) - t0.get(n, 0.0) for n in t1}
        helpers = sum(v for n, v in spent.items() if n.startswith("append-writer"))
        per_mb = (lambda s: s * 1000 / mb)
        return {"mb_per_s": res["mb_per_s"], "broker": per_mb(sum(spent.values())),
                "loop": per_mb(spent.get(loop_name, 0.0)), "helpers": per_mb(helpers)}
    finally:
        b.stop()
        B.ALL_BROKERS.remove(b)
        shutil.rmtree(b.workdir, ignore_errors=True)


def steps(rep, S, work):
    got = {(codec, label): [] for codec in CODECS for label, _ in VARIANTS}
    k = 0
    for rnd in range(S["rounds"]):
        for codec in CODECS:
            for label, ov in VARIANTS:
                B.section(f"round {rnd + 1}: {codec}, {label}")
                got[(codec, label)].append(one_run(work, ov, codec, S, k))
                k += 1
    for codec in CODECS:
        base = statistics.median(r["mb_per_s"] for r in got[(codec, VARIANTS[0][0])])
        for label, _ in VARIANTS:
            runs = got[(codec, label)]
            mbs = [r["mb_per_s"] for r in runs]
            ratio = statistics.median(mbs) / base if base else 0.0
            rep.add("Produce, 8 partitions a request",
                    f"rawproduce, 8 partitions a request, {codec}, 1 KiB, acks=all: {label}",
                    f"{B.span(mbs)} MB/s; broker {B.span([r['broker'] for r in runs], '{:.2f}')} CPU-ms/MB "
                    f"(loop {B.span([r['loop'] for r in runs], '{:.2f}')}, helpers "
                    f"{B.span([r['helpers'] for r in runs], '{:.2f}')})",
                    f"{ratio:.2f}x {VARIANTS[0][0]} (medians)")


if __name__ == "__main__":
    B.standalone("validate", "Produce into 8 partitions: a turn's batches validated at once", SCALES, steps, 400,
                 setup=f"one node; one raw producer and the broker on this machine's {os.cpu_count()} CPUs")
