"""Consumer groups, the rest of issue 5's list: rebalances that converge with
no message consumed twice for every client (kafka-python, confluent-kafka,
kafkajs, our console consumer), the assignors through the broker, eviction of
a member killed without leaving, static membership, bad group requests over
raw sockets next to a group that keeps consuming, offsets retention, and
kafka-consumer-groups output against Kafka 3.6.1's formats.

test_groups.py holds the basics (split, resume, kill -9 durability, admin,
the tool's plain paths); this file does not repeat them. Clients run in a
child /usr/bin/python3 (or node) and every wait has a deadline.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import textwrap
import time

import pytest

from conftest import BIN, CHILD_THREAD_GUARD, PYTHON, tool_env

FAST = {"group_initial_rebalance_delay_ms": "0", "offsets_topic_num_partitions": "3",
        "group_min_session_timeout_ms": "1000"}
JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
NODE = shutil.which("node") or "/usr/bin/node"

ERR_NONE = 0
ERR_OFFSET_METADATA_TOO_LARGE = 12
ERR_ILLEGAL_GENERATION = 22
ERR_INCONSISTENT_GROUP_PROTOCOL = 23
ERR_UNKNOWN_MEMBER_ID = 25
ERR_INVALID_SESSION_TIMEOUT = 26
ERR_REBALANCE_IN_PROGRESS = 27
ERR_MEMBER_ID_REQUIRED = 79
ERR_GROUP_MAX_SIZE_REACHED = 81
ERR_FENCED_INSTANCE_ID = 82


# ---- helpers: child clients, topics, the tool ----

def run_py(code, timeout=90):
    r = subprocess.run([PYTHON, "-c", CHILD_THREAD_GUARD + textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout, env=tool_env())
    assert r.returncode == 0, f"client failed:\nstdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-4000:]}"
    return r.stdout


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def create_topic(b, name, partitions):
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", name,
                   "--partitions", str(partitions), "--replication-factor", "1")
    assert r.returncode == 0, r.stderr


def produce(b, topic, n, partitions, start=0):
    """n records with values v<start>..v<start+n-1>, round robin over partitions."""
    run_py(f"""
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "linger.ms": 5}})
        for i in range({start}, {start + n}):
            p.produce("{topic}", value=b"v%d" % i, partition=i % {partitions})
        assert p.flush(30) == 0
    """)


def cg(b, *args):
    return b.run_tool("kafka-consumer-groups", "--bootstrap-server", b.bootstrap, *args)


def members(b, group):
    """{consumer-id: (client-id, [partitions])} from --describe --members --verbose."""
    lines = cg(b, "--describe", "--group", group, "--members", "--verbose").stdout.splitlines()
    if len(lines) < 2 or not lines[1].startswith("GROUP "):
        return {}
    n = 5 if "GROUP-INSTANCE-ID" in lines[1] else 4  # fields before #PARTITIONS
    out = {}
    for line in lines[2:]:
        f = line.split(None, n + 1)
        parts = [int(x) for m in re.finditer(r"\(([\d,]+)\)", f[-1]) for x in m.group(1).split(",")]
        out[f[1]] = (f[n - 1], sorted(parts))
    return out


def wait_for(pred, deadline, what, interval=0.2):
    end = time.time() + deadline
    last = None
    while time.time() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")


def check_exactly_once(consumed, total):
    """consumed: list of [value, ...]; every value v0..v<total-1> exactly once."""
    values = [c[0] for c in consumed]
    dup = sorted({v for v in values if values.count(v) > 1})
    assert not dup, f"consumed twice: {dup[:20]}"
    assert sorted(values) == sorted(f"v{i}" for i in range(total)), \
        f"missing: {sorted(set(f'v{i}' for i in range(total)) - set(values))[:20]}"


# ---- raw group requests (non-flexible versions, request header v1) ----

API_OFFSET_COMMIT, API_OFFSET_FETCH, API_JOIN, API_HEARTBEAT, API_LEAVE, API_SYNC = 8, 9, 11, 12, 13, 14


def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def kbytes(b):
    return struct.pack(">i", len(b)) + b


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def str(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def bytes(self):
        n = self.take(">i")
        if n < 0:
            return None
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b


class Raw:
    """One connection that speaks just enough of the group protocol."""

    def __init__(self, b, client_id="raw-group-test"):
        self.s = socket.create_connection((b.host, b.port), timeout=20)
        self.client_id = client_id
        self.corr = 0

    def close(self):
        self.s.close()

    def send(self, api, version, body):
        self.corr += 1
        payload = struct.pack(">hhi", api, version, self.corr) + kstr(self.client_id) + body
        self.s.sendall(struct.pack(">i", len(payload)) + payload)
        return self.corr

    def recv(self, corr):
        head = self._exact(4)
        (size,) = struct.unpack(">i", head)
        assert 4 <= size < 64 << 20
        payload = self._exact(size)
        assert struct.unpack_from(">i", payload)[0] == corr
        return Reader(payload[4:])

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            assert chunk, "broker closed the connection"
            buf += chunk
        return buf

    # JoinGroup v5: may be held by the broker until the rebalance completes
    def join_send(self, group, member_id="", instance=None, protocols=(("range", b"\x00\x01"),),
                  session=10000, rebalance=10000, ptype="consumer"):
        body = kstr(group) + struct.pack(">ii", session, rebalance) + kstr(member_id) + kstr(instance)
        body += kstr(ptype) + struct.pack(">i", len(protocols))
        for name, meta in protocols:
            body += kstr(name) + kbytes(meta)
        return self.send(API_JOIN, 5, body)

    def join_recv(self, corr):
        r = self.recv(corr)
        _throttle, err, gen = r.take(">ihi")
        proto, leader, member = r.str(), r.str(), r.str()
        ms = [(r.str(), r.str(), r.bytes()) for _ in range(r.take(">i"))]
        return {"error": err, "generation": gen, "protocol": proto, "leader": leader, "member_id": member,
                "members": ms}

    def join(self, group, **kw):
        return self.join_recv(self.join_send(group, **kw))

    def join_new(self, group, **kw):
        """KIP-394: the first join gets MEMBER_ID_REQUIRED and the id to join with."""
        j = self.join(group, **kw)
        assert j["error"] == ERR_MEMBER_ID_REQUIRED and j["member_id"], j
        return self.join(group, member_id=j["member_id"], **kw)

    # SyncGroup v3
    def sync_send(self, group, generation, member_id, assignments=(), instance=None):
        body = kstr(group) + struct.pack(">i", generation) + kstr(member_id) + kstr(instance)
        body += struct.pack(">i", len(assignments))
        for mid, data in assignments:
            body += kstr(mid) + kbytes(data)
        return self.send(API_SYNC, 3, body)

    def sync_recv(self, corr):
        r = self.recv(corr)
        _throttle, err = r.take(">ih")
        return err, r.bytes()

    def sync(self, *a, **kw):
        return self.sync_recv(self.sync_send(*a, **kw))

    # Heartbeat v3
    def heartbeat(self, group, generation, member_id, instance=None):
        c = self.send(API_HEARTBEAT, 3, kstr(group) + struct.pack(">i", generation) + kstr(member_id) + kstr(instance))
        return self.recv(c).take(">ih")[1]

    # LeaveGroup v3 (batch)
    def leave(self, group, members):
        body = kstr(group) + struct.pack(">i", len(members))
        for mid, inst in members:
            body += kstr(mid) + kstr(inst)
        r = self.recv(self.send(API_LEAVE, 3, body))
        _throttle, err = r.take(">ih")
        return err, [(r.str(), r.str(), r.take(">h")) for _ in range(r.take(">i"))]

    # OffsetCommit v7 -> {(topic, partition): error}
    def commit(self, group, generation, member_id, offsets, instance=None):
        return self._commit(7, group, generation, member_id, offsets, instance=instance)

    # OffsetCommit v2: the request names its own retention
    def commit_v2(self, group, offsets, retention_ms):
        return self._commit(2, group, -1, "", offsets, retention_ms=retention_ms)

    def _commit(self, version, group, generation, member_id, offsets, instance=None, retention_ms=-1):
        body = kstr(group) + struct.pack(">i", generation) + kstr(member_id)
        body += kstr(instance) if version >= 7 else struct.pack(">q", retention_ms)
        by_topic = {}
        for t, p, o, *meta in offsets:
            by_topic.setdefault(t, []).append((p, o, meta[0] if meta else ""))
        body += struct.pack(">i", len(by_topic))
        for t, parts in by_topic.items():
            body += kstr(t) + struct.pack(">i", len(parts))
            for p, o, meta in parts:
                body += struct.pack(">iq", p, o)
                if version >= 6:
                    body += struct.pack(">i", -1)
                body += kstr(meta)
        r = self.recv(self.send(API_OFFSET_COMMIT, version, body))
        if version >= 3:
            r.take(">i")
        out = {}
        for _ in range(r.take(">i")):
            t = r.str()
            for _ in range(r.take(">i")):
                p, err = r.take(">ih")
                out[(t, p)] = err
        return out

    # OffsetFetch v5 -> {(topic, partition): offset}
    def fetch_offsets(self, group, topic, partitions):
        body = kstr(group) + struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", len(partitions))
        body += b"".join(struct.pack(">i", p) for p in partitions)
        r = self.recv(self.send(API_OFFSET_FETCH, 5, body))
        r.take(">i")
        out = {}
        for _ in range(r.take(">i")):
            t = r.str()
            for _ in range(r.take(">i")):
                p, off, _epoch = r.take(">iqi")
                r.str()
                assert r.take(">h") == 0
                out[(t, p)] = off
        assert r.take(">h") == 0
        return out


# ---- a group consuming in the background while another is abused ----

VICTIM = """
import json, sys, threading, time
from confluent_kafka import Consumer
events = {"assign": 0, "revoke": 0, "lost": 0}
def on_assign(c, ps): events["assign"] += 1
def on_revoke(c, ps): events["revoke"] += 1
def on_lost(c, ps): events["lost"] += 1
c = Consumer({"bootstrap.servers": BOOT, "group.id": GROUP, "auto.offset.reset": "earliest",
              "session.timeout.ms": 6000, "heartbeat.interval.ms": 300, "enable.auto.commit": False})
c.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
got, ready, end = [], False, time.time() + 60
while not stop.is_set() and time.time() < end:
    m = c.poll(0.1)
    if not ready and c.assignment():
        ready = True
        print("READY", flush=True)
    if m is None or m.error():
        continue
    got.append(m.value().decode())
    c.commit(message=m, asynchronous=False)
c.close()
print(json.dumps({"events": events, "got": got}), flush=True)
"""


class Victim:
    def __init__(self, b, group, topic):
        code = VICTIM.replace("BOOT", repr(b.bootstrap)).replace("GROUP", repr(group)).replace("TOPIC", repr(topic))
        self.p = subprocess.Popen([PYTHON, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=tool_env())
        line = self.p.stdout.readline()  # bounded: the child gives up after 60 s
        assert line.strip() == "READY", line + self.p.stderr.read()

    def finish(self):
        out, err = self.p.communicate("", timeout=30)
        assert self.p.returncode == 0, err
        return last_json(out)


def test_bad_group_requests_get_kafka_errors_and_spare_other_groups(broker_factory):
    b = broker_factory(**FAST, group_max_size="2")
    create_topic(b, "busy", 4)
    produce(b, "busy", 40, 4)
    victim = Victim(b, "victim", "busy")

    a = Raw(b, "raw-a")
    j = a.join_new("bad")
    assert j["error"] == 0 and j["generation"] == 1 and j["leader"] == j["member_id"], j
    me, gen = j["member_id"], j["generation"]
    assert a.sync("bad", gen, me, [(me, b"\x00\x00")]) == (0, b"\x00\x00")
    assert a.heartbeat("bad", gen, me) == ERR_NONE

    # unknown member
    assert a.heartbeat("bad", gen, "nobody") == ERR_UNKNOWN_MEMBER_ID
    assert a.heartbeat("no-such-group", 1, "nobody") == ERR_UNKNOWN_MEMBER_ID
    assert a.sync("bad", gen, "nobody")[0] == ERR_UNKNOWN_MEMBER_ID
    assert a.join("bad", member_id="nobody")["error"] == ERR_UNKNOWN_MEMBER_ID
    assert a.commit("bad", gen, "nobody", [("busy", 0, 1)]) == {("busy", 0): ERR_UNKNOWN_MEMBER_ID}
    err, per_member = a.leave("bad", [("nobody", None)])
    assert err == 0 and per_member == [("nobody", None, ERR_UNKNOWN_MEMBER_ID)]

    # wrong generation
    assert a.heartbeat("bad", gen + 1, me) == ERR_ILLEGAL_GENERATION
    assert a.sync("bad", gen + 5, me)[0] == ERR_ILLEGAL_GENERATION
    assert a.commit("bad", gen + 1, me, [("busy", 1, 1)]) == {("busy", 1): ERR_ILLEGAL_GENERATION}

    # empty protocol list, from a new member and from the known one
    assert a.join("bad", protocols=())["error"] == ERR_INCONSISTENT_GROUP_PROTOCOL
    assert a.join("fresh", protocols=())["error"] == ERR_INCONSISTENT_GROUP_PROTOCOL
    assert a.join("bad", member_id=me, protocols=())["error"] == ERR_INCONSISTENT_GROUP_PROTOCOL
    # a protocol the group does not speak
    assert a.join("bad", protocols=(("other", b""),))["error"] == ERR_INCONSISTENT_GROUP_PROTOCOL

    # session timeout outside group.min/max.session.timeout.ms
    assert a.join("bad", session=10)["error"] == ERR_INVALID_SESSION_TIMEOUT
    assert a.join("fresh", session=1800001)["error"] == ERR_INVALID_SESSION_TIMEOUT

    # oversized metadata: offset metadata beyond offset.metadata.max.bytes (4096)
    assert a.commit("bad", gen, me, [("busy", 2, 3, "m" * 5000), ("busy", 3, 4, "ok")]) == \
        {("busy", 2): ERR_OFFSET_METADATA_TOO_LARGE, ("busy", 3): ERR_NONE}
    assert a.fetch_offsets("bad", "busy", [2, 3]) == {("busy", 2): -1, ("busy", 3): 4}
    # ...and a 1 MiB protocol metadata from a member of its own group
    big = Raw(b, "raw-big")
    jb = big.join_new("big-meta", protocols=(("range", b"\x07" * (1 << 20)),))
    assert jb["error"] == 0 and len(jb["members"][0][2]) == 1 << 20
    big.close()

    # group.max.size=2: a second member fits (the first rejoins), a third does not
    b2 = Raw(b, "raw-b")
    j2 = b2.join(("bad"))
    assert j2["error"] == ERR_MEMBER_ID_REQUIRED
    c2 = b2.join_send("bad", member_id=j2["member_id"])
    assert wait_for(lambda: a.heartbeat("bad", gen, me) == ERR_REBALANCE_IN_PROGRESS, 10, "rebalance")
    j1 = a.join("bad", member_id=me)
    j2 = b2.join_recv(c2)
    assert j1["error"] == j2["error"] == 0 and j1["generation"] == j2["generation"] == gen + 1
    assert j1["leader"] == me and len(j1["members"]) == 2 and j2["members"] == []
    c2 = b2.sync_send("bad", gen + 1, j2["member_id"])
    assert a.sync("bad", gen + 1, me, [(me, b"A"), (j2["member_id"], b"B")]) == (0, b"A")
    assert b2.sync_recv(c2) == (0, b"B")
    c3 = Raw(b, "raw-c")
    assert c3.join("bad")["error"] == ERR_GROUP_MAX_SIZE_REACHED
    assert c3.join("bad", instance="static-3")["error"] == ERR_GROUP_MAX_SIZE_REACHED
    # the full group still works
    assert a.heartbeat("bad", gen + 1, me) == ERR_NONE
    assert b2.heartbeat("bad", gen + 1, j2["member_id"]) == ERR_NONE
    err, per_member = a.leave("bad", [(me, None), (j2["member_id"], None)])
    assert err == 0 and [m[2] for m in per_member] == [0, 0]
    for r in (a, b2, c3):
        r.close()

    # the other group never rebalanced and keeps consuming
    produce(b, "busy", 40, 4, start=40)
    time.sleep(1.0)
    res = victim.finish()
    assert res["events"] == {"assign": 1, "revoke": 1, "lost": 0}, res["events"]  # the revoke is close()
    check_exactly_once([[v] for v in res["got"]], 80)


def test_static_member_rejoin_and_fencing_raw(broker_factory):
    broker = broker_factory(**FAST)
    create_topic(broker, "st-topic", 1)
    a = Raw(broker, "static-a")
    j = a.join("st", instance="inst-1")  # a static member joins without MEMBER_ID_REQUIRED
    assert j["error"] == 0 and j["member_id"].startswith("inst-1-"), j
    old, gen = j["member_id"], j["generation"]
    assert a.sync("st", gen, old, [(old, b"P0")], instance="inst-1") == (0, b"P0")
    assert a.commit("st", gen, old, [("st-topic", 0, 5)], instance="inst-1") == {("st-topic", 0): 0}

    # the "restarted" process: unknown member id, same instance id
    r = Raw(broker, "static-a")
    j2 = r.join("st", instance="inst-1")
    assert j2["error"] == 0 and j2["generation"] == gen and j2["member_id"] != old, j2
    assert r.sync("st", gen, j2["member_id"], instance="inst-1") == (0, b"P0")  # kept assignment
    st = cg(broker, "--describe", "--group", "st", "--state").stdout.split("\n")[2].split()
    assert st[-2:] == ["Stable", "1"], st

    # the old incarnation is fenced everywhere
    assert a.heartbeat("st", gen, old, instance="inst-1") == ERR_FENCED_INSTANCE_ID
    assert a.sync("st", gen, old, instance="inst-1")[0] == ERR_FENCED_INSTANCE_ID
    assert a.commit("st", gen, old, [("st-topic", 0, 9)], instance="inst-1") == {("st-topic", 0): ERR_FENCED_INSTANCE_ID}
    assert a.join("st", member_id=old, instance="inst-1")["error"] == ERR_FENCED_INSTANCE_ID
    assert r.heartbeat("st", gen, j2["member_id"], instance="inst-1") == ERR_NONE
    assert r.fetch_offsets("st", "st-topic", [0]) == {("st-topic", 0): 5}
    err, per_member = r.leave("st", [("", "inst-1")])
    assert err == 0 and per_member == [("", "inst-1", 0)]
    a.close()
    r.close()


STATIC_MEMBER = """
import json, os, sys, time
from confluent_kafka import Consumer
events = []
def on_assign(c, ps): events.append(["assign", sorted(p.partition for p in ps)]); print(json.dumps(events), flush=True)
def on_revoke(c, ps): events.append(["revoke", sorted(p.partition for p in ps)]); print(json.dumps(events), flush=True)
c = Consumer({"bootstrap.servers": BOOT, "group.id": "static-g", "group.instance.id": INSTANCE,
              "session.timeout.ms": 8000, "heartbeat.interval.ms": 300, "client.id": INSTANCE})
c.subscribe(["stat"], on_assign=on_assign, on_revoke=on_revoke)
end = time.time() + 60
while time.time() < end and not os.path.exists(STOPFILE):
    c.poll(0.1)
c.close()
"""


def test_static_member_restart_keeps_assignment(broker_factory, tmp_path):
    """kill -9 of a static member and a restart inside session.timeout.ms: no rebalance."""
    b = broker_factory(**FAST)
    create_topic(b, "stat", 4)
    stopfile = str(tmp_path / "stop")
    lines = {}

    def start(inst):
        code = STATIC_MEMBER.replace("BOOT", repr(b.bootstrap)).replace("INSTANCE", repr(inst)) \
            .replace("STOPFILE", repr(stopfile))
        p = subprocess.Popen([PYTHON, "-c", code], stdout=open(tmp_path / f"{inst}.out", "a"),
                             stderr=subprocess.DEVNULL, env=tool_env())
        return p

    def events(inst):
        try:
            text = (tmp_path / f"{inst}.out").read_text().strip().splitlines()
        except OSError:
            return []
        return json.loads(text[-1]) if text else []

    p1, p2 = start("s1"), start("s2")
    try:
        def settled():
            m = members(b, "static-g")
            return m if len(m) == 2 and sorted(sum((v[1] for v in m.values()), [])) == [0, 1, 2, 3] \
                and all(len(v[1]) == 2 for v in m.values()) else None
        before = wait_for(settled, 30, "two static members with two partitions each")
        wait_for(lambda: events("s1") and events("s2") and events("s2")[-1][0] == "assign"
                 and len(events("s2")[-1][1]) == 2, 10, "s2 assigned")
        s2_before = events("s2")
        s1_parts = events("s1")[-1][1]
        p1.kill()
        p1.wait()
        (tmp_path / "s1.out").write_text("")
        p1 = start("s1")
        wait_for(lambda: events("s1"), 8, "restarted s1 assigned")
        assert events("s1") == [["assign", s1_parts]]
        time.sleep(1.0)
        assert events("s2") == s2_before, "the other member saw a rebalance"
        after = members(b, "static-g")
        assert sorted(v[1] for v in after.values()) == sorted(v[1] for v in before.values())
        assert set(after) != set(before)  # s1 got a new member id
        lines = cg(b, "--describe", "--group", "static-g", "--members").stdout.splitlines()
        assert lines[1].split() == ["GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
    finally:
        open(stopfile, "w").close()
        for p in (p1, p2):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_killed_member_is_evicted_after_session_timeout(broker_factory, tmp_path):
    b = broker_factory(**FAST)
    create_topic(b, "evict", 4)
    code = """
        import os, time
        from confluent_kafka import Consumer
        c = Consumer({"bootstrap.servers": BOOT, "group.id": "evict-g", "session.timeout.ms": 3000,
                      "heartbeat.interval.ms": 300, "client.id": CID})
        c.subscribe(["evict"])
        end = time.time() + 60
        while time.time() < end and not os.path.exists(STOP):
            c.poll(0.1)
        c.close()
    """
    stop = str(tmp_path / "stop")
    procs = [subprocess.Popen([PYTHON, "-c", textwrap.dedent(code).replace("BOOT", repr(b.bootstrap))
                               .replace("CID", repr(cid)).replace("STOP", repr(stop))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=tool_env())
             for cid in ("victim-1", "survivor-2")]
    try:
        wait_for(lambda: sorted(len(v[1]) for v in members(b, "evict-g").values()) == [2, 2], 30, "2+2 split")
        procs[0].kill()  # SIGKILL: no LeaveGroup
        procs[0].wait()
        killed = time.time()
        time.sleep(1.5)
        m = members(b, "evict-g")
        assert len(m) == 2, f"evicted before the session timeout: {m}"
        m = wait_for(lambda: (lambda m: m if len(m) == 1 and list(m.values())[0][1] == [0, 1, 2, 3] else None)(
            members(b, "evict-g")), 15, "survivor owns all partitions")
        elapsed = time.time() - killed
        assert 2.5 <= elapsed < 15, elapsed
        assert list(m.values())[0][0] == "survivor-2"
    finally:
        open(stop, "w").close()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_offsets_retention_expires_empty_group_offsets(broker_factory):
    b = broker_factory(**FAST, offsets_retention_minutes="1", offsets_retention_check_interval_ms="200")
    create_topic(b, "ret", 2)
    r = Raw(b)
    # v2 carries its own retention; v7 uses offsets.retention.minutes (1 minute here)
    assert r.commit_v2("short-lived", [("ret", 0, 3), ("ret", 1, 4)], 1000) == {("ret", 0): 0, ("ret", 1): 0}
    assert r.commit("kept", -1, "", [("ret", 0, 7)]) == {("ret", 0): 0}
    assert r.fetch_offsets("short-lived", "ret", [0, 1]) == {("ret", 0): 3, ("ret", 1): 4}
    assert sorted(cg(b, "--list").stdout.split()) == ["kept", "short-lived"]
    wait_for(lambda: r.fetch_offsets("short-lived", "ret", [0, 1]) == {("ret", 0): -1, ("ret", 1): -1},
             10, "expired offsets")
    assert r.fetch_offsets("kept", "ret", [0]) == {("ret", 0): 7}
    # an empty group without offsets is gone
    assert cg(b, "--list").stdout.split() == ["kept"]
    assert "Removed 2 expired offsets for group short-lived" in b.log_text()
    r.close()
    # the expiry is durable: the tombstones are replayed on restart
    b.restart()
    r = Raw(b)
    assert r.fetch_offsets("short-lived", "ret", [0, 1]) == {("ret", 0): -1, ("ret", 1): -1}
    assert r.fetch_offsets("kept", "ret", [0]) == {("ret", 0): 7}
    r.close()


# ---- rebalances with commit-per-message, one client library at a time ----
#
# Two members split 4 partitions, a third joins, the first leaves, while a
# producer keeps writing. Each member commits every record before counting
# it (a commit refused by a rebalance means the record is not counted and is
# read again from the committed offset), so a record counted twice is a
# record the broker let two members own, or an offset it lost.

REBALANCE = """
import json, os, sys, threading, time
LIB, BOOT, TOPIC, GROUP, STRATEGY, TOOL = sys.argv[1:7]
lock = threading.Lock()
consumed, assigned, stops, threads = [], {}, {}, {}

def kafka_python_member(name, stop):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import CommitFailedError, KafkaError
    from kafka.structs import OffsetAndMetadata
    c = KafkaConsumer(bootstrap_servers=BOOT, group_id=GROUP, client_id=name, enable_auto_commit=False,
                      auto_offset_reset="earliest", max_poll_records=1, session_timeout_ms=6000,
                      heartbeat_interval_ms=300, max_poll_interval_ms=30000)
    c.subscribe([TOPIC])
    while not stop.is_set():
        for tp, ms in c.poll(timeout_ms=100).items():
            for m in ms:
                try:
                    c.commit({tp: OffsetAndMetadata(m.offset + 1, "")})
                except (CommitFailedError, KafkaError):
                    break
                with lock:
                    consumed.append([m.value.decode(), name, m.partition, m.offset])
        assigned[name] = sorted(tp.partition for tp in c.assignment())
    c.close()

def confluent_member(name, stop):
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    conf = {"bootstrap.servers": BOOT, "group.id": GROUP, "client.id": name, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 300}
    if STRATEGY != "default":
        conf["partition.assignment.strategy"] = STRATEGY
    if os.environ.get("GROUP_TEST_DEBUG"):
        conf["debug"] = os.environ["GROUP_TEST_DEBUG"]
    c = Consumer(conf)
    c.subscribe([TOPIC])
    while not stop.is_set():
        m = c.poll(0.1)
        assigned[name] = sorted(tp.partition for tp in c.assignment())
        if m is None or m.error():
            continue
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException:
            try:  # not counted: read it again if the partition stays ours
                c.seek(TopicPartition(m.topic(), m.partition(), m.offset()))
            except KafkaException:
                pass
            continue
        with lock:
            consumed.append([m.value().decode(), name, m.partition(), m.offset()])
    c.close()

def start(name):
    stops[name] = threading.Event()
    target = kafka_python_member if LIB == "kafka-python" else confluent_member
    threads[name] = threading.Thread(target=target, args=(name, stops[name]))
    threads[name].start()

def leave(name):
    stops[name].set()
    threads[name].join(30)
    assert not threads[name].is_alive(), name
    assigned.pop(name, None)

def settle(names, sizes, deadline=45):
    end = time.time() + deadline
    while time.time() < end:
        snap = {n: assigned.get(n, []) for n in names}
        parts = sorted(p for v in snap.values() for p in v)
        if parts == [0, 1, 2, 3] and sorted(len(v) for v in snap.values()) == sorted(sizes):
            return snap
        time.sleep(0.05)
    raise SystemExit("no convergence: %r" % assigned)

produced = [0]
producing = threading.Event()
producing.set()
def producer():
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": BOOT, "linger.ms": 1})
    i = 0
    while producing.is_set() and i < 5000:
        p.produce(TOPIC, value=b"v%d" % i, partition=i % 4)
        i += 1
        p.poll(0)
        time.sleep(0.004)
    assert p.flush(30) == 0
    produced[0] = i
pt = threading.Thread(target=producer)
pt.start()

start("c1"); start("c2")
phases = [settle(["c1", "c2"], [2, 2])]
time.sleep(0.5)
start("c3")
phases.append(settle(["c1", "c2", "c3"], [2, 1, 1]))
import subprocess
end = time.time() + 15
while time.time() < end:  # a cooperative rebalance takes two rounds
    state = subprocess.run([TOOL, "--bootstrap-server", BOOT, "--describe", "--group", GROUP, "--state"],
                           capture_output=True, text=True, timeout=30).stdout
    if " Stable " in state:
        break
    time.sleep(0.1)
time.sleep(0.5)
leave("c1")
phases.append(settle(["c2", "c3"], [2, 2]))
time.sleep(0.5)
producing.clear()
pt.join(60)
assert not pt.is_alive()
end = time.time() + 30
while len(consumed) < produced[0] and time.time() < end:
    time.sleep(0.05)
time.sleep(0.3)  # anything read twice would show up now
for n in ("c2", "c3"):
    leave(n)
print(json.dumps({"phases": phases, "consumed": consumed, "produced": produced[0], "state": state}))
"""


def run_rebalance(b, lib, strategy="default"):
    topic, group = f"rb-{lib}-{strategy}", f"g-{lib}-{strategy}"
    create_topic(b, topic, 4)
    r = subprocess.run([PYTHON, "-c", CHILD_THREAD_GUARD + REBALANCE, lib, b.bootstrap, topic, group, strategy,
                        os.path.join(BIN, "kafka-consumer-groups.sh")],
                       capture_output=True, text=True, timeout=120, env=tool_env())
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    res = last_json(r.stdout)
    check_exactly_once(res["consumed"], res["produced"])
    # offsets a member committed are the group's: the next record of each partition
    committed = cg(b, "--describe", "--group", group).stdout.splitlines()[2:]
    ends = {int(f[2]): (f[3], f[4]) for f in (line.split() for line in committed)}
    assert all(cur == end for cur, end in ends.values()) and len(ends) == 4, committed
    return res


def test_rebalance_kafka_python(broker_factory):
    b = broker_factory(**FAST)
    run_rebalance(b, "kafka-python")


def test_rebalance_confluent_eager_range(broker_factory):
    b = broker_factory(**FAST)
    res = run_rebalance(b, "confluent", "range")
    # range over one topic: contiguous blocks in member order
    assert sorted(res["phases"][0].values()) == [[0, 1], [2, 3]]
    assert sorted(res["phases"][1].values()) == [[0, 1], [2], [3]]
    assert res["state"].splitlines()[2].split()[3] == "range"


def test_rebalance_confluent_cooperative_sticky(broker_factory):
    b = broker_factory(**FAST)
    res = run_rebalance(b, "confluent", "cooperative-sticky")
    # The broker chose the protocol every member offered. (Stickiness itself is
    # the leader's business: librdkafka drops owned partitions as "lost" when a
    # commit sent before its JoinGroup meets the next generation, as on Kafka.)
    row = res["state"].splitlines()[2].split()
    assert row[3:] == ["cooperative-sticky", "Stable", "3"], res["state"]


def test_roundrobin_through_the_broker(broker_factory):
    b = broker_factory(**FAST)
    create_topic(b, "rr", 4)
    out = run_py(f"""
        import json, subprocess, threading, time
        from confluent_kafka import Consumer
        got, stop = {{}}, threading.Event()
        def run(name):
            c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "g-rr", "client.id": name,
                          "partition.assignment.strategy": "roundrobin", "heartbeat.interval.ms": 300}})
            c.subscribe(["rr"])
            while not stop.is_set():
                c.poll(0.1)
                got[name] = sorted(tp.partition for tp in c.assignment())
            c.close()
        ts = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
        [t.start() for t in ts]
        end = time.time() + 30
        while time.time() < end and not (sorted(sum(got.values(), [])) == [0, 1, 2, 3] and
                                          sorted(len(v) for v in got.values()) == [2, 2]):
            time.sleep(0.05)
        snap = dict(got)
        while time.time() < end:
            state = subprocess.run(["{b.bin}/kafka-consumer-groups.sh", "--bootstrap-server", "{b.bootstrap}",
                                    "--describe", "--group", "g-rr", "--state"], capture_output=True, text=True).stdout
            if " Stable " in state:
                break
            time.sleep(0.1)
        stop.set()
        [t.join(20) for t in ts]
        assert not any(t.is_alive() for t in ts)
        print(json.dumps([snap, state]))
    """)
    snap, state = last_json(out)
    assert sorted(snap.values()) == [[0, 2], [1, 3]]
    assert state.splitlines()[2].split()[3:] == ["roundrobin", "Stable", "2"], state


@pytest.mark.skipif(not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")),
                    reason="kafkajs not installed (cd tests/integration/js && npm install)")
def test_rebalance_kafkajs(broker_factory):
    b = broker_factory(**FAST)
    create_topic(b, "rb-js", 4)
    r = subprocess.run([NODE, os.path.join(JS_DIR, "group_rebalance.js"), b.bootstrap, "rb-js", "g-js"],
                       capture_output=True, text=True, timeout=120, cwd=JS_DIR)
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    res = json.loads([line for line in r.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])
    check_exactly_once(res["consumed"], res["produced"])
    # kafkajs's default assignor is roundrobin over sorted member ids
    assert sorted(res["phases"][0].values()) == [[0, 2], [1, 3]]
    committed = cg(b, "--describe", "--group", "g-js").stdout.splitlines()[2:]
    assert len(committed) == 4 and all(f.split()[3] == f.split()[4] for f in committed), committed


def test_rebalance_console_consumer(broker_factory, tmp_path):
    """Our kafka-console-consumer.sh --group: commits as it goes (auto commit
    every 50 ms plus librdkafka's commit on revoke and on close), so members
    coming and going read nothing twice."""
    b = broker_factory(**FAST)
    create_topic(b, "rb-cc", 4)
    producer = subprocess.Popen([PYTHON, "-c", textwrap.dedent(f"""
        import os, time
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "linger.ms": 1}})
        i, end = 0, time.time() + 60
        while not os.path.exists({str(tmp_path / "stop")!r}) and time.time() < end and i < 5000:
            p.produce("rb-cc", value=b"v%d" % i, partition=i % 4)
            i += 1
            p.poll(0)
            time.sleep(0.004)
        assert p.flush(30) == 0
        print(i)
    """)], stdout=subprocess.PIPE, text=True, env=tool_env())
    procs = {}

    def start(name):
        procs[name] = subprocess.Popen(
            [os.path.join(BIN, "kafka-console-consumer.sh"), "--bootstrap-server", b.bootstrap, "--topic", "rb-cc",
             "--group", "g-cc", "--from-beginning", "--consumer-property", f"client.id={name}",
             "--consumer-property", "auto.commit.interval.ms=50", "--consumer-property", "heartbeat.interval.ms=300"],
            stdout=open(tmp_path / f"{name}.out", "w"), stderr=subprocess.DEVNULL, env=tool_env())

    def stop(name):
        procs[name].send_signal(signal.SIGTERM)
        procs[name].wait(timeout=20)

    def split(sizes):
        def check():
            m = members(b, "g-cc")
            parts = sorted(p for _, ps in m.values() for p in ps)
            return m if parts == [0, 1, 2, 3] and sorted(len(ps) for _, ps in m.values()) == sorted(sizes) else None
        return check

    try:
        start("cc1")
        start("cc2")
        wait_for(split([2, 2]), 30, "two console consumers split 4 partitions")
        time.sleep(0.5)
        start("cc3")
        m = wait_for(split([2, 1, 1]), 30, "a third console consumer joins")
        assert sorted(cid for cid, _ in m.values()) == ["cc1", "cc2", "cc3"]
        time.sleep(0.5)
        stop("cc1")
        wait_for(split([2, 2]), 30, "cc1 left")
        time.sleep(0.5)
        open(tmp_path / "stop", "w").close()
        produced = int(producer.communicate(timeout=60)[0].strip())

        def all_read():
            n = sum(len((tmp_path / f"{c}.out").read_text().splitlines()) for c in procs)
            return n >= produced
        wait_for(all_read, 30, "everything read")
        time.sleep(0.3)
        for name in ("cc2", "cc3"):
            stop(name)
    finally:
        for p in list(procs.values()) + [producer]:
            if p.poll() is None:
                p.kill()
                p.wait()
    consumed = [[v] for c in procs for v in (tmp_path / f"{c}.out").read_text().splitlines()]
    check_exactly_once(consumed, produced)
    rows = cg(b, "--describe", "--group", "g-cc").stdout.splitlines()[2:]
    assert len(rows) == 4 and all(r.split()[5] == "0" for r in rows), rows  # LAG 0 everywhere


# ---- kafka-consumer-groups output for an active group, Kafka 3.6.1 formats ----

def subscription(*topics):
    """ConsumerProtocolSubscription v0."""
    return struct.pack(">hi", 0, len(topics)) + b"".join(kstr(t) for t in topics) + struct.pack(">i", -1)


def assignment(topic, partitions):
    """ConsumerProtocolAssignment v0 (no partitions: an empty topic list)."""
    body = struct.pack(">h", 0)
    if partitions:
        body += struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", len(partitions))
        body += b"".join(struct.pack(">i", p) for p in partitions)
    else:
        body += struct.pack(">i", 0)
    return body + struct.pack(">i", -1)


def java_row(widths, values):
    """Java's "%-Ns %-Ns ... %s" with the last column unpadded."""
    return " ".join(f"{v:<{w}}" for w, v in zip(widths, values[:-1])) + " " + str(values[-1])


def test_consumer_groups_tool_active_group_formats(broker_factory):
    b = broker_factory(**{**FAST, "group_initial_rebalance_delay_ms": "1000"})
    create_topic(b, "tt", 4)
    produce(b, "tt", 20, 4)  # five records per partition
    bs, port = b.bootstrap, b.port

    # three raw members join within the initial rebalance delay
    conns = {cid: Raw(b, cid) for cid in ("tool-a", "tool-b", "tool-c")}
    ids = {}
    for cid, r in conns.items():
        j = r.join("active", protocols=(("range", subscription("tt")),), session=30000)
        assert j["error"] == ERR_MEMBER_ID_REQUIRED
        ids[cid] = j["member_id"]
    corrs = {cid: r.join_send("active", member_id=ids[cid], protocols=(("range", subscription("tt")),),
                              session=30000) for cid, r in conns.items()}
    joins = {cid: conns[cid].join_recv(c) for cid, c in corrs.items()}
    assert {j["error"] for j in joins.values()} == {0} and {j["generation"] for j in joins.values()} == {1}
    leader = [cid for cid, j in joins.items() if j["members"]][0]
    plan = {"tool-a": [0, 1], "tool-b": [2], "tool-c": []}
    corrs = {cid: conns[cid].sync_send("active", 1, ids[cid]) for cid in conns if cid != leader}
    err, _ = conns[leader].sync("active", 1, ids[leader], [(ids[c], assignment("tt", p)) for c, p in plan.items()])
    assert err == 0
    assert all(conns[cid].sync_recv(c)[0] == 0 for cid, c in corrs.items())
    assert conns["tool-a"].commit("active", 1, ids["tool-a"], [("tt", 0, 3), ("tt", 3, 2)]) == \
        {("tt", 0): 0, ("tt", 3): 0}
    assert conns["tool-b"].commit("active", 1, ids["tool-b"], [("tt", 2, 1)]) == {("tt", 2): 0}

    # --describe: assigned partitions by member (most partitions first), then committed ones nobody owns
    r = cg(b, "--describe", "--group", "active")
    assert r.stderr == ""
    w = [15, 15, 10, 15, 15, 15, max(15, len(ids["tool-a"]), len(ids["tool-b"])), 15]
    head = java_row(w, ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID",
                        "HOST", "CLIENT-ID"])
    rows = [java_row(w, ["active", "tt", 0, 3, 5, 2, ids["tool-a"], "/127.0.0.1", "tool-a"]),
            java_row(w, ["active", "tt", 1, "-", 5, "-", ids["tool-a"], "/127.0.0.1", "tool-a"]),
            java_row(w, ["active", "tt", 2, 1, 5, 4, ids["tool-b"], "/127.0.0.1", "tool-b"]),
            java_row(w, ["active", "tt", 3, 2, 5, 3, "-", "-", "-"])]
    assert r.stdout == "\n" + "\n".join([head] + rows) + "\n", r.stdout

    # --members: no instance ids, so no GROUP-INSTANCE-ID column; each line ends in the padded #PARTITIONS
    r = cg(b, "--describe", "--group", "active", "--members")
    idw = max(15, *(len(i) for i in ids.values()))
    lines = r.stdout.split("\n")
    assert lines[0] == "" and lines[-1] == ""
    assert lines[1] == f"{'GROUP':<15} {'CONSUMER-ID':<{idw}} {'HOST':<15} {'CLIENT-ID':<15} {'#PARTITIONS':<15} "
    want = sorted(f"{'active':<15} {ids[c]:<{idw}} {'/127.0.0.1':<15} {c:<15} {len(p):<15} " for c, p in plan.items())
    assert sorted(lines[2:-1]) == want
    r = cg(b, "--describe", "--group", "active", "--members", "--verbose")
    verbose = {line.split()[3]: line.split(None, 5)[5] for line in r.stdout.splitlines()[2:]}
    assert verbose == {"tool-a": "tt(0,1)", "tool-b": "tt(2)", "tool-c": "-"}
    assert r.stdout.splitlines()[1].endswith("#PARTITIONS     ASSIGNMENT")

    # --state: the GROUP column is as wide as the coordinator column
    r = cg(b, "--describe", "--group", "active", "--state")
    coord = f"127.0.0.1:{port} (1)"
    cw = max(25, len(coord))
    assert r.stdout == (f"\n{'GROUP':<{cw}} {'COORDINATOR (ID)':<25} {'ASSIGNMENT-STRATEGY':<20} {'STATE':<15} #MEMBERS"
                        f"\n{'active':<{cw}} {coord:<25} {'range':<20} {'Stable':<15} 3\n"), r.stdout

    # --list --state with a filter
    r = cg(b, "--list", "--state", "Stable")
    assert r.stdout == f"{'GROUP':<15} STATE\n{'active':<15} Stable\n"
    r = cg(b, "--list", "--state", "Empty")
    assert r.stdout == f"{'GROUP':<15} STATE\n"

    # reset and delete refuse an active group, in Kafka's words
    r = cg(b, "--reset-offsets", "--group", "active", "--all-topics", "--to-earliest", "--execute")
    assert r.stdout == ("\nError: Assignments can only be reset if the group 'active' is inactive, but the current "
                        "state is Stable.\n\n" + f"{'GROUP':<30} {'TOPIC':<30} {'PARTITION':<10} {'NEW-OFFSET':<15}\n"), r.stdout
    r = cg(b, "--delete", "--group", "active")
    assert r.stdout == ("\nError: Deletion of some consumer groups failed:\n* Group 'active' could not be deleted due to: "
                        "org.apache.kafka.common.errors.GroupNotEmptyException: The group is not empty.\n"), r.stdout
    r = cg(b, "--delete-offsets", "--group", "active", "--topic", "tt")
    assert r.stdout.startswith("\nError: Encounter some partition level error, see the follow-up details:\n"), r.stdout
    assert f"\n{'TOPIC':<30} {'PARTITION':<15} {'STATUS':<15}\n" in r.stdout
    forbidden = "Error: Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it."
    assert r.stdout.splitlines()[4:] == [f"{'tt':<30} {p:<15} {forbidden}" for p in range(4)], r.stdout

    # one member leaves: rebalancing; all leave: no active members
    err, _ = conns["tool-c"].leave("active", [(ids["tool-c"], None)])
    assert err == 0
    r = cg(b, "--describe", "--group", "active", "--members")
    assert r.stderr == "\nWarning: Consumer group 'active' is rebalancing.\n", r.stderr
    err, _ = conns["tool-a"].leave("active", [(ids["tool-a"], None), (ids["tool-b"], None)])
    assert err == 0
    r = cg(b, "--describe", "--group", "active", "--members")
    assert r.stderr == "\nConsumer group 'active' has no active members.\n" and r.stdout == "", (r.stdout, r.stderr)
    r = cg(b, "--describe", "--group", "active", "--state")
    assert r.stderr == "\nConsumer group 'active' has no active members.\n"
    assert r.stdout.splitlines()[2].split()[-2:] == ["Empty", "0"]
    for c in conns.values():
        c.close()

    # empty now: reset works; delete says so in Kafka's words
    r = cg(b, "--reset-offsets", "--group", "active", "--topic", "tt:0,3", "--to-latest", "--execute")
    assert r.stdout == (f"\n{'GROUP':<30} {'TOPIC':<30} {'PARTITION':<10} {'NEW-OFFSET':<15}\n"
                        f"{'active':<30} {'tt':<30} {'0':<10} {'5':<15}\n"
                        f"{'active':<30} {'tt':<30} {'3':<10} {'5':<15}\n"), r.stdout
    r = cg(b, "--delete", "--group", "active")
    assert r.stdout == "Deletion of requested consumer groups ('active') was successful.\n", r.stdout
    r = cg(b, "--describe", "--group", "active")
    assert r.stdout == "\nError: Consumer group 'active' does not exist.\n"
