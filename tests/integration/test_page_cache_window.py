"""log.page.cache.window.bytes (Samsa's; off by default, as Kafka leaves the page cache to the kernel):
each log keeps only the newest bytes of its data in the page cache; what lies a window behind its end
is written back and dropped by a background thread. What a user must be able to rely on: the page
cache a busy log holds stays near the window (the point of the setting), every record still reads back
once and in order (older ones from the disk), nothing acknowledged is lost by kill -9, and a bad value
stops start-up with Kafka's kind of message. Seconds each."""
import glob
import os
import subprocess
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reliability"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))

from conftest import BROKER_BIN, Broker, free_port, tool_env  # noqa: E402
from bench import page_cache_bytes as resident  # noqa: E402  (mincore)
from rlib import CrashRun, create_topic, run_py  # noqa: E402

WINDOW = 2 << 20
SEGMENT = 4 << 20
PAGE = os.sysconf("SC_PAGESIZE")


def on_tmpfs(path):
    out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True).stdout.strip()
    return out == "tmpfs"


def produce(b, topic, count, size=1000):
    return run_py(f"""
        import json
        from confluent_kafka import Producer
        acked = []
        p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all", "linger.ms": 5,
                       "enable.idempotence": True}})
        def done(err, msg):
            if err is None:
                acked.append(msg.offset())
        for i in range({count}):
            p.produce("{topic}", value=b"%07d" % i + b"v" * {size - 7}, partition=0, on_delivery=done)
            p.poll(0)
        assert p.flush(60) == 0
        print(json.dumps({{"acked": len(acked)}}))
    """, timeout=180)


def consume_all(b, topic, count):
    """Every value from the start, in order; returns how many were read."""
    return run_py(f"""
        import json
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "window-check",
                       "enable.auto.commit": False}})
        c.assign([TopicPartition("{topic}", 0, 0)])
        seen = 0
        import time
        deadline = time.time() + 90
        while seen < {count} and time.time() < deadline:
            for m in c.consume(1000, 1.0):
                assert m.error() is None, m.error()
                assert m.offset() == seen, (m.offset(), seen)
                assert m.value()[:7] == b"%07d" % seen, (m.value()[:7], seen)
                seen += 1
        c.close()
        print(json.dumps({{"read": seen}}))
    """, timeout=180)["read"]


def trimmed_bytes(b):
    """samsa_log_page_cache_trimmed_bytes_total from the node's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{b.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return int(next(line.split()[1] for line in text.splitlines()
                    if line.startswith("samsa_log_page_cache_trimmed_bytes_total ")))


def test_a_busy_log_keeps_only_its_window_cached_and_reads_back_whole(broker_factory):
    port = free_port()
    b = broker_factory(log_page_cache_window_bytes=WINDOW, metrics_listener=f"http://127.0.0.1:{port}")
    b.metrics_port = port
    create_topic(b, "win", 1, f"segment.bytes={SEGMENT}")
    count = 20000  # about 20 MB: five segments, ten windows
    assert produce(b, "win", count)["acked"] == count
    logs = sorted(glob.glob(os.path.join(b.log_dir, "win-0", "*.log")))
    assert len(logs) >= 4
    total = sum(os.path.getsize(p) for p in logs)
    if on_tmpfs(logs[0]):
        raise AssertionError("the data dir is on tmpfs, whose pages cannot be dropped: run the suite on a disk")
    # the background thread trims a range once it is a window behind: give it a moment
    deadline = time.time() + 20
    while True:
        cached = sum(resident(p) for p in logs)
        if cached <= WINDOW + (1 << 20) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert cached <= WINDOW + (1 << 20), f"{cached} of {total} bytes cached with a {WINDOW}-byte window"
    assert resident(logs[-1]) == (os.path.getsize(logs[-1]) + PAGE - 1) // PAGE * PAGE, "the newest data was dropped"
    assert resident(logs[0]) <= 2 * PAGE, "the oldest segment is still cached"
    # what was dropped, as the node counts it: all but the window and the range being filled
    # (the thread counts a range just after dropping it, so the count may trail by a moment)
    deadline = time.time() + 20
    while trimmed_bytes(b) < total - WINDOW - (1 << 20) and time.time() < deadline:
        time.sleep(0.2)
    assert total - WINDOW - (1 << 20) <= trimmed_bytes(b) <= total - WINDOW
    assert consume_all(b, "win", count) == count


def test_without_the_setting_the_page_cache_is_left_alone(broker_factory):
    # the default; a run that sets a window for every broker (SAMSA_TEST_PAGE_CACHE_WINDOW) turns it off here
    forced = os.environ.get("SAMSA_TEST_PAGE_CACHE_WINDOW")
    b = broker_factory(**({"log_page_cache_window_bytes": 0} if forced else {}))
    create_topic(b, "keep", 1, f"segment.bytes={SEGMENT}")
    assert produce(b, "keep", 12000)["acked"] == 12000
    logs = sorted(glob.glob(os.path.join(b.log_dir, "keep-0", "*.log")))
    total = sum(os.path.getsize(p) for p in logs)
    assert sum(resident(p) for p in logs) >= total - (1 << 20)  # nothing dropped (but by memory pressure)
    assert "page-trim" not in b.thread_names()


def test_kill9_cycles_with_a_page_cache_window(broker_factory):
    b = broker_factory(log_segment_bytes=1 << 20, log_page_cache_window_bytes=256 << 10)
    assert "page-trim" in b.thread_names()
    run = CrashRun(b, partitions=4, producers=3, seed=23)
    acked = sum(run.cycle() for _ in range(3))
    assert acked > 1000, "the producers barely ran"
    assert run.final_check() >= acked  # every acknowledged record once, files consistent


def test_a_negative_window_is_refused(tmp_path):
    # kafka-storage format reads the configuration as the broker does, and refuses it first
    with pytest.raises(AssertionError,
                       match="Invalid value -1 for configuration log.page.cache.window.bytes: Value must be at least 0"):
        Broker(str(tmp_path), {"log.page.cache.window.bytes": "-1"})
    # and a node whose file was formatted before the bad value went in does not start
    (tmp_path / "late").mkdir()
    b = Broker(str(tmp_path / "late"), {})
    with open(b.config, "a") as f:
        f.write("log.page.cache.window.bytes=-5\n")
    r = subprocess.run([BROKER_BIN, b.config], capture_output=True, text=True, timeout=30, env=tool_env())
    assert r.returncode == 1
    assert ("Invalid value -5 for configuration log.page.cache.window.bytes: Value must be at least 0"
            in r.stdout + r.stderr)
