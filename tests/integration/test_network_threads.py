"""Network threads (num.network.threads, issue 18): the broker runs as many as configured on a
machine with at least network.threads.min.cpus CPUs (none below: the sockets stay on the
request loop), connections on all of them are served at once, and each connection's pipelined
requests are answered in order, a long-polling fetch included (the frame read ahead behind it
waits). Every test runs both ways where it matters."""
import os
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

import kproto

pytestmark = pytest.mark.skipif(not kproto.have_specs(), reason="Kafka's message definitions not found")


def _thread_names(pid):
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:  # a short-lived thread ended meanwhile
            pass
    return names


def _new_topic(broker, partitions=1):
    name = "nt-" + uuid.uuid4().hex[:8]
    r = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", name,
                        "--partitions", str(partitions), "--replication-factor", "1")
    assert r.returncode == 0, r.stderr
    return name


def _recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "connection closed by the broker"
        buf += chunk
    return buf


THREADS = {"network_threads_min_cpus": 1}  # network threads whatever the machine


def test_broker_runs_the_configured_network_threads(broker_factory):
    b = broker_factory(num_network_threads=4, **THREADS)
    names = _thread_names(b.proc.pid)
    assert sorted(n for n in names if n.startswith("network-")) == [f"network-{i}" for i in range(4)], names
    assert "4 network threads (num.network.threads)" in b.log_text()
    b1 = broker_factory(num_network_threads=1, **THREADS)
    assert [n for n in _thread_names(b1.proc.pid) if n.startswith("network-")] == ["network-0"]


def test_below_the_cpu_threshold_connections_stay_on_the_request_loop(broker_factory):
    b = broker_factory(num_network_threads=3, network_threads_min_cpus=4096)
    assert not [n for n in _thread_names(b.proc.pid) if n.startswith("network-")]
    assert "fewer than network.threads.min.cpus=4096" in b.log_text()
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--list")
    assert r.returncode == 0, r.stderr


def test_a_bad_cpu_threshold_is_refused(tmp_path):
    from conftest import Broker
    b = Broker(str(tmp_path))
    with open(b.config, "a") as f:
        f.write("network.threads.min.cpus=0\n")
    from conftest import BROKER_BIN
    r = subprocess.run([BROKER_BIN, b.config], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "Invalid value 0 for configuration network.threads.min.cpus" in r.stdout + r.stderr


def _fetch_body(topic, wait_ms):
    return {"ReplicaId": -1, "MaxWaitMs": wait_ms, "MinBytes": 1, "MaxBytes": 1 << 20, "IsolationLevel": 0,
            "SessionId": 0, "SessionEpoch": -1,
            "Topics": [{"Topic": topic, "Partitions": [{"Partition": 0, "FetchOffset": 0, "CurrentLeaderEpoch": -1,
                                                        "LogStartOffset": -1, "PartitionMaxBytes": 1 << 20}]}]}


@pytest.mark.parametrize("settings", [dict(num_network_threads=3, **THREADS),
                                      dict(network_threads_min_cpus=4096)], ids=["threads", "on-the-loop"])
def test_pipelined_requests_are_answered_in_order(broker_factory, settings):
    b = broker_factory(**settings)
    topic = _new_topic(b)
    host, port = b.bootstrap.rsplit(":", 1)
    # Per connection: a long-polling fetch on the empty topic first, then quick requests sent
    # right behind it. The quick ones must not be answered before the fetch.
    calls = [("Fetch", 12, _fetch_body(topic, 400))]
    for i in range(30):
        calls.append([("ApiVersions", 3, {"ClientSoftwareName": "nt", "ClientSoftwareVersion": "1"}),
                      ("Metadata", 12, {"Topics": [{"Name": topic}], "AllowAutoTopicCreation": False}),
                      ("DescribeCluster", 0, {})][i % 3])
    errors = []

    def one_connection(k):
        try:
            with socket.create_connection((host, int(port)), timeout=20) as s:
                frames = b"".join(kproto.encode_request(api, v, body, corr) for corr, (api, v, body) in
                                  enumerate(calls, start=1000 * k))
                start = time.monotonic()
                s.sendall(frames)
                for corr, (api, v, _) in enumerate(calls, start=1000 * k):
                    size = struct.unpack(">i", _recv(s, 4))[0]
                    got, body = kproto.decode_response(api, v, _recv(s, size))
                    if got != corr:
                        errors.append(f"connection {k}: answer {got} where {corr} was due")
                        return
                    if api == "Fetch":
                        waited = time.monotonic() - start
                        if body["ErrorCode"] != 0 or waited < 0.3:
                            errors.append(f"connection {k}: fetch error {body['ErrorCode']} after {waited:.3f} s")
                    elif api in ("ApiVersions", "DescribeCluster") and body["ErrorCode"] != 0:
                        errors.append(f"connection {k}: {api} error {body['ErrorCode']}")
        except Exception as e:  # noqa: BLE001 - any failure in a thread fails the test
            errors.append(f"connection {k}: {e!r}")

    threads = [threading.Thread(target=one_connection, args=(k,)) for k in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a connection did not finish in 60 s"
    assert not errors, errors


@pytest.mark.parametrize("settings", [dict(num_network_threads=3, **THREADS),
                                      dict(network_threads_min_cpus=4096)], ids=["threads", "on-the-loop"])
def test_producers_on_many_connections_lose_nothing(broker_factory, settings):
    ck = pytest.importorskip("confluent_kafka")
    b = broker_factory(**settings)
    topic = _new_topic(b, partitions=6)
    per_producer, producers = 3000, 6
    errors = []

    def produce(k):
        try:
            p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 2,
                             "enable.idempotence": True, "client.id": f"nt-{k}"})
            failed = []
            for i in range(per_producer):
                while True:
                    try:
                        p.produce(topic, value=f"{k}:{i}".encode(), partition=k,
                                  on_delivery=lambda err, msg: err and failed.append(str(err)))
                        break
                    except BufferError:
                        p.poll(0.05)
                p.poll(0)
            left = p.flush(60)
            if left or failed:
                errors.append(f"producer {k}: {left} not delivered, {len(failed)} failed {failed[:3]}")
        except Exception as e:  # noqa: BLE001
            errors.append(f"producer {k}: {e!r}")

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "nt-check", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    c.subscribe([topic])
    seen = {k: [] for k in range(producers)}
    offsets = {k: [] for k in range(producers)}
    deadline = time.time() + 60
    while sum(len(v) for v in seen.values()) < producers * per_producer and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        k, i = m.value().decode().split(":")
        seen[int(k)].append(int(i))
        offsets[m.partition()].append(m.offset())
    c.close()
    for k in range(producers):
        assert seen[k] == list(range(per_producer)), (k, len(seen[k]))
        assert offsets[k] == list(range(per_producer)), k


BOTH_WAYS = pytest.mark.parametrize("settings", [dict(num_network_threads=3, **THREADS),
                                                 dict(network_threads_min_cpus=4096)],
                                    ids=["threads", "on-the-loop"])


@BOTH_WAYS
def test_a_long_burst_of_pipelined_requests_is_answered_whole_and_in_order(broker_factory, settings):
    """On the request loop a frame is handled synchronously and its answer may come from inside the
    handler: 20,000 requests sent in one go must be answered one by one, in order (no recursion per
    request, nothing dropped)."""
    b = broker_factory(**settings)
    host, port = b.bootstrap.rsplit(":", 1)
    count = 20000
    frame = [kproto.encode_request("ApiVersions", 3, {"ClientSoftwareName": "burst", "ClientSoftwareVersion": "1"},
                                   corr) for corr in range(count)]
    with socket.create_connection((host, int(port)), timeout=30) as s:
        sender = threading.Thread(target=s.sendall, args=(b"".join(frame),))
        sender.start()
        for corr in range(count):
            size = struct.unpack(">i", _recv(s, 4))[0]
            got, body = kproto.decode_response("ApiVersions", 3, _recv(s, size))
            assert (got, body["ErrorCode"]) == (corr, 0)
        sender.join(30)
        assert not sender.is_alive()
    r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--list")
    assert r.returncode == 0, r.stderr


@BOTH_WAYS
def test_a_fetch_woken_by_a_produce_answers_the_requests_queued_behind_it(broker_factory, settings):
    """A long-polling fetch answered because another connection produced: its answer, then the
    requests pipelined behind it on the same connection, in order, without waiting out MaxWaitMs."""
    ck = pytest.importorskip("confluent_kafka")
    b = broker_factory(**settings)
    topic = _new_topic(b)
    host, port = b.bootstrap.rsplit(":", 1)
    calls = [("Fetch", 12, _fetch_body(topic, 20000))]
    calls += [("ApiVersions", 3, {"ClientSoftwareName": "nt", "ClientSoftwareVersion": "1"})] * 50
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"".join(kproto.encode_request(api, v, body, corr) for corr, (api, v, body) in enumerate(calls)))
        time.sleep(0.5)  # the fetch is parked
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
        failed = []
        p.produce(topic, value=b"wake-up", partition=0, on_delivery=lambda err, msg: err and failed.append(err))
        assert p.flush(20) == 0 and not failed, failed
        produced = time.monotonic()
        for corr, (api, v, _) in enumerate(calls):
            size = struct.unpack(">i", _recv(s, 4))[0]
            got, body = kproto.decode_response(api, v, _recv(s, size))
            assert got == corr
            assert body["ErrorCode"] == 0, (api, body["ErrorCode"])
            if api == "Fetch":
                part = body["Responses"][0]["Partitions"][0]
                assert part["ErrorCode"] == 0 and part["HighWatermark"] == 1, part
                assert b"wake-up" in part["Records"]
        assert time.monotonic() - produced < 10, "the answers waited for the fetch's MaxWaitMs"
