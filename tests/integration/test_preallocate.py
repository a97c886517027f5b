"""preallocate / log.preallocate (Kafka's names): the active segment's disk space is reserved ahead of
its appends (fallocate KEEP_SIZE). What a user must be able to rely on: the files on disk are exactly
what they are without it (every .log is as long as its data, as kafka-dump-log and Kafka's recovery
expect), nothing acknowledged is lost by kill -9, a clean stop gives the reserved space back, and a full
disk still answers KAFKA_STORAGE_ERROR and recovers. Seconds each."""
import glob
import os
import struct
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
