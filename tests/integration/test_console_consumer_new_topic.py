"""kafka-console-consumer.sh started before its topic exists.

With Kafka the consumer's subscription creates the topic (the Java consumer's
allow.auto.create.topics=true meets the broker's auto.create.topics.enable),
and a topic created later by someone else is found within the consumer's
metadata refresh, so what a producer sends afterwards is printed. While the
topic is missing the Java client says so as NetworkClient does, not in
librdkafka's words.
"""
import os
import re
import subprocess
import threading
import time

from conftest import BIN, tool_env

JAVA_WARN = re.compile(r"WARN \[Consumer clientId=console-consumer, groupId=console-consumer-\d+\] Error while "
                       r"fetching metadata with correlation id \d+ : \{new=UNKNOWN_TOPIC_OR_PARTITION\} "
                       r"\(org\.apache\.kafka\.clients\.NetworkClient\)")


class Consumer:
    """A console consumer whose output is collected by reader threads."""

    def __init__(self, broker, topic):
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "kafka-console-consumer.sh"), "--bootstrap-server", broker.bootstrap,
             "--topic", topic], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tool_env())
        self.out, self.err = [], []
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out)),
                        threading.Thread(target=self._read, args=(self.proc.stderr, self.err))]
        for t in self.readers:
            t.start()

    @staticmethod
    def _read(stream, into):
        for line in stream:
            into.append(line.rstrip("\n"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for t in self.readers:
                t.join(timeout=10)
                assert not t.is_alive()


def topics(broker):
    r = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--list")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def produce(broker, value):
    r = broker.run_tool("kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", "new",
                        input=value + "\n")
    assert r.returncode == 0, r.stderr


def produce_until_printed(broker, consumer, deadline):
    """Sends a record every 0.3 s until the consumer prints one; then three
    more, which must all be printed in order. Returns when the first came."""
    i = 0
    while not consumer.out:
        assert time.time() < deadline, f"nothing printed; stderr: {consumer.err}"
        produce(broker, f"early-{i}")
        i += 1
        time.sleep(0.3)
    first = time.time()
    for v in ("after-1", "after-2", "after-3"):
        produce(broker, v)
    end = time.time() + 15
    while consumer.out[-3:] != ["after-1", "after-2", "after-3"] and time.time() < end:
        time.sleep(0.05)
    assert consumer.out[-3:] == ["after-1", "after-2", "after-3"], consumer.out
    assert all(v.startswith("early-") for v in consumer.out[:-3]), consumer.out
    return first


def test_subscription_creates_the_topic(broker_factory):
    b = broker_factory(**{"auto.create.topics.enable": "true"})
    c = Consumer(b, "new")
    try:
        # the consumer alone creates it, as the Java consumer's subscription does
        deadline = time.time() + 10
        while "new" not in topics(b):
            assert time.time() < deadline, f"the subscription did not create the topic; stderr: {c.err}"
            time.sleep(0.2)
        produce_until_printed(b, c, time.time() + 20)
    finally:
        c.stop()
    err = "\n".join(c.err)
    assert "Subscribed topic not available" not in err, err
    assert "Broker: Unknown topic or partition" not in err, err


def test_topic_created_later_is_found(broker_factory):
    b = broker_factory(**{"auto.create.topics.enable": "false"})
    c = Consumer(b, "new")
    try:
        deadline = time.time() + 10
        while not any(JAVA_WARN.search(line) for line in c.err):
            assert time.time() < deadline, f"no NetworkClient warning; stderr: {c.err}"
            time.sleep(0.1)
        assert "new" not in topics(b)
        r = b.run_tool("kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "new")
        assert r.returncode == 0, r.stderr
        created = time.time()
        # Java: metadata refreshed within retry.backoff.ms, then the group's
        # group.initial.rebalance.delay.ms (3 s); a few seconds in all
        first = produce_until_printed(b, c, created + 20)
        assert first - created < 8, f"first record printed {first - created:.1f} s after the topic was created"
    finally:
        c.stop()
    err = "\n".join(c.err)
    assert "Subscribed topic not available" not in err, err
    assert "Broker: Unknown topic or partition" not in err, err
    # nothing but those warnings and the final count on stderr
    assert all(JAVA_WARN.search(line) or "Processed a total of" in line for line in c.err), err


def test_perf_consumer_subscription_creates_the_topic(broker):
    # kafka-consumer-perf-test's consumer is a Java consumer too
    r = broker.run_tool("kafka-consumer-perf-test", "--bootstrap-server", broker.bootstrap, "--topic", "perfnew",
                        "--messages", "1", "--timeout", "2000", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "WARNING: Exiting before consuming the expected number of messages" in r.stdout, r.stdout
    assert "perfnew" in topics(broker)
