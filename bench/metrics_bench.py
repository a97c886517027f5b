#!/usr/bin/python3
"""The cost of the Prometheus endpoint (issue 17), on one node on loopback:

1. scrape time of GET /metrics with 10,000 partitions (and a group with
   committed offsets on 1,000 of them): wall time of each scrape from the
   client (connect, render, transfer, read), 20 scrapes, and the broker's
   RSS before and after 200 more (the render allocates nothing per scrape
   beyond its answer buffer, kept between scrapes);
2. produce at a fixed 200,000 records/s (kafka-producer-perf-test): the
   throughput reached and p99 with the endpoint scraped every second
   against not scraped.

Prints figures; never fails on speed. Usage:
  SAMSA_BUILD=build-m /usr/bin/python3 bench/metrics_bench.py [--smoke] [--out F.md]
"""
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("SAMSA_BUILD", "build/release")
BIN = os.path.join(ROOT, "bin")
SMOKE = "--smoke" in sys.argv
PARTITIONS = 200 if SMOKE else 10000
TOPICS = 10 if SMOKE else 100
PERF_RECORDS = 100000 if SMOKE else 2000000
PERF_RATE = 50000 if SMOKE else 200000  # records/s: a fixed load, so p99 compares


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env():
    e = dict(os.environ)
    e["SAMSA_BUILD"] = BUILD
    return e


def tool(name, *args, timeout=600):
    r = subprocess.run([os.path.join(BIN, name + ".sh"), *args], capture_output=True, text=True, timeout=timeout,
                       env=env())
    if r.returncode != 0:
        raise RuntimeError(f"{name} {args}: {r.stdout}{r.stderr}")
    return r.stdout


def scrape(port):
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def value(body, name):
    m = re.search(rb"^" + name.encode() + rb" (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


def main():
    work = tempfile.mkdtemp(prefix="samsa-metrics-bench-")
    port, cport, mport = free_port(), free_port(), free_port()
    boot = f"127.0.0.1:{port}"
    conf = os.path.join(work, "server.properties")
    with open(os.path.join(ROOT, "config", "kraft", "server.properties")) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text + f"\nlisteners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n"
                       f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={work}/data\n"
                       f"metrics.listener=http://127.0.0.1:{mport}\noffsets.topic.num.partitions=1\n"
                       "group.initial.rebalance.delay.ms=0\n")
    cid = tool("kafka-storage", "random-uuid").strip()
    tool("kafka-storage", "format", "-t", cid, "-c", conf)
    out = open(os.path.join(work, "broker.out"), "w")
    proc = subprocess.Popen([os.path.join(ROOT, BUILD, "samsa-broker"), conf], stdout=out, stderr=subprocess.STDOUT,
                            env=env())
    rows = []
    try:
        deadline = time.time() + 30
        while True:
            try:
                scrape(mport)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        t0 = time.time()
        per = PARTITIONS // TOPICS
        for i in range(TOPICS):
            tool("kafka-topics", "--bootstrap-server", boot, "--create", "--topic", f"b{i}", "--partitions", str(per))
        create_s = time.time() - t0
        # a group with committed offsets on the partitions of 10 topics (lag series)
        lag_topics = min(10, TOPICS)
        for i in range(lag_topics):
            tool("kafka-consumer-groups", "--bootstrap-server", boot, "--group", "bench", "--topic", f"b{i}",
                 "--reset-offsets", "--to-earliest", "--execute")
        times, sizes, renders = [], [], []
        for _ in range(21):
            dt, body = scrape(mport)
            times.append(dt * 1000)
            sizes.append(len(body))
            renders.append(value(body, "samsa_metrics_render_seconds") * 1000)
        times, renders = times[1:], renders[2:] + [renders[1]]  # each scrape reports the one before
        lines = body.count(b"\n")
        rss_before = value(body, "process_resident_memory_bytes")
        for _ in range(200):
            scrape(mport)
        _, body = scrape(mport)
        rss_after = value(body, "process_resident_memory_bytes")
        parts = value(body, "kafka_server_replicamanager_partitioncount")
        rows.append(("partitions on the node", f"{int(parts):,} ({TOPICS} topics + __consumer_offsets; "
                     f"created in {create_s:.0f} s)"))
        rows.append(("answer size", f"{sizes[-1] / 1e6:.2f} MB, {lines:,} lines"))
        rows.append(("render time in the broker, 20 scrapes (ms)", f"min {min(renders):.1f}, "
                     f"p50 {statistics.median(renders):.1f}, max {max(renders):.1f}"))
        rows.append(("scrape time at the client, connect to last byte (ms)", f"min {min(times):.1f}, "
                     f"p50 {statistics.median(times):.1f}, max {max(times):.1f}"))
        rows.append(("RSS before/after 200 more scrapes", f"{rss_before / 2**20:.1f} / {rss_after / 2**20:.1f} MiB"))

        # produce with and without a scraper every second
        def perf(topic):
            r = tool("kafka-producer-perf-test", "--topic", topic, "--num-records", str(PERF_RECORDS),
                     "--record-size", "100", "--throughput", str(PERF_RATE), "--producer-props", f"bootstrap.servers={boot}",
                     "acks=1", "linger.ms=5")
            last = [line for line in r.splitlines() if "records sent" in line][-1]
            rps = float(re.search(r"([\d.]+) records/sec", last).group(1))
            p99 = re.search(r"([\d.]+) ms 99th", last)
            return rps, float(p99.group(1)) if p99 else float("nan")
        tool("kafka-topics", "--bootstrap-server", boot, "--create", "--topic", "perf", "--partitions", "6")
        perf("perf")  # warm-up
        quiet = perf("perf")
        stop = threading.Event()
        scrapes = []

        def scraper():
            while True:
                scrapes.append(scrape(mport)[0] * 1000)
                if stop.wait(1.0):
                    return
        th = threading.Thread(target=scraper)
        th.start()
        try:
            busy = perf("perf")
        finally:
            stop.set()
            th.join()
        rows.append(("produce, not scraped", f"{quiet[0]:,.0f} records/s, p99 {quiet[1]:.0f} ms"))
        rows.append(("produce, scraped every second", f"{busy[0]:,.0f} records/s, p99 {busy[1]:.0f} ms "
                     f"({len(scrapes)} scrapes, p50 {statistics.median(scrapes) if scrapes else 0:.1f} ms)"))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        out.close()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    table = ["| metrics endpoint | figure |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    text = (f"Metrics bench ({'smoke' if SMOKE else 'full'}), build {BUILD}, load average {load:.2f}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n" + "\n".join(table) + "\n")
    print(text)
    if "--out" in sys.argv:
        with open(sys.argv[sys.argv.index("--out") + 1], "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
