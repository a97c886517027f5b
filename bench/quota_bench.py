#!/usr/bin/python3
"""What client quotas cost a client without one (issue 16).

    SAMSA_BUILD=build/release /usr/bin/python3 bench/quota_bench.py [--records N] [--rounds R] [--smoke]

One node; kafka-producer-perf-test.sh (100-byte records, acks=1, no throughput limit) as
client id "bench" in three settings, R runs each, the best printed:
  none       no quota in the metadata at all (the quota code returns at its first test)
  others     producer/consumer/request quotas set for other users and client ids and a
             a user quota for "someone" (the lookup runs, "bench" resolves to no quota,
             cached per (principal, client id))
  unbounded  a quota for "bench" far above what it can do (the sensor records every
             request, nothing is throttled)
Then how close a throttled client comes to its quota: a client id with producer_byte_rate and
consumer_byte_rate Q produces 1 KiB records as fast as it can (confluent-kafka, which honours
throttle_time_ms) for --quota-seconds, then consumes; the bytes/s acknowledged or read after
the first 12 s (Kafka's Rate lets a client run 10 one-second windows over before the first
throttle) is printed against Q.
Figures only; nothing fails on speed.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402  (bench.py: free_port, the tools' environment, the build in use)

B.use_build()


def tool(name, *args, timeout=300):
    return B.run([os.path.join(B.BIN, name + ".sh"), *args], timeout, check=False)


def produce_rate(bootstrap, topic, records):
    r = tool("kafka-producer-perf-test", "--topic", topic, "--num-records", str(records), "--record-size", "100",
             "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "client.id=bench",
             "acks=1")
    assert r.returncode == 0, r.stderr
    m = re.search(r"([0-9.]+) records/sec", r.stdout.strip().splitlines()[-1])
    assert m, r.stdout
    return float(m.group(1))


# Kafka's quota Rate spans (quota.window.num - 1) = 10 one-second windows at the start, so a
# client may go that far over before the first throttle; the steady rate is measured after it.
BURST_S = 12


def rate_between(events, t0, t1):
    """Bytes/s of (time, bytes) events over the whole interval [t0, t1] (not first to last event:
    a throttled client's bytes come in bursts, and the gaps between them are the throttling)."""
    return sum(n for t, n in events if t0 <= t <= t1) / (t1 - t0)


def throttled_produce_rate(bootstrap, topic, client_id, seconds):
    """Bytes/s acknowledged to a producer between BURST_S and `seconds` of producing 1 KiB
    records as fast as the client can (confluent-kafka: librdkafka honours throttle_time_ms)."""
    import confluent_kafka
    acked = []  # (time, bytes)
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                                  "batch.size": 65536, "queue.buffering.max.kbytes": 4096})
    value = b"q" * 1024
    start = time.time()
    while time.time() - start < seconds:
        try:
            p.produce(topic, value, on_delivery=lambda err, m: acked.append((time.time(), len(m.value())))
                      if err is None else None)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    p.flush(60)
    return rate_between(acked, start + BURST_S, start + seconds)


def throttled_consume_rate(bootstrap, topic, client_id, seconds):
    """Bytes/s a consumer reads between BURST_S and `seconds` (the topic holds more than that)."""
    import confluent_kafka
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "client.id": client_id, "group.id": client_id,
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    start = time.time()
    while time.time() - start < seconds:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append((time.time(), len(m.value())))
    c.close()
    return rate_between(got, start + BURST_S, start + seconds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--quota-seconds", type=int, default=120, help="length of each throttled run")
    ap.add_argument("--accuracy-only", action="store_true", help="only the throttled runs")
    a = ap.parse_args()
    records, rounds = (20_000, 1) if a.smoke else (a.records, a.rounds)
    d = tempfile.mkdtemp(prefix="samsa-quota-bench-")
    port, cport = B.free_port(), B.free_port()
    bootstrap = f"127.0.0.1:{port}"
    cfg = os.path.join(d, "server.properties")
    with open(os.path.join(B.ROOT, "config", "kraft", "server.properties")) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write(text + "\n")
        f.write(f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n")
        f.write(f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n")
        f.write(f"log.dirs={os.path.join(d, 'data')}\n")
    cid = tool("kafka-storage", "random-uuid").stdout.strip()
    assert tool("kafka-storage", "format", "-t", cid, "-c", cfg).returncode == 0
    out = open(os.path.join(d, "broker.out"), "w")
    proc = subprocess.Popen([B.BROKER_BIN, cfg], stdout=out, stderr=subprocess.STDOUT, env=B.tool_env())
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    sys.exit("the broker did not start")
                time.sleep(0.05)
        r = tool("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", "quota-bench",
                 "--partitions", "1", "--replication-factor", "1")
        assert r.returncode == 0, r.stderr

        def configs(*args):
            r = tool("kafka-configs", "--bootstrap-server", bootstrap, *args)
            assert r.returncode == 0, r.stderr

        def set_others():
            for i in range(20):
                configs("--entity-type", "clients", "--entity-name", f"other-{i}", "--alter", "--add-config",
                        "producer_byte_rate=1000,consumer_byte_rate=1000,request_percentage=10")
            configs("--entity-type", "users", "--entity-name", "someone", "--alter", "--add-config",
                    "producer_byte_rate=1000")

        def set_unbounded():
            configs("--entity-type", "clients", "--entity-name", "bench", "--alter", "--add-config",
                    "producer_byte_rate=1000000000000")

        if a.accuracy_only:
            rounds = 0
        best = {"none": max([produce_rate(bootstrap, "quota-bench", records) for _ in range(rounds)] or [1.0])}
        set_others()
        # "others" and "unbounded" alternate (the quota of "bench" added and deleted), so the
        # machine's drift weighs on both alike
        for _ in range(rounds):
            best["others"] = max(best.get("others", 0.0), produce_rate(bootstrap, "quota-bench", records))
            set_unbounded()
            best["unbounded"] = max(best.get("unbounded", 0.0), produce_rate(bootstrap, "quota-bench", records))
            configs("--entity-type", "clients", "--entity-name", "bench", "--alter", "--delete-config",
                    "producer_byte_rate")
        base = best["none"]
        print(f"{'setting':<12} {'records/s (best)':>18} {'vs none':>8}")
        for name in ("none", "others", "unbounded") if not a.accuracy_only else ():
            print(f"{name:<12} {best[name]:>18.1f} {best[name] / base:>8.2f}")

        # How close a throttled client's throughput comes to its quota, after the burst
        seconds = 14 if a.smoke else a.quota_seconds
        print()
        print(f"{'quota':<28} {'bytes/s quota':>14} {'bytes/s seen':>14} {'seen / quota':>13}")
        for q in ([500_000] if a.smoke else [500_000, 2_000_000]):
            cid = f"limited-{q}"
            configs("--entity-type", "clients", "--entity-name", cid, "--alter", "--add-config",
                    f"producer_byte_rate={q},consumer_byte_rate={q}")
            seen = throttled_produce_rate(bootstrap, f"quota-acc-{q}", cid, seconds)
            print(f"{'producer_byte_rate':<28} {q:>14,} {seen:>14,.0f} {seen / q:>13.3f}")
            # more than the consumer can read in the run, from an unthrottled client
            r = tool("kafka-producer-perf-test", "--topic", f"quota-acc-{q}", "--num-records",
                     str(2 * q * seconds // 1024), "--record-size", "1024", "--throughput", "-1",
                     "--producer-props", f"bootstrap.servers={bootstrap}", "client.id=loader", "acks=1")
            assert r.returncode == 0, r.stderr
            seen = throttled_consume_rate(bootstrap, f"quota-acc-{q}", cid, seconds)
            print(f"{'consumer_byte_rate':<28} {q:>14,} {seen:>14,.0f} {seen / q:>13.3f}")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
