#!/usr/bin/python3
"""The page cache kept to a window (log.page.cache.window.bytes, issue 18): each log's pages a window
behind its end are written back and dropped by the broker's page-trim thread, so its appends reuse
memory that was just freed instead of growing the page cache into memory the VM's balloon has handed
back to the host (bench/README.md, "Why that copy is slow here"). Compared in alternating rounds, each
run on a fresh broker: the default (the page cache left to the kernel, as Kafka does) and a 64 MiB
window.

    SAMSA_BUILD=build/release /usr/bin/python3 bench/page_window_bench.py [--smoke] [--out F.md]

Produce: librdkafka (`samsa-bench produce`: 1 KiB, acks=all, linger.ms=5, 1 MiB batches) at 1 and 8
partitions; MB/s, the broker's CPU per MB (all threads; the page-trim thread's share beside it) and
the log's bytes left in the page cache after the run (mincore). Then a consumer that reads the
partition from its start (kafka-consumer-perf-test, 1 partition): with the window most of it comes from
the disk. No run's data is deleted before the end of the bench, so no run is handed the pages of a big delete
just before it (which would make its page-cache copy cheap): each log grows into free memory, as a
broker's does while its page cache grows (about 2 GiB a run, up to 10 GiB in the full run, next to
the consumer's re-reads: the machine needs that much free memory for this to hold; the header gives
the free memory at the start and end). The client runs on the same CPUs.
"""
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402
from turn_bench import thread_cpu  # noqa: E402

B.use_build()

SCALES = {
    "rounds": (2, 1),
    "records": (2_000_000, 20_000),
    "seconds": (10, 2),
    "cold_wait_s": (3, 0),
}
WINDOW_MIB = 64
VARIANTS = ((f"page cache kept to {WINDOW_MIB} MiB", {"log.page.cache.window.bytes": str(WINDOW_MIB << 20)}),
            ("default (page cache left to the kernel)", {}))


def one_run(work, overrides, parts, S, k, consume):
    b = B.Broker(os.path.join(work, f"w{k}"), overrides)
    try:
        b.start()
        b.create_topic("w", parts)
        time.sleep(S["cold_wait_s"])
        t0 = thread_cpu(b.pid)
        r = B.bench("produce", b.bootstrap, "w", parts, 1024, S["records"], S["seconds"], "all",
                    timeout=S["seconds"] + 90)
        t1 = thread_cpu(b.pid)
        mb = r["records"] * 1024 / 1e6
        spent = {n: t1.get(n, 0.0) - t0.get(n, 0.0) for n in t1}
        time.sleep(1)  # the trimming thread's last ranges
        logs = glob.glob(os.path.join(b.workdir, "data", "w-*", "*.log"))
        out = {"mb_per_s": r["mb_per_s"], "cpu": sum(spent.values()) * 1000 / mb,
               "trim": spent.get("page-trim", 0.0) * 1000 / mb,
               "cached": sum(B.page_cache_bytes(p) for p in logs) / 2**20, "data": sum(os.path.getsize(p) for p in logs) / 2**20}
        if consume:
            c0 = B.process_cpu_seconds(b.pid)
            out["read"] = B.consumer_perf_mbps(b, "w", int(r["records"]))
            out["read_cpu"] = (B.process_cpu_seconds(b.pid) - c0) * 1000 / mb
        return out
    finally:
        b.stop()
        B.ALL_BROKERS.remove(b)
        # The data stays until the end of the bench: deleting it would free its page cache, and the
        # next run would write into that just-freed memory, which is the cheap case.


def mem_free_gib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemFree:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def steps(rep, S, work):
    rep.note(f"free memory at the start: {mem_free_gib():.1f} GiB")
    got = {}
    k = 0
    for rnd in range(S["rounds"]):
        for parts in (1, 8):
            for label, ov in VARIANTS:
                B.section(f"round {rnd + 1}: {parts} partition(s), {label}")
                got.setdefault((parts, label), []).append(one_run(work, ov, parts, S, k, consume=parts == 1))
                k += 1
    base = VARIANTS[1][0]
    for parts in (1, 8):
        for label, _ in VARIANTS:
            runs = got[(parts, label)]
            ratio = ""
            if label != base:
                pairs = list(zip(runs, got[(parts, base)]))
                # a run of the smoke scale can spend under one clock tick of CPU: its ratio is 0, as bench.py's
                ratio = (f"{B.span([a['mb_per_s'] / b['mb_per_s'] if b['mb_per_s'] else 0 for a, b in pairs], '{:.2f}')}"
                         f"x the default's MB/s at "
                         f"{B.span([a['cpu'] / b['cpu'] if b['cpu'] else 0 for a, b in pairs], '{:.2f}')}x its CPU per MB")
            rep.add("Produce, 1 KiB, acks=all", f"{label}, {parts} partition(s)",
                    f"{B.span([x['mb_per_s'] for x in runs])} MB/s; broker {B.span([x['cpu'] for x in runs], '{:.2f}')} "
                    f"CPU-ms/MB (page-trim thread {B.span([x['trim'] for x in runs], '{:.2f}')}); "
                    f"{B.span([x['cached'] for x in runs])} of {B.span([x['data'] for x in runs])} MiB left cached",
                    ratio)
    rep.note(f"free memory at the end: {mem_free_gib():.1f} GiB")
    for label, _ in VARIANTS:
        runs = got[(1, label)]
        rep.add("Consume from the start (catch-up)", f"{label}, 1 partition",
                f"{B.span([x['read'] for x in runs])} MB/s; broker {B.span([x['read_cpu'] for x in runs], '{:.2f}')} "
                f"CPU-ms/MB")


if __name__ == "__main__":
    B.standalone("page-window", "The page cache kept to a window", SCALES, steps, 900)
