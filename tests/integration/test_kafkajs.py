"""kafkajs (Node.js, a client written without librdkafka or Java) against
the broker: admin createTopics / fetchTopicMetadata / fetchTopicOffsets /
fetchOffsets / deleteTopics, producer send with keys and headers, and a
consumer group reading everything back.

The driver is tests/integration/js/kafkajs_driver.js; kafkajs itself comes
from `cd tests/integration/js && npm install` (scripts/install-deps.sh).
"""
import json
import os
import shutil
import subprocess

import pytest

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
NODE = shutil.which("node") or "/usr/bin/node"

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")),
                                reason="kafkajs not installed (cd tests/integration/js && npm install)")


def run_driver(b, topic, count):
    r = subprocess.run([NODE, os.path.join(JS_DIR, "kafkajs_driver.js"), b.bootstrap, topic, str(count)],
                       capture_output=True, text=True, timeout=150, cwd=JS_DIR)
    assert r.returncode == 0, f"driver failed:\nstdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-4000:]}"
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, r.stdout
    return json.loads(lines[-1][len("RESULT "):])


def test_kafkajs_admin_produce_consume_offsets(broker_factory):
    b = broker_factory(group_initial_rebalance_delay_ms="0")
    count = 60
    res = run_driver(b, "js-topic", count)

    assert res["created"] is True
    assert res["createdAgain"] is False  # TOPIC_ALREADY_EXISTS, which kafkajs turns into false
    assert res["partitions"] == [0, 1, 2]
    assert res["listed"] is True
    assert all(s["errorCode"] == 0 for s in res["sent"])

    got = res["consumed"]
    assert sorted(int(m["headers"]["seq"]) for m in got) == list(range(count))  # each record exactly once
    for m in got:
        i = int(m["headers"]["seq"])
        assert m["key"] == f"key-{i % 7}" and m["value"] == f"value-{i}"
        assert m["headers"]["origin"] == "kafkajs"
    # one key, one partition; offsets in each partition dense from 0 and in send order
    key_part = {}
    for m in got:
        assert key_part.setdefault(m["key"], m["partition"]) == m["partition"]
    per_part = {}
    for m in got:
        per_part.setdefault(m["partition"], []).append(m)
    for part, ms in per_part.items():
        assert [m["offset"] for m in ms] == list(range(len(ms)))
        seqs = [int(m["headers"]["seq"]) for m in ms]
        assert seqs == sorted(seqs)

    ends = {p["partition"]: p["high"] for p in res["topicOffsets"]}
    assert sum(ends.values()) == count
    assert all(p["low"] == 0 for p in res["topicOffsets"])
    assert ends == {p: len(per_part.get(p, [])) for p in range(3)}
    # the group committed what it consumed
    assert {c["partition"]: c["offset"] for c in res["committed"]} == ends
    # offsets by timestamp 0: the first record of each non-empty partition
    assert {p["partition"]: p["offset"] for p in res["byTimestamp"]} == \
        {p: (0 if ends[p] else -1) for p in range(3)}

    assert res["listedAfterDelete"] is False
