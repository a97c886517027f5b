"""The long reliability runs behind `make torture` (bounded at 20 minutes).

- 50 kill -9 cycles under acks=all load (4 partitions, 3 producers, a
  consumer group), every cycle verified, then a full re-read;
- 10,000 concurrent idle connections;
- a soak: produce + consume at full rate for SAMSA_SOAK_SECONDS, sampling
  RSS and open descriptors, which must not grow;
- the broker under Valgrind over a produce/consume/group scenario: no
  errors, no definite leaks at clean shutdown.
Figures are printed (pytest -s) as "FIGURE name value" lines and collected
into tests/reliability/README.md by hand.
"""
import os
import re
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from conftest import BROKER_BIN, PYTHON, Broker, broker_factory, tool_env  # noqa: E402,F401
from rlib import CrashRun, create_topic, fd_count, fd_kinds, nofile_limit, rss_kb, run_py  # noqa: E402

import tempfile  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import resource  # noqa: E402

CYCLES = int(os.environ.get("SAMSA_CRASH_CYCLES", "50"))
SOAK_SECONDS = int(os.environ.get("SAMSA_SOAK_SECONDS", "180"))
CONNECTIONS = int(os.environ.get("SAMSA_CONNECTIONS", "10000"))


def figure(name, value):
    print(f"FIGURE {name} {value}", flush=True)


def test_crash_cycles(broker_factory):
    b = broker_factory(log_segment_bytes=262144, log_index_interval_bytes=1024)
    t0 = time.time()
    acked = 0
    # alternate codecs: a torn compressed batch must be cut whole too
    run = CrashRun(b, partitions=4, producers=3, seed=1234, rate=10000)
    for i in range(CYCLES):
        run.codec = ("none", "lz4", "zstd", "gzip", "snappy")[i % 5]
        acked += run.cycle(min_s=0.3, max_s=2.0)
    total = run.final_check()
    figure("crash_cycles", run.cycles)
    figure("crash_acked_records", acked)
    figure("crash_records_in_log", total)
    figure("crash_records_checked", run.records_checked + total)
    figure("crash_recovery_truncations", run.recovery_lines)
    figure("crash_seconds", round(time.time() - t0))


def test_ten_thousand_idle_connections(broker_factory):
    b = broker_factory()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = CONNECTIONS + 500
    if hard < want:
        pytest.skip(f"hard open file limit {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    bsoft, bhard = nofile_limit(b.proc.pid)
    assert bsoft >= want, f"broker soft limit {bsoft}"
    pid = b.proc.pid
    fds0, rss0 = fd_count(pid), rss_kb(pid)
    socks = []
    try:
        for i in range(CONNECTIONS):
            s = socket.socket()
            s.connect((b.host, b.port))
            socks.append(s)
        deadline = time.time() + 60
        while fd_count(pid) < fds0 + CONNECTIONS and time.time() < deadline:
            time.sleep(0.1)
        accepted = fd_count(pid) - fds0
        rss1 = rss_kb(pid)
        # all served: an ApiVersions round trip on 200 of them
        for j, s in enumerate(socks[:: CONNECTIONS // 200]):
            body = b"\x00\x12\x00\x00" + j.to_bytes(4, "big") + b"\x00\x00"
            s.sendall(len(body).to_bytes(4, "big") + body)
            s.settimeout(10)
            assert len(s.recv(8)) == 8
    finally:
        for s in socks:
            s.close()
    deadline = time.time() + 30
    while fd_count(pid) > fds0 + 2 and time.time() < deadline:
        time.sleep(0.1)
    figure("connections_open", CONNECTIONS)
    figure("connections_accepted", accepted)
    figure("connections_rss_kb_before_during", f"{rss0}/{rss1}")
    figure("connections_fds_after_close", f"{fd_count(pid)} (before {fds0})")
    assert accepted >= CONNECTIONS
    assert fd_count(pid) <= fds0 + 2


SOAK_PRODUCER = r'''
import sys, time
from confluent_kafka import Producer
bootstrap, seconds = sys.argv[1], float(sys.argv[2])
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "compression.type": "lz4"})
n, end = 0, time.time() + seconds
while time.time() < end:
    try:
        p.produce("soak", value=b"%d-" % n + b"s" * 200, partition=n % 6)
        n += 1
    except BufferError:
        p.poll(0.01)
    if n % 1000 == 0:
        p.poll(0)
p.flush(30)
print(n)
'''

SOAK_CONSUMER = r'''
import sys, time
from confluent_kafka import Consumer
bootstrap, seconds, group = sys.argv[1], float(sys.argv[2]), sys.argv[3]
n, end = 0, time.time() + seconds
while time.time() < end:
    # a new member every few seconds: joins, rebalances, commits, leaves
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": True, "auto.commit.interval.ms": 500})
    c.subscribe(["soak"])
    stop = min(end, time.time() + 5)
    while time.time() < stop:
        m = c.poll(0.2)
        if m is not None and not m.error():
            n += 1
    c.close()
print(n)
'''


def test_soak_rss_and_fds_do_not_grow(broker_factory):
    b = broker_factory(log_segment_bytes=4194304, log_retention_bytes=16777216,
                       log_retention_check_interval_ms=2000, log_segment_delete_delay_ms=1000,
                       connections_max_idle_ms=5000)
    create_topic(b, "soak", 6)
    pid = b.proc.pid
    procs = [subprocess.Popen([PYTHON, "-c", SOAK_PRODUCER, b.bootstrap, str(SOAK_SECONDS)], stdout=subprocess.PIPE,
                              env=tool_env(), text=True) for _ in range(2)]
    procs += [subprocess.Popen([PYTHON, "-c", SOAK_CONSUMER, b.bootstrap, str(SOAK_SECONDS), f"g{i}"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=tool_env(), text=True)
              for i in range(2)]  # (retention outruns the consumers: their offset-reset warnings are expected)
    samples = []
    t0 = time.time()
    while any(p.poll() is None for p in procs):
        samples.append((round(time.time() - t0), rss_kb(pid), fd_count(pid)))
        time.sleep(5)
    counts = [int(p.stdout.read().strip() or 0) for p in procs]
    kinds0 = fd_kinds(pid)
    time.sleep(12)  # idle connections expire, deleted segments go
    samples.append((round(time.time() - t0), rss_kb(pid), fd_count(pid)))
    socks, files, deleted, other = fd_kinds(pid)
    on_disk = sum(1 for root, _, names in os.walk(b.log_dir) for n in names
                  if n.endswith((".log", ".index", ".timeindex", ".deleted")))
    produced, consumed = sum(counts[:2]), sum(counts[2:])
    figure("soak_seconds", SOAK_SECONDS)
    figure("soak_produced", produced)
    figure("soak_consumed", consumed)
    figure("soak_samples_t_rss_fds", " ".join(f"{t}s:{r}kB:{f}" for t, r, f in samples))
    assert produced > 0 and consumed > 0
    # after warm-up (a quarter of the run) RSS must level off and fds return
    warm = [s for s in samples if s[0] >= SOAK_SECONDS / 4]
    peak_warm = warm[0][1]
    final_rss, final_fds = samples[-1][1], samples[-1][2]
    figure("soak_rss_kb_warm_final_max", f"{peak_warm}/{final_rss}/{max(s[1] for s in samples)}")
    figure("soak_fds_start_final", f"{samples[0][2]}/{final_fds}")
    figure("soak_fds_at_end_sockets_files_deleted", f"{kinds0[0]}/{kinds0[1]}/{kinds0[2]}")
    figure("soak_fds_after_idle_sockets_files_deleted_segment_files_on_disk", f"{socks}/{files}/{deleted}/{on_disk}")
    assert final_rss < peak_warm * 1.5 + 32768, f"RSS grew from {peak_warm} kB to {final_rss} kB"
    # descriptors: the listener(s) and the epoll/signal/timer fds, one per segment file, nothing deleted
    assert socks <= 3, f"{socks} sockets still open after every client left"
    assert deleted == 0, f"{deleted} deleted segment files still open"
    assert files <= on_disk + 8, f"{files} open files for {on_disk} segment files on disk"


def test_valgrind_clean_shutdown(tmp_path):
    """The release broker (build/samsa-broker) under Valgrind memcheck over a
    produce / consume / consumer-group scenario, stopped with SIGTERM."""
    vg = shutil.which("valgrind")
    if not vg:
        pytest.skip("valgrind not installed")
    binary = os.path.join(os.path.dirname(BROKER_BIN), "..", "build", "samsa-broker")
    if not os.path.exists(binary):
        pytest.skip("build/samsa-broker missing (make all)")
    d = tempfile.mkdtemp(prefix="samsa-vg-")
    b = Broker(d)
    vlog = os.path.join(d, "valgrind.log")
    out = open(b.stdout_path, "a")
    b.proc = subprocess.Popen([vg, "--leak-check=full", "--show-leak-kinds=definite,indirect",
                               "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                               f"--log-file={vlog}", binary, b.config], stdout=out, stderr=subprocess.STDOUT,
                              env=tool_env())
    out.close()
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection((b.host, b.port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    try:
        create_topic(b, "vg", 3)
        n = run_py(f"""
            import json
            from confluent_kafka import Producer, Consumer
            p = Producer({{"bootstrap.servers": "{b.bootstrap}", "acks": "all", "compression.type": "zstd"}})
            for i in range(3000):
                p.produce("vg", value=b"v%d" % i, partition=i % 3)
            assert p.flush(60) == 0
            c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "vg-group",
                          "auto.offset.reset": "earliest", "session.timeout.ms": 10000}})
            c.subscribe(["vg"])
            got = 0
            import time
            end = time.time() + 90
            while got < 3000 and time.time() < end:
                m = c.poll(1)
                if m is not None and not m.error():
                    got += 1
            c.commit(asynchronous=False)
            c.close()
            print(json.dumps(got))
        """, timeout=240)
        r = b.run_tool("kafka-consumer-groups", "--bootstrap-server", b.bootstrap, "--describe", "--group",
                       "vg-group", timeout=120)
        assert "vg" in r.stdout, r.stdout + r.stderr
    finally:
        code = b.stop(timeout=60)
    report = open(vlog).read()
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    definite = re.search(r"definitely lost: ([\d,]+) bytes", report)
    indirect = re.search(r"indirectly lost: ([\d,]+) bytes", report)
    figure("valgrind_records", n)
    figure("valgrind_error_summary", errors.group(1) if errors else "?")
    figure("valgrind_definitely_lost", definite.group(1) if definite else "0 (no leaks)")
    figure("valgrind_indirectly_lost", indirect.group(1) if indirect else "0")
    shutil.copy(vlog, "/tmp/samsa-valgrind.log")
    shutil.rmtree(d, ignore_errors=True)
    assert n == 3000
    assert code == 0, f"exit {code}; see /tmp/samsa-valgrind.log:\n{report[-6000:]}"
