"""preallocate / log.preallocate (Kafka's names): the active segment's disk space is reserved ahead of
its appends (fallocate KEEP_SIZE). What a user must be able to rely on: the files on disk are exactly
what they are without it (every .log is as long as its data, as kafka-dump-log and Kafka's recovery
expect), nothing acknowledged is lost by kill -9, a clean stop gives the reserved space back, and a full
disk still answers KAFKA_STORAGE_ERROR and recovers. Seconds each."""
import glob
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reliability"))

from rlib import CrashRun, create_topic, run_py  # noqa: E402
from test_reliability import small_tmpfs  # noqa: E402,F401  (the fixture)
from test_reliability import test_disk_full_gives_storage_error_and_recovers as disk_full_check  # noqa: E402

SEGMENT = 1 << 20
SLACK = 64 << 10  # the extent tree's own blocks


def allocated(path):
    return os.stat(path).st_blocks * 512


def rounded(size):
    return (size + 4095) // 4096 * 4096


def test_kill9_cycles_with_preallocate(broker_factory):
    b = broker_factory(log_segment_bytes=SEGMENT, log_index_interval_bytes=512, log_preallocate="true")
    run = CrashRun(b, partitions=4, producers=3, seed=11)
    acked = sum(run.cycle() for _ in range(3))
    assert acked > 1000, "the producers barely ran"
    assert run.final_check() >= acked  # every acknowledged record once, files consistent
    assert b.stop() == 0
    logs = glob.glob(os.path.join(b.log_dir, "crash-*", "*.log"))
    assert logs
    for p in logs:
        assert allocated(p) <= rounded(os.path.getsize(p)) + SLACK, f"{p}: reserved space kept after a clean stop"


def test_preallocate_reserves_ahead_and_files_keep_their_size(broker_factory):
    b = broker_factory(log_segment_bytes=SEGMENT)
    create_topic(b, "pre", 1, "preallocate=true")
    run_py(f"""
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all", "linger.ms": 5}})
        for i in range(300):
            p.produce("pre", value=b"%05d" % i + b"x" * 1000, partition=0)
        assert p.flush(30) == 0
        print("{{}}")
    """)
    logs = sorted(glob.glob(os.path.join(b.log_dir, "pre-0", "*.log")))
    active = logs[-1]
    size = os.path.getsize(active)
    assert 0 < size < SEGMENT
    with open(active, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):  # whole batches up to the very end: no zero tail, the file is the data
        length = struct.unpack_from(">i", data, pos + 8)[0]
        assert length > 0, f"a zero tail at {pos} of {len(data)}"
        pos += 12 + length
    assert pos == len(data) == size
    if allocated(active) < SEGMENT:
        return  # this file system cannot reserve (fallocate unsupported): nothing more to see
    assert b.stop() == 0
    assert allocated(active) <= rounded(size) + SLACK


def test_disk_full_with_preallocate(broker_factory, small_tmpfs):  # noqa: F811
    disk_full_check(lambda **kw: broker_factory(log_preallocate="true", **kw), small_tmpfs)


STEP = 16 << 20  # the broker's reservation step without preallocate (src/broker/topics.c)


def test_default_reserves_in_steps_only_for_a_busy_segment(broker_factory):
    """Without preallocate, a segment of the default size reserves nothing until it holds a step
    (16 MiB), then keeps at most a step ahead of its appends; a quiet partition never holds disk it
    does not use; a clean stop gives the reservation back; the files stay exactly their data."""
    b = broker_factory()
    create_topic(b, "busy", 2)
    run_py(f"""
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all", "linger.ms": 5}})
        value = b"x" * 1000
        for i in range(20000):  # about 20 MiB into partition 0
            while True:
                try:
                    p.produce("busy", value=value, partition=0)
                    break
                except BufferError:
                    p.poll(0.05)
        p.produce("busy", value=b"quiet", partition=1)
        assert p.flush(60) == 0
        print("{{}}")
    """)
    busy = glob.glob(os.path.join(b.log_dir, "busy-0", "*.log"))
    quiet = glob.glob(os.path.join(b.log_dir, "busy-1", "*.log"))
    assert len(busy) == 1 and len(quiet) == 1
    size = os.path.getsize(busy[0])
    assert size > STEP
    assert allocated(busy[0]) <= rounded(size) + STEP + SLACK, "more than a step reserved"
    assert allocated(quiet[0]) <= rounded(os.path.getsize(quiet[0])) + SLACK, "a quiet segment reserved disk"
    if can_reserve(b.workdir):
        assert allocated(busy[0]) > rounded(size) + SLACK, "a busy segment reserved nothing ahead"
    # a crash with the reservation in place: recovery finds exactly the data
    b.kill9()
    b.start()
    assert os.path.getsize(busy[0]) == size
    r = b.run_tool("kafka-get-offsets", "--bootstrap-server", b.bootstrap, "--topic", "busy")
    assert r.returncode == 0 and "busy:0:20000" in r.stdout and "busy:1:1" in r.stdout, r.stdout + r.stderr
    assert b.stop() == 0
    assert allocated(busy[0]) <= rounded(size) + SLACK, "reserved space kept after a clean stop"


def can_reserve(directory):
    """Whether this file system takes fallocate KEEP_SIZE (util-linux's fallocate -n)."""
    probe = os.path.join(directory, ".reserve-probe")
    try:
        open(probe, "w").close()  # -n (keep the size) does not create the file
        r = subprocess.run(["fallocate", "-n", "-l", "65536", probe], capture_output=True)
        return r.returncode == 0 and allocated(probe) >= 65536
    except OSError:
        return False
    finally:
        if os.path.exists(probe):
            os.remove(probe)
