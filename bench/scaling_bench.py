#!/usr/bin/python3
"""Scaling with threads on one node (issue 18): produce and consume with the sockets on the
request loop, then on 1, 2, ... network threads (num.network.threads; up to the machine's CPU
count), each as a ratio to the sockets on the loop.

    SAMSA_BUILD=build/release /usr/bin/python3 bench/scaling_bench.py [--smoke] [--out F.md]

Every variant runs in each round, in the same order (alternating rounds, as the peers step), on a
fresh broker, with as many clients at once as the machine has CPUs (at least 2: a connection lives on
one network thread, so one client could never use two): 1 KiB acks=all produce into 8 partitions
(samsa-bench produce, librdkafka, linger.ms=5, 1 MiB batches; one producer, so one connection, per
client), then Fetch of the same records (samsa-bench rawfetch, one connection per client, several
requests in flight, from the page cache). MB/s is the clients' sum; the broker's CPU per MB is given
beside it.
What scales here are the network threads only: appends, reads and the coordinators run on the one
request loop (partition-owning loops are planned, `docs/multicore.md`). With the clients on the
same cores, a 2-core machine shows the cost of the hand-off more than its gain.
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402

B.use_build()

SCALES = {
    "rounds": (3, 1),
    "records": (1_000_000, 2000),
    "produce_seconds": (8, 1),
    "fetch_seconds": (4, 1),
    "cold_wait_s": (3, 0),  # as the peers step: no run reuses page-cache memory the run before it freed
}
PARTITIONS = 8
CLIENTS = max(2, os.cpu_count() or 1)


def bench_at_once(args, timeout):
    """CLIENTS samsa-bench processes with the same arguments, started together; their results."""
    procs = [subprocess.Popen([B.BENCH_BIN, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=B.tool_env()) for _ in range(CLIENTS)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        lines = [l for l in stdout.splitlines() if "=" in l]
        if p.returncode != 0 or not lines:
            raise RuntimeError(f"samsa-bench {args[0]} exited {p.returncode}: {stderr[-1000:]}")
        out.append(B.kv(lines[-1]))
    return out


def variants():
    out = [("sockets on the request loop", {"network.threads.min.cpus": "4096"})]
    for n in range(1, max(2, os.cpu_count() or 1) + 1):
        out.append((f"{n} network thread{'s' if n > 1 else ''}",
                    {"num.network.threads": str(n), "network.threads.min.cpus": "1"}))
    return out


def one_run(work, label, overrides, S, k):
    b = B.Broker(os.path.join(work, f"v{k}"), overrides)
    try:
        b.start()
        b.create_topic("scale", PARTITIONS)
        time.sleep(S["cold_wait_s"])
        c0, t0 = b.cpu_seconds(), time.perf_counter()
        ps = bench_at_once(["produce", b.bootstrap, "scale", PARTITIONS, 1024, S["records"] // CLIENTS,
                            S["produce_seconds"], "all"], S["produce_seconds"] + 90)
        cpu = b.cpu_seconds() - c0
        mb = sum(p["records"] for p in ps) * 1024 / 1e6
        produce = (sum(p["mb_per_s"] for p in ps), cpu * 1000 / mb if mb else 0.0, cpu / (time.perf_counter() - t0))
        if any(p["errors"] or p["unacked"] for p in ps):
            raise RuntimeError(f"{label}: produce errors or unacknowledged records: {ps}")
        c0, t0 = b.cpu_seconds(), time.perf_counter()
        fs = bench_at_once(["rawfetch", "127.0.0.1", b.port, "scale", PARTITIONS, S["fetch_seconds"]],
                           S["fetch_seconds"] + 60)
        cpu = b.cpu_seconds() - c0
        mb = sum(f["bytes"] for f in fs) / 1e6
        fetch = (sum(f["mb_per_s"] for f in fs), cpu * 1000 / mb if mb else 0.0, cpu / (time.perf_counter() - t0))
        return produce, fetch
    finally:
        b.stop()
        B.ALL_BROKERS.remove(b)
        shutil.rmtree(b.workdir, ignore_errors=True)


def steps(rep, S, work):
    vs = variants()
    got = {label: {"produce": [], "fetch": []} for label, _ in vs}
    k = 0
    for rnd in range(S["rounds"]):
        for label, ov in vs:
            B.section(f"round {rnd + 1}: {label}")
            produce, fetch = one_run(work, label, ov, S, k)
            k += 1
            got[label]["produce"].append(produce)
            got[label]["fetch"].append(fetch)
    base = got[vs[0][0]]
    for what, name in (("produce", f"1 KiB acks=all produce, {PARTITIONS} partitions, {CLIENTS} producers"),
                       ("fetch", f"Fetch of the same, {PARTITIONS} partitions, {CLIENTS} raw clients")):
        base_mb = statistics.median(r[0] for r in base[what])
        for label, _ in vs:
            runs = got[label][what]
            mbs = [r[0] for r in runs]
            ratio = statistics.median(mbs) / base_mb if base_mb else 0.0
            rep.add(f"Scaling: {what}", f"{name}: {label}",
                    f"{B.span(mbs)} MB/s; broker {B.span([r[1] for r in runs], '{:.2f}')} CPU-ms/MB, "
                    f"{B.span([r[2] for r in runs], '{:.2f}')} cores",
                    f"{ratio:.2f}x the loop (medians)")


if __name__ == "__main__":
    B.standalone("scaling", "Scaling with network threads", SCALES, steps, 540,
                 setup=f"one node; clients and broker on this machine's {os.cpu_count()} CPUs")
