"""Metadata changes on one node, fsynced off the request loop (issue 18).

A CreateTopics, DeleteTopics or AlterConfigs is applied to the node's image at once and answered
once its __cluster_metadata batch is durable; the fsync runs on the "metadata-sync" thread, and
changes made meanwhile share the next one. What a user checks: every change that was answered
is there after kill -9 and after a shutdown that came while changes were in flight, with the
metadata log small enough to roll and snapshot during the run."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

from conftest import Broker, wait_until  # noqa: E402

SHIM_SOURCE = os.path.join(os.path.dirname(__file__), "fault", "fail_fdatasync.c")

# Rolls and snapshots inside the run: a roll leaves a sealed segment the thread does not sync
# (flushed on the loop), a snapshot flushes the log first.
SMALL_METADATA_LOG = {
    "metadata_log_max_record_bytes_between_snapshots": "8000",
    "metadata_log_segment_bytes": "16384",
    "metadata_log_segment_min_bytes": "1024",
}
WRITERS = 4
TOPICS_PER_WRITER = 12


def _admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def _writer(b, w, acked, errors, stop=None):
    """Creates topics one at a time, each followed by a config change; records what was answered."""
    a = _admin(b)
    for i in range(TOPICS_PER_WRITER):
        if stop is not None and stop.is_set():
            return
        name = f"w{w}-t{i}"
        try:
            a.create_topics([NewTopic(name, 6, 1)], operation_timeout=20)[name].result(timeout=30)
            acked.append(("topic", name))
            res = ConfigResource("topic", name, set_config={"retention.ms": str(60000 + i)})
            a.alter_configs([res])[res].result(timeout=30)
            acked.append(("config", name))
        except (ck.KafkaException, TimeoutError) as e:
            if stop is None:  # nothing should fail while the node runs
                errors.append(f"{name}: {e}")
            return


def _check_acked(b, acked):
    a = _admin(b)
    names = set(a.list_topics(timeout=20).topics)
    topics = [n for kind, n in acked if kind == "topic"]
    missing = [n for n in topics if n not in names]
    assert not missing, f"answered CreateTopics lost: {missing}"
    configs = [n for kind, n in acked if kind == "config"]
    if configs:
        res = [ConfigResource("topic", n) for n in configs]
        for r, fut in a.describe_configs(res).items():
            want = str(60000 + int(r.name.rsplit("t", 1)[1]))
            assert fut.result(timeout=30)["retention.ms"].value == want, r.name
    return names


def test_answered_changes_survive_kill9(broker_factory):
    b = broker_factory(**SMALL_METADATA_LOG)
    assert "metadata-sync" not in b.thread_names()  # an idle node does without it
    acked, errors = [], []
    writers = [threading.Thread(target=_writer, args=(b, w, acked, errors)) for w in range(WRITERS)]
    for t in writers:
        t.start()
    for t in writers:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in writers), "a writer hung"
    assert not errors, errors
    assert len(acked) == 2 * WRITERS * TOPICS_PER_WRITER
    assert "metadata-sync" in b.thread_names()
    mlog = os.path.join(b.log_dir, "__cluster_metadata-0")
    assert len([f for f in os.listdir(mlog) if f.endswith(".log")]) >= 2, "the metadata log never rolled"
    assert any(f.endswith(".checkpoint") for f in os.listdir(mlog)), "no snapshot was written"
    # A deletion answered just before the kill stays deleted.
    a = _admin(b)
    a.delete_topics(["w0-t0"], operation_timeout=20)["w0-t0"].result(timeout=30)
    b.kill9()
    b.start()
    names = _check_acked(b, [x for x in acked if x[1] != "w0-t0"])
    assert "w0-t0" not in names
    assert "Encountered fatal fault" not in b.log_text()


def test_shutdown_with_changes_in_flight(broker_factory):
    b = broker_factory(**SMALL_METADATA_LOG)
    acked, errors = [], []
    stop = threading.Event()
    writers = [threading.Thread(target=_writer, args=(b, w, acked, errors, stop)) for w in range(WRITERS)]
    for t in writers:
        t.start()
    wait_until(lambda: len(acked) >= 8, 60, "the first changes")
    code = b.stop()  # SIGTERM while the writers keep going
    stop.set()
    assert code == 0, b.log_text()[-4000:]
    b.start()  # the clients' requests cut by the shutdown are retried here, or fail
    for t in writers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in writers), "a writer hung"
    names = _check_acked(b, acked)
    # A topic is whole or absent: no partition made for a topic the metadata does not hold.
    for d in os.listdir(b.log_dir):
        if d.startswith("w") and "-t" in d:
            assert d.rsplit("-", 1)[0] in names, f"stray partition {d}"
    time.sleep(0.2)
    assert "Encountered fatal fault" not in b.log_text()


def test_failed_fsync_stops_the_node(tmp_path):
    """The metadata log's fsync fails (an LD_PRELOAD shim makes fdatasync return EIO): the node
    stops with Kafka's fatal-fault line, as Kafka's raft IO thread halts the process, instead of
    answering a change the disk refused; it starts again once the disk is back."""
    shim = str(tmp_path / "fail_fdatasync.so")
    cc = subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", shim, SHIM_SOURCE, "-ldl"],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    flag = str(tmp_path / "fail-now")
    d = tempfile.mkdtemp(prefix="samsa-test-")
    b = Broker(d)
    # the sanitizer runtimes want to come first; the shim only wraps fdatasync
    asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=0")
    b.env = {"LD_PRELOAD": shim, "SAMSA_FAIL_FDATASYNC": flag,
             "ASAN_OPTIONS": asan + ":verify_asan_link_order=0"}
    try:
        b.start()
        a = _admin(b)
        a.create_topics([NewTopic("kept", 1, 1)])["kept"].result(timeout=30)
        open(flag, "w").close()
        with pytest.raises(ck.KafkaException):  # the node went away instead of answering
            a.create_topics([NewTopic("refused", 1, 1)], request_timeout=10)["refused"].result(timeout=30)
        try:
            code = b.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 1, b.log_text()[-4000:]
        log = b.log_text()
        assert "Encountered fatal fault: Unexpected error in raft IO thread" in log, log[-4000:]
        assert "Input/output error" in log
        assert "Created topic refused" in log  # applied, then refused by the disk: never answered
        os.unlink(flag)
        b.start()
        assert "kept" in _admin(b).list_topics(timeout=20).topics
        assert b.stop() == 0
    finally:
        if b.proc and b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait()
        shutil.rmtree(d, ignore_errors=True)
