"""Reliability under faults and load, the quick versions (seconds each).

Crash: kill -9 under acks=all load from several producers, restart, check
every acknowledged record once at its offset, dense offsets, consistent
indexes and intact group offsets. Torn and corrupt files: each damage is
made on a stopped broker, then start-up must recover what is valid with a
log line, or refuse with a clear message. Disk full on a small tmpfs. Load:
many idle connections, slow readers, slowloris senders, connection limits.
The long versions are in tests/reliability/ (make torture).
"""
import glob
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reliability"))

from conftest import BUILD  # noqa: E402
from rlib import (GROUP_COMMIT, READER, CrashRun, check_partition_dir, create_topic, fd_count,  # noqa: E402
                  nofile_limit, py_script, rss_kb, run_py)

SMALL_SEGMENTS = {"log_segment_bytes": 65536, "log_index_interval_bytes": 512}


# ---- crash ----

def test_kill9_cycles_under_acks_all_load(broker_factory):
    b = broker_factory(**SMALL_SEGMENTS)
    run = CrashRun(b, partitions=4, producers=3, seed=7)
    acked = sum(run.cycle() for _ in range(3))
    assert acked > 1000, "the producers barely ran"
    assert run.final_check() >= acked


# ---- torn and corrupt files ----

def produce(b, topic, n, partition=0, prefix="r"):
    """n records with acks=all; returns [(offset, value)] as acknowledged."""
    return [tuple(x) for x in run_py(f"""
        import json
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all", "linger.ms": 5, "batch.num.messages": 20}})
        acked = []
        def dr(err, m):
            if err is None:
                acked.append([m.offset(), m.value().decode()])
        for i in range({n}):
            p.produce("{topic}", value=b"{prefix}%d-" % i + b"x" * 40, partition={partition}, on_delivery=dr)
            p.poll(0)
        assert p.flush(30) == 0
        print(json.dumps(acked))
    """)]


def read_all(b, topic, partitions=(0,)):
    res = py_script(READER, b.bootstrap, topic, json.dumps({str(p): 0 for p in partitions}))
    return {int(p): [tuple(r) for r in recs] for p, recs in res["records"].items()}


def segments(b, topic, partition=0, suffix=".log"):
    return sorted(glob.glob(os.path.join(b.log_dir, f"{topic}-{partition}", "*" + suffix)))


def loaded(b, topic, n, partitions=1):
    """A stopped broker holding n acknowledged records in each partition of topic."""
    create_topic(b, topic, partitions)
    acked = {p: produce(b, topic, n, partition=p) for p in range(partitions)}
    assert all(len(a) == n for a in acked.values())
    assert b.stop() == 0
    return acked


def as_after_a_crash(b):
    """The damage tests model what a crash leaves: no clean-shutdown marker
    (with it, start-up trusts the logs and skips recovery, as Kafka does)."""
    os.unlink(os.path.join(b.log_dir, ".kafka_cleanshutdown"))


def start_refused(b):
    """Start must fail; returns the broker's output."""
    with pytest.raises(RuntimeError) as e:
        b.start()
    b.proc = None  # the refusal is the expected outcome, not a crash for the fixture to report
    return str(e.value)


def batch_positions(path):
    data = open(path, "rb").read()
    pos, out = 0, []
    while pos + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        out.append((pos, base, length))
        pos += 12 + length
    return out


def test_truncated_log_tail_is_cut_at_the_last_whole_batch(broker_factory):
    b = broker_factory(**SMALL_SEGMENTS)
    acked = loaded(b, "torn", 3000)[0]
    as_after_a_crash(b)
    last = segments(b, "torn")[-1]
    batches = batch_positions(last)
    os.truncate(last, os.path.getsize(last) - 7)  # a torn write of the final batch
    b.start()
    assert "recovery truncated segment" in b.log_text()
    lost_from = batches[-1][1]
    got = read_all(b, "torn")[0]
    assert got == [a for a in acked if a[0] < lost_from]
    check_partition_dir(os.path.join(b.log_dir, "torn-0"))
    more = produce(b, "torn", 100, prefix="after")
    assert more[0][0] == lost_from  # appends continue densely after the cut
    assert read_all(b, "torn")[0] == got + more


def test_bit_flip_in_a_batch_truncates_from_that_batch(broker_factory):
    b = broker_factory(**SMALL_SEGMENTS)
    acked = loaded(b, "flip", 3000)[0]
    as_after_a_crash(b)
    last = segments(b, "flip")[-1]
    batches = batch_positions(last)
    assert len(batches) >= 4
    pos, base, length = batches[len(batches) // 2]
    with open(last, "r+b") as f:  # flip one bit inside the records (covered by the CRC)
        f.seek(pos + 12 + length - 5)
        c = f.read(1)
        f.seek(pos + 12 + length - 5)
        f.write(bytes([c[0] ^ 0x10]))
    b.start()
    text = b.log_text()
    assert "recovery truncated segment" in text and "CRC" in text.upper(), text[-3000:]
    got = read_all(b, "flip")[0]
    assert got == [a for a in acked if a[0] < base]
    check_partition_dir(os.path.join(b.log_dir, "flip-0"))


def test_lost_recovery_checkpoint_rescans_every_segment(broker_factory):
    """Garbage in recovery-point-offset-checkpoint: logged and ignored, so
    recovery scans from the first segment and finds a flip in an old one."""
    b = broker_factory(**SMALL_SEGMENTS)
    acked = loaded(b, "rescan", 3000)[0]
    as_after_a_crash(b)
    segs = segments(b, "rescan")
    assert len(segs) >= 3
    first = segs[0]
    pos, base, length = batch_positions(first)[3]
    with open(first, "r+b") as f:
        f.seek(pos + 12 + length - 3)
        c = f.read(1)
        f.seek(pos + 12 + length - 3)
        f.write(bytes([c[0] ^ 0x01]))
    with open(os.path.join(b.log_dir, "recovery-point-offset-checkpoint"), "w") as f:
        f.write("0\nthis is not a checkpoint\n")
    b.start()
    text = b.log_text()
    assert "recovery-point-offset-checkpoint" in text and "recovery truncated segment" in text, text[-3000:]
    got = read_all(b, "rescan")[0]
    assert got == [a for a in acked if a[0] < base]
    assert len(segments(b, "rescan")) == 1  # later segments went with the cut
    check_partition_dir(os.path.join(b.log_dir, "rescan-0"))


def test_clean_shutdown_marker_skips_recovery(broker_factory):
    """Kafka's .kafka_cleanshutdown: written at a clean stop, taken at start-up,
    where the logs are then loaded without recovery (the active segment's
    index is not rebuilt); after kill -9 there is none and they are recovered."""
    b = broker_factory(**SMALL_SEGMENTS)
    marker = os.path.join(b.log_dir, ".kafka_cleanshutdown")
    acked = loaded(b, "mark", 3000)[0]
    assert os.path.exists(marker)
    index = segments(b, "mark", suffix=".index")[-1]
    before = os.stat(index).st_mtime_ns
    time.sleep(0.05)
    seen = len(b.log_text())
    b.start()
    assert not os.path.exists(marker)  # a crash from now on is recovered at the next start
    assert f"Skipping recovery of the logs in {b.log_dir} since clean shutdown file was found" in b.log_text()[seen:]
    assert os.stat(index).st_mtime_ns == before  # loaded, not rebuilt
    assert read_all(b, "mark")[0] == acked
    more = produce(b, "mark", 500, prefix="after")
    assert more[0][0] == len(acked)  # the LEO found from the index and the tail
    r = b.run_tool("kafka-get-offsets", "--bootstrap-server", b.bootstrap, "--topic", "mark", "--time", "-1")
    assert r.stdout.strip() == f"mark:0:{len(acked) + 500}", r.stdout + r.stderr
    b.kill9()
    assert not os.path.exists(marker)
    seen = len(b.log_text())
    b.start()
    text = b.log_text()[seen:]
    assert f"Recovering the logs in {b.log_dir} since no clean shutdown file was found" in text, text[-2000:]
    assert "Skipping recovery" not in text
    assert read_all(b, "mark")[0] == acked + more


def test_corrupt_checkpoints_keep_all_data(broker_factory):
    b = broker_factory(**SMALL_SEGMENTS)
    acked = loaded(b, "ckpt", 2000)[0]
    for name in ("recovery-point-offset-checkpoint", "log-start-offset-checkpoint"):
        with open(os.path.join(b.log_dir, name), "wb") as f:
            f.write(b"\x00\xffgarbage\n7\n")
    b.start()
    text = b.log_text()
    assert "Ignoring" in text and "log-start-offset-checkpoint" in text, text[-3000:]
    assert read_all(b, "ckpt")[0] == acked


@pytest.mark.parametrize("damage", ["truncate-index", "garbage-index", "garbage-timeindex", "delete-index"])
def test_bad_index_files_are_rebuilt(broker_factory, damage):
    b = broker_factory(**SMALL_SEGMENTS)
    acked = loaded(b, "idx", 3000)[0]
    segs = segments(b, "idx", suffix=".index")
    assert len(segs) >= 3
    target = segs[0] if damage != "garbage-timeindex" else segs[0][:-len(".index")] + ".timeindex"
    size = os.path.getsize(target)
    if damage == "truncate-index":
        os.truncate(target, size - 3)
    elif damage == "delete-index":
        os.unlink(target)
    else:
        with open(target, "r+b") as f:
            f.seek(size // 2)
            f.write(os.urandom(11))
    b.start()
    assert read_all(b, "idx")[0] == acked
    check_partition_dir(os.path.join(b.log_dir, "idx-0"))
    # lookups through the rebuilt indexes answer exactly
    r = b.run_tool("kafka-get-offsets", "--bootstrap-server", b.bootstrap, "--topic", "idx", "--time", "-1")
    assert r.stdout.strip() == f"idx:0:{len(acked)}", r.stdout + r.stderr
    mid = acked[len(acked) // 3][0]
    got = run_py(f"""
        import json
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "x", "enable.auto.commit": False}})
        c.assign([TopicPartition("idx", 0, {mid})])
        m = c.poll(15)
        print(json.dumps([m.offset(), m.value().decode()]))
        c.close()
    """)
    assert tuple(got) == acked[len(acked) // 3]


def test_corrupt_meta_properties_refuses_to_start(broker_factory):
    b = broker_factory()
    assert b.stop() == 0
    with open(os.path.join(b.log_dir, "meta.properties"), "w") as f:
        f.write("\x00\x01 garbage without any keys\n")
    out = start_refused(b)
    assert "meta.properties" in out, out[-2000:]


def test_missing_partition_directory(broker_factory):
    b = broker_factory()
    loaded(b, "gone", 200, partitions=2)
    import shutil
    shutil.rmtree(os.path.join(b.log_dir, "gone-1"))
    b.start()
    text = b.log_text()
    # Kafka recreates a missing partition log empty; we do too, but say so loudly
    assert "gone-1" in text and "missing" in text, text[-3000:]
    got = read_all(b, "gone", partitions=(0,))
    assert len(got[0]) == 200


def test_corrupt_metadata_log_tail_is_truncated(broker_factory):
    b = broker_factory()
    create_topic(b, "meta-a", 2)
    create_topic(b, "meta-b", 1)
    assert b.stop() == 0
    mlog = sorted(glob.glob(os.path.join(b.log_dir, "__cluster_metadata-0", "*.log")))[-1]
    with open(mlog, "ab") as f:
        f.write(os.urandom(37))  # a torn append
    b.start()
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--list")
    assert set(r.stdout.split()) >= {"meta-a", "meta-b"}, r.stdout + r.stderr
    create_topic(b, "meta-c")  # and the metadata log still takes appends
    b.restart()
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--list")
    assert set(r.stdout.split()) >= {"meta-a", "meta-b", "meta-c"}, r.stdout + r.stderr


# ---- disk full ----

STORAGE_ERROR = 56  # KAFKA_STORAGE_ERROR


@pytest.fixture
def small_tmpfs():
    d = tempfile.mkdtemp(prefix="samsa-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", d], capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs for the disk-full test (needs root): {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", d])
    os.rmdir(d)


def test_disk_full_gives_storage_error_and_recovers(broker_factory, small_tmpfs):
    logs = os.path.join(small_tmpfs, "data")
    ballast = os.path.join(small_tmpfs, "ballast")
    b = broker_factory(log_dirs=logs, log_segment_bytes=1048576)
    create_topic(b, "full")
    with open(ballast, "wb") as f:  # room we can give back later
        f.write(b"\0" * (2 << 20))
    # fill the disk: acks=all, one record per request so each answer is exact
    res = run_py(f"""
        import json
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all", "linger.ms": 0,
                       "message.send.max.retries": 0, "message.timeout.ms": 10000}})
        acked, errors = [], {{}}
        def dr(err, m):
            if err is None:
                acked.append([m.offset(), m.value().decode()[:12]])
            else:
                errors[err.code()] = errors.get(err.code(), 0) + 1
        i = 0
        while i < 20000 and sum(errors.values()) < 20:
            p.produce("full", value=b"v%08d" % i + b"y" * 4000, partition=0, on_delivery=dr)
            i += 1
            p.flush(10)
        print(json.dumps({{"acked": acked, "errors": errors}}))
    """, timeout=180)
    acked = [tuple(a) for a in res["acked"]]
    assert res["errors"], "the disk never filled up"
    assert set(int(k) for k in res["errors"]) == {STORAGE_ERROR}, res["errors"]
    assert b.proc.poll() is None, "the broker died on a full disk"
    assert "No space left on device" in b.log_text() or "Error appending" in b.log_text()
    # reads keep working and return exactly what was acknowledged
    got = [(o, v[:12]) for o, v in read_all(b, "full")[0]]
    assert got == acked
    # free space: writes resume, densely after the last acknowledged record
    os.unlink(ballast)
    more = produce(b, "full", 50, prefix="again")
    assert len(more) == 50 and more[0][0] == len(acked)
    b.kill9()
    b.start()
    got = read_all(b, "full")[0]
    assert [(o, v[:12]) for o, v in got[:len(acked)]] == acked and got[len(acked):] == more
    check_partition_dir(os.path.join(logs, "full-0"))


# ---- load ----

def api_versions_frame(correlation_id):
    body = struct.pack(">hhih", 18, 0, correlation_id, 4) + b"rely"
    return struct.pack(">i", len(body)) + body


def broker_answers(b):
    """A fresh connection still gets an ApiVersions answer."""
    with socket.create_connection((b.host, b.port), timeout=10) as s:
        s.sendall(api_versions_frame(1))
        head = s.recv(8)
        return len(head) == 8 and struct.unpack(">ii", head)[1] == 1


def raise_nofile(n):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_idle(b, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.connect((b.host, b.port))
        socks.append(s)
    return socks


def wait_for(cond, timeout):
    """Polls cond until it holds or timeout seconds pass. A refused or reset connection counts as
    not yet: a broker at its connection limit learns of closed connections a moment after their
    clients closed them, and a connection it accepts before that is refused, as a client retries."""
    def check():
        try:
            return cond()
        except (ConnectionError, socket.timeout):
            return False

    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return cond()


def test_broker_raises_its_open_file_limit(broker):
    soft, hard = nofile_limit(broker.proc.pid)
    assert soft == hard, f"the broker runs with a soft open-file limit of {soft} (hard {hard})"


def test_many_idle_connections(broker):
    n = 3000
    if raise_nofile(n + 200) < n + 200:
        pytest.skip("cannot raise this process's open file limit")
    pid = broker.proc.pid
    fds0 = fd_count(pid)
    socks = open_idle(broker, n)
    try:
        assert wait_for(lambda: fd_count(pid) >= fds0 + n, 20), f"{fd_count(pid) - fds0} of {n} accepted"
        assert broker_answers(broker)
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: fd_count(pid) <= fds0 + 2, 20), f"fds {fd_count(pid)} after close, {fds0} before"


def test_slow_reader_memory_is_bounded(broker):
    """A client pipelines requests and never reads: the broker stops reading
    it once ~4 MiB of answers wait, so memory stays bounded."""
    pid = broker.proc.pid
    rss0 = rss_kb(pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((broker.host, broker.port))
    s.setblocking(False)
    chunk = b"".join(api_versions_frame(i) for i in range(1000))
    sent, t0, sent_at = 0, time.time(), {}
    while time.time() < t0 + 6:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
        sent_at[int(time.time() - t0)] = sent
    rss1 = rss_kb(pid)
    assert sent > 1 << 20, "the broker did not take requests"
    # the broker stopped reading: nothing more went in during the last seconds
    assert sent_at[5] == sent_at[3], f"still reading a client that does not read: {sent_at}"
    # ~4 MiB of answers plus the allocator's slack (ASan's quarantine keeps
    # up to 256 MiB of freed memory resident, so its bound is looser)
    limit = (320 if "asan" in BUILD else 48) * 1024
    assert rss1 - rss0 < limit, f"RSS grew by {rss1 - rss0} kB for a client that does not read"
    assert broker_answers(broker)  # others are served meanwhile
    s.close()
    assert wait_for(lambda: broker.proc.poll() is None and broker_answers(broker), 5)


def test_slowloris_half_frame_is_closed_after_idle_timeout(broker_factory):
    b = broker_factory(connections_max_idle_ms=1500)
    s = socket.create_connection((b.host, b.port))
    s.sendall(b"\x00\x00")  # half of a size field, then nothing
    s.settimeout(10)
    t0 = time.time()
    assert s.recv(1) == b""  # closed by the broker
    assert 1.0 < time.time() - t0 < 6
    assert "connections.max.idle.ms" in b.log_text()
    assert broker_answers(b)


def test_max_connections_enforced(broker_factory):
    b = broker_factory(max_connections=40)
    time.sleep(0.5)  # let the broker see the start-up probe connection close
    socks = open_idle(b, 60)
    time.sleep(0.5)
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            alive += s.recv(1) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    assert alive == 40, f"{alive} connections kept with max.connections=40"
    for s in socks:
        s.close()
    assert wait_for(lambda: broker_answers(b), 5)


def test_max_connections_per_ip_enforced(broker_factory):
    b = broker_factory(max_connections_per_ip=15)
    time.sleep(0.5)
    socks = open_idle(b, 25)
    time.sleep(0.5)
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            alive += s.recv(1) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    assert alive == 15, f"{alive} connections kept with max.connections.per.ip=15"
    assert "connection limit reached" in b.log_text()
    for s in socks:
        s.close()
    assert wait_for(lambda: broker_answers(b), 5)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_pauses_accepting_without_spinning(broker):
    """EMFILE on accept: the pending connection stays queued; the broker must
    not spin on its level-triggered listener, and must accept again once
    descriptors are free."""
    pid = broker.proc.pid
    r = subprocess.run(["prlimit", f"--pid={pid}", "--nofile=200:200"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"prlimit failed: {r.stderr.strip()}")
    raise_nofile(1000)
    socks = open_idle(broker, 300)  # the kernel backlog takes what the broker cannot
    try:
        time.sleep(0.5)
        cpu0 = cpu_seconds(pid)
        time.sleep(2)
        used = cpu_seconds(pid) - cpu0
        assert used < 0.5, f"the broker burnt {used:.2f} s of CPU in 2 s while out of descriptors"
        assert "pausing accepts" in broker.log_text()
        assert broker.proc.poll() is None
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: broker_answers(broker), 10)
