#!/usr/bin/python3
"""A follower's appends on the write pool (issue 18): a returning follower catches up on eight
partitions, each fetch answer's partitions written at once (the default) or one after another on
the request loop (num.io.threads=1 on the follower). Rounds alternate the two, each on a fresh topic.

    SAMSA_BUILD=build/release /usr/bin/python3 bench/follower_bench.py [--smoke] [--out F.md]

One etcd member and two Samsa nodes on this machine. Node 1 leads the eight partitions of the
round's topic and node 2 follows them all. Node 2 is stopped, `samsa-bench rawproduce` writes to
node 1 for a fixed time (1 KiB records, 256 KiB batches, acks=all: the ISR is node 1 alone), the
pages are synced, and node 2 starts again with the round's num.io.threads. Measured from its start
until node 1's Metadata shows node 2 in every ISR: the catch-up rate (the records' bytes node 2
lacked over that time) and node 2's CPU per MB, in all and split per thread (the request loop, which also
receives the fetch answers, and the writer threads, append-writer-N). Both nodes, etcd and the
client share this machine's CPUs.
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import bench as B  # noqa: E402

B.use_build()
os.environ["SAMSA_BUILD"] = B.REL  # the cluster's nodes: the same build as the client

from cluster import EtcdCluster, SamsaCluster  # noqa: E402
from turn_bench import thread_cpu  # noqa: E402
from replication_bench import partitions_of, wait_for  # noqa: E402

SCALES = {
    "rounds": (3, 1),
    "produce_seconds": (6, 1),
}
PARTITIONS = 8
VARIANTS = (("follower num.io.threads=1 (its loop writes alone)", "1"),
            ("follower default (num.io.threads=8)", None))


def in_every_isr(node, topic, replica):
    parts = partitions_of(node, topic)
    return len(parts) == PARTITIONS and all(replica in v[2] for v in parts.values())


def one_round(cl, rnd, io_threads, S):
    leader, follower = cl.node(1), cl.node(2)
    topic = f"follow-{rnd}-{io_threads or 'default'}"

    def create():
        r = cl.run_tool("kafka-topics", "--bootstrap-server", leader.bootstrap, "--create", "--topic", topic,
                        "--replica-assignment", ",".join(["1:2"] * PARTITIONS))
        if r.returncode == 0:
            return True
        if "no such broker is registered" in r.stdout + r.stderr:
            return False  # node 2 listens before node 1's image has its registration: again
        raise RuntimeError(f"create {topic}: {r.stdout}{r.stderr}")
    if wait_for(create, 30, step=0.2) is None:
        raise RuntimeError(f"create {topic}: node 2 not registered 30 s after its start")
    if wait_for(lambda: in_every_isr(leader, topic, 2), 30) is None:
        raise RuntimeError(f"{topic}: node 2 not in every ISR 30 s after the creation")
    cl.stop_node(2)
    if wait_for(lambda: all(2 not in v[2] for v in partitions_of(leader, topic).values()), 30) is None:
        raise RuntimeError(f"{topic}: node 2 still in the ISR 30 s after its shutdown")
    produced = B.bench("rawproduce", "127.0.0.1", leader.port, topic, PARTITIONS, 1024, S["produce_seconds"], -1,
                       timeout=S["produce_seconds"] + 60)
    os.sync()  # writeback of what was produced does not compete with the catch-up
    follower.overrides.pop("num.io.threads", None)
    if io_threads is not None:
        follower.overrides["num.io.threads"] = io_threads
    follower.write_config()
    t0 = time.monotonic()
    cl.start_node(2, timeout=60)
    pid = follower.pid
    with open(f"/proc/{pid}/comm") as f:
        loop_name = f.read().strip()  # the main thread: the request loop
    took = wait_for(lambda: in_every_isr(leader, topic, 2), 120, step=0.01)
    spent = thread_cpu(pid)  # since node 2 started: its start-up is in it (a few ms)
    if took is None:
        raise RuntimeError(f"{topic}: node 2 not back in every ISR within 120 s")
    took = time.monotonic() - t0
    mb = produced.get("records", 0) * 1024 / 1e6  # what node 2 lacks (segment files are preallocated: not their sizes)
    writers = sum(v for n, v in spent.items() if n.startswith("append-writer"))
    per_mb = (lambda s: s * 1000 / mb if mb else 0.0)
    cl.run_tool("kafka-topics", "--bootstrap-server", leader.bootstrap, "--delete", "--topic", topic)
    os.sync()
    return {"mb": mb, "mb_per_s": mb / took, "produced": produced.get("mb_per_s", 0.0),
            "cpu": per_mb(sum(spent.values())), "loop": per_mb(spent.get(loop_name, 0.0)),
            "writers": per_mb(writers)}


def steps(rep, S, work):
    B.section("cluster start")
    etcd = EtcdCluster(os.path.join(work, "etcd"), members=1)
    cl = None
    try:
        cl = SamsaCluster(os.path.join(work, "nodes"), etcd, nodes=2)
        got = {label: [] for label, _ in VARIANTS}
        for rnd in range(S["rounds"]):
            for label, io in VARIANTS:
                B.section(f"round {rnd + 1}: {label}")
                got[label].append(one_round(cl, rnd, io, S))
        base = statistics.median(r["mb_per_s"] for r in got[VARIANTS[0][0]])
        for label, _ in VARIANTS:
            runs = got[label]
            rates = [r["mb_per_s"] for r in runs]
            rep.add("A returning follower's catch-up",
                    f"8 partitions, {B.span([r['mb'] for r in runs], '{:.0f}')} MB behind: {label}",
                    f"{B.span(rates)} MB/s; node 2 {B.span([r['cpu'] for r in runs], '{:.2f}')} CPU-ms/MB "
                    f"(loop {B.span([r['loop'] for r in runs], '{:.2f}')}, writers "
                    f"{B.span([r['writers'] for r in runs], '{:.2f}')})",
                    f"{statistics.median(rates) / base:.2f}x {VARIANTS[0][0]} (medians)" if base else "")
    finally:
        if cl is not None:
            cl.stop(check=False)
        etcd.stop()


if __name__ == "__main__":
    B.standalone("follower", "A follower's appends on the write pool", SCALES, steps, 400,
                 setup="one etcd member and two nodes; node 2 follows the 8 partitions node 1 leads; "
                       "client, nodes and etcd on this machine's CPUs")
