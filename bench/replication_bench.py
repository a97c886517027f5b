#!/usr/bin/python3
"""Replication: what RF 3 costs against RF 1, failover and catch-up (issue 13).

    SAMSA_BUILD=build/release /usr/bin/python3 bench/replication_bench.py [--out FILE.md] [--smoke]
    bench/run.sh --replication [--out FILE.md]       (release build first, then this)

Measures this machine's limits first (loopback TCP with iperf3, sequential
writes to the data dir's file system: bench.py's own steps, at a smaller
scale), then starts 3 etcd members and 3 Samsa nodes on loopback (the test
suite's cluster.py) and, in the same run:
  - produce throughput, 1 KiB records, acks=all, RF 1 against RF 3 on the
    same cluster, leaders pinned to the same node (manual assignment), runs
    interleaved RF 1, RF 3, RF 1, RF 3: librdkafka (samsa-bench produce) on
    1 and 3 partitions, and the raw client (samsa-bench rawproduce, the
    broker's own limit) on 1 partition;
  - produce latency (send call to acknowledgement) paced at 10k records/s,
    acks=all, RF 1 and RF 3 (samsa-bench acklatency), and end-to-end
    latency with RF 3 (a consumer reads only up to the high watermark, so
    the follower fetches are in it);
  - failover: kill -9 of a partition leader under an acks=all idempotent
    producer; time until records sent after the kill are acknowledged, and
    until another node's Metadata shows the new leader; the same after a
    clean shutdown (SIGTERM) of the leader;
  - catch-up: a follower of 8 partitions stopped, N MiB produced, the
    follower restarted; time until every ISR is full again, as MB/s, against
    the loopback and disk limits.
Prints one table (and writes it with --out). Figures only: nothing here
fails on speed. Every load and every wait is bounded in count and time; the
run is cut off at SAMSA_BENCH_BUDGET_S (default 420 s) whatever happens.
"""
import argparse
import datetime
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
os.environ.setdefault("SAMSA_BUILD", "build/release")
BUILD = os.environ["SAMSA_BUILD"]
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import bench as B  # noqa: E402  (bench.py: machine limits, Report, samsa-bench runner)

B.REL = BUILD
B.BENCH_BIN = os.path.join(ROOT, BUILD, "samsa-bench")
B.BROKER_BIN = os.path.join(ROOT, BUILD, "samsa-broker")

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from cluster import EtcdCluster, SamsaCluster  # noqa: E402

SESSION_MS = 3000
SIZE = 1024

# (full, smoke)
SCALES = {
    "iperf_seconds": (3, 1),
    "disk_mib": (512, 16),
    "disk_sustained": ((2048, 5), (64, 1)),
    "produce_seconds": (5, 1),
    "produce_records": (1_500_000, 2000),
    "produce_rounds": (2, 1),
    "latency_seconds": (5, 1),
    "latency_rate": (10000, 1000),
    "failover_rate": (2000, 500),
    "catchup_mib": (1024, 16),
}


# ---------------------------------------------------------------- metadata

def metadata_v1(host, port, topics, timeout=2.0):
    """One raw Metadata v1 request to one node. Returns (controller_id,
    {topic: {partition: (leader, replicas, isr)}}); raises OSError."""
    body = struct.pack(">i", len(topics))
    for t in topics:
        body += struct.pack(">h", len(t)) + t.encode()
    cid = b"replication-bench"
    req = struct.pack(">hhih", 3, 1, 7, len(cid)) + cid + body
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        n = struct.unpack(">i", _recv_all(s, 4))[0]
        buf = _recv_all(s, n)
    pos = [4]  # past the correlation id

    def take(fmt):
        v = struct.unpack_from(fmt, buf, pos[0])
        pos[0] += struct.calcsize(fmt)
        return v[0]

    def string():
        ln = take(">h")
        if ln < 0:
            return None
        v = buf[pos[0]:pos[0] + ln].decode()
        pos[0] += ln
        return v

    for _ in range(take(">i")):  # brokers
        take(">i"), string(), take(">i"), string()
    controller = take(">i")
    out = {}
    for _ in range(take(">i")):
        take(">h")
        name = string()
        take(">b")
        parts = {}
        for _ in range(take(">i")):
            take(">h")
            p, leader = take(">i"), take(">i")
            replicas = [take(">i") for _ in range(take(">i"))]
            isr = [take(">i") for _ in range(take(">i"))]
            parts[p] = (leader, replicas, isr)
        out[name] = parts
    return controller, out


def _recv_all(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("connection closed")
        out += chunk
    return out


def partitions_of(node, topic):
    """{partition: (leader, replicas, isr)} as this node's Metadata shows it; {} if it does not answer."""
    try:
        return metadata_v1(node.host, node.port, [topic])[1].get(topic, {})
    except (OSError, struct.error):
        return {}


def wait_for(cond, timeout, step=0.02):
    """Polls cond until true or timeout; returns the seconds it took, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


# ---------------------------------------------------------------- topics

class Topics:
    def __init__(self, cl):
        self.cl = cl
        self.admin = AdminClient({"bootstrap.servers": cl.bootstrap})
        self.seq = 0

    def create(self, prefix, assignment, configs=None):
        """A topic with a manual assignment (list of replica lists: the first
        of each leads); returns its name once every partition has its leader
        in every node's Metadata."""
        self.seq += 1
        name = f"{prefix}-{self.seq}"
        fs = self.admin.create_topics([NewTopic(name, num_partitions=len(assignment), replication_factor=-1,
                                                replica_assignment=assignment, config=configs or {})],
                                      request_timeout=30)
        fs[name].result(timeout=30)
        want = {p: a[0] for p, a in enumerate(assignment)}

        def ready():
            for n in self.cl.live_nodes():
                got = partitions_of(n, name)
                if any(got.get(p, (-1,))[0] != l for p, l in want.items()):
                    return False
            return True
        if wait_for(ready, 30) is None:
            raise RuntimeError(f"topic {name}: leaders not settled in 30 s")
        return name

    def delete(self, name):
        fs = self.admin.delete_topics([name], request_timeout=30)
        try:
            fs[name].result(timeout=30)
        except Exception as e:  # a failed delete only costs disk space
            print(f"  (delete {name}: {e})", flush=True)
        os.sync()  # no dirty pages of this run slow the next one


# ---------------------------------------------------------------- steps

def cpu_of(cl):
    out = {}
    for n in cl.live_nodes():
        with open(f"/proc/{n.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[n.node_id] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def cpu_text(before, after, secs, mb):
    """Cores each node used over the run, and the nodes' CPU time together per MB acknowledged."""
    cores = ", ".join(f"n{i} {(after[i] - before.get(i, 0)) / secs:.2f}" for i in sorted(after))
    total = sum(after[i] - before.get(i, 0) for i in after)
    return cores + (f"; {1000 * total / mb:.2f} CPU-ms/MB" if mb > 0 else "")


def measure_throughput(rep, S, cl, tp, limits):
    B.section("produce throughput, RF 1 against RF 3")
    n1 = cl.node(1)
    kinds = [
        ("librdkafka, 1 partition", 1, "client"),
        ("librdkafka, 3 partitions (leaders on nodes 1, 2, 3)", 3, "client"),
        ("raw client, 1 partition, 8 requests in flight", 1, "raw"),
    ]
    results = {}
    for rnd in range(S["produce_rounds"]):
        for label, parts, how in kinds:
            for rf in (1, 3):
                assignment = [[(p + k) % 3 + 1 for k in range(rf)] for p in range(parts)]
                topic = tp.create(f"tput-rf{rf}", assignment)
                c0, t0 = cpu_of(cl), time.monotonic()
                if how == "client":
                    r = B.bench("produce", cl.bootstrap, topic, parts, SIZE, S["produce_records"],
                                S["produce_seconds"], "all", timeout=S["produce_seconds"] + 60, check=False)
                else:
                    r = B.bench("rawproduce", n1.host, n1.port, topic, 1, SIZE, S["produce_seconds"], -1,
                                timeout=S["produce_seconds"] + 60, check=False)
                secs = time.monotonic() - t0
                mb = r.get("mb_per_s", 0.0)
                cpu = cpu_text(c0, cpu_of(cl), secs, r.get("records", 0) * SIZE / 1e6)
                tp.delete(topic)
                print(f"  round {rnd + 1} {label} RF {rf}: {mb:,.0f} MB/s errors={r.get('errors')} "
                      f"(broker cores: {cpu})", flush=True)
                results.setdefault((label, rf), []).append((mb, cpu, r))
    for label, parts, how in kinds:
        best = {rf: max(results[(label, rf)], key=lambda x: x[0]) for rf in (1, 3)}
        all_runs = {rf: " / ".join(f"{x[0]:,.0f}" for x in results[(label, rf)]) for rf in (1, 3)}
        for rf in (1, 3):
            mb, cpu, r = best[rf]
            errs = int(r.get("errors", 0) or 0)
            rep.add("Throughput", f"1 KiB acks=all, {label}, RF {rf}",
                    f"{mb:,.0f} MB/s (runs: {all_runs[rf]}; broker cores {cpu})"
                    + (f"; {errs} errors" if errs else ""),
                    ratio=B.pct(mb, limits["tcp"]))
        ratio = best[3][0] / best[1][0] if best[1][0] else 0
        rep.add("Throughput", f"RF 3 / RF 1, {label}", f"{100 * ratio:.0f}%",
                target="Kafka keeps ~60-70%", met=B.verdict(ratio >= 0.6))


def measure_latency(rep, S, cl, tp):
    B.section("latency at 10k records/s")
    rate, secs = S["latency_rate"], S["latency_seconds"]
    # max.in.flight 5 is Java's producer default; librdkafka's own (1,000,000)
    # puts every record in a request of its own (linger 0), and a broker
    # answers one request per connection at a time (Kafka's muted channel).
    for rf, in_flight in ((1, 5), (3, 5), (3, 1000000)):
        topic = tp.create(f"acklat-rf{rf}", [[1, 2, 3][:rf]])
        r = B.bench("acklatency", cl.bootstrap, topic, rate, secs, SIZE, "all", in_flight, timeout=secs + 60,
                    check=False)
        tp.delete(topic)
        if "p99_us" not in r:
            rep.add("Latency", f"produce acks=all, RF {rf}", "no result")
            continue
        p99 = r["p99_us"] / 1000
        label = f"RF {rf}, max.in.flight {in_flight:,}"
        if in_flight != 5:
            label += " (librdkafka's default)"
        targeted = rf == 3 and in_flight == 5  # the figure
        rep.add("Latency", f"produce 1 KiB acks=all at {rate:,}/s for {secs} s, send to ack, {label}",
                f"p50 {r['p50_us'] / 1000:.2f} ms, p99 {p99:.2f} ms, p99.9 {r['p999_us'] / 1000:.2f} ms, "
                f"max {r['max_us'] / 1000:.1f} ms ({int(r['acked']):,} acked at {r['achieved_rate']:,.0f}/s, "
                f"{int(r['over_2ms'])} over 2 ms)",
                target="≤ 2 ms" if targeted else "", met=B.verdict(p99 <= 2) if targeted else "")
    topic = tp.create("e2elat-rf3", [[1, 2, 3]])
    r = B.bench("latency", cl.bootstrap, topic, rate, secs, SIZE, timeout=secs + 60, check=False)
    tp.delete(topic)
    if "p99_us" in r:
        rep.add("Latency", f"end to end (produce acks=1 to consume, consumers read to the HW), RF 3, {rate:,}/s",
                f"p50 {r['p50_us'] / 1000:.2f} ms, p99 {r['p99_us'] / 1000:.2f} ms, "
                f"p99.9 {r['p999_us'] / 1000:.2f} ms, max {r['max_us'] / 1000:.1f} ms")


class PacedProducer:
    """confluent-kafka producer (acks=all, idempotent) paced at `rate`
    records/s in a thread; keeps (send time, ack time, error) per record."""

    def __init__(self, bootstrap, topic, rate):
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 1, "message.timeout.ms": 60000,
                           "topic.metadata.refresh.interval.ms": 60000})
        self.topic, self.rate = topic, rate
        self.payload = b"x" * SIZE
        self.log = []  # [send, ack or None, error or None]
        self.stop_flag = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)

    def run(self):
        start = time.monotonic()
        n = 0
        hard_end = start + 120
        while not self.stop_flag.is_set() and time.monotonic() < hard_end:
            due = start + n / self.rate
            now = time.monotonic()
            if now < due:
                self.p.poll(min(due - now, 0.001))
                continue
            rec = [now, None, None]
            self.log.append(rec)

            def cb(err, msg, rec=rec):
                rec[1] = time.monotonic()
                rec[2] = err
            try:
                self.p.produce(self.topic, self.payload, partition=0, on_delivery=cb)
            except BufferError:
                self.log.pop()
                self.p.poll(0.01)
                continue
            n += 1
            self.p.poll(0)
        self.p.flush(30)

    def first_ack_sent_after(self, t):
        """Ack time of the first record sent after t that was acknowledged without error."""
        for s, a, e in list(self.log):
            if s > t and a is not None and e is None:
                return a
        return None

    def stalled_max(self, t):
        """Longest send-to-ack of records sent after t - 1 s."""
        lats = [a - s for s, a, e in list(self.log) if s > t - 1 and a is not None]
        return max(lats) if lats else None

    def errors(self):
        return sum(1 for s, a, e in self.log if e is not None)


def measure_failover(rep, S, cl, tp):
    B.section("failover under load")
    controller = metadata_v1(cl.node(1).host, cl.node(1).port, [])[0]
    for how in ("kill -9", "SIGTERM (controlled shutdown)"):
        # The leader is neither the controller (whose own failover would add
        # the controller's) nor node 1, which the Metadata polls go to.
        leader = next(i for i in (2, 3) if i != controller)
        others = [i for i in (1, 2, 3) if i != leader]
        topic = tp.create("failover", [[leader] + others])
        prod = PacedProducer(cl.bootstrap, topic, S["failover_rate"])
        prod.th.start()
        # load running and acknowledged before the kill
        wait_for(lambda: prod.first_ack_sent_after(time.monotonic() - 0.5) is not None, 15)
        time.sleep(1.0)
        watcher = cl.node(1)
        t_kill = time.monotonic()
        if how == "kill -9":
            cl.kill9(leader)
        else:
            cl.node(leader).proc.send_signal(signal.SIGTERM)

        def new_leader():
            lead = partitions_of(watcher, topic).get(0, (-1,))[0]
            return lead not in (-1, leader)
        meta_s = wait_for(new_leader, SESSION_MS / 1000 + 20, step=0.01)
        wait_for(lambda: prod.first_ack_sent_after(t_kill) is not None, SESSION_MS / 1000 + 25, step=0.01)
        ok_at = prod.first_ack_sent_after(t_kill)
        time.sleep(1.0)
        prod.stop_flag.set()
        prod.th.join(60)
        stall = prod.stalled_max(t_kill)
        errs = prod.errors()
        acked = sum(1 for s, a, e in prod.log if a is not None and e is None)
        sent = len(prod.log)
        if how != "kill -9":
            cl.node(leader).proc.wait(30)
        rep.add("Failover", f"{how} of the leader under an acks=all producer ({S['failover_rate']:,}/s): "
                f"records sent after it acknowledged",
                (f"{1000 * (ok_at - t_kill):,.0f} ms" if ok_at else "not within the bound")
                + (f" (longest send-to-ack around it {1000 * stall:,.0f} ms; {acked:,}/{sent:,} acked, "
                   f"{errs} errors)" if stall is not None else ""),
                target=f"session {SESSION_MS} ms" if how == "kill -9" else "")
        rep.add("Failover", f"{how} of the leader: node 1's Metadata shows the new leader",
                f"{1000 * meta_s:,.0f} ms" if meta_s is not None else "not within the bound")
        # back to three nodes (a killed node first waits out its old lease)
        t0 = time.monotonic()
        cl.start_node(leader, timeout=60)
        full = wait_for(lambda: all(len(v[2]) == 3 for v in partitions_of(watcher, topic).values()), 60)
        print(f"  node {leader} back, ISR full again after {time.monotonic() - t0:.1f} s"
              + ("" if full is not None else " (not within the bound)"), flush=True)
        tp.delete(topic)


def dir_bytes(path, prefix):
    total = 0
    try:
        for d in os.listdir(path):
            if d.startswith(prefix):
                for f in os.listdir(os.path.join(path, d)):
                    if f.endswith(".log"):
                        try:
                            total += os.path.getsize(os.path.join(path, d, f))
                        except OSError:
                            pass
    except OSError:
        pass
    return total


def measure_catchup(rep, S, cl, tp, limits):
    B.section("catch-up of a returning follower")
    parts = 8
    # node 3 follows every partition; nodes 1 and 2 lead them
    topic = tp.create("catchup", [[1 + p % 2, 2 - p % 2, 3] for p in range(parts)])
    watcher, back = cl.node(1), cl.node(3)
    cl.stop_node(3)
    if wait_for(lambda: all(3 not in v[2] for v in partitions_of(watcher, topic).values()), 30) is None:
        rep.note("catch-up: node 3 still in the ISR 30 s after its shutdown")
    records = S["catchup_mib"] * 1024 * 1024 // SIZE
    r = B.bench("produce", cl.bootstrap_of(1, 2), topic, parts, SIZE, records, 60, "all", timeout=120, check=False)
    os.sync()  # writeback of what was produced does not compete with the catch-up
    # node 1 holds every partition (leader or follower): what node 3 lacks
    have = dir_bytes(back.log_dir, topic + "-")
    todo = dir_bytes(watcher.log_dir, topic + "-") - have
    t0 = time.monotonic()
    cl.start_node(3, timeout=60)
    serving = time.monotonic() - t0
    samples = []  # (t, bytes on node 3)
    isr_at = {}  # partition -> when node 1's Metadata first showed node 3 in its ISR
    full = None
    end = t0 + 120
    while time.monotonic() < end:
        now = time.monotonic()
        samples.append((now - t0, dir_bytes(back.log_dir, topic + "-")))
        parts_now = partitions_of(watcher, topic)
        for p, v in parts_now.items():
            if 3 in v[2] and p not in isr_at:
                isr_at[p] = now - t0
        if len(parts_now) == parts and all(3 in v[2] for v in parts_now.values()):
            full = time.monotonic() - t0
            break
        time.sleep(0.02)
    got = dir_bytes(back.log_dir, topic + "-") - have
    first = next((t for t, b in samples if b > have), None)
    last = next((t for t, b in samples if b >= have + got), None)
    tp.delete(topic)
    mb = todo / 1e6
    rep.add("Catch-up", f"produced while node 3 was down (8 partitions, acks=all, ISR {{1,2}})",
            f"{r.get('records', 0):,.0f} records, {mb:,.0f} MB for node 3 to fetch, produced at "
            f"{r.get('mb_per_s', 0):,.0f} MB/s")
    if full is None:
        rep.add("Catch-up", "restart of node 3 -> every ISR full again", "not within 120 s")
        return
    rate = mb / (full - serving) if full > serving else 0
    rep.add("Catch-up", "restart of node 3 -> every ISR full again",
            f"{1000 * full:,.0f} ms from spawn (serving after {1000 * serving:,.0f} ms): "
            f"{rate:,.0f} MB/s from serving to ISR full",
            ratio=f"{B.pct(rate, limits['tcp'])}; {B.pct(rate, limits['disk'])} (page-cache writes)",
            target="the loopback or disk limit")
    if isr_at:
        rep.add("Catch-up", "node 3 back in each partition's ISR (8 partitions of one topic)",
                f"first at {1000 * min(isr_at.values()):,.0f} ms, last at {1000 * max(isr_at.values()):,.0f} ms")
    if first is not None and last is not None and last > first:
        xfer = got / 1e6 / (last - first)
        rep.add("Catch-up", "bytes arriving on node 3 (its .log sizes sampled every 20 ms)",
                f"{got / 1e6:,.0f} MB between {1000 * first:,.0f} and {1000 * last:,.0f} ms: {xfer:,.0f} MB/s",
                ratio=f"{B.pct(xfer, limits['tcp'])}; sustained disk {B.pct(xfer, limits['disk_sustained'])}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--smoke", action="store_true", help="tiny scale; figures meaningless")
    ap.add_argument("--catchup-mib", type=int)
    args = ap.parse_args()
    S = {k: v[1 if args.smoke else 0] for k, v in SCALES.items()}
    if args.catchup_mib:
        S["catchup_mib"] = args.catchup_mib
    if not os.access(B.BENCH_BIN, os.X_OK):
        subprocess.run(["make", "-s", "-f", "bench/Makefile", f"REL={BUILD}", "-j2"], cwd=ROOT, check=True)
    started = time.time()
    load_before = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="samsa-repl-bench-")
    rep = B.Report()

    budget = B.arm_budget(420)
    etcd = cl = None
    try:
        limits = B.measure_machine(rep, S)
        B.measure_disk(rep, S, work, limits)
        B.section("cluster start")
        etcd = EtcdCluster(os.path.join(work, "etcd"), members=3)
        cl = SamsaCluster(os.path.join(work, "nodes"), etcd, nodes=3,
                          overrides={"broker.session.timeout.ms": str(SESSION_MS),
                                     "broker.heartbeat.interval.ms": "500"})
        tp = Topics(cl)
        measure_throughput(rep, S, cl, tp, limits)
        measure_latency(rep, S, cl, tp)
        measure_failover(rep, S, cl, tp)
        measure_catchup(rep, S, cl, tp, limits)
    except B.OverBudget:
        rep.note(f"the run hit its {budget} s budget; the steps after the last row were skipped")
    finally:
        signal.alarm(0)
        if cl is not None:
            cl.stop(check=False)
        if etcd is not None:
            etcd.stop()
        shutil.rmtree(work, ignore_errors=True)
    now = datetime.datetime.now()
    header = (f"# Replication benchmark: {now:%Y-%m-%d %H:%M} on {socket.gethostname()}\n\n"
              f"Mode: {'smoke (figures meaningless)' if args.smoke else 'full'}; {os.cpu_count()} CPUs; "
              f"build {BUILD}; 3 etcd members and 3 nodes on this one machine (every byte of RF 3 crosses "
              f"loopback twice more and is written three times to the same disk); session timeout "
              f"{SESSION_MS} ms; total run time {time.time() - started:.0f} s; 1-minute load average "
              f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end. Ratios are to the machine "
              f"limits measured in the same run.\n\n")
    B.emit(rep, header, args.out)


if __name__ == "__main__":
    sys.exit(main())
