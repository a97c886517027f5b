"""Exactly-once, end to end, as a stream-processing user sees it (issue 14).

A consume-transform-produce loop (eos_transform.py, confluent-kafka in a child process) copies
20,000 records "in-<n>" to "out-<n>" in transactions, every 7th one aborted, while the test kills
-9 the loop mid-transaction (a new incarnation with the same transactional.id fences and aborts
what the old one left open) and kills -9 the broker while a commit is under way. Then:
read_committed sees every "out-<n>" exactly once; read_uncommitted sees the aborted copies too,
and no control record ever reaches the application. On one node and on a 3-node RF 3 cluster
where the transaction coordinator is on another node than the partition leaders.

Also: a transaction left open past transaction.timeout.ms is aborted by the coordinator, and
records after it become visible to read_committed consumers.
"""
import contextlib
import os
import subprocess
import tempfile
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)
from conftest import PYTHON, tool_env

HERE = os.path.dirname(os.path.abspath(__file__))
TOTAL = 20000
PARTS = 4


def create_topics(bootstrap, rf, *names):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(n, num_partitions=PARTS, replication_factor=rf) for n in names])
    for f in fs.values():
        f.result(30)


def produce_input(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    errors = []
    for i in range(TOTAL):
        p.produce(topic, value=f"in-{i}".encode(), key=str(i).encode(), partition=i % PARTS,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    assert not errors, errors[:3]


def read_all(bootstrap, topic, isolation, expect_at_least, deadline_s=90):
    """Every record of topic from the beginning, read with the given isolation level, until at
    least expect_at_least values were read and nothing more came for 3 s."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{isolation}-{time.time()}",
                  "isolation.level": isolation, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTS)])
    values = []
    deadline = time.time() + deadline_s
    quiet_since = time.time()
    try:
        while time.time() < deadline:
            msgs = c.consume(num_messages=1000, timeout=0.5)
            for m in msgs:
                assert not m.error(), m.error()
                values.append(m.value().decode())
            if msgs:
                quiet_since = time.time()
            elif len(values) >= expect_at_least and time.time() - quiet_since > 3:
                break
    finally:
        c.close()
    return values


def committed_total(bootstrap, group, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    try:
        offs = c.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=20)
        return sum(tp.offset for tp in offs if tp.offset > 0)
    finally:
        c.close()


@contextlib.contextmanager
def eos_workdir():
    """The transform's progress file and stderr live here; SAMSA_KEEP_DIRS keeps them (as it keeps the
    brokers' data dirs) for reading a failure afterwards."""
    if os.environ.get("SAMSA_KEEP_DIRS"):
        d = tempfile.mkdtemp(prefix="samsa-eos-")
        print(f"kept {d}")
        yield d
    else:
        with tempfile.TemporaryDirectory(prefix="samsa-eos-") as d:
            yield d


class Loop:
    """The transform child and its progress file."""

    def __init__(self, bootstrap, workdir, abort_every=7):
        self.bootstrap = bootstrap
        self.progress = os.path.join(workdir, "progress")
        self.stop = os.path.join(workdir, "stop")
        self.stderr = os.path.join(workdir, "transform.err")
        self.abort_every = abort_every
        self.proc = None
        self.incarnations = 0

    def start(self):
        self.incarnations += 1
        err = open(self.stderr, "a")
        self.proc = subprocess.Popen([PYTHON, os.path.join(HERE, "eos_transform.py"), self.bootstrap, "eos-tid",
                                      "eos-group", "eos-in", "eos-out", self.progress, self.stop,
                                      str(self.abort_every)], stdout=err, stderr=err, env=tool_env())
        err.close()

    def lines(self):
        try:
            with open(self.progress) as f:
                return [line.split() for line in f if line.strip()]
        except OSError:
            return []

    def wait_for(self, pred, what, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"transform exited with {self.proc.returncode}:\n{self.err_text()}"
            ls = self.lines()
            if pred(ls):
                return ls
            time.sleep(0.01)
        raise AssertionError(f"transform did not reach: {what}; last lines {self.lines()[-5:]}\n{self.err_text()}")

    def err_text(self):
        try:
            with open(self.stderr) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def hold(self, point):
        """The loop stops at point ("produced" or "commit") the next time it gets there."""
        with open(self.progress + ".hold", "w") as f:
            f.write(point)

    def release(self):
        os.remove(self.progress + ".hold")

    def finish(self, committed_fn, timeout=240):
        """Waits until the group's committed offsets cover the whole input, then stops the loop."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"transform exited with {self.proc.returncode}:\n{self.err_text()}"
            if committed_fn() >= TOTAL:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"input not all committed after {timeout}s; last {self.lines()[-5:]}")
        open(self.stop, "w").close()
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError("transform did not stop")
        assert code == 0, f"transform exited with {code}:\n{self.err_text()}"

    def counts(self):
        c = Counter(line[0] for line in self.lines())
        return c


def check_output(bootstrap, loop):
    expected = sorted(f"out-{i}" for i in range(TOTAL))
    committed = read_all(bootstrap, "eos-out", "read_committed", TOTAL)
    dup = [v for v, n in Counter(committed).items() if n > 1]
    missing = set(expected) - set(committed)
    rewinds = [" ".join(line) for line in loop.lines() if line[0] in "ARS"]
    assert not dup and not missing, (f"read_committed: {len(committed)} values, {len(dup)} duplicated "
                                     f"(e.g. {dup[:3]}), {len(missing)} missing (e.g. {sorted(missing)[:3]}); "
                                     "aborts, the offsets read back after them, and stale records dropped:\n"
                                     + "\n".join(rewinds))
    assert sorted(committed) == expected
    uncommitted = read_all(bootstrap, "eos-out", "read_uncommitted", TOTAL)
    # aborted transactions' records are there for read_uncommitted, control records never are
    assert all(v.startswith("out-") for v in uncommitted), [v for v in uncommitted if not v.startswith("out-")][:3]
    assert set(uncommitted) == set(expected)
    # every acknowledged record of an aborted transaction is in the log (one aborted because the
    # broker was killed may have had records that were never acknowledged, and purged)
    aborted_records = sum(int(line[3]) for line in loop.lines() if line[0] == "A")
    assert aborted_records > 0
    assert len(uncommitted) >= TOTAL + aborted_records, (len(uncommitted), aborted_records)


def run_eos(bootstrap, kill_broker, restart_broker, workdir):
    produce_input(bootstrap, "eos-in")
    loop = Loop(bootstrap, workdir)
    loop.start()
    try:
        # 1. the loop is killed -9 while a transaction is open (records produced, not committed).
        # Held there: a commit takes about a millisecond, too short to catch by looking.
        loop.wait_for(lambda ls: sum(1 for x in ls if x[0] == "K") >= 5, "five commits")
        loop.hold("produced")
        loop.wait_for(lambda ls: ls[-1][:2] == ["H", "produced"], "a transaction held open")
        loop.kill9()
        loop.release()
        loop.start()
        # 2. the broker is killed -9 as a commit starts (the loop is released into
        # commit_transaction, the kill follows at once), then restarted
        seen = len(loop.lines())
        loop.wait_for(lambda ls: len(ls) > seen and sum(1 for x in ls[seen:] if x[0] == "K") >= 5, "five commits",
                      timeout=180)
        loop.hold("commit")
        loop.wait_for(lambda ls: ls[-1][:2] == ["H", "commit"], "a commit held")
        loop.release()
        kill_broker()
        restart_broker()
        loop.finish(lambda: committed_total(bootstrap, "eos-group", "eos-in"))
    finally:
        if loop.proc.poll() is None:
            loop.kill9()
    c = loop.counts()
    assert c["A"] >= 1 and c["K"] >= 10, c
    check_output(bootstrap, loop)
    return loop


TXN_BROKER = {"group_initial_rebalance_delay_ms": "0", "transaction_state_log_replication_factor": "1",
              "transaction_state_log_min_isr": "1", "transaction_state_log_num_partitions": "5",
              "offsets_topic_num_partitions": "5"}


@pytest.mark.timeout(600)
def test_exactly_once_one_node(broker_factory):
    b = broker_factory(**TXN_BROKER)
    create_topics(b.bootstrap, 1, "eos-in", "eos-out")
    with eos_workdir() as d:
        run_eos(b.bootstrap, b.kill9, b.start, d)


@pytest.mark.timeout(300)
def test_open_transaction_times_out_and_is_aborted(broker_factory):
    b = broker_factory(transaction_abort_timed_out_transaction_cleanup_interval_ms="500", **TXN_BROKER)
    create_topics(b.bootstrap, 1, "eos-out")
    stuck = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "left-open",
                      "transaction.timeout.ms": 2000})
    stuck.init_transactions(30)
    begun = time.time()
    stuck.begin_transaction()
    for i in range(10):
        stuck.produce("eos-out", value=f"aborted-{i}".encode(), partition=0)
    assert stuck.flush(30) == 0
    # a second producer commits after it on the same partition: invisible until the first is aborted
    other = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "committer"})
    other.init_transactions(30)
    other.begin_transaction()
    for i in range(5):
        other.produce("eos-out", value=f"out-{i}".encode(), partition=0)
    other.commit_transaction(30)
    t0 = time.time()
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "timeout-check", "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("eos-out", 0, 0)])
    got = []
    while time.time() - t0 < 30 and len(got) < 5:
        for m in c.consume(num_messages=100, timeout=0.5):
            assert not m.error(), m.error()
            got.append((m.value().decode(), time.time() - begun))
    c.close()
    assert [v for v, _ in got] == [f"out-{i}" for i in range(5)], got
    # not before the transaction timed out (2 s after it began), aborted by the coordinator's check
    assert got[0][1] >= 1.9, got
    # the timed-out producer is fenced: its next transactional call fails
    with pytest.raises(Exception):
        stuck.commit_transaction(10)


def txn_coordinator(bootstrap, tid):
    """FindCoordinator v3 for a transactional id: (error, node id)."""
    from test_cluster import W, kafka_call
    r = kafka_call(bootstrap, 10, 3, W().cstr(tid).i8(1).uvar(0).b, True)
    r.i32()
    err, _msg, node = r.i16(), r.cstr(), r.i32()
    return err, node


@pytest.mark.timeout(900)
def test_exactly_once_cluster_coordinator_killed_mid_commit(samsa_cluster_factory):
    """RF 3: the coordinator of the loop's transactional id is not the leader of every partition it
    writes, and it is the node killed -9 mid-commit (its __transaction_state partition fails over)."""
    from cluster import HAVE_ETCD
    from test_cluster import metadata, wait_all_registered, wait_until
    if not HAVE_ETCD:
        pytest.skip("/usr/bin/etcd not installed (scripts/install-deps.sh)")
    c = samsa_cluster_factory(3, overrides={
        "group.initial.rebalance.delay.ms": "0", "offsets.topic.replication.factor": "3",
        "offsets.topic.num.partitions": "5", "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2", "transaction.state.log.num.partitions": "5",
        "min.insync.replicas": "2", "replica.lag.time.max.ms": "4000"})
    wait_all_registered(c)
    create_topics(c.bootstrap, 3, "eos-in", "eos-out")
    coord = {}

    def found():
        err, node = txn_coordinator(c.nodes[0].bootstrap, "eos-tid")
        coord["node"] = node
        return err == 0 and node > 0
    wait_until(found, 30, lambda: "a transaction coordinator for eos-tid")
    leaders = {p[1] for p in metadata(c.nodes[0].bootstrap, ["eos-out"])["topics"]["eos-out"]["partitions"].values()}
    assert leaders - {coord["node"]}, (coord, leaders)

    def kill():
        err, node = txn_coordinator(c.nodes[0].bootstrap, "eos-tid")
        assert err == 0, err
        coord["killed"] = node
        c.kill9(node)

    with eos_workdir() as d:
        run_eos(c.bootstrap, kill, lambda: c.start_node(coord["killed"]), d)


@pytest.mark.timeout(300)
def test_kafkajs_transactions_with_send_offsets(broker_factory):
    import json
    import shutil
    js = os.path.join(HERE, "js")
    if not os.path.isdir(os.path.join(js, "node_modules", "kafkajs")):
        pytest.skip("kafkajs not installed (cd tests/integration/js && npm install)")
    b = broker_factory(**TXN_BROKER)
    create_topics(b.bootstrap, 1, "js-in", "js-out")
    count = 2000
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 20})
    for i in range(count):
        p.produce("js-in", value=f"in-{i}".encode(), partition=i % PARTS)
    assert p.flush(30) == 0
    r = subprocess.run([shutil.which("node") or "/usr/bin/node", os.path.join(js, "txn_kafkajs.js"), b.bootstrap,
                        "js-in", "js-out", str(count)], capture_output=True, text=True, timeout=240, cwd=js)
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    res = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT ")][-1][len("RESULT "):])
    assert res["aborted"] == 1 and res["committed"] >= 1, res
    assert sorted(res["values"]) == sorted(f"out-{i}" for i in range(count))  # each exactly once
    per_part = {int(x["partition"]): int(x["offset"]) for x in res["offsets"][0]["partitions"]}
    assert sum(per_part.values()) == count, per_part  # the offsets committed with the transactions
    # read_uncommitted also sees the aborted transaction's copies
    seen = read_all(b.bootstrap, "js-out", "read_uncommitted", count)
    assert len(seen) > count and set(seen) == {f"out-{i}" for i in range(count)}
