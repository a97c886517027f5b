"""Retention deletes whole old segments at the periodic check (Kafka's
log.retention.check.interval.ms, first after log.initial.task.delay.ms), and
the log start offset moves past them; records inside retention stay. A batch
larger than a segment is refused with RECORD_LIST_TOO_LARGE, as Kafka does."""
import subprocess
import time

import confluent_kafka
import pytest

OLD_TS = 1577836800000  # 2020, far outside any retention below


def offsets(b, topic, time_arg):
    r = b.run_tool("kafka-get-offsets", "--bootstrap-server", b.bootstrap, "--topic", topic, "--time", time_arg)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().rsplit(":", 1)[1])


def test_time_retention_deletes_old_segments(broker_factory):
    b = broker_factory(log_retention_check_interval_ms=300, log_initial_task_delay_ms=300)
    r = b.run_tool("kafka-topics", "--create", "--topic", "old", "--config", "retention.ms=60000",
                   "--config", "segment.bytes=2048", "--bootstrap-server", b.bootstrap)
    assert r.returncode == 0, r.stderr
    # small batches, so the 2020 records fill several segments of their own
    prod = confluent_kafka.Producer({"bootstrap.servers": b.bootstrap, "batch.num.messages": 5, "linger.ms": 0})
    for k in range(200):
        prod.produce("old", value=b"x" * 20, partition=0, timestamp=OLD_TS + k)
        prod.poll(0)
    assert prod.flush(30) == 0
    for k in range(5):
        prod.produce("old", value=b"new-%d" % k, partition=0)
    assert prod.flush(30) == 0
    end = offsets(b, "old", "-1")
    assert end == 205
    deadline = time.time() + 20
    while time.time() < deadline and offsets(b, "old", "-2") < 150:
        time.sleep(0.2)
    start = offsets(b, "old", "-2")
    # whole old segments are gone; the active segment (and the current records) stays
    assert 150 <= start <= 200, start
    assert offsets(b, "old", "-1") == end
    c = subprocess.run(["kcat", "-C", "-b", b.bootstrap, "-t", "old", "-p", "0", "-o", "beginning", "-e",
                        "-f", "%s\n"], capture_output=True, text=True, timeout=60)
    assert c.returncode == 0, c.stderr
    assert c.stdout.split()[-5:] == [f"new-{k}" for k in range(5)]
    assert len(c.stdout.split()) == end - start


def test_batch_larger_than_a_segment_is_refused(broker):
    r = broker.run_tool("kafka-topics", "--create", "--topic", "tiny", "--config", "segment.bytes=1024",
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    errors = []
    prod = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50,
                                     "message.timeout.ms": 10000})
    for k in range(50):
        prod.produce("tiny", value=b"y" * 100, partition=0, on_delivery=lambda err, msg: errors.append(err))
    prod.flush(30)
    assert len(errors) == 50
    assert {e.code() for e in errors if e} == {confluent_kafka.KafkaError.RECORD_LIST_TOO_LARGE}
    # the broker keeps serving the partition
    prod = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap})
    prod.produce("tiny", value=b"small", partition=0)
    assert prod.flush(30) == 0
