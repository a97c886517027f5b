#!/usr/bin/python3
"""SASL authentications per second on one node (issue 16).

    SAMSA_BUILD=build/release /usr/bin/python3 bench/sasl_bench.py [--seconds S] [--smoke]

Starts one node with a PLAINTEXT and a SASL_PLAINTEXT listener (PLAIN users from the JAAS
config, SCRAM-SHA-256/512 users created with kafka-configs.sh, 4096 iterations), then for each
mechanism opens new connections one after the other for S seconds, each doing SaslHandshake v1
and SaslAuthenticate v2 to completion (SCRAM: both round trips, the server signature checked),
and counts completed authentications per second. The client caches the salted password
(PBKDF2 once per user, as the server's stored keys are computed once), so the figure is the
broker's exchange and the connection set-up, not the client's PBKDF2. Baseline: new PLAINTEXT
connections with one ApiVersions each. Prints a table; figures only, nothing fails on speed.
"""
import argparse
import base64
import hashlib
import hmac
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench as B  # noqa: E402  (bench.py: free_port, the tools' environment, the build in use)

B.use_build()


def tool(name, *args):
    return B.run([os.path.join(B.BIN, name + ".sh"), *args], 60, check=False)


def request(sock, api_key, version, corr, body):
    msg = struct.pack(">hhih", api_key, version, corr, 5) + b"bench" + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)


def flexible_request(sock, api_key, version, corr, body):
    msg = struct.pack(">hhih", api_key, version, corr, 5) + b"bench" + b"\0" + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)


def read_frame(sock):
    def exact(n):
        b = b""
        while len(b) < n:
            c = sock.recv(n - len(b))
            if not c:
                raise ConnectionError("closed")
            b += c
        return b
    return exact(struct.unpack(">i", exact(4))[0])


def authenticate(sock, token):
    """SaslAuthenticate v2 (flexible): returns the server's auth bytes."""
    n = len(token) + 1
    uv = b""
    while True:
        b = n & 0x7F
        n >>= 7
        uv += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    flexible_request(sock, 36, 2, 2, uv + token + b"\0")
    resp = read_frame(sock)
    # header v1: corr + tagged; body: error i16, compact nullable message, compact bytes, i64, tagged
    pos = 5
    err = struct.unpack(">h", resp[pos:pos + 2])[0]
    if err:
        raise RuntimeError(f"authentication failed ({err})")
    pos += 2

    def uvarint(p):
        v, shift = 0, 0
        while True:
            b = resp[p]
            p += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v, p
    mlen, pos = uvarint(pos)
    pos += max(mlen - 1, 0)
    blen, pos = uvarint(pos)
    return resp[pos:pos + blen - 1]


def login(port, mech, user, password, salted_cache):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        request(s, 17, 1, 1, struct.pack(">h", len(mech)) + mech.encode())
        if struct.unpack(">h", read_frame(s)[4:6])[0]:
            raise RuntimeError("handshake refused")
        if mech == "PLAIN":
            authenticate(s, b"\0" + user.encode() + b"\0" + password.encode())
            return
        algo = "sha256" if mech.endswith("256") else "sha512"
        nonce = base64.b64encode(os.urandom(18)).decode().replace("=", "")
        first_bare = f"n={user},r={nonce}"
        server_first = authenticate(s, ("n,," + first_bare).encode()).decode()
        parts = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt, iters = base64.b64decode(parts["s"]), int(parts["i"])
        key = (mech, salt, iters)
        if key not in salted_cache:
            salted_cache[key] = hashlib.pbkdf2_hmac(algo, password.encode(), salt, iters)
        salted = salted_cache[key]
        client_key = hmac.new(salted, b"Client Key", algo).digest()
        stored = hashlib.new(algo, client_key).digest()
        without = f"c=biws,r={parts['r']}"
        auth = f"{first_bare},{server_first},{without}".encode()
        sig = hmac.new(stored, auth, algo).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
        final = authenticate(s, f"{without},p={proof}".encode()).decode()
        server_key = hmac.new(salted, b"Server Key", algo).digest()
        if base64.b64decode(final[2:]) != hmac.new(server_key, auth, algo).digest():
            raise RuntimeError("bad server signature")
    finally:
        s.close()


def api_versions_connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        request(s, 18, 0, 1, b"")
        read_frame(s)
    finally:
        s.close()


def rate(fn, seconds):
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        fn()
        n += 1
    return n / (time.time() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    seconds = 0.5 if a.smoke else a.seconds
    d = tempfile.mkdtemp(prefix="samsa-sasl-bench-")
    port, sport, cport = B.free_port(), B.free_port(), B.free_port()
    cfg = os.path.join(d, "server.properties")
    with open(os.path.join(B.ROOT, "config", "kraft", "server.properties")) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write(text + "\n")
        f.write(f"listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sport},"
                f"CONTROLLER://127.0.0.1:{cport}\n")
        f.write(f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sport}\n")
        f.write("listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                "CONTROLLER:PLAINTEXT\n")
        f.write("inter.broker.listener.name=PLAINTEXT\n")
        f.write("sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n")
        f.write("listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain."
                "PlainLoginModule required user_bench=\"bench-pw\";\n")
        f.write(f"log.dirs={os.path.join(d, 'data')}\n")
    cid = tool("kafka-storage", "random-uuid").stdout.strip()
    assert tool("kafka-storage", "format", "-t", cid, "-c", cfg).returncode == 0
    out = open(os.path.join(d, "broker.out"), "w")
    proc = subprocess.Popen([B.BROKER_BIN, cfg], stdout=out, stderr=subprocess.STDOUT, env=B.tool_env())
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", sport), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    sys.exit("the broker did not start")
                time.sleep(0.05)
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            r = tool("kafka-configs", "--bootstrap-server", f"127.0.0.1:{port}", "--alter", "--entity-type", "users",
                     "--entity-name", "bench", "--add-config", f"{mech}=[password=bench-pw]")
            assert r.returncode == 0, r.stderr
        cache = {}
        rows = [("PLAINTEXT connect + ApiVersions (baseline)", rate(lambda: api_versions_connect(port), seconds))]
        for mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            rows.append((f"SASL_PLAINTEXT {mech} (handshake + authenticate)",
                         rate(lambda: login(sport, mech, "bench", "bench-pw", cache), seconds)))
        print(f"{'new connection':<56} {'per second':>10}")
        for name, r in rows:
            print(f"{name:<56} {r:>10.0f}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
