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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
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

        best = {"none": max(produce_rate(bootstrap, "quota-bench", records) for _ in range(rounds))}
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
        for name in ("none", "others", "unbounded"):
            print(f"{name:<12} {best[name]:>18.1f} {best[name] / base:>8.2f}")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
