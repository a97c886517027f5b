"""capture_requests.py - record what real clients send, as fuzz seeds.

Starts a broker (through tests/integration/conftest.py's Broker), puts a
recording TCP proxy in front of it, runs kafka-python and confluent-kafka
through the proxy (admin, produce with several codecs, consume in a group,
commit), and writes each distinct (api key, version) request frame, size
prefix included, to tests/fuzz/corpus/request/cap_<client>_<key>_v<version>.
The proxy rewrites nothing: clients keep talking to the real broker, whose
advertised address is the proxy's. Run from the repo root after `make`:
    /usr/bin/python3 tests/fuzz/capture_requests.py
"""
import os
import socket
import struct
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import Broker, free_port  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fuzz", "corpus", "request")
seen = {}
client_tag = ["x"]


def pump_requests(src, dst):
    """Client -> broker: forward and cut out every frame."""
    buf = b""
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            break
        if not data:
            break
        dst.sendall(data)
        buf += data
        while len(buf) >= 4:
            (n,) = struct.unpack(">i", buf[:4])
            if len(buf) < 4 + n:
                break
            frame = buf[: 4 + n]
            buf = buf[4 + n:]
            key, ver = struct.unpack(">hh", frame[4:8])
            name = f"cap_{client_tag[0]}_{key:02d}_v{ver:02d}"
            if name not in seen and len(frame) < 8192:
                seen[name] = frame
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def pump(src, dst):
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            break
        if not data:
            break
        try:
            dst.sendall(data)
        except OSError:
            break
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def proxy(listen, target):
    while True:
        c, _ = listen.accept()
        u = socket.create_connection(target)
        threading.Thread(target=pump_requests, args=(c, u), daemon=True).start()
        threading.Thread(target=pump, args=(u, c), daemon=True).start()


def kafka_python_workload(bootstrap):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    admin.create_topics([NewTopic("cap-a", 2, 1, topic_configs={"retention.ms": "60000"})])
    admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cap-a")])
    admin.create_partitions({"cap-a": NewPartitions(3)})
    admin.list_topics()
    for codec in (None, "gzip"):
        p = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, acks="all")
        for i in range(5):
            p.send("cap-a", key=b"k%d" % i, value=b"v" * i, headers=[("h", b"1")])
        p.flush()
        p.close()
    c = KafkaConsumer("cap-a", bootstrap_servers=bootstrap, group_id="cap-g", auto_offset_reset="earliest",
                      consumer_timeout_ms=4000)
    for _ in c:
        pass
    c.commit()
    c.close()
    admin.list_consumer_groups()
    admin.describe_consumer_groups(["cap-g"])
    admin.list_consumer_group_offsets("cap-g")
    admin.delete_topics(["cap-a"])
    admin.close()


def confluent_workload(bootstrap):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic("cap-b", 1, 1)]).values():
        f.result()
    for codec in ("snappy", "lz4", "zstd"):
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "enable.idempotence": True})
        for i in range(5):
            p.produce("cap-b", key=b"k", value=b"x" * (i * 10))
        p.flush(10)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cap-g2", "auto.offset.reset": "earliest"})
    c.subscribe(["cap-b"])
    deadline = time.time() + 10
    got = 0
    while time.time() < deadline and got < 15:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    c.commit(asynchronous=False)
    c.close()
    admin.list_topics(timeout=5)


def main():
    listen = socket.socket()
    listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    proxy_port = free_port()
    listen.bind(("127.0.0.1", proxy_port))
    listen.listen(64)
    d = tempfile.mkdtemp(prefix="samsa-capture-")
    b = Broker(d, {"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy_port}",
                   "group.initial.rebalance.delay.ms": "0"})
    b.start()
    threading.Thread(target=proxy, args=(listen, (b.host, b.port)), daemon=True).start()
    try:
        client_tag[0] = "kpy"
        kafka_python_workload(f"127.0.0.1:{proxy_port}")
        time.sleep(0.5)
        client_tag[0] = "rdk"
        confluent_workload(f"127.0.0.1:{proxy_port}")
        time.sleep(0.5)
    finally:
        b.stop()
    os.makedirs(OUT, exist_ok=True)
    for name, frame in sorted(seen.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(frame)
    print(f"{len(seen)} frames written to {OUT}")


if __name__ == "__main__":
    main()
