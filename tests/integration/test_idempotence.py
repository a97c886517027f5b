"""Idempotent producers: a retried batch is answered with its first offset and
not written twice; a sequence gap or an old epoch is refused with Kafka's
error codes; the state survives a restart (rebuilt from the log)."""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from test_bad_input import (API_PRODUCE, call, connect, parse_produce_v8, produce_v8,  # noqa: E402
                            record_batch)

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47


def idempotent_batch(values, pid, epoch, base_seq):
    """A v2 batch of uncompressed records carrying producer id, epoch and sequence."""
    return record_batch(values, producer_id=pid, producer_epoch=epoch, base_sequence=base_seq)


class Producer:
    def __init__(self, broker, topic, pid):
        self.s = connect(broker)
        self.topic = topic
        self.pid = pid
        self.corr = 0

    def send(self, values, epoch, seq):
        self.corr += 1
        batch = idempotent_batch(values, self.pid, epoch, seq)
        return parse_produce_v8(call(self.s, API_PRODUCE, 8, self.corr, produce_v8(self.topic, 0, batch)))


def end_offset(broker, topic):
    r = broker.run_tool("kafka-get-offsets", "--bootstrap-server", broker.bootstrap, "--topic", topic)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().rsplit(":", 1)[1])


def test_retries_are_not_written_twice(broker):
    r = broker.run_tool("kafka-topics", "--create", "--topic", "idem", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    p = Producer(broker, "idem", pid=4242)
    assert p.send([b"a", b"b"], epoch=0, seq=0) == (0, 0)
    assert p.send([b"c"], epoch=0, seq=2) == (0, 2)
    # the same batches again (a retry after a lost answer): their first offsets, nothing written
    assert p.send([b"a", b"b"], epoch=0, seq=0) == (0, 0)
    assert p.send([b"c"], epoch=0, seq=2) == (0, 2)
    assert end_offset(broker, "idem") == 3
    # a gap in the sequence, and an older epoch, are refused
    assert p.send([b"x"], epoch=0, seq=5)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert p.send([b"d"], epoch=0, seq=3) == (0, 3)
    # a new epoch must start at sequence 0; after it the old epoch is fenced
    assert p.send([b"e"], epoch=1, seq=7)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert p.send([b"e"], epoch=1, seq=0) == (0, 4)
    assert p.send([b"f"], epoch=0, seq=4)[0] == INVALID_PRODUCER_EPOCH
    # another producer id is independent
    q = Producer(broker, "idem", pid=4243)
    assert q.send([b"g"], epoch=0, seq=0) == (0, 5)
    assert end_offset(broker, "idem") == 6


def test_duplicate_detected_after_restart(broker):
    r = broker.run_tool("kafka-topics", "--create", "--topic", "idem2", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    p = Producer(broker, "idem2", pid=77)
    for i in range(3):
        assert p.send([b"v%d" % i], epoch=2, seq=i) == (0, i)
    broker.kill9()
    broker.start()
    p = Producer(broker, "idem2", pid=77)
    assert p.send([b"v2"], epoch=2, seq=2) == (0, 2)          # the retry: answered, not written
    assert p.send([b"v9"], epoch=2, seq=9)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert p.send([b"v3"], epoch=2, seq=3) == (0, 3)
    assert end_offset(broker, "idem2") == 4


def test_producer_known_after_clean_restart_beyond_two_segments(broker):
    """A clean shutdown writes the producers' state as <offset>.snapshot
    (Kafka's format): a producer silent since before the last two segments is
    still known after the restart, so its retry is answered, not written again
    and a gap is still refused. Without the snapshot only the last two
    segments' batches are read back and the producer would be forgotten."""
    r = broker.run_tool("kafka-topics", "--create", "--topic", "idem3", "--bootstrap-server", broker.bootstrap,
                        "--config", "segment.bytes=1024")
    assert r.returncode == 0, r.stderr
    old = Producer(broker, "idem3", pid=91)
    assert old.send([b"first"], epoch=0, seq=0) == (0, 0)
    other = Producer(broker, "idem3", pid=92)
    for i in range(40):  # about a dozen segments of 1 KiB
        assert other.send([b"x" * 200], epoch=0, seq=i) == (0, i + 1)
    log_dir = os.path.join(broker.log_dir, "idem3-0")
    assert len([f for f in os.listdir(log_dir) if f.endswith(".log")]) > 3
    broker.stop()
    snapshots = [f for f in os.listdir(log_dir) if f.endswith(".snapshot")]
    # one at every segment roll (Kafka's roll takes a snapshot at the new
    # base) and the clean shutdown's at the log end
    bases = {f[:-4] for f in os.listdir(log_dir) if f.endswith(".log")}
    assert "%020d.snapshot" % 41 in snapshots, snapshots
    assert all(f[:-9] in bases for f in snapshots if f != "%020d.snapshot" % 41), snapshots
    # the shutdown's alone must be enough
    for f in snapshots:
        if f != "%020d.snapshot" % 41:
            os.unlink(os.path.join(log_dir, f))
    broker.start()
    old = Producer(broker, "idem3", pid=91)
    assert old.send([b"first"], epoch=0, seq=0) == (0, 0)      # the retry: answered with its offset
    assert old.send([b"gap"], epoch=0, seq=5)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert old.send([b"second"], epoch=0, seq=1) == (0, 41)
    assert end_offset(broker, "idem3") == 42


def uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_uvarint(data, pos):
    shift = n = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7


def describe_producers(broker, topic, partition):
    """DescribeProducers v0 (flexible): [(producer_id, epoch, last_sequence)] of one partition."""
    name = topic.encode()
    body = uvarint(2) + uvarint(len(name) + 1) + name + uvarint(2) + struct.pack(">i", partition) + b"\0" + b"\0"
    client = b"idem-test"
    frame = struct.pack(">hhi", 61, 0, 99) + struct.pack(">h", len(client)) + client + b"\0" + body
    s = connect(broker)
    s.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    data = s.recv(size, socket.MSG_WAITALL)
    pos = 4 + 1 + 4                     # correlation id, header tags, throttle time
    ntopics, pos = read_uvarint(data, pos)
    assert ntopics - 1 == 1
    tlen, pos = read_uvarint(data, pos)
    pos += tlen - 1
    nparts, pos = read_uvarint(data, pos)
    assert nparts - 1 == 1
    _index, err = struct.unpack_from(">ih", data, pos)
    pos += 6
    assert err == 0
    mlen, pos = read_uvarint(data, pos)
    pos += max(mlen - 1, 0)
    nprod, pos = read_uvarint(data, pos)
    out = []
    for _ in range(nprod - 1):
        pid, epoch, last_seq, _ts, _ce, _txn = struct.unpack_from(">qiiqiq", data, pos)
        pos += 8 + 4 + 4 + 8 + 4 + 8 + 1
        out.append((pid, epoch, last_seq))
    return sorted(out)


def test_describe_producers_lists_active_producers(broker):
    r = broker.run_tool("kafka-topics", "--create", "--topic", "idem3", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    assert describe_producers(broker, "idem3", 0) == []
    Producer(broker, "idem3", pid=10).send([b"a", b"b", b"c"], epoch=1, seq=0)
    Producer(broker, "idem3", pid=11).send([b"d"], epoch=0, seq=0)
    assert describe_producers(broker, "idem3", 0) == [(10, 1, 2), (11, 0, 0)]
