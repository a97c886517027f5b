#!/usr/bin/python3
"""Metadata through etcd: how fast a cluster changes and heals (issue 12).

    /usr/bin/python3 bench/cluster_bench.py [--out FILE.md] [--partitions 10000]

Starts 3 etcd members and 3 Samsa nodes on free loopback ports (the test
suite's cluster.py), and beside them one single node on its local metadata
log, then measures, each bounded in count and time:
  - CreateTopics of one 1-partition topic, one at a time: operations per
    second and latency percentiles, etcd cluster vs local log;
  - CreateTopics of one topic with 1,000 partitions;
  - leadership after kill -9 of a node: time until another node's Metadata
    shows its partitions without a leader (the session timeout is the
    floor), and after its restart until it leads them again;
  - start-up of a node joining a cluster that holds N partitions (default
    10,000), from exec to serving.
Prints a table (and writes it with --out). Figures only: nothing here fails
on speed. SAMSA_BUILD picks the build (default build).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("SAMSA_BUILD", "build")

from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from cluster import EtcdCluster, SamsaCluster  # noqa: E402
from conftest import Broker  # noqa: E402

SESSION_MS = 3000


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def create_one_by_one(bootstrap, n, prefix):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    lat = []
    t0 = time.monotonic()
    for i in range(n):
        s = time.monotonic()
        admin.create_topics([NewTopic(f"{prefix}{i}", 1, 1)])
        lat.append((time.monotonic() - s) * 1000)
    total = time.monotonic() - t0
    admin.close()
    return n / total, statistics.median(lat), pct(lat, 99)


def create_wide(bootstrap, name, parts):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60000)
    s = time.monotonic()
    admin.create_topics([NewTopic(name, parts, 1)], timeout_ms=60000)
    ms = (time.monotonic() - s) * 1000
    admin.close()
    return ms


def leaders(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        (t,) = admin.describe_topics([topic])
        return {p["partition"]: p["leader"] for p in t["partitions"]}
    finally:
        admin.close()


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--partitions", type=int, default=10000)
    ap.add_argument("--creates", type=int, default=100)
    args = ap.parse_args()
    rows = []
    work = tempfile.mkdtemp(prefix="samsa-cluster-bench-")
    etcd = EtcdCluster(os.path.join(work, "etcd"), members=3)
    cl = SamsaCluster(os.path.join(work, "nodes"), etcd, nodes=3,
                      overrides={"broker.session.timeout.ms": str(SESSION_MS),
                                 "broker.heartbeat.interval.ms": "500"})
    os.makedirs(os.path.join(work, "single"))
    single = Broker(os.path.join(work, "single"))
    single.start()
    try:
        ops, p50, p99 = create_one_by_one(cl.bootstrap_of(1), args.creates, "c")
        rows.append(("CreateTopics, 1 partition, one at a time (etcd, 3 nodes)",
                     f"{ops:.0f} ops/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
        ops, p50, p99 = create_one_by_one(single.bootstrap, args.creates, "c")
        rows.append(("CreateTopics, 1 partition, one at a time (local log, 1 node)",
                     f"{ops:.0f} ops/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
        rows.append(("CreateTopics, 1 topic of 1,000 partitions (etcd)",
                     f"{create_wide(cl.bootstrap_of(1), 'wide', 1000):.0f} ms"))
        rows.append(("CreateTopics, 1 topic of 1,000 partitions (local log)",
                     f"{create_wide(single.bootstrap, 'wide', 1000):.0f} ms"))

        # leadership after kill -9 of node 3, seen from node 1
        before = leaders(cl.bootstrap_of(1), "wide")
        led3 = [p for p, l in before.items() if l == 3]
        t0 = time.monotonic()
        cl.kill9(3)
        ok = wait_for(lambda: all(leaders(cl.bootstrap_of(1), "wide").get(p) in (-1, None) for p in led3[:5]),
                      SESSION_MS / 1000 + 10)
        fence_ms = (time.monotonic() - t0) * 1000
        rows.append((f"kill -9 of a node -> its {len(led3)} partitions leaderless (session {SESSION_MS} ms)",
                     f"{fence_ms:.0f} ms" if ok else "not within the bound"))
        t0 = time.monotonic()
        cl.start_node(3)
        started_ms = (time.monotonic() - t0) * 1000
        ok = wait_for(lambda: all(leaders(cl.bootstrap_of(1), "wide").get(p) == 3 for p in led3[:5]), 30)
        back_ms = (time.monotonic() - t0) * 1000
        rows.append(("restart of that node -> it leads them again (incl. waiting out its old lease)",
                     f"{back_ms:.0f} ms (serving after {started_ms:.0f} ms)" if ok else "not within the bound"))

        # start-up joining a cluster of N partitions
        admin = KafkaAdminClient(bootstrap_servers=cl.bootstrap_of(1), request_timeout_ms=120000)
        have = 1000 + args.creates
        i = 0
        while have < args.partitions:
            n = min(100, args.partitions - have)
            admin.create_topics([NewTopic(f"bulk{i}", n, 1)], timeout_ms=120000)
            have += n
            i += 1
        admin.close()
        cl.stop_node(2)
        time.sleep(SESSION_MS / 1000 + 1)  # its registration gone: no waiting for it at start
        t0 = time.monotonic()
        cl.start_node(2, timeout=120)
        join_ms = (time.monotonic() - t0) * 1000
        rows.append((f"start-up of a node joining a cluster of {have:,} partitions (exec to serving)",
                     f"{join_ms:.0f} ms"))
    finally:
        single.stop()
        cl.stop(check=False)
        etcd.stop()
    load = os.getloadavg()[0]
    lines = ["| measurement | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    text = (f"# Cluster metadata benchmark ({time.strftime('%Y-%m-%d %H:%M')}, load {load:.1f}, "
            f"build {os.environ['SAMSA_BUILD']})\n\n" + "\n".join(lines) + "\n")
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
