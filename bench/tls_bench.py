#!/usr/bin/python3
"""TLS against PLAINTEXT on one node (issue 16): what encryption costs.

    SAMSA_BUILD=build/release /usr/bin/python3 bench/tls_bench.py [--records N] [--smoke]

Starts one node with a PLAINTEXT and an SSL listener (certificates made with the openssl
command line in a temporary directory, TLSv1.3), then on each listener in turn:
  - produce throughput: kafka-producer-perf-test.sh (librdkafka), 1 KiB records, acks=1;
  - consume throughput: kafka-consumer-perf-test.sh of the same records (the broker's fetch
    path: sendfile on PLAINTEXT; on SSL kTLS's SSL_sendfile when the kernel has the tls module,
    else pread + SSL_write in 16 KiB pieces, which the table says);
  - new connections per second: `openssl s_time -new` against the SSL port (a full TLS
    handshake each, client and broker on the same 2 cores), and plain TCP connects + one
    ApiVersions for PLAINTEXT.
Prints a table; figures only, nothing fails on speed. Every run is bounded in records and seconds.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402  (bench.py: free_port, the tools' environment, the build in use)

B.use_build()


def tool(name, *args, timeout=300, input=None):
    return B.run([os.path.join(B.BIN, name + ".sh"), *args], timeout, check=False, input=input)


def openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)


def make_certs(d):
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=bench-ca")
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
            "/CN=localhost")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "server.crt", "-days", "2", "-extfile", "ext")
    openssl(d, "pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.p8")
    with open(os.path.join(d, "keystore.pem"), "w") as f:
        f.write(open(os.path.join(d, "server.p8")).read() + open(os.path.join(d, "server.crt")).read())


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def perf_produce(bootstrap, topic, n, cfg):
    r = tool("kafka-producer-perf-test", "--topic", topic, "--num-records", str(n), "--record-size", "1024",
             "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "acks=1",
             "--producer.config", cfg)
    m = re.findall(r"records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)", r.stdout)
    if not m:
        raise RuntimeError(r.stdout + r.stderr)
    return float(m[-1][0]), float(m[-1][1])


def perf_consume(bootstrap, topic, n, cfg):
    r = tool("kafka-consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(n),
             "--consumer.config", cfg, "--timeout", "60000", "--hide-header")
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms,
    # fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec: the fetch.* figures leave the group join out
    for line in r.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 10:
            try:
                return float(parts[9]), float(parts[8])
            except ValueError:
                continue
    raise RuntimeError(r.stdout + r.stderr)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tls_handshakes(port, ca, seconds):
    r = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds),
                        "-CAfile", ca], capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"(\d+) connections in ([\d.]+)s; ([\d.]+) connections/user sec", r.stdout)
    m2 = re.search(r"(\d+) connections in (\d+) real seconds", r.stdout)
    if m2:
        return int(m2.group(1)) / max(1, int(m2.group(2)))
    if m:
        return float(m.group(3))
    raise RuntimeError(r.stdout + r.stderr)


def plain_connects(port, seconds):
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big") + (0).to_bytes(2, "big")
    frame = len(body).to_bytes(4, "big") + body
    n, end = 0, time.time() + seconds
    while time.time() < end:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(frame)
            s.recv(4096)
        n += 1
    return n / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    n = 2000 if a.smoke else a.records
    secs = 1 if a.smoke else 5
    d = tempfile.mkdtemp(prefix="samsa-tls-bench-")
    proc = None
    try:
        make_certs(d)
        port, sport, cport = B.free_port(), B.free_port(), B.free_port()
        cfg = os.path.join(d, "server.properties")
        with open(os.path.join(B.ROOT, "config", "kraft", "server.properties")) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text + "\n")
            f.write(f"listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{sport},CONTROLLER://127.0.0.1:{cport}\n")
            f.write(f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{sport}\n")
            f.write("listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT\n")
            f.write(f"log.dirs={d}/data\nssl.keystore.type=PEM\nssl.keystore.location={d}/keystore.pem\n")
        cid = tool("kafka-storage", "random-uuid").stdout.strip()
        tool("kafka-storage", "format", "-t", cid, "-c", cfg)
        log = open(os.path.join(d, "broker.out"), "w")
        proc = subprocess.Popen([B.BROKER_BIN, cfg], stdout=log, stderr=subprocess.STDOUT, env=B.tool_env())
        wait_port(port)
        wait_port(sport)
        plain_cfg = os.path.join(d, "plain.properties")
        ssl_cfg = os.path.join(d, "ssl.properties")
        open(plain_cfg, "w").write("security.protocol=PLAINTEXT\n")
        open(ssl_cfg, "w").write(f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={d}/ca.pem\n")
        rows = []
        for name, bs, c in (("PLAINTEXT", f"127.0.0.1:{port}", plain_cfg), ("SSL", f"127.0.0.1:{sport}", ssl_cfg)):
            topic = "bench-" + name.lower()
            tool("kafka-topics", "--bootstrap-server", f"127.0.0.1:{port}", "--create", "--topic", topic,
                 "--partitions", "1", "--replication-factor", "1")
            t0 = cpu_seconds(proc.pid)
            prs, pmb = perf_produce(bs, topic, n, c)
            t1 = cpu_seconds(proc.pid)
            crs, cmb = perf_consume(bs, topic, n, c)
            t2 = cpu_seconds(proc.pid)
            gb = n * 1024 / 1e9
            conns = plain_connects(port, secs) if name == "PLAINTEXT" else tls_handshakes(sport, f"{d}/ca.pem", secs)
            rows.append((name, prs, pmb, crs, cmb, conns, (t1 - t0) / gb, (t2 - t1) / gb))
        out = open(os.path.join(d, "broker.out")).read()
        ktls = "kTLS (SSL_sendfile)" if "kTLS on:" in out else "pread + SSL_write (no kTLS on this kernel)"
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print(f"records: {n} x 1 KiB, acks=1, one partition; load average at the end {load}")
        print(f"fetch path on SSL: {ktls}")
        print("| listener | produce rec/s | produce MB/s | consume rec/s | consume MB/s | new connections/s "
              "| broker CPU s/GB produced | broker CPU s/GB consumed |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.0f} | {r[2]:.1f} | {r[3]:.0f} | {r[4]:.1f} | {r[5]:.0f} | {r[6]:.2f} | {r[7]:.2f} |")
        p, s = rows
        print(f"SSL as a fraction of PLAINTEXT: produce {s[2] / p[2]:.0%}, consume {s[4] / p[4]:.0%}")
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
