#!/usr/bin/python3
"""A topic created, and one deleted, next to a producer at 10k records/s on the same node (issue 18:
p99 at 10k records/s). Creating a partition makes a directory and four files, deleting one removes
its files; on the request loop either held every other client for the whole topic. What does a
CreateTopics of 50 and of 200 partitions cost the producer, and a DeleteTopics of 200 partitions
holding 500 MB?

    SAMSA_BUILD=build/release /usr/bin/python3 bench/create_bench.py [--smoke] [--out F.md] [--before BUILD_DIR]

Each run: a fresh broker; `samsa-bench acklatency` produces 1 KiB acks=1 at 10,000 records/s to a
topic of 1 partition; 2 s in, kafka-topics.sh creates a topic of N partitions (or deletes the topic
of 200 partitions `samsa-bench produce` filled before the producer started). Printed: the
producer's send-to-ack percentiles over the whole run, the records that waited over 2 ms, and how
long kafka-topics.sh took. For reference the same run with no topic created. Then, with no producer,
the request loop's own CPU time (its thread's schedstat) while a topic of 300 partitions is created
and deleted: the figure the other load of a shared VM disturbs least. With --before, the same runs on
that build's broker (alternating rounds), as a ratio.
"""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402

B.use_build()

SCALES = {
    "rounds": (3, 1),
    "seconds": (5, 3),
    "sizes": ([50, 200], [50]),
    "delete_records": (500_000, 20_000),  # 1 KiB each, over the 200 partitions deleted
}
DELETED_PARTITIONS = 200
LOOP_PARTITIONS = 300  # loop_cost: a topic this wide created and deleted with no other client
RATE = 10_000


def one_run(work, binary, S, k, partitions, delete=False):
    """partitions > 0: a topic of that many created during the run; delete: the filled topic of
    DELETED_PARTITIONS deleted instead."""
    b = B.Broker(os.path.join(work, f"r{k}"), {}, binary=binary)
    try:
        b.start()
        b.create_topic("lat", 1)
        if delete:
            b.create_topic("full", DELETED_PARTITIONS)
            B.bench("produce", b.bootstrap, "full", DELETED_PARTITIONS, 1024, S["delete_records"], 120, "1",
                    timeout=300)
            partitions = DELETED_PARTITIONS
        lat = subprocess.Popen([B.BENCH_BIN, "acklatency", b.bootstrap, "lat", str(RATE), str(S["seconds"]), "1024",
                                "1", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        created = {}

        def create():
            time.sleep(2)  # the producer's connection and first seconds first
            if delete:
                t0 = time.perf_counter()
                b.delete_topic("full")
                created["s"] = time.perf_counter() - t0
            else:
                created["s"] = b.create_topic("many", partitions)

        th = threading.Thread(target=create) if partitions else None
        if th:
            th.start()
        out, err = lat.communicate(timeout=S["seconds"] + 120)
        if th:
            th.join()
        line = [x for x in out.splitlines() if "p99_us=" in x]
        if not line:
            raise RuntimeError("acklatency printed no result:\n" + out + err)
        if th and "s" not in created:
            raise RuntimeError("kafka-topics.sh did not finish")
        if partitions and not delete:
            made = sum(1 for d in os.listdir(os.path.join(b.workdir, "data")) if d.startswith("many-"))
            if made != partitions:
                raise RuntimeError(f"{made} of {partitions} partition directories made")
        if delete:
            deadline = time.time() + 60
            while any(d.startswith("full-") for d in os.listdir(os.path.join(b.workdir, "data"))):
                if time.time() > deadline:
                    raise RuntimeError("the deleted topic's directories are still there after 60 s")
                time.sleep(0.1)
        return {**B.ack_latency(line[-1]), "create": created.get("s", 0) * 1000}
    finally:
        b.stop()
        B.ALL_BROKERS.remove(b)


def loop_cpu_ms(b):
    """CPU time of the broker's request loop (its main thread) so far, in ms (/proc schedstat)."""
    with open(f"/proc/{b.proc.pid}/task/{b.proc.pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e6


def loop_cost(work, binary, S, k):
    """With no other client: the loop's CPU time while a topic of LOOP_PARTITIONS partitions is
    created (until kafka-topics.sh returns) and while it is deleted (until its directories are gone).
    The figure that the other load on a shared VM disturbs least."""
    b = B.Broker(os.path.join(work, f"c{k}"), {}, binary=binary)
    try:
        b.start()
        data = os.path.join(b.workdir, "data")
        c0 = loop_cpu_ms(b)
        b.create_topic("many", LOOP_PARTITIONS)
        c1 = loop_cpu_ms(b)
        b.delete_topic("many")
        deadline = time.time() + 60
        while any(d.startswith("many-") for d in os.listdir(data)):
            if time.time() > deadline:
                raise RuntimeError("the deleted topic's directories are still there after 60 s")
            time.sleep(0.02)
        c2 = loop_cpu_ms(b)
        return {"create": c1 - c0, "delete": c2 - c1}
    finally:
        b.stop()
        B.ALL_BROKERS.remove(b)


def figure(runs):
    return f"{B.latency_figure(runs)}; {B.span([x['over'] for x in runs])} records over 2 ms"


def steps(rep, S, work, before):
    builds = [("this build", None)] + ([(f"before ({before})", os.path.join(before, "samsa-broker"))] if before else [])
    got = {}
    k = 0
    for rnd in range(S["rounds"]):
        for n in S["sizes"] + ["delete"]:
            for label, binary in builds:
                what = f"a topic of {n} partitions created" if n != "delete" else "a full topic deleted"
                B.section(f"round {rnd + 1}: {label}, {what}")
                got.setdefault((n, label), []).append(one_run(work, binary, S, k, 0 if n == "delete" else n,
                                                              delete=n == "delete"))
                k += 1
    cost = {}
    for rnd in range(S["rounds"]):
        for label, binary in builds:
            B.section(f"round {rnd + 1}: {label}, the loop's CPU for {LOOP_PARTITIONS} partitions created and deleted")
            cost.setdefault(label, []).append(loop_cost(work, binary, S, k))
            k += 1
    B.section("this build, no topic created")
    alone = one_run(work, None, S, k, 0)
    sec = "Produce at 10,000/s, 1 KiB acks=1, send to ack"
    rep.add(sec, "this build, no topic created", figure([alone]))
    for n in S["sizes"] + ["delete"]:
        for label, _ in builds:
            runs = got[(n, label)]
            ratio = ""
            if before and label != builds[0][0]:
                pairs = list(zip(got[(n, builds[0][0])], runs))
                ratio = (f"this build's max {B.span([a['max'] / b['max'] for a, b in pairs], '{:.2f}')}x, "
                         f"p99 {B.span([a['p99'] / b['p99'] for a, b in pairs], '{:.2f}')}x")
            what = (f"a topic of {n} partitions created" if n != "delete" else
                    f"a topic of {DELETED_PARTITIONS} partitions holding {S['delete_records'] // 1000:,} MB deleted")
            rep.add(sec, f"{label}, {what}",
                    f"{figure(runs)}; kafka-topics.sh {B.span([x['create'] for x in runs])} ms", ratio)
    sec = f"The request loop's CPU time, a topic of {LOOP_PARTITIONS} partitions, no other client"
    for label, _ in builds:
        runs = cost[label]
        for what in ("create", "delete"):
            ratio = ""
            if before and label != builds[0][0]:
                pairs = zip(cost[builds[0][0]], runs)
                ratio = f"this build {B.span([a[what] / b[what] for a, b in pairs], '{:.2f}')}x"
            rep.add(sec, f"{label}, {what}d",
                    f"{B.span([x[what] for x in runs], '{:.1f}')} ms; "
                    f"{B.span([x[what] * 1000 / LOOP_PARTITIONS for x in runs], '{:.0f}')} us a partition", ratio)


if __name__ == "__main__":
    before = B.before_build_arg()
    B.standalone("create", "A topic created beside a producer", SCALES,
                 lambda rep, S, work: steps(rep, S, work, before), 900)
