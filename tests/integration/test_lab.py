"""The lab (/work/shared/lesson/steps.md), end to end, as a student runs it.

One node, freshly formatted from the package's own config/kraft/server.properties
(only the listener ports, advertised.listeners and log.dirs changed), started with
bin/kafka-server-start.sh in the background and driven only through bin/*.sh and
Debian's kafka-python. Every output is compared exactly with Kafka 3.6.1's; only
TopicIds are masked. The console producer runs under a pseudo-terminal so its ">"
prompts appear as in the lab.

kafka-server-stop.sh signals every samsa-broker on the machine, as Kafka's script
does for its JVMs. So that it cannot stop other tests' nodes, the node and the
stop script share a private PID namespace (unshare); where namespaces are not
available the node is stopped with SIGTERM instead and that step is skipped.

A second test runs `make install PREFIX=<tmp>` and the lab's first steps from the
installed tree, and a third runs scripts/provision-lab.sh without systemd.
"""
import base64
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BIN, BUILD, PYTHON, ROOT, free_port, tool_env, wait_until

SERVER_PROPERTIES = os.path.join(ROOT, "config", "kraft", "server.properties")

# kafka-broker-api-versions.sh against Kafka 3.6.1, from the lab ({port} filled in).
API_VERSIONS_BLOCK = """\
localhost:{port} (id: 1 rack: null) -> (
\tProduce(0): 0 to 9 [usable: 9],
\tFetch(1): 0 to 15 [usable: 15],
\tListOffsets(2): 0 to 8 [usable: 8],
\tMetadata(3): 0 to 12 [usable: 12],
\tLeaderAndIsr(4): UNSUPPORTED,
\tStopReplica(5): UNSUPPORTED,
\tUpdateMetadata(6): UNSUPPORTED,
\tControlledShutdown(7): UNSUPPORTED,
\tOffsetCommit(8): 0 to 8 [usable: 8],
\tOffsetFetch(9): 0 to 8 [usable: 8],
\tFindCoordinator(10): 0 to 4 [usable: 4],
\tJoinGroup(11): 0 to 9 [usable: 9],
\tHeartbeat(12): 0 to 4 [usable: 4],
\tLeaveGroup(13): 0 to 5 [usable: 5],
\tSyncGroup(14): 0 to 5 [usable: 5],
\tDescribeGroups(15): 0 to 5 [usable: 5],
\tListGroups(16): 0 to 4 [usable: 4],
\tSaslHandshake(17): 0 to 1 [usable: 1],
\tApiVersions(18): 0 to 3 [usable: 3],
\tCreateTopics(19): 0 to 7 [usable: 7],
\tDeleteTopics(20): 0 to 6 [usable: 6],
\tDeleteRecords(21): 0 to 2 [usable: 2],
\tInitProducerId(22): 0 to 4 [usable: 4],
\tOffsetForLeaderEpoch(23): 0 to 4 [usable: 4],
\tAddPartitionsToTxn(24): 0 to 4 [usable: 4],
\tAddOffsetsToTxn(25): 0 to 3 [usable: 3],
\tEndTxn(26): 0 to 3 [usable: 3],
\tWriteTxnMarkers(27): 0 to 1 [usable: 1],
\tTxnOffsetCommit(28): 0 to 3 [usable: 3],
\tDescribeAcls(29): 0 to 3 [usable: 3],
\tCreateAcls(30): 0 to 3 [usable: 3],
\tDeleteAcls(31): 0 to 3 [usable: 3],
\tDescribeConfigs(32): 0 to 4 [usable: 4],
\tAlterConfigs(33): 0 to 2 [usable: 2],
\tAlterReplicaLogDirs(34): 0 to 2 [usable: 2],
\tDescribeLogDirs(35): 0 to 4 [usable: 4],
\tSaslAuthenticate(36): 0 to 2 [usable: 2],
\tCreatePartitions(37): 0 to 3 [usable: 3],
\tCreateDelegationToken(38): 0 to 3 [usable: 3],
\tRenewDelegationToken(39): 0 to 2 [usable: 2],
\tExpireDelegationToken(40): 0 to 2 [usable: 2],
\tDescribeDelegationToken(41): 0 to 3 [usable: 3],
\tDeleteGroups(42): 0 to 2 [usable: 2],
\tElectLeaders(43): 0 to 2 [usable: 2],
\tIncrementalAlterConfigs(44): 0 to 1 [usable: 1],
\tAlterPartitionReassignments(45): 0 [usable: 0],
\tListPartitionReassignments(46): 0 [usable: 0],
\tOffsetDelete(47): 0 [usable: 0],
\tDescribeClientQuotas(48): 0 to 1 [usable: 1],
\tAlterClientQuotas(49): 0 to 1 [usable: 1],
\tDescribeUserScramCredentials(50): 0 [usable: 0],
\tAlterUserScramCredentials(51): 0 [usable: 0],
\tDescribeQuorum(55): 0 to 1 [usable: 1],
\tAlterPartition(56): UNSUPPORTED,
\tUpdateFeatures(57): 0 to 1 [usable: 1],
\tEnvelope(58): UNSUPPORTED,
\tDescribeCluster(60): 0 [usable: 0],
\tDescribeProducers(61): 0 [usable: 0],
\tUnregisterBroker(64): 0 [usable: 0],
\tDescribeTransactions(65): 0 [usable: 0],
\tListTransactions(66): 0 [usable: 0],
\tAllocateProducerIds(67): UNSUPPORTED,
\tConsumerGroupHeartbeat(68): UNSUPPORTED
)
"""


def api_versions_block(port):
    return API_VERSIONS_BLOCK.replace("{port}", str(port))


# Time a consumer needs after it is assigned to look up its start offset
# (OffsetFetch + ListOffsets on loopback: milliseconds; generous for ASan).
POSITION_GRACE = 1.5


# ---- the student's copy of server.properties ---------------------------------

def lab_config(src, workdir, port, controller_port, log_dir):
    """Copies server.properties, changing only the listener ports, the advertised
    listener (host stays localhost), log.dirs and the controller port."""
    with open(src) as f:
        lines = f.read().split("\n")
    replaced = set()
    out = []
    for line in lines:
        key = line.split("=", 1)[0] if "=" in line and not line.startswith("#") else None
        if key == "listeners":
            line = f"listeners=PLAINTEXT://:{port},CONTROLLER://:{controller_port}"
        elif key == "advertised.listeners":
            line = f"advertised.listeners=PLAINTEXT://localhost:{port}"
        elif key == "log.dirs":
            line = f"log.dirs={log_dir}"
        elif key == "controller.quorum.voters":
            line = f"controller.quorum.voters=1@localhost:{controller_port}"
        if key:
            replaced.add(key)
        out.append(line)
    assert {"listeners", "advertised.listeners", "log.dirs", "controller.quorum.voters"} <= replaced
    path = os.path.join(workdir, "server.properties")
    with open(path, "w") as f:
        f.write("\n".join(out))
    return path


def run(script, *args, env, input=None, timeout=60):
    return subprocess.run([script, *args], input=input, capture_output=True, text=True,
                          timeout=timeout, env=env)




def port_open(port):
    try:
        with socket.create_connection(("localhost", port), timeout=0.2):
            return True
    except OSError:
        return False


# ---- the node, in the background, in its own PID namespace -------------------

def unshare_prefix():
    """The unshare command line that gives a private PID namespace here, or None
    (also when SAMSA_LAB_NO_UNSHARE is set, to exercise the fallback)."""
    if os.environ.get("SAMSA_LAB_NO_UNSHARE") or not shutil.which("unshare"):
        return None
    for extra in ([], ["--user", "--map-root-user"]):
        cmd = ["unshare", *extra, "--pid", "--fork", "--mount-proc", "--kill-child"]
        try:
            r = subprocess.run([*cmd, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return cmd
    return None


# Inside the namespace: start the node in the background as the lab does, wait
# for "stop" on stdin, run kafka-server-stop.sh, then reap the node.
NAMESPACE_SCRIPT = r'''
"$1/kafka-server-start.sh" "$2" </dev/null >"$3" 2>&1 &
node=$!
read -r _
"$1/kafka-server-stop.sh"; echo "stop-exit=$?"
wait "$node"; echo "server-exit=$?"
'''


class LabNode:
    """kafka-server-start.sh running in the background; stopped by kafka-server-stop.sh
    when a PID namespace is available, else by SIGTERM."""

    def __init__(self, bin_dir, config, log_path, env):
        self.log_path = log_path
        self.ns = unshare_prefix()
        if self.ns:
            self.proc = subprocess.Popen([*self.ns, "sh", "-c", NAMESPACE_SCRIPT, "sh", bin_dir, config, log_path],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, env=env)
        else:
            out = open(log_path, "w")
            self.proc = subprocess.Popen([os.path.join(bin_dir, "kafka-server-start.sh"), config],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
            out.close()

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def wait_listening(self, port, timeout=30):
        def ready():
            assert self.proc.poll() is None, "node exited:\n" + self.log()
            return port_open(port)
        wait_until(ready, timeout, "the node to listen on port %d\n%s" % (port, self.log()))

    def stop(self, timeout=30):
        """Returns (stop script exit, stop script output, server exit)."""
        if self.ns:
            out, _ = self.proc.communicate("stop\n", timeout=timeout)
            stop = re.search(r"stop-exit=(\d+)", out)
            server = re.search(r"server-exit=(\d+)", out)
            text = re.sub(r"(stop|server)-exit=\d+\n", "", out)
            return (int(stop.group(1)) if stop else None, text, int(server.group(1)) if server else None)
        self.proc.send_signal(signal.SIGTERM)
        return None, "", self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()  # with --kill-child, the whole namespace goes with it
            self.proc.wait()


# ---- console tools ------------------------------------------------------------

def pty_producer(bin_dir, env, args, lines, timeout=60):
    """Types `lines` into kafka-console-producer.sh on a terminal, one after each ">"
    prompt, then Ctrl-D. Returns (terminal transcript with \\r\\n as \\n, stderr, exit)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([os.path.join(bin_dir, "kafka-console-producer.sh"), *args],
                            stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    transcript = b""
    deadline = time.time() + timeout

    def read_some():
        nonlocal transcript
        r, _, _ = select.select([master], [], [], 0.1)
        if not r:
            return True
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the producer has exited and closed the terminal
            return False
        transcript += chunk
        return bool(chunk)

    try:
        for i, line in enumerate(lines + [None]):
            while transcript.count(b">") < i + 1:
                assert time.time() < deadline, f"no prompt {i + 1}; got {transcript!r}"
                assert read_some() or transcript.count(b">") >= i + 1, f"producer ended: {transcript!r}"
            os.write(master, b"\x04" if line is None else line.encode() + b"\n")
        while time.time() < deadline and read_some():
            pass
        proc.wait(timeout=max(1, deadline - time.time()))
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        os.close(master)
    return transcript.decode().replace("\r\n", "\n"), err, proc.returncode


class Consumer:
    """A kafka-console-consumer.sh in the background; its lines are collected by threads."""

    def __init__(self, bin_dir, env, *args):
        self.proc = subprocess.Popen([os.path.join(bin_dir, "kafka-console-consumer.sh"), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.out, self.err = [], []
        self.threads = [threading.Thread(target=self._pump, args=(s, l), daemon=True)
                        for s, l in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self.threads:
            t.start()

    @staticmethod
    def _pump(stream, sink):
        for raw in iter(stream.readline, b""):
            sink.append(raw.decode())

    def wait_lines(self, n, timeout=30):
        wait_until(lambda: len(self.out) >= n or self.proc.poll() is not None, timeout,
                   f"{n} lines from the consumer (have {self.out!r}, stderr {self.err!r})")

    def interrupt(self, timeout=30):
        """Ctrl-C; returns (stdout lines, stderr text, exit code)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        self.join()
        return [l.rstrip("\n") for l in self.out], "".join(self.err), self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.join()

    def join(self):
        """The pumps end with the process's pipes; they must be done before the test is."""
        for t in self.threads:
            t.join(timeout=5)
        assert not any(t.is_alive() for t in self.threads), "a consumer output pump is stuck"


def console_groups(bootstrap):
    """{group: (state, [assignment of each member])} for console-consumer-* groups."""
    script = f"""
import json
from kafka.admin import KafkaAdminClient
a = KafkaAdminClient(bootstrap_servers={bootstrap!r})
names = [g for g, _ in a.list_consumer_groups() if g.startswith("console-consumer-")]
res = {{}}
for d in (a.describe_consumer_groups(names) if names else []):
    res[d.group] = [d.state, [[[t, list(p)] for t, p in m.member_assignment.assignment]
                              if m.member_assignment else [] for m in d.members]]
a.close()
print(json.dumps(res))
"""
    r = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- kafka-python, with its default settings ----------------------------------

KAFKA_PYTHON_SCRIPT = """
import json, sys
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
bs = sys.argv[1]
res = {}
admin = KafkaAdminClient(bootstrap_servers=bs)
res["topics_before"] = sorted(admin.list_topics())
created = admin.create_topics([NewTopic("lab-python", 1, 1)])
res["create_errors"] = [[t, e] for t, e, *_ in created.topic_errors]
res["topics_after"] = sorted(admin.list_topics())
admin.close()

producer = KafkaProducer(bootstrap_servers=bs)
res["api_version"] = list(producer.config["api_version"])
metas = [producer.send("lab-python", v).get(timeout=30) for v in (b"one", b"two", b"three")]
res["sent"] = [[m.topic, m.partition, m.offset] for m in metas]
producer.close()

loner = KafkaConsumer("lab-python", bootstrap_servers=bs, auto_offset_reset="earliest",
                      consumer_timeout_ms=5000)
res["no_group"] = [[m.partition, m.offset, m.value.decode()] for m in loner]
loner.close()
everything = KafkaConsumer("test", bootstrap_servers=bs, auto_offset_reset="earliest",
                           consumer_timeout_ms=5000)
res["test_topic"] = sorted(m.value.decode() for m in everything)
everything.close()

member = KafkaConsumer("lab-python", bootstrap_servers=bs, group_id="lab-python-group",
                       auto_offset_reset="earliest", consumer_timeout_ms=10000)
res["group"] = [m.value.decode() for m in member]
member.commit()
res["committed"] = member.committed(TopicPartition("lab-python", 0))
member.close()
print(json.dumps(res))
"""


# ---- the lab --------------------------------------------------------------------

@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="samsa-lab-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_lab_end_to_end(workdir):
    env = tool_env()
    port, controller_port = free_port(), free_port()
    bs = f"localhost:{port}"
    log_dir = os.path.join(workdir, "kraft-combined-logs")
    config = lab_config(SERVER_PROPERTIES, workdir, port, controller_port, log_dir)
    sh = lambda name: os.path.join(BIN, name + ".sh")  # noqa: E731

    # 0. The node refuses to start before its storage is formatted.
    r = run(sh("kafka-server-start"), config, env=env, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.fullmatch(r"\[[-0-9 :,]+\] ERROR Exiting Kafka due to fatal exception \(kafka\.Kafka\$\)\n"
                        r"org\.apache\.kafka\.common\.KafkaException: No `meta\.properties` found in "
                        + re.escape(log_dir) + r" \(have you run `kafka-storage\.sh` to format the directory\?\)\n",
                        r.stdout), r.stdout + r.stderr

    # kafka-storage.sh random-uuid: 22 characters of URL-safe base64 of 16 bytes.
    r = run(sh("kafka-storage"), "random-uuid", env=env)
    assert r.returncode == 0 and r.stderr == ""
    cluster_id = r.stdout.rstrip("\n")
    assert r.stdout == cluster_id + "\n" and re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16

    # format, format again (refused), format --ignore-formatted.
    r = run(sh("kafka-storage"), "format", "-t", cluster_id, "-c", config, env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"Formatting {log_dir} with metadata.version 3.6-IV2.\n", "")
    assert os.path.exists(os.path.join(log_dir, "meta.properties"))
    r = run(sh("kafka-storage"), "format", "-t", cluster_id, "-c", config, env=env)
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "", f"Log directory {log_dir} is already formatted. "
               "Use --ignore-formatted to ignore this directory and format the others.\n")
    r = run(sh("kafka-storage"), "format", "-t", cluster_id, "-c", config, "--ignore-formatted", env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "All of the log directories are already formatted.\n", "")

    # kafka-server-start.sh in the background (the lab's JVM settings are ignored).
    node_env = dict(env, KAFKA_HEAP_OPTS="-Xmx256M -Xms128M")
    node = LabNode(BIN, config, os.path.join(workdir, "server.log"), node_env)
    consumers = []
    try:
        node.wait_listening(port)

        # 1. Status.
        r = run(sh("kafka-broker-api-versions"), "--bootstrap-server", bs, env=env)
        assert r.returncode == 0 and r.stderr == ""
        assert r.stdout == api_versions_block(port)

        # 2. Send.
        r = run(sh("kafka-topics"), "--create", "--topic", "test", "--bootstrap-server", bs, env=env)
        assert (r.returncode, r.stdout, r.stderr) == (0, "Created topic test.\n", "")
        r = run(sh("kafka-topics"), "--list", "--bootstrap-server", bs, env=env)
        assert (r.returncode, r.stdout, r.stderr) == (0, "test\n", "")
        r = run(sh("kafka-topics"), "--describe", "--topic", "test", "--bootstrap-server", bs, env=env)
        assert r.returncode == 0 and r.stderr == ""
        assert re.fullmatch(r"Topic: test\tTopicId: [A-Za-z0-9_-]{22}\t.*\n.*\n", r.stdout), r.stdout
        assert re.sub(r"TopicId: [A-Za-z0-9_-]{22}", "TopicId: <id>", r.stdout) == (
            "Topic: test\tTopicId: <id>\tPartitionCount: 1\tReplicationFactor: 1\t"
            "Configs: segment.bytes=1073741824\n"
            "\tTopic: test\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n")

        transcript, err, code = pty_producer(BIN, env, ["--topic", "test", "--bootstrap-server", bs],
                                             ["hello", "world", "!"])
        assert (code, err) == (0, ""), err
        assert transcript == ">hello\n>world\n>!\n>", repr(transcript)

        r = run(sh("kafka-get-offsets"), "--bootstrap-server", bs, env=env)
        assert (r.returncode, r.stdout, r.stderr) == (0, "test:0:3\n", "")

        # 3. Receive: from the beginning, then from partition 0 offset 1; Ctrl-C ends each.
        c = Consumer(BIN, env, "--topic", "test", "--bootstrap-server", bs, "--from-beginning")
        consumers.append(c)
        c.wait_lines(3)
        time.sleep(0.3)  # nothing more may arrive
        out, err, code = c.interrupt()
        assert out == ["hello", "world", "!"]
        assert err == "Processed a total of 3 messages\n"
        assert code == 130  # the JVM's exit on SIGINT

        c = Consumer(BIN, env, "--topic", "test", "--bootstrap-server", bs, "--partition", "0", "--offset", "1")
        consumers.append(c)
        c.wait_lines(2)
        time.sleep(0.3)
        out, err, code = c.interrupt()
        assert (out, err) == (["world", "!"], "Processed a total of 2 messages\n")

        # 4. Two consumers from the end (each in its own console-consumer-<n> group),
        # then a producer sends 1..5: both print 1..5.
        before = set(console_groups(bs))
        pair = [Consumer(BIN, env, "--topic", "test", "--bootstrap-server", bs) for _ in range(2)]
        consumers += pair

        def both_assigned():
            groups = {g: v for g, v in console_groups(bs).items() if g not in before}
            return len(groups) == 2 and all(state == "Stable" and members == [[["test", [0]]]]
                                            for state, members in groups.values())
        wait_until(both_assigned, 45, "both console consumers to join their groups")
        for g in set(console_groups(bs)) - before:  # Kafka's name for a consumer without --group
            assert re.fullmatch(r"console-consumer-(\d+)", g) and int(g.rsplit("-", 1)[1]) < 100000, g
        time.sleep(POSITION_GRACE)

        transcript, err, code = pty_producer(BIN, env, ["--topic", "test", "--bootstrap-server", bs],
                                             ["1", "2", "3", "4", "5"])
        assert (code, err, transcript) == (0, "", ">1\n>2\n>3\n>4\n>5\n>")
        for c in pair:
            c.wait_lines(5)
        time.sleep(0.3)
        for c in pair:
            out, err, code = c.interrupt()
            assert (out, err) == (["1", "2", "3", "4", "5"], "Processed a total of 5 messages\n")

        r = run(sh("kafka-topics"), "--alter", "--topic", "test", "--partitions", "2", "--bootstrap-server", bs,
                env=env)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
        r = subprocess.run(f"'{sh('kafka-get-offsets')}' --bootstrap-server {bs} | grep test", shell=True,
                           capture_output=True, text=True, timeout=60, env=env)
        assert (r.returncode, r.stdout, r.stderr) == (0, "test:0:8\ntest:1:0\n", "")

        # One consumer per partition from the end, then a keyed producer.
        p0 = Consumer(BIN, env, "--topic", "test", "--bootstrap-server", bs, "--partition", "0")
        p1 = Consumer(BIN, env, "--topic", "test", "--bootstrap-server", bs, "--partition", "1")
        consumers += [p0, p1]
        time.sleep(POSITION_GRACE + 1.0)  # assigned at once; let both look up the end offset
        keyed = [f"{i}:hello{i}" for i in range(1, 6)]
        transcript, err, code = pty_producer(
            BIN, env, ["--topic", "test", "--bootstrap-server", bs, "--property", "parse.key=true",
                       "--property", "key.separator=:"], keyed)
        assert (code, err) == (0, "")
        assert transcript == "".join(f">{k}\n" for k in keyed) + ">"
        p0.wait_lines(2)
        p1.wait_lines(3)
        time.sleep(0.3)
        assert p0.interrupt()[:2] == (["hello2", "hello5"], "Processed a total of 2 messages\n")
        assert p1.interrupt()[:2] == (["hello1", "hello3", "hello4"], "Processed a total of 3 messages\n")

        # 5. kafka-python with default settings (API version auto-detection).
        r = subprocess.run([PYTHON, "-c", KAFKA_PYTHON_SCRIPT, bs], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        py = json.loads(r.stdout.strip().splitlines()[-1])
        assert "test" in py["topics_before"] and "lab-python" not in py["topics_before"]
        assert py["create_errors"] == [["lab-python", 0]]
        assert "lab-python" in py["topics_after"]
        assert py["api_version"] == [2, 5, 0]
        assert py["sent"] == [["lab-python", 0, 0], ["lab-python", 0, 1], ["lab-python", 0, 2]]
        assert py["no_group"] == [[0, 0, "one"], [0, 1, "two"], [0, 2, "three"]]
        assert py["test_topic"] == sorted(["hello", "world", "!", "1", "2", "3", "4", "5"]
                                          + [f"hello{i}" for i in range(1, 6)])
        assert py["group"] == ["one", "two", "three"] and py["committed"] == 3

        # The end: kafka-server-stop.sh, a clean shutdown (SIGTERM without a namespace).
        stop_code, stop_out, server_code = node.stop()
        if node.ns:
            assert (stop_code, stop_out) == (0, ""), stop_out
        assert server_code == 0, node.log()[-4000:]
        assert "shut down completed" in node.log()
    finally:
        for c in consumers:
            c.kill()
        node.kill()
    if not node.ns:
        pytest.skip("no PID namespace here, so kafka-server-stop.sh (it stops every node on the machine) "
                    "was not run; the node was stopped with SIGTERM")


# ---- make install, and the lab's first steps from the installed tree ----------

# build-asan, or an engineer's own build-<name>-asan: rebuilt with SANITIZE=1
SANITIZED = os.path.basename(BUILD).endswith("asan")

def make_install(prefix):
    sanitize = "1" if SANITIZED else "0"
    r = subprocess.run(["make", "-C", ROOT, f"SANITIZE={sanitize}", f"BUILD={BUILD}", "install", f"PREFIX={prefix}"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def installed_env(prefix):
    env = tool_env()
    env.pop("SAMSA_BUILD", None)
    env["PATH"] = os.path.join(prefix, "bin") + os.pathsep + env.get("PATH", "")
    return env


def test_make_install_runs_the_lab_start(workdir):
    prefix = os.path.join(workdir, "opt-kafka")
    make_install(prefix)
    for rel in ("bin/kafka-storage.sh", "bin/kafka-server-start.sh", "bin/kafka-server-stop.sh",
                "bin/kafka-broker-api-versions.sh", "bin/kafka-console-producer.sh",
                "libexec/samsa-broker", "libexec/samsa-tools", "config/kraft/server.properties"):
        assert os.path.exists(os.path.join(prefix, rel)), rel
    with open(os.path.join(prefix, "config/kraft/server.properties")) as a, open(SERVER_PROPERTIES) as b:
        assert a.read() == b.read()

    env = installed_env(prefix)
    port, controller_port = free_port(), free_port()
    log_dir = os.path.join(workdir, "kraft-combined-logs")
    config = lab_config(os.path.join(prefix, "config/kraft/server.properties"), workdir, port, controller_port,
                        log_dir)
    # By name, through PATH, as after `. /etc/profile.d/kafka.sh`.
    r = run("kafka-storage.sh", "random-uuid", env=env)
    assert r.returncode == 0 and re.fullmatch(r"[A-Za-z0-9_-]{22}\n", r.stdout), r.stdout + r.stderr
    r = run("kafka-storage.sh", "format", "-t", r.stdout.strip(), "-c", config, env=env)
    assert (r.returncode, r.stdout) == (0, f"Formatting {log_dir} with metadata.version 3.6-IV2.\n"), r.stderr

    log_path = os.path.join(workdir, "server.log")
    with open(log_path, "w") as out:
        node = subprocess.Popen(["kafka-server-start.sh", config], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(lambda: node.poll() is not None or port_open(port), 30, "the installed node to listen")
        assert node.poll() is None, open(log_path).read()
        # The script exec'd the installed broker, not the one in the source tree.
        assert os.path.realpath(f"/proc/{node.pid}/exe") == os.path.realpath(
            os.path.join(prefix, "libexec", "samsa-broker"))
        r = run("kafka-broker-api-versions.sh", "--bootstrap-server", f"localhost:{port}", env=env)
        assert r.returncode == 0 and r.stdout == api_versions_block(port), r.stderr
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=30) == 0
        assert "shut down completed" in open(log_path).read()
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()


# ---- scripts/provision-lab.sh without apt-get and systemd ----------------------

def test_provision_script_without_systemd(workdir):
    prefix = os.path.join(workdir, "opt-kafka")
    profile_d = os.path.join(workdir, "profile.d")
    port, controller_port = free_port(), free_port()
    log_dir = os.path.join(workdir, "kraft-combined-logs")
    config = lab_config(SERVER_PROPERTIES, workdir, port, controller_port, log_dir)
    env = tool_env()
    env.pop("SAMSA_BUILD", None)
    env.update(SAMSA_SKIP_DEPS="1", SAMSA_START="none", PREFIX=prefix, PROFILE_D=profile_d,
               SAMSA_CONFIG=config, SAMSA_MAKE_ARGS=("SANITIZE=1 " if SANITIZED else "") +
               f"BUILD={BUILD}")
    script = os.path.join(ROOT, "scripts", "provision-lab.sh")
    r = subprocess.run(["sh", script], capture_output=True, text=True, timeout=1200, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"Formatting {log_dir} with metadata.version 3.6-IV2.\n" in r.stdout
    assert os.path.exists(os.path.join(log_dir, "meta.properties"))
    assert os.access(os.path.join(prefix, "bin", "kafka-server-start.sh"), os.X_OK)
    with open(os.path.join(profile_d, "kafka.sh")) as f:
        assert f.read() == f'PATH="$PATH:{prefix}/bin"\n'
    # Provisioning again (vagrant provision) keeps the formatted storage.
    r = subprocess.run(["sh", script], capture_output=True, text=True, timeout=1200, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "All of the log directories are already formatted.\n" in r.stdout
