"""Incremental fetch sessions (KIP-227) over raw Fetch v7 requests: Debian's
client libraries do not use sessions, Java's do. A session remembers the
partitions and answers only those with news."""
import socket
import struct
import subprocess

FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71


def s16(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class Conn:
    def __init__(self, broker):
        self.sock = socket.create_connection((broker.host, broker.port), timeout=10)
        self.corr = 0

    def fetch(self, session_id, epoch, parts, forgotten=(), max_wait=0):
        """parts: {(topic, partition): offset}; returns (error, session_id, {(t, p): (hw, nrecords_bytes)})."""
        self.corr += 1
        by_topic = {}
        for (t, p), off in parts.items():
            by_topic.setdefault(t, []).append((p, off))
        body = struct.pack(">iiiibii", -1, max_wait, 1, 1 << 20, 0, session_id, epoch)
        body += struct.pack(">i", len(by_topic))
        for t, ps in by_topic.items():
            body += s16(t) + struct.pack(">i", len(ps))
            for p, off in ps:
                body += struct.pack(">iqqi", p, off, -1, 1 << 20)
        fg = {}
        for t, p in forgotten:
            fg.setdefault(t, []).append(p)
        body += struct.pack(">i", len(fg))
        for t, ps in fg.items():
            body += s16(t) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
        frame = struct.pack(">hhi", 1, 7, self.corr) + s16("sessions-test") + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return self.read_response()

    def read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "connection closed"
            buf += chunk
        return buf

    def read_response(self):
        size = struct.unpack(">i", self.read_exact(4))[0]
        data = self.read_exact(size)
        pos = 0

        def take(fmt):
            nonlocal pos
            vals = struct.unpack_from(fmt, data, pos)
            pos += struct.calcsize(fmt)
            return vals

        corr, = take(">i")
        assert corr == self.corr
        _throttle, error, session = take(">ihi")
        out = {}
        ntopics, = take(">i")
        for _ in range(ntopics):
            tlen, = take(">h")
            topic = data[pos:pos + tlen].decode()
            pos += tlen
            nparts, = take(">i")
            for _ in range(nparts):
                p, perr, hw, _lso, _lstart = take(">ihqqq")
                naborted, = take(">i")
                pos += max(naborted, 0) * 16
                rlen, = take(">i")
                pos += max(rlen, 0)
                out[(topic, p)] = (perr, hw, max(rlen, 0))
        return error, session, out


def produce(broker, topic, partition, n):
    lines = "".join(f"m{i}\n" for i in range(n))
    r = subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", topic, "-p", str(partition)], input=lines,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_incremental_fetch_session(broker):
    r = broker.run_tool("kafka-topics", "--create", "--topic", "sess", "--partitions", "2",
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    produce(broker, "sess", 0, 3)
    c = Conn(broker)
    # full fetch that opens a session: both partitions answered
    err, sid, parts = c.fetch(0, 0, {("sess", 0): 0, ("sess", 1): 0})
    assert err == 0 and sid != 0
    assert set(parts) == {("sess", 0), ("sess", 1)}
    assert parts[("sess", 0)][1] == 3 and parts[("sess", 0)][2] > 0
    # incremental: the client moved partition 0 to offset 3; nothing is new
    err, sid2, parts = c.fetch(sid, 1, {("sess", 0): 3})
    assert (err, sid2, parts) == (0, sid, {})
    # data on partition 1 only: only partition 1 is in the answer
    produce(broker, "sess", 1, 2)
    err, _, parts = c.fetch(sid, 2, {})
    assert err == 0 and set(parts) == {("sess", 1)}
    assert parts[("sess", 1)][1] == 2 and parts[("sess", 1)][2] > 0
    # a wrong epoch and an unknown session are refused
    err, _, _ = c.fetch(sid, 7, {})
    assert err == INVALID_FETCH_SESSION_EPOCH
    err, _, _ = c.fetch(sid + 1 if sid < 2**31 - 1 else 1, 1, {})
    assert err == FETCH_SESSION_ID_NOT_FOUND
    # forget partition 1: new data there no longer shows up
    err, _, parts = c.fetch(sid, 3, {("sess", 1): 2}, forgotten=[("sess", 1)])
    assert err == 0
    produce(broker, "sess", 1, 1)
    err, _, parts = c.fetch(sid, 4, {})
    assert err == 0 and ("sess", 1) not in parts
    # epoch -1 closes the session: a sessionless full fetch answers session 0
    err, sid3, parts = c.fetch(sid, -1, {("sess", 0): 0})
    assert err == 0 and sid3 == 0 and set(parts) == {("sess", 0)}
    err, _, _ = c.fetch(sid, 5, {})
    assert err == FETCH_SESSION_ID_NOT_FOUND


def test_incremental_fetch_long_polls_for_news(broker):
    r = broker.run_tool("kafka-topics", "--create", "--topic", "sesswait", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    c = Conn(broker)
    err, sid, _ = c.fetch(0, 0, {("sesswait", 0): 0})
    assert err == 0 and sid != 0
    import threading
    producer = threading.Timer(0.5, produce, args=(broker, "sesswait", 0, 1))
    producer.start()
    try:
        err, _, parts = c.fetch(sid, 1, {}, max_wait=10000)
    finally:
        # before the broker fixture stops: the producer's own assertion counts
        producer.join(timeout=60)
    assert not producer.is_alive()
    assert err == 0 and parts[("sesswait", 0)][2] > 0
