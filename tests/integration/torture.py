"""The replication fault loop of issue 13 as a reusable function, checked with history.py.

    from torture import run_torture
    result = run_torture(samsa_cluster, cycles=5, seed=1234)   # raises AssertionError on a finding

On a 3-node cluster (3 etcd members) it creates a topic of 8 partitions with replication factor 3
and min.insync.replicas=2, and starts two idempotent acks=all producers from two client libraries
writing unique values to every partition: confluent-kafka (librdkafka) in a child /usr/bin/python3
and kafkajs in node. Each journals every send, acknowledgement (partition and offset the broker
answered, time) and failure before doing anything else, so the journals are the history.

Each cycle applies one fault, chosen by a seeded random generator (the seed is printed first):

    kill9-leader       kill -9 of the leader of a random partition
    kill9-follower     kill -9 of a follower (in the ISR, not leading) of a random partition
    kill9-controller   kill -9 of the controller (DescribeCluster's controller id)
    zombie-leader      SIGSTOP of a partition leader for longer than broker.session.timeout.ms,
                       then SIGCONT: it must not acknowledge anything its successor lacks
    wipe-restart       kill -9 of a random node, its data dir emptied (formatted again), restart:
                       it must re-replicate and never lead with an empty log
    kill9-etcd-leader  kill -9 of the etcd raft leader, restarted once a new leader is elected

then restores (restart / SIGCONT), waits (bounded) until every partition's ISR is full again, reads
everything from the beginning and checks the whole history so far (history.Checker). At the end:
producers stopped, ISRs full, a final read and check, every node stopped cleanly, and every
partition's replicas compared byte for byte (their concatenated .log segments), and leader
failover times checked against broker.session.timeout.ms + 1 s (Metadata naming the new leader;
the first acknowledgement on a moved partition gets 1 s more for the client's own back-off).

Node logs, etcd logs, journals and a timeline are kept under a directory printed on failure (the
test's own tmp dirs are deleted at teardown).
"""
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import time

from cluster import _die_with_parent
from conftest import PYTHON, tool_env
from history import Checker, History

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, "js")
NODE = shutil.which("node") or "/usr/bin/node"
HAVE_KAFKAJS = os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs"))

FAULTS = ("kill9-leader", "kill9-follower", "kill9-controller", "zombie-leader", "wipe-restart", "kill9-etcd-leader")

# Cluster settings for the run (the keys Kafka uses; tests lower the timeouts so a cycle is seconds).
OVERRIDES = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
    "group.initial.rebalance.delay.ms": "0",
}

INVALID_REPLICATION_FACTOR = "not supported yet"  # CreateTopics' message until replication lands


class ReplicationUnsupported(Exception):
    """CreateTopics refused the replication factor (replication has not landed)."""


# ---------------------------------------------------------------- producers

# An idempotent confluent-kafka producer writing "<tag>-<generation>-<i>" round-robin over the
# partitions at a bounded rate until the stop file exists, then flushing. Journal lines as in
# js/torture_producer.js; S is written once produce() has taken the record (no delivery report can
# come before: they run inside poll()). A fatal error (librdkafka's idempotence guard, e.g. an
# out-of-order sequence the broker answered) is journalled as "X <error>" and a fresh producer
# (generation + 1) takes over; the old one's records get their failure reports first.
CONFLUENT_PRODUCER = r'''
import os, sys, time
from confluent_kafka import Producer, KafkaException
bootstrap, topic, nparts, tag, journal, stopfile, rate = sys.argv[1:8]
nparts, rate = int(nparts), float(rate)
out = open(journal, "a", buffering=1)
fatal = []

def make():
    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                     "linger.ms": 5, "message.timeout.ms": 90000, "request.timeout.ms": 8000,
                     "retry.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
                     "error_cb": lambda e: fatal.append(e) if e.fatal() else None})

def dr(err, m):
    v = m.value().decode()
    if err is None:
        out.write("A %s %d %d %.3f\n" % (v, m.partition(), m.offset(), time.time()))
    else:
        out.write("F %s %s\n" % (v, str(err.name() if hasattr(err, "name") else err).replace(" ", "_")))

gen, i, t0 = 0, 0, time.time()
p = make()
while not os.path.exists(stopfile):
    if fatal:
        out.write("X %s-%d %s\n" % (tag, gen, str(fatal[0]).replace("\n", " ")))
        fatal.clear()
        p.purge()
        p.flush(10)
        gen += 1
        p = make()
    part = i % nparts
    v = "%s-%d-%d" % (tag, gen, i)
    try:
        p.produce(topic, value=v.encode(), partition=part, on_delivery=dr)
    except BufferError:
        p.poll(0.05)
        continue
    except KafkaException as e:
        if e.args and e.args[0].fatal():
            fatal.append(e.args[0])
            continue
        raise
    out.write("S %s %d %s-%d\n" % (v, part, tag, gen))
    i += 1
    p.poll(0)
    if i > rate * (time.time() - t0):
        p.poll(0.01)
left = p.flush(100)
out.write("E flush-left %d\n" % left)
out.close()
'''


class ProducerProc:
    """A producer child process and its journal."""

    def __init__(self, name, argv, journal, stopfile, cwd=None):
        self.name, self.journal, self.stopfile = name, journal, stopfile
        self.err_path = journal + ".stderr"
        err = open(self.err_path, "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                     cwd=cwd, env=tool_env(), preexec_fn=_die_with_parent)
        err.close()

    def alive(self):
        return self.proc.poll() is None

    def stderr_text(self):
        try:
            with open(self.err_path) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"producer {self.name} did not stop within {timeout}s:\n" + self.stderr_text())

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


class Journal:
    """Reads a producer's journal incrementally into a History (complete lines only)."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.fatal = []   # "X" lines: fatal client errors
        self.end = None   # the "E" line once the producer finished

    def ingest(self, h):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        cut = data.rfind(b"\n") + 1
        self.pos += cut
        for line in data[:cut].decode().splitlines():
            f = line.split(" ")
            if f[0] == "S":
                h.send(f[3], f[1], int(f[2]))
            elif f[0] == "A":
                h.ack(f[1], int(f[2]), int(f[3]), float(f[4]))
            elif f[0] == "C":
                h.copy(f[1], int(f[2]), int(f[3]))
            elif f[0] == "F":
                h.fail(f[1], " ".join(f[2:]))
            elif f[0] == "X":
                self.fatal.append(" ".join(f[1:]))
            elif f[0] == "E":
                self.end = " ".join(f[1:])


# ---------------------------------------------------------------- cluster state

def _md(c, node=None, topics=None):
    from test_cluster import metadata
    nodes = [node] if node else c.live_nodes()
    last = None
    for n in nodes:
        try:
            return metadata(n.bootstrap, topics)
        except (OSError, ConnectionError, AssertionError) as e:  # a node between states
            last = e
    raise ConnectionError(f"no node answered Metadata ({last!r})")


def partition_state(c, topic, node=None):
    """{partition: (leader, leader epoch, replicas, isr)} as a live node (or the given one) sees it."""
    md = _md(c, node, [topic])
    t = md["topics"].get(topic)
    if t is None or t["error"] != 0:
        raise ConnectionError(f"topic {topic}: {t and t['error']}")
    return {p: (v[1], v[2], v[3], v[4]) for p, v in t["partitions"].items()}


def controller_id(c):
    from test_cluster import describe_cluster
    last = None
    for n in c.live_nodes():
        try:
            err, _cid, ctl, _brokers = describe_cluster(n.bootstrap)
            if err == 0 and ctl >= 0:
                return ctl
        except (OSError, ConnectionError, AssertionError) as e:
            last = e
    raise ConnectionError(f"no controller known ({last!r})")


def isr_full(c, topic, partitions, rf):
    """Every live node sees every live node registered, and every partition led by a live node with
    its whole replica set in the ISR."""
    live = {n.node_id for n in c.live_nodes()}
    for n in c.live_nodes():
        if set(_md(c, n)["brokers"]) != live:  # a restarted node registered again, a dead one gone
            return False
        st = partition_state(c, topic, n)
        if len(st) != partitions:
            return False
        for leader, _epoch, replicas, isr in st.values():
            if leader not in live or len(replicas) != rf or set(isr) != set(replicas):
                return False
    return True


# ---------------------------------------------------------------- segment files

def read_batches(partition_dir):
    """[(base offset, last offset, batch bytes)] of the concatenated .log segments, in offset order,
    and the number of trailing bytes that do not form a whole batch."""
    segs = sorted(f for f in os.listdir(partition_dir) if f.endswith(".log"))
    out, torn = [], 0
    for s in segs:
        with open(os.path.join(partition_dir, s), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 61 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length < 49 or pos + 12 + length > len(data):
                break
            last = base + struct.unpack_from(">i", data, pos + 23)[0]
            out.append((base, last, data[pos:pos + 12 + length]))
            pos += 12 + length
        torn += len(data) - pos
    return out, torn


def compare_replicas(c, topic, partitions, hws, replicas):
    """Problems found comparing each partition's replicas on disk (nodes stopped). hws: the high
    watermark of each partition before the stop: every replica must hold everything below it.

    Replicas may legitimately differ above the smallest log end: a leader appends before its
    followers fetch, and the nodes are stopped one after the other, so records written but not
    yet fetched (never acknowledged with acks=all, but possibly committed later) may exist on some
    replicas only. Below the smallest end offset of all replicas the batches, headers included
    (offsets, leader epochs, producer ids and sequences, CRCs), must be byte-identical."""
    problems, compared = [], 0
    for p in range(partitions):
        logs = {}
        for n in c.nodes:
            d = os.path.join(n.log_dir, f"{topic}-{p}")
            if os.path.isdir(d):
                logs[n.node_id] = read_batches(d)
        if sorted(logs) != sorted(replicas[p]):
            problems.append(f"partition {p}: log directories on nodes {sorted(logs)}, replicas {sorted(replicas[p])}")
        if not logs:
            continue
        ends = {i: (b[-1][1] + 1 if b else 0) for i, (b, _t) in logs.items()}
        starts = {i: (b[0][0] if b else 0) for i, (b, _t) in logs.items()}
        for i, (_b, torn) in logs.items():
            if torn:
                problems.append(f"partition {p}: node {i} has {torn} trailing bytes that are no whole batch")
        low = min(ends.values())
        if low < hws.get(p, 0):
            problems.append(f"partition {p}: node {min(ends, key=ends.get)} ends at offset {low}, below the high "
                            f"watermark {hws[p]} (log ends {ends})")
        if len(set(starts.values())) != 1:
            problems.append(f"partition {p}: log start offsets differ {starts}")
        below = {i: [x for x in b if x[0] < low] for i, (b, _t) in logs.items()}
        ref_id = min(below)
        ref = below[ref_id]
        for i, b in below.items():
            if i == ref_id:
                continue
            if b == ref:
                continue
            for k, (x, y) in enumerate(zip(ref, b)):
                if x != y:
                    problems.append(
                        f"partition {p}: node {ref_id} and node {i} differ below offset {low}: batch #{k} is "
                        f"{x[0]}..{x[1]} ({len(x[2])} bytes, epoch {struct.unpack_from('>i', x[2], 12)[0]}) vs "
                        f"{y[0]}..{y[1]} ({len(y[2])} bytes, epoch {struct.unpack_from('>i', y[2], 12)[0]})")
                    break
            else:
                problems.append(f"partition {p}: node {ref_id} has {len(ref)} batches below {low}, node {i} {len(b)}")
        compared += sum(len(x[2]) for x in ref) * len(below)
    return problems, compared


# ---------------------------------------------------------------- the run

class Torture:
    def __init__(self, c, seed, topic="torture", partitions=8, rf=3, min_isr=2, log=None, confluent_rate=400,
                 js_pause_ms=20, isr_wait_s=90, read_wait_s=90):
        self.c = c
        self.seed = seed
        self.rng = random.Random(seed)
        self.topic, self.partitions, self.rf, self.min_isr = topic, partitions, rf, min_isr
        self.confluent_rate, self.js_pause_ms = confluent_rate, js_pause_ms
        self.isr_wait_s, self.read_wait_s = isr_wait_s, read_wait_s
        self.session_s = int(c.nodes[0].overrides.get("broker.session.timeout.ms", "9000")) / 1000.0
        self.h = History()
        self.checker = Checker(self.h)
        self.dir = tempfile.mkdtemp(prefix="samsa-torture-")
        self.timeline_path = os.path.join(self.dir, "timeline.txt")
        self.t0 = time.time()
        self._log = log or (lambda s: print(s, flush=True))
        self.producers, self.journals = [], []
        self.failovers = []      # dicts: cycle, fault, node, partitions, t_fault, metadata_s, ack_s
        self.cycles_done = 0
        self.faults_done = []
        self.read_seconds = []

    def log(self, text):
        line = f"[{time.time() - self.t0:8.2f}s] {text}"
        with open(self.timeline_path, "a") as f:
            f.write(line + "\n")
        self._log(f"torture: {line}")

    # -- set-up

    def create_topic(self):
        r = self.c.run_tool("kafka-topics", "--bootstrap-server", self.c.bootstrap, "--create", "--topic", self.topic,
                            "--partitions", str(self.partitions), "--replication-factor", str(self.rf),
                            "--config", f"min.insync.replicas={self.min_isr}")
        if r.returncode != 0 and INVALID_REPLICATION_FACTOR in r.stdout + r.stderr:
            raise ReplicationUnsupported((r.stdout + r.stderr).strip())
        assert r.returncode == 0, f"kafka-topics --create: {r.stdout}{r.stderr}"
        self.wait(lambda: isr_full(self.c, self.topic, self.partitions, self.rf), 30, "the topic led everywhere")

    def start_producers(self):
        stop = os.path.join(self.dir, "stop")
        ck = os.path.join(self.dir, "confluent.journal")
        self.producers.append(ProducerProc("confluent", [PYTHON, "-c", textwrap.dedent(CONFLUENT_PRODUCER),
                                                         self.c.bootstrap, self.topic, str(self.partitions), "ck",
                                                         ck, stop, str(self.confluent_rate)], ck, stop))
        self.journals.append(Journal(ck))
        if HAVE_KAFKAJS:
            js = os.path.join(self.dir, "kafkajs.journal")
            self.producers.append(ProducerProc("kafkajs", [NODE, os.path.join(JS_DIR, "torture_producer.js"),
                                                           self.c.bootstrap, self.topic, str(self.partitions), "js",
                                                           js, stop, str(self.js_pause_ms)], js, stop, cwd=JS_DIR))
            self.journals.append(Journal(js))
        else:
            self.log("kafkajs not installed (cd tests/integration/js && npm install): confluent-kafka only")
        self.stopfile = stop

    def ingest(self):
        for j in self.journals:
            j.ingest(self.h)

    def wait(self, cond, timeout, what):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                v = cond()
                if v:
                    return v
            except (OSError, ConnectionError, AssertionError) as e:
                last = e
            time.sleep(0.1)
        self.fail(f"timed out after {timeout}s waiting for {what} (last error {last!r})\n" + self.state_text())

    def wait_acks(self, more, timeout, what):
        """Waits until `more` new acknowledgements arrived (producers are writing)."""
        self.ingest()
        n0 = len(self.h.ack_order)

        def grown():
            self.ingest()
            return len(self.h.ack_order) >= n0 + more
        self.wait(grown, timeout, what)

    def state_text(self):
        lines = []
        for n in self.c.nodes:
            lines.append(f"node {n.node_id}: {'alive' if n.alive() else 'down'}, log {n.stdout_path}")
        try:
            for p, st in sorted(partition_state(self.c, self.topic).items()):
                lines.append(f"  partition {p}: leader {st[0]} epoch {st[1]} replicas {st[2]} isr {st[3]}")
        except (OSError, ConnectionError, AssertionError) as e:
            lines.append(f"  (no metadata: {e!r})")
        for pr in self.producers:
            if not pr.alive():
                lines.append(f"producer {pr.name} exited with {pr.proc.returncode}: {pr.stderr_text()}")
        return "\n".join(lines)

    def keep(self):
        """Copies node/etcd logs and data, journals and the timeline to a directory that outlives the test."""
        keep = tempfile.mkdtemp(prefix=f"samsa-torture-kept-seed{self.seed}-")
        for src, name in ((self.c.workdir, "samsa"), (self.c.etcd.workdir, "etcd"), (self.dir, "run")):
            try:
                shutil.copytree(src, os.path.join(keep, name), ignore=shutil.ignore_patterns("member"))
            except (OSError, shutil.Error) as e:
                with open(os.path.join(keep, "copy-errors.txt"), "a") as f:
                    f.write(f"{src}: {e!r}\n")
        return keep

    def fail(self, text):
        keep = self.keep()
        raise AssertionError(f"torture seed {self.seed}, cycle {self.cycles_done + 1}: {text}\n"
                             f"kept: {keep} (samsa/node*/broker.out, run/timeline.txt, run/*.journal)")

    # -- reading and checking

    def read_all(self):
        """Reads every partition from the beginning up to past every acknowledged offset, everything an
        earlier read saw and the high watermark at the start; checks the read; fails on violations."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        self.ingest()
        must_have = len(self.h.ack_order)
        started = time.time()
        target = {p: 0 for p in range(self.partitions)}
        for v in self.h.ack_order:
            for p, o in self.h.positions(v):
                target[p] = max(target[p], o + 1)
        for (p, o) in self.checker.at:
            target[p] = max(target[p], o + 1)
        cons = Consumer({"bootstrap.servers": self.c.bootstrap, "group.id": f"torture-read-{self.seed}",
                         "enable.auto.commit": False, "enable.partition.eof": False, "fetch.wait.max.ms": 100,
                         "topic.metadata.refresh.interval.ms": 1000})
        records, pos, errors = [], {}, []
        try:
            for p in range(self.partitions):
                try:
                    _lo, hi = cons.get_watermark_offsets(TopicPartition(self.topic, p), timeout=5)
                    target[p] = max(target[p], hi)
                except Exception as e:  # noqa: BLE001 - a missing watermark only shortens the read
                    errors.append(f"watermark {p}: {e}")
            cons.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)])
            deadline = time.time() + self.read_wait_s
            while time.time() < deadline:
                if all(pos.get(p, -1) + 1 >= target[p] for p in range(self.partitions)):
                    break
                for m in cons.consume(10000, 0.5):
                    if m.error():
                        errors.append(str(m.error()))
                        continue
                    records.append((m.partition(), m.offset(), m.value().decode()))
                    pos[m.partition()] = m.offset()
        finally:
            cons.close()
        short = {p: (pos.get(p, -1) + 1, target[p]) for p in range(self.partitions) if pos.get(p, -1) + 1 < target[p]}
        note = f"read stopped after {self.read_wait_s}s short of the targets (next, target) {short}" if short else ""
        took = time.time() - started
        self.read_seconds.append(took)
        self.ingest()  # sends journalled while the read ran (values it may have read); must_have stays
        r = self.h.read(records, must_have=must_have, started=started, note=note)
        new = self.checker.check_acks() + self.checker.check_read(r)
        self.log(f"read #{r.index}: {len(records)} records in {took:.1f}s, {must_have} acknowledged before it"
                 + (f", consumer errors {errors[:3]}" if errors else "") + (f"; {note}" if note else ""))
        if new:
            self.fail(self.checker.report().summary() + "\n" + self.state_text())
        if short:
            self.fail(note + "\n" + self.state_text())
        return r

    # -- faults

    def _leader_of_random_partition(self):
        st = partition_state(self.c, self.topic)
        p = self.rng.randrange(self.partitions)
        return p, st[p]

    def _led_by(self, node_id):
        st = partition_state(self.c, self.topic)
        return sorted(p for p, s in st.items() if s[0] == node_id)

    def _watch_failover(self, victim, parts, t_fault, cycle, fault):
        """Polls Metadata (from the other live nodes) until parts are led by another live node;
        records the time; bounded by the session timeout + 10 s."""
        entry = {"cycle": cycle, "fault": fault, "node": victim, "partitions": parts, "t_fault": t_fault,
                 "metadata_s": None, "ack_s": {}}
        self.failovers.append(entry)
        if not parts or self.rf == 1:  # one replica: nothing can take over
            return entry
        others = [n for n in self.c.live_nodes() if n.node_id != victim]
        deadline = t_fault + self.session_s + 10
        while time.time() < deadline:
            try:
                st = partition_state(self.c, self.topic, self.rng.choice(others))
                if all(st[p][0] not in (victim, -1) for p in parts):
                    entry["metadata_s"] = time.time() - t_fault
                    return entry
            except (OSError, ConnectionError, AssertionError, KeyError):
                pass
            time.sleep(0.1)
        return entry

    def _restart(self, node_id, wipe=False):
        n = self.c.node(node_id)
        if wipe:
            n.wipe()
        n.start(timeout=max(30, self.session_s * 3))

    def fault(self, cycle, kind):
        c = self.c
        if kind in ("kill9-leader", "kill9-follower", "kill9-controller", "wipe-restart"):
            if kind == "kill9-leader":
                p, st = self._leader_of_random_partition()
                victim, why = st[0], f"leader of partition {p}"
            elif kind == "kill9-follower":
                p, st = self._leader_of_random_partition()
                followers = [r for r in st[3] if r != st[0]]
                victim, why = self.rng.choice(followers), f"follower of partition {p} (leader {st[0]})"
            elif kind == "kill9-controller":
                victim, why = controller_id(c), "the controller"
            else:
                victim, why = self.rng.choice([n.node_id for n in c.nodes]), "a random node"
            parts = self._led_by(victim)
            ctl = controller_id(c)
            self.log(f"cycle {cycle}: {kind}: node {victim} ({why}; leads {parts}; controller {ctl})")
            t = time.time()
            c.kill9(victim)
            down = self.rng.uniform(0.5, self.session_s + 2)
            fo = self._watch_failover(victim, parts, t, cycle, kind)
            self.log(f"  failover of {parts} seen in Metadata after "
                     + (f"{fo['metadata_s']:.2f}s" if fo["metadata_s"] is not None else "never"))
            time.sleep(max(0.0, t + down - time.time()))
            self._restart(victim, wipe=(kind == "wipe-restart"))
            self.log(f"  node {victim} restarted{' with an empty data dir' if kind == 'wipe-restart' else ''} "
                     f"{time.time() - t:.1f}s after the kill")
        elif kind == "zombie-leader":
            p, st = self._leader_of_random_partition()
            victim = st[0]
            parts = self._led_by(victim)
            pause = self.session_s + self.rng.uniform(1.0, 3.0)
            self.log(f"cycle {cycle}: {kind}: SIGSTOP node {victim} (leader of partition {p}; leads {parts}) "
                     f"for {pause:.1f}s")
            t = time.time()
            c.sigstop(victim)
            try:
                fo = self._watch_failover(victim, parts, t, cycle, kind)
                time.sleep(max(0.0, t + pause - time.time()))
            finally:
                c.sigcont(victim)
            self.log("  failover seen in Metadata after "
                     + (f"{fo['metadata_s']:.2f}s" if fo["metadata_s"] is not None else "never") + "; SIGCONT")
        elif kind == "none":
            self.log(f"cycle {cycle}: no fault")
            time.sleep(1.0)
        elif kind == "kill9-etcd-leader":
            old = c.etcd.leader()
            self.log(f"cycle {cycle}: {kind}: etcd member {old.name}")
            c.etcd.kill9(old.index)
            new = c.etcd.leader(exclude=[old], timeout=20)
            self.log(f"  new etcd leader {new.name}")
            time.sleep(self.rng.uniform(0.5, 2.0))
            c.etcd.start_member(old.index)
        else:
            raise ValueError(kind)
        self.faults_done.append(kind)

    def restore(self, cycle):
        c = self.c
        c.etcd.wait_healthy(timeout=30)
        for n in c.nodes:
            if not n.alive():
                self.fail(f"node {n.node_id} exited with {n.proc.returncode if n.proc else None}\n"
                          + n.log_text()[-3000:])
        t = time.time()
        self.wait(lambda: isr_full(c, self.topic, self.partitions, self.rf), self.isr_wait_s,
                  f"every partition's ISR full after cycle {cycle}")
        self.log(f"  ISRs full after {time.time() - t:.1f}s")
        for pr in self.producers:
            if not pr.alive():
                self.fail(f"producer {pr.name} exited with {pr.proc.returncode}:\n{pr.stderr_text()}")

    def measure_acks(self):
        """For each failover, the first acknowledgement per client of each partition it moved."""
        self.ingest()
        by_part = {}
        for v in self.h.ack_order:
            p, _o, t = self.h.acks[v]
            by_part.setdefault(p, []).append((t, self.h.sent[v][0].split("-")[0]))
        for fo in self.failovers:
            if fo["ack_s"]:
                continue
            for p in fo["partitions"]:
                firsts = {}
                for t, client in by_part.get(p, []):
                    # An answer the old leader sent just before the kill can reach the client's
                    # callback a few milliseconds after it: only later ones count as the new leader's.
                    if t > fo["t_fault"] + 0.1 and client not in firsts:
                        firsts[client] = t - fo["t_fault"]
                fo["ack_s"][p] = firsts

    # -- the loop

    def run(self, cycles, deadline_s, faults=FAULTS):
        self.log(f"seed {self.seed}: {cycles} cycles, faults {', '.join(faults)}; {self.partitions} partitions, "
                 f"RF {self.rf}, min.insync.replicas {self.min_isr}; session {self.session_s}s; run dir {self.dir}")
        self.create_topic()
        self.start_producers()
        self.wait_acks(200, 60, "the producers under way")
        order = []
        for cycle in range(1, cycles + 1):
            if time.time() - self.t0 > deadline_s:
                self.fail(f"over the time budget of {deadline_s}s after {self.cycles_done} cycles")
            if not order:
                order = list(faults)
                self.rng.shuffle(order)
            kind = order.pop()
            self.wait_acks(50, 60, f"acknowledgements before cycle {cycle}")
            time.sleep(self.rng.uniform(0.2, 1.5))  # the fault lands at a random point of the load
            self.fault(cycle, kind)
            self.restore(cycle)
            self.wait_acks(50, 60, f"acknowledgements after cycle {cycle}")
            self.read_all()
            self.measure_acks()
            self.cycles_done = cycle
        return self.finish()

    def finish(self):
        c = self.c
        with open(self.stopfile, "w"):
            pass
        for pr in self.producers:
            code = pr.wait(150)
            if code != 0:
                self.fail(f"producer {pr.name} exited with {code}:\n{pr.stderr_text()}")
        self.ingest()
        self.log(f"producers stopped: {len(self.h.sent)} sent, {len(self.h.acks)} acknowledged, "
                 f"{len(self.h.failed)} failed, {len(self.h.unknown_outcome())} without an answer; "
                 f"ends {[j.end for j in self.journals]}")
        self.wait(lambda: isr_full(c, self.topic, self.partitions, self.rf), self.isr_wait_s, "ISRs full at the end")
        final = self.read_all()
        self.measure_acks()
        hws = {}
        for p, _o, _v in final.records:
            hws[p] = max(hws.get(p, 0), _o + 1)
        time.sleep(2)  # followers fetch once more and learn the last high watermark
        self.wait(lambda: isr_full(c, self.topic, self.partitions, self.rf), self.isr_wait_s,
                  "ISRs full before the stop")
        replicas = {p: st[2] for p, st in partition_state(c, self.topic).items()}
        try:
            c.stop(check=True)
        except AssertionError as e:
            self.fail(f"a node did not stop cleanly: {e}")
        problems, compared = compare_replicas(c, self.topic, self.partitions, hws, replicas)
        if problems:
            self.fail("replicas differ on disk:\n  " + "\n  ".join(problems[:20]))
        self.log(f"replicas byte-identical below each partition's smallest log end ({compared} bytes compared)")
        fatal = [x for j in self.journals for x in j.fatal]
        if fatal:
            self.fail(f"fatal producer errors (librdkafka's idempotence checks): {fatal[:5]}")
        slow = self.slow_failovers()
        for fo in self.failovers:
            self.log(f"failover cycle {fo['cycle']} {fo['fault']} node {fo['node']} partitions {fo['partitions']}: "
                     f"metadata {fo['metadata_s'] if fo['metadata_s'] is None else round(fo['metadata_s'], 2)}s, "
                     f"first acks {({p: {k: round(v, 2) for k, v in d.items()} for p, d in fo['ack_s'].items()})}")
        if slow:
            self.fail(f"leader failover slower than broker.session.timeout.ms + 1 s = {self.session_s + 1}s (first acknowledgement: + 2 s):\n  "
                      + "\n  ".join(slow))
        report = self.checker.report()
        self.log(f"done: {self.cycles_done} cycles ({', '.join(self.faults_done)}) in {time.time() - self.t0:.0f}s; "
                 + report.summary())
        return self

    def slow_failovers(self):
        """Failovers clients saw later than the session timeout + 1 s. Metadata naming a live leader
        counts for every fault. For kill -9 also the first acknowledgement of each moved partition
        (from whichever client got one first: a client's own retry back-off is not the broker's
        failover); a SIGSTOPped leader keeps its connections open, so clients only give up on it
        after their request timeout and the acknowledgement time is not the broker's to keep.
        The acknowledgement gets one more second than Metadata: after Metadata names the new
        leader a client still waits out its own back-off and metadata refresh (0.7 s once in CI,
        on two loaded cores under ASan, for a failover Metadata showed after 3.3 s)."""
        bound = self.session_s + 1.0
        ack_bound = bound + 1.0
        out = []
        if self.rf == 1:
            return out  # one replica: a dead leader's partitions wait for it, nothing fails over
        for fo in self.failovers:
            if not fo["partitions"]:
                continue
            if fo["metadata_s"] is None or fo["metadata_s"] > bound:
                out.append(f"cycle {fo['cycle']} {fo['fault']} node {fo['node']}: Metadata named new leaders for "
                           f"{fo['partitions']} after {fo['metadata_s']}s")
            if fo["fault"] == "zombie-leader":
                continue
            for p, firsts in fo["ack_s"].items():
                first = min(firsts.values()) if firsts else None
                if first is None or first > ack_bound:
                    out.append(f"cycle {fo['cycle']} {fo['fault']} node {fo['node']}: first acknowledgement on "
                               f"partition {p} after {first}s ({firsts})")
        return out

    def close(self):
        for pr in self.producers:
            pr.kill()

    def figures(self):
        r = self.checker.report()
        ms = [fo["metadata_s"] for fo in self.failovers if fo["metadata_s"] is not None]
        return {"seed": self.seed, "cycles": self.cycles_done, "faults": list(self.faults_done),
                "seconds": round(time.time() - self.t0), "sent": len(self.h.sent), "acknowledged": len(self.h.acks),
                "failed": len(self.h.failed), "records_checked": r.stats["records checked"],
                "reads": r.stats["reads"], "failover_metadata_max_s": round(max(ms), 2) if ms else None}


def run_torture(c, cycles, seed=None, deadline_s=1800, **kw):
    """Runs the fault loop on SamsaCluster c (3 nodes, 3 etcd members); returns the Torture with
    its figures(); raises AssertionError on any finding, ReplicationUnsupported if CreateTopics
    refuses the replication factor."""
    if seed is None:
        seed = int(os.environ.get("SAMSA_TORTURE_SEED", "0")) or random.randrange(1, 1 << 31)
    print(f"torture: seed {seed} (rerun with SAMSA_TORTURE_SEED={seed})", file=sys.stderr, flush=True)
    t = Torture(c, seed, **kw)
    try:
        t.run(cycles, deadline_s)
    finally:
        t.close()
    shutil.rmtree(t.dir, ignore_errors=True)  # journals of a passing run (a failing one was kept)
    return t
