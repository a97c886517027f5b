#!/usr/bin/python3
"""Transactions: what they cost against idempotent produce, and read_committed reads (issue 14).

    SAMSA_BUILD=build/release /usr/bin/python3 bench/txn_bench.py [--out FILE.md] [--smoke]
    bench/run.sh --transactions [--out FILE.md]      (release build first, then this)

Measures this machine's limits first (loopback TCP with iperf3, sequential writes: bench.py's own
steps), then starts one release-build node and, in the same run, interleaved (idempotent,
transactional, idempotent, transactional) on a topic of 8 partitions with 1 KiB records
(samsa-bench txnproduce, librdkafka):
  - idempotent produce, acks=all, records streamed;
  - transactional produce, 100 records per transaction round-robin over the 8 partitions, each
    committed before the next begins (so every commit's markers are in the figure), with commit
    latency p50/p99/max (commit_transaction call to return);
then reads the transactional topic back from the beginning (samsa-bench isoconsume) with
read_uncommitted and with read_committed, alternating, as records/s.
Prints one table (and writes it with --out). Figures only: nothing here fails on speed. Every
load and wait is bounded; the run is cut off at SAMSA_BENCH_BUDGET_S (default 300 s).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402  (bench.py: machine limits, Broker, Report, samsa-bench runner, the standalone main)

B.use_build()

SIZE = 1024
PARTITIONS = 8
PER_TXN = 100

# (full, smoke)
SCALES = {
    "iperf_seconds": (3, 1),
    "disk_mib": (512, 16),
    "disk_sustained": ((2048, 5), (64, 1)),
    "produce_seconds": (8, 1),
    "rounds": (2, 1),
}

TXN_NODE = {"transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "5", "offsets.topic.replication.factor": "1"}


def measure(rep, S, b, limits):
    B.section("produce: idempotent against transactional")
    b.create_topic("txn-idem", PARTITIONS)
    b.create_topic("txn-txn", PARTITIONS)
    idem, txn, commits = [], [], []
    for _ in range(S["rounds"]):
        r = (B.bench("txnproduce", b.bootstrap, "txn-idem", str(PARTITIONS), str(SIZE), str(PER_TXN),
                            str(S["produce_seconds"]), "idempotent", timeout=S["produce_seconds"] + 90))
        idem.append(r)
        r = (B.bench("txnproduce", b.bootstrap, "txn-txn", str(PARTITIONS), str(SIZE), str(PER_TXN),
                            str(S["produce_seconds"]), "transactional", timeout=S["produce_seconds"] + 90))
        txn.append(r)
        commits.append(r)
    best_idem = max(x["rec_per_s"] for x in idem)
    best_txn = max(x["rec_per_s"] for x in txn)
    net = limits.get("tcp")
    rep.add("transactions", "idempotent produce, acks=all, 1 KiB, 8 partitions (best of "
            f"{len(idem)})", f"{best_idem:,.0f} rec/s = {best_idem * SIZE / 1e6:.1f} MB/s",
            B.pct(best_idem * SIZE / 1e6, net) if net else "")
    rep.add("transactions", f"transactional produce, {PER_TXN} records per transaction (best of {len(txn)})",
            f"{best_txn:,.0f} rec/s = {best_txn * SIZE / 1e6:.1f} MB/s",
            f"{100.0 * best_txn / best_idem:.0f}% of idempotent" if best_idem else "")
    for i, r in enumerate(commits):
        rep.add("transactions", f"commit latency, run {i + 1} ({r['transactions']:.0f} transactions)",
                f"p50 {r['commit_p50_ms']:.2f} ms, p99 {r['commit_p99_ms']:.2f} ms, max {r['commit_max_ms']:.2f} ms")
    total = int(sum(x["records"] for x in txn))

    B.section("consume: read_committed against read_uncommitted")
    reads = {"read_uncommitted": [], "read_committed": []}
    for _ in range(S["rounds"]):
        for iso in ("read_uncommitted", "read_committed"):
            r = (B.bench("isoconsume", b.bootstrap, "txn-txn", str(PARTITIONS), iso, str(total), timeout=150))
            reads[iso].append(r)
    ru = max(x["rec_per_s"] for x in reads["read_uncommitted"])
    rc = max(x["rec_per_s"] for x in reads["read_committed"])
    rep.add("transactions", f"read_uncommitted consume of {total:,} transactional records (best of "
            f"{len(reads['read_uncommitted'])})", f"{ru:,.0f} rec/s = {ru * SIZE / 1e6:.1f} MB/s",
            B.pct(ru * SIZE / 1e6, net) if net else "")
    rep.add("transactions", "read_committed consume of the same records", f"{rc:,.0f} rec/s = {rc * SIZE / 1e6:.1f} MB/s",
            f"{100.0 * rc / ru:.0f}% of read_uncommitted" if ru else "")


def main():
    def steps(rep, S, work):
        limits = B.measure_machine(rep, S)
        B.measure_disk(rep, S, work, limits)
        b = B.Broker(os.path.join(work, "node"), TXN_NODE)
        b.start()
        measure(rep, S, b, limits)
    B.standalone("txn", "Transactions benchmark", SCALES, steps, 300,
                 tail=" Ratios are to the machine limits measured in the same run.")


if __name__ == "__main__":
    sys.exit(main())
