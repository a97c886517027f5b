"""rlib.py - shared pieces of the reliability tests (quick ones in
tests/integration/test_reliability.py, long ones in tests/reliability/).

What is here: a crash-cycle driver (several acks=all producers in child
processes, kill -9 of the broker at a random moment, restart, verify), an
on-disk checker that reads a partition directory the way Kafka lays it out
(batch headers, .index, .timeindex) and reports any inconsistency, and
small /proc readers for RSS and open file descriptors.
"""
import json
import os
import random
import struct
import subprocess
import sys
import textwrap
import time

INTEGRATION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration")
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)

from conftest import PYTHON, tool_env  # noqa: E402


# ---- child processes ----

def run_py(code, timeout=120):
    """Run client code in Debian's Python; returns its last stdout line as JSON."""
    r = subprocess.run([PYTHON, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout,
                       env=tool_env())
    assert r.returncode == 0, f"client failed:\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}"
    lines = r.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def create_topic(b, name, partitions=1, *configs):
    args = ["--bootstrap-server", b.bootstrap, "--create", "--topic", name, "--partitions", str(partitions),
            "--replication-factor", "1"]
    for c in configs:
        args += ["--config", c]
    r = b.run_tool("kafka-topics", *args)
    assert r.returncode == 0, r.stderr


# A producer that sends until a stop file appears, then flushes. Every
# delivery report that succeeded is one line "partition offset value" in the
# journal, written before anything else can happen, so the journal is the
# ground truth of what was acknowledged. retries=0 and no idempotence: each
# value is sent at most once, so any duplicate in the log is the broker's.
PRODUCER = r'''
import sys, time, os
from confluent_kafka import Producer
bootstrap, topic, tag, nparts, stopfile, journal, codec, rate = sys.argv[1:9]
nparts, rate = int(nparts), float(rate)
t0 = time.time()
out = open(journal, "a", buffering=1)
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2, "enable.idempotence": False,
              "message.send.max.retries": 0, "message.timeout.ms": 3000, "compression.type": codec,
              "reconnect.backoff.max.ms": 200, "socket.timeout.ms": 3000})
def dr(err, m):
    if err is None:
        out.write("%d %d %s\n" % (m.partition(), m.offset(), m.value().decode()))
i = 0
while not os.path.exists(stopfile):
    try:
        p.produce(topic, value=("%s-%d" % (tag, i)).encode(), partition=i % nparts, on_delivery=dr)
        i += 1
    except BufferError:
        pass
    p.poll(0.0005 if i % 8 == 0 else 0)
    if rate > 0 and i > rate * (time.time() - t0):
        time.sleep(0.002)
p.flush(6)
out.close()
'''

# Reads partitions from given offsets to their high watermark: checks every
# CRC (librdkafka check.crcs) and prints {partition: [[offset, value], ...]}.
READER = r'''
import sys, json, time
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, starts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reliability-reader", "enable.auto.commit": False,
              "check.crcs": True, "enable.partition.eof": True, "fetch.max.bytes": 4194304})
out, ends = {}, {}
for p, start in starts.items():
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, int(p)), timeout=20)
    ends[int(p)] = hi
    out[p] = []
c.assign([TopicPartition(topic, int(p), int(s)) for p, s in starts.items() if ends[int(p)] > int(s)])
left = sum(1 for p, s in starts.items() if ends[int(p)] > int(s))
deadline = time.time() + 120
while left and time.time() < deadline:
    m = c.poll(1)
    if m is None:
        continue
    if m.error():
        if m.error().code() == -191:  # _PARTITION_EOF
            if m.offset() >= ends[m.partition()]:
                left -= 1
            continue
        raise SystemExit("consumer error: %s" % m.error())
    out[str(m.partition())].append([m.offset(), m.value().decode()])
c.close()
print(json.dumps({"ends": ends, "records": out}))
'''

GROUP_COMMIT = r'''
import sys, json
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, group, offsets, do_commit = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
tps = [TopicPartition(topic, int(p), int(o)) for p, o in offsets.items()]
if do_commit == "1":
    c.commit(offsets=tps, asynchronous=False)
got = c.committed([TopicPartition(topic, int(p)) for p in offsets], timeout=20)
c.close()
print(json.dumps({str(t.partition): t.offset for t in got}))
'''


def py_script(script, *args, timeout=180):
    r = subprocess.run([PYTHON, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env=tool_env())
    assert r.returncode == 0, f"client failed:\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def read_journal(path):
    acked = []
    if not os.path.exists(path):
        return acked
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:  # a torn last line cannot happen (the producer exits cleanly), but be strict
                acked.append((int(parts[0]), int(parts[1]), parts[2]))
    return acked


# ---- the on-disk checker ----

def _batches(path):
    """(position, base offset, last offset, max timestamp) of each batch header in a .log."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        if length < 49 or pos + 12 + length > len(data):
            raise AssertionError(f"{path}: torn batch at {pos} (length {length}, file {len(data)})")
        magic = data[pos + 16]
        if magic != 2:
            raise AssertionError(f"{path}: magic {magic} at {pos}")
        last_delta = struct.unpack_from(">i", data, pos + 23)[0]
        max_ts = struct.unpack_from(">q", data, pos + 35)[0]
        out.append((pos, base, base + last_delta, max_ts))
        pos += 12 + length
    if pos != len(data):
        raise AssertionError(f"{path}: {len(data) - pos} trailing bytes after the last batch")
    return out


def check_partition_dir(d, dense=True):
    """Checks one partition dir; returns (first offset, next offset, batches).
    Offsets must be increasing across batches and segments (dense when the
    log was never compacted), every .index entry must name the last offset
    of the batch at its position, .timeindex entries must increase and point
    inside the segment."""
    logs = sorted(f for f in os.listdir(d) if f.endswith(".log"))
    expect = None
    first = None
    total = 0
    for name in logs:
        seg_base = int(name[:-4])
        batches = _batches(os.path.join(d, name))
        by_pos = {pos: (b, last) for pos, b, last, _ in batches}
        for pos, b, last, _ in batches:
            if first is None:
                first = b
            if expect is not None:
                if dense:
                    assert b == expect, f"{d}/{name}: batch at {pos} starts at {b}, expected {expect}"
                else:
                    assert b >= expect, f"{d}/{name}: offsets go back at {pos}"
            assert b >= seg_base, f"{d}/{name}: batch base {b} below segment base"
            expect = last + 1
            total += 1
        idx = os.path.join(d, name[:-4] + ".index")
        if os.path.exists(idx):
            with open(idx, "rb") as f:
                raw = f.read()
            assert len(raw) % 8 == 0, f"{idx}: size {len(raw)} not a multiple of 8"
            prev = -1
            for i in range(0, len(raw), 8):
                rel, pos = struct.unpack_from(">ii", raw, i)
                if i > 0 and rel == 0 and pos == 0:
                    break  # preallocated tail (Kafka's layout)
                assert pos in by_pos, f"{idx}: entry {i // 8} points at {pos}, not a batch start"
                assert seg_base + rel == by_pos[pos][1], \
                    f"{idx}: entry {i // 8} says offset {seg_base + rel}, batch at {pos} ends at {by_pos[pos][1]}"
                assert rel > prev, f"{idx}: entries not increasing at {i // 8}"
                prev = rel
        tix = os.path.join(d, name[:-4] + ".timeindex")
        if os.path.exists(tix):
            with open(tix, "rb") as f:
                raw = f.read()
            assert len(raw) % 12 == 0, f"{tix}: size {len(raw)} not a multiple of 12"
            prev_ts = None
            seg_last = batches[-1][2] if batches else seg_base
            for i in range(0, len(raw), 12):
                ts, rel = struct.unpack_from(">qi", raw, i)
                if i > 0 and ts == 0 and rel == 0:
                    break
                assert prev_ts is None or ts > prev_ts, f"{tix}: timestamps not increasing at {i // 12}"
                assert seg_base <= seg_base + rel <= seg_last, f"{tix}: entry {i // 12} outside the segment"
                prev_ts = ts
    return first, expect, total


# ---- /proc ----

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid):
    """(sockets, files still on disk, files deleted but open, other) among pid's fds."""
    socks = files = deleted = other = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            socks += 1
        elif target.endswith(" (deleted)"):
            deleted += 1
        elif target.startswith("/"):
            files += 1
        else:
            other += 1
    return socks, files, deleted, other


def nofile_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3]), int(line.split()[4])
    return -1, -1


# ---- crash cycles ----

class CrashRun:
    """Repeated kill -9 of a broker under acks=all load, with checks after each restart."""

    def __init__(self, b, topic="crash", partitions=4, producers=3, group="crash-group", codec="none", seed=None,
                 rate=20000):
        self.b = b
        self.topic = topic
        self.partitions = partitions
        self.producers = producers
        self.group = group
        self.codec = codec
        self.rate = rate  # records/s per producer, 0 = as fast as possible
        self.rng = random.Random(seed)
        self.acked = {}          # value -> (partition, offset)
        self.verified = {p: 0 for p in range(partitions)}  # offsets below are checked
        self.committed = {}      # group offsets committed before the last crash
        self.cycles = 0
        self.records_checked = 0
        self.recovery_lines = 0
        create_topic(b, topic, partitions)

    def _produce_and_kill(self, min_s, max_s):
        work = os.path.join(self.b.workdir, f"cycle{self.cycles}")
        os.makedirs(work, exist_ok=True)
        stop = os.path.join(work, "stop")
        procs = []
        for i in range(self.producers):
            journal = os.path.join(work, f"p{i}.journal")
            tag = f"c{self.cycles}p{i}"
            procs.append((journal, subprocess.Popen(
                [PYTHON, "-c", PRODUCER, self.b.bootstrap, self.topic, tag, str(self.partitions), stop, journal,
                 self.codec, str(self.rate)], env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        time.sleep(self.rng.uniform(min_s, max_s))
        self.b.kill9()
        open(stop, "w").close()
        new = []
        for journal, p in procs:
            try:
                _, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError("a producer did not stop after the broker died")
            assert p.returncode == 0, f"producer failed: {err.decode()[-2000:]}"
            new += read_journal(journal)
        for part, off, value in new:
            assert value not in self.acked, f"{value} acknowledged twice"
            self.acked[value] = (part, off)
        return new

    def cycle(self, min_s=0.3, max_s=1.5):
        new = self._produce_and_kill(min_s, max_s)
        self.b.start()
        self.cycles += 1
        self.verify(new)
        return len(new)

    def verify(self, new):
        # 1. committed group offsets survived the crash
        if self.committed:
            got = py_script(GROUP_COMMIT, self.b.bootstrap, self.topic, self.group,
                            json.dumps({str(p): 0 for p in self.committed}), 0)
            got = {int(p): o for p, o in got.items()}
            assert got == self.committed, f"group offsets changed across the crash: {got} != {self.committed}"
        # 2. everything acknowledged in this cycle is there, once, at its offset
        res = py_script(READER, self.b.bootstrap, self.topic, json.dumps({str(p): o for p, o in self.verified.items()}))
        want = {}
        for part, off, value in new:
            want[(part, off)] = value
        seen = set()
        for p_str, recs in res["records"].items():
            p = int(p_str)
            expect = self.verified[p]
            for off, value in recs:
                assert off == expect, f"partition {p}: offset {off} after {expect - 1} (not dense)"
                expect = off + 1
                assert value not in seen, f"{value} appears twice"
                seen.add(value)
                if value in self.acked:
                    assert self.acked[value] == (p, off), \
                        f"{value} acknowledged at {self.acked[value]}, found at {(p, off)}"
                want.pop((p, off), None)
            assert expect == res["ends"][p_str], f"partition {p}: read to {expect}, high watermark {res['ends'][p_str]}"
            self.records_checked += len(recs)
            self.verified[p] = expect
        assert not want, f"{len(want)} acknowledged records missing, e.g. {sorted(want.items())[:5]}"
        # 3. indexes and offsets on disk agree with the log
        for p in range(self.partitions):
            check_partition_dir(os.path.join(self.b.log_dir, f"{self.topic}-{p}"))
        # 4. commit the verified ends for the next crash to check
        got = py_script(GROUP_COMMIT, self.b.bootstrap, self.topic, self.group,
                        json.dumps({str(p): o for p, o in self.verified.items()}), 1)
        self.committed = {int(p): o for p, o in got.items()}
        assert self.committed == self.verified, f"commit did not take: {self.committed} != {self.verified}"

    def final_check(self):
        """Everything acknowledged over all cycles, read again from offset 0."""
        res = py_script(READER, self.b.bootstrap, self.topic, json.dumps({str(p): 0 for p in range(self.partitions)}))
        found = {}
        for p_str, recs in res["records"].items():
            expect = 0
            for off, value in recs:
                assert off == expect, f"partition {p_str}: offset {off}, expected {expect}"
                expect += 1
                assert value not in found, f"{value} twice"
                found[value] = (int(p_str), off)
        missing = [v for v, at in self.acked.items() if found.get(v) != at]
        assert not missing, f"{len(missing)} acknowledged records missing or moved, e.g. {missing[:5]}"
        self.recovery_lines = self.b.log_text().count("recovery truncated")
        return len(found)
