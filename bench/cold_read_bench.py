#!/usr/bin/python3
"""A consumer catching up on data that is no longer in the page cache, next to a producer at 10k
records/s on the same node (issue 18: p99 at 10k records/s). With the sockets on the loop (fewer than
network.threads.min.cpus CPUs), a sendfile or a batch-header read of a cold range waits for the disk on
the loop, and every other client waits with it: what does that cost the producer here?

    SAMSA_BUILD=build/release /usr/bin/python3 bench/cold_read_bench.py [--smoke] [--out F.md] [--before BUILD_DIR]

Each run: a fresh broker; `samsa-bench produce` writes the "old" topic (1 partition, 1 KiB, acks=1);
its files are written back and dropped from the page cache (POSIX_FADV_DONTNEED); then
`samsa-bench acklatency` produces 1 KiB acks=1 at 10,000 records/s to another topic while
kafka-consumer-perf-test reads "old" from its start. Printed: the producer's send-to-ack percentiles
and the consumer's MB/s; for reference the same latency without the reader, and with the reader on
data left in the page cache (what the reader's CPU alone costs on this machine's cores). With --before, the
same runs on that build's broker (alternating rounds), as a ratio.
"""
import glob
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402

B.use_build()

SCALES = {
    "rounds": (2, 1),
    "records": (1_500_000, 20_000),
    "seconds": (8, 2),
}
RATE = 10_000


def drop_from_page_cache(paths):
    os.sync()  # dirty pages cannot be dropped
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def one_run(work, binary, S, k, reader, cold=True):
    b = B.Broker(os.path.join(work, f"r{k}"), {}, binary=binary)
    try:
        b.start()
        b.create_topic("old", 1)
        b.create_topic("lat", 1)
        B.bench("produce", b.bootstrap, "old", 1, 1024, S["records"], 120, "1", timeout=300)
        # a first group read creates __consumer_offsets (50 partitions, made off the loop since
        # session 20 but still a burst of file-system work: bench/create_bench.py), which is not what
        # is measured
        B.consumer_perf_mbps(b, "old", 1000)
        logs = glob.glob(os.path.join(b.workdir, "data", "old-0", "*.log"))
        if cold:
            drop_from_page_cache(logs)
        cached = sum(B.page_cache_bytes(p) for p in logs) / 2**20
        lat = subprocess.Popen([B.BENCH_BIN, "acklatency", b.bootstrap, "lat", str(RATE), str(S["seconds"]), "1024",
                                "1", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        read = None
        if reader:
            time.sleep(0.5)  # the producer's connection and first sends first
            read = B.consumer_perf_mbps(b, "old", S["records"])
        out, err = lat.communicate(timeout=S["seconds"] + 120)
        line = [x for x in out.splitlines() if "p99_us=" in x]
        if not line:
            raise RuntimeError("acklatency printed no result:\n" + out + err)
        return {**B.ack_latency(line[-1]), "read": read, "cached": cached}
    finally:
        b.stop()
        B.ALL_BROKERS.remove(b)


def steps(rep, S, work, before):
    builds = [("this build", None)] + ([(f"before ({before})", os.path.join(before, "samsa-broker"))] if before else [])
    got = {}
    k = 0
    for rnd in range(S["rounds"]):
        for label, binary in builds:
            B.section(f"round {rnd + 1}: {label}, a catch-up reader on cold data")
            got.setdefault(label, []).append(one_run(work, binary, S, k, reader=True))
            k += 1
    B.section("this build, no reader")
    alone = one_run(work, None, S, k, reader=False)
    rep.add("Produce at 10,000/s, 1 KiB acks=1, send to ack", "this build, no other client", B.latency_figure([alone]))
    warm = []
    for rnd in range(S["rounds"]):
        B.section(f"round {rnd + 1}: this build, a catch-up reader on data in the page cache")
        k += 1
        warm.append(one_run(work, None, S, k, reader=True, cold=False))
    rep.add("Produce at 10,000/s, 1 KiB acks=1, send to ack", "this build, with a reader catching up on cached data",
            f"{B.latency_figure(warm)}; reader {B.span([x['read'] for x in warm])} MB/s")
    for label, _ in builds:
        runs = got[label]
        ratio = ""
        if before and label != builds[0][0]:
            pairs = list(zip(got[builds[0][0]], runs))
            ratio = (f"this build's p99 {B.span([a['p99'] / b['p99'] for a, b in pairs], '{:.2f}')}x, "
                     f"reader {B.span([a['read'] / b['read'] for a, b in pairs], '{:.2f}')}x")
        rep.add("Produce at 10,000/s, 1 KiB acks=1, send to ack", f"{label}, with a reader catching up on cold data",
                f"{B.latency_figure(runs)}; reader {B.span([x['read'] for x in runs])} MB/s; "
                f"{B.span([x['cached'] for x in runs])} MiB of "
                f"the old log cached when it started", ratio)


if __name__ == "__main__":
    before = B.before_build_arg()
    B.standalone("cold-read", "A reader catching up on cold data beside a producer", SCALES,
                 lambda rep, S, work: steps(rep, S, work, before), 900)
