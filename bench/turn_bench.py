#!/usr/bin/python3
"""Several producers, one partition each (issue 18): the Produce requests that reach the request
loop in the same turn have their page-cache writes run at once on the write pool (num.io.threads),
so producers that each write one partition use more than one core for the copy. Compared in
alternating rounds, each on a fresh broker: num.io.threads=1 (the loop writes alone) and the default
(num.io.threads=8: the loop and up to CPUs - 1 writer threads), with Kafka's socket receive buffer and
with the OS's.

    SAMSA_BUILD=build/release /usr/bin/python3 bench/turn_bench.py [--smoke] [--out F.md]

Clients: as many at once as the machine has CPUs (at least 2), each `samsa-bench rawproduce` on one
connection into a topic of its own with one partition (256 KiB batches of 1 KiB records, acks=all,
8 requests in flight), so no request names two partitions and only the grouping of requests from
different connections can spread the writes. MB/s is the clients' sum; beside it the broker's CPU
per MB in all, and split per thread: the request loop (the main thread) and the writer threads
(append-writer-N). The clients run on the same CPUs.
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
    "seconds": (6, 1),
    "cold_wait_s": (3, 0),  # as the peers step: no run reuses page-cache memory the run before it freed
}
CLIENTS = max(2, os.cpu_count() or 1)
# Kafka's socket.receive.buffer.bytes (100 KiB, the default config's) makes a 256 KiB request take
# several reads, so two connections' requests seldom complete in the same turn; -1 (the OS's
# autotuned buffer) reads whole requests, the case where grouping has the most to take.
VARIANTS = (("num.io.threads=1 (the loop writes alone)", {"num.io.threads": "1"}),
            ("default (num.io.threads=8)", {}),
            ("num.io.threads=1, socket.receive.buffer.bytes=-1",
             {"num.io.threads": "1", "socket.receive.buffer.bytes": "-1"}),
            ("num.io.threads=8, socket.receive.buffer.bytes=-1", {"socket.receive.buffer.bytes": "-1"}))


def thread_cpu(pid):
    """{thread name: user+system CPU seconds} of a process's threads (names summed)."""
    out = {}
    tck = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tck
    return out


def one_run(work, overrides, S, k):
    b = B.Broker(os.path.join(work, f"v{k}"), overrides)
    try:
        b.start()
        for c in range(CLIENTS):
            b.create_topic(f"turn{c}", 1)
        time.sleep(S["cold_wait_s"])
        with open(f"/proc/{b.pid}/comm") as f:
            loop_name = f.read().strip()  # the main thread: the request loop
        t0 = thread_cpu(b.pid)
        procs = [subprocess.Popen([B.BENCH_BIN, "rawproduce", "127.0.0.1", str(b.port), f"turn{c}", "1", "1024",
                                   str(S["seconds"]), "-1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=B.tool_env()) for c in range(CLIENTS)]
        results = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=S["seconds"] + 60)
            lines = [l for l in stdout.splitlines() if "=" in l]
            if p.returncode != 0 or not lines:
                raise RuntimeError(f"rawproduce exited {p.returncode}: {stderr[-1000:]}")
            results.append(B.kv(lines[-1]))
        t1 = thread_cpu(b.pid)
        mb = sum(r["records"] for r in results) * 1024 / 1e6
        spent = {n: t1.get(n, 0.0) - t0.get(n, 0.0) for n in t1}
        writers = sum(v for n, v in spent.items() if n.startswith("append-writer"))
        per_mb = (lambda s: s * 1000 / mb if mb else 0.0)
        return {"mb_per_s": sum(r["mb_per_s"] for r in results), "broker": per_mb(sum(spent.values())),
                "loop": per_mb(spent.get(loop_name, 0.0)), "writers": per_mb(writers)}
    finally:
        b.stop()
        B.ALL_BROKERS.remove(b)
        shutil.rmtree(b.workdir, ignore_errors=True)


def steps(rep, S, work):
    got = {label: [] for label, _ in VARIANTS}
    k = 0
    for rnd in range(S["rounds"]):
        for label, ov in VARIANTS:
            B.section(f"round {rnd + 1}: {label}")
            got[label].append(one_run(work, ov, S, k))
            k += 1
    for i, (label, _) in enumerate(VARIANTS):
        base_label = VARIANTS[i - i % 2][0]  # each pair: num.io.threads=1 first
        base = statistics.median(r["mb_per_s"] for r in got[base_label])
        runs = got[label]
        mbs = [r["mb_per_s"] for r in runs]
        ratio = statistics.median(mbs) / base if base else 0.0
        rep.add("Producers on one partition each", f"{CLIENTS} x rawproduce, 1 partition each: {label}",
                f"{B.span(mbs)} MB/s; broker {B.span([r['broker'] for r in runs], '{:.2f}')} CPU-ms/MB "
                f"(loop {B.span([r['loop'] for r in runs], '{:.2f}')}, writers "
                f"{B.span([r['writers'] for r in runs], '{:.2f}')})",
                f"{ratio:.2f}x {base_label} (medians)")


if __name__ == "__main__":
    B.standalone("turn", "Producers on one partition each: the writes of one turn at once", SCALES, steps, 300,
                 setup=f"one node; {CLIENTS} raw producers and the broker on this machine's {os.cpu_count()} CPUs")
