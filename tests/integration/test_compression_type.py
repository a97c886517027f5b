"""A topic's compression.type: the broker stores batches in that codec
whatever the producer sent (Kafka's LogValidator recompression), and the
records read back unchanged."""
import glob
import os
import subprocess

import pytest


def kcat(*args, input=None):
    return subprocess.run(["kcat", *args], input=input, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("topic_codec,producer_codec,shown", [
    ("gzip", "none", "gzip"),
    ("zstd", "lz4", "zstd"),
    ("uncompressed", "snappy", "none"),
    ("producer", "lz4", "lz4"),
])
def test_topic_compression_type(broker, topic_codec, producer_codec, shown):
    topic = "ct-" + topic_codec
    r = broker.run_tool("kafka-topics", "--create", "--topic", topic, "--config", "compression.type=" + topic_codec,
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    lines = "".join(f"k{i}:value-{i}\n" for i in range(20))
    p = kcat("-P", "-b", broker.bootstrap, "-t", topic, "-K", ":", "-z", producer_codec, input=lines)
    assert p.returncode == 0, p.stderr
    c = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-f", "%k:%s\n")
    assert c.returncode == 0, c.stderr
    assert c.stdout == lines
    segment = sorted(glob.glob(os.path.join(broker.log_dir, topic + "-0", "*.log")))[0]
    d = broker.run_tool("kafka-dump-log", "--files", segment)
    assert d.returncode == 0, d.stderr
    codecs = {line.split("compresscodec: ")[1].split(" ")[0]
              for line in d.stdout.splitlines() if "compresscodec: " in line}
    assert codecs == {shown}, d.stdout
