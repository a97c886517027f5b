"""librdkafka's own integration tests against the broker, as a bounded CI step.

/work/shared/compat/librdkafka-suite.sh builds librdkafka 2.0.2's test-runner
(Debian's source package; the first run needs root for apt-get and ~70 s) and
runs a curated set of its broker-facing tests. This file runs the subset that
passes against this broker, on a fresh node configured like librdkafka's
"default" test scenario, and fails on any FAIL line, so a regression in what a
real third-party client expects shows up here.

Part of `make test` (about 15 minutes); SAMSA_LIBRDKAFKA_SUITE=0 skips it.
The script is ../shared/compat/librdkafka-suite.sh beside the repository (as
CI lays it out); SAMSA_LIBRDKAFKA_SUITE_SCRIPT overrides the path;
SAMSA_LIBRDKAFKA_SUITE_ONLY replaces the test list; SAMSA_LIBRDKAFKA_SUITE_BUDGET
the overall seconds (default below).

Left out on purpose (they fail against this broker and why):
  0092 mixed_msgver    its AlterConfigs repeats every described key, which
                       Kafka 3.6.1 refuses as well ("Error due to duplicate
                       config keys"); it passed only on ZooKeeper-era brokers
  0081.Configs         expects UNKNOWN_TOPIC_OR_PARTITION for an unknown config
                       on a missing topic; Kafka 3.6.1 (KRaft) validates the
                       names first and answers INVALID_CONFIG, as we do
  0081.Acls            needs an authorizer: run on a node of its own below, set
                       up as trivup's (StandardAuthorizer, super.users=
                       User:ANONYMOUS, allow.everyone.if.no.acl.found=true)
0103 transactions runs on a 3-node cluster with replication factor 3, as librdkafka's own CI runs
it (a 3-broker trivup cluster; the script's SUITE_RF=3 keeps the test's replication factor). On one
node its step "Test multiple init_transactions(): timeout on first", which expects
init_transactions() with a 1 ms timeout to time out, failed in 4 runs of 4 on the CI machine: a
single node finds the coordinator and answers InitProducerId within that millisecond. With RF 3
the transaction log write waits for the followers, as in upstream's setup, and the step holds.
A failure of exactly that assertion is still run again (0103 alone, at most 3 times) and must then
pass; any other failure fails at once.
And 0038 performance / 0055 producer_latency / 0110 batch_size are left out as
timing-bound (0110 measures the client's average batch size, which falls
below its 3900-byte floor when the client's threads are starved of CPU, as
on a loaded 2-core CI machine with the sanitizer broker), and
  0086 purge_remote    races the client's linger.ms (500) against metadata:
                       like Kafka 3.6.1 (KRaft), the broker answers the first
                       Metadata for an auto-created topic UNKNOWN_TOPIC_OR_PARTITION,
                       librdkafka re-asks only after 1 s, and the first batch
                       then sometimes holds one message instead of ten
"""
import os
import re
import subprocess

import pytest

from cluster import etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401 (fixtures)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.environ.get("SAMSA_LIBRDKAFKA_SUITE_SCRIPT",
                        os.path.join(ROOT, "..", "shared", "compat", "librdkafka-suite.sh"))

# Every entry here passed against this broker (see the module docstring for
# the ones that do not), grouped as the script's features.
PASSING = [
    # produce
    "0001", "0002", "0003", "0005", "0008", "0011", "0013", "0021", "0039", "0048",
    "0064", "0065", "0070", "0114", "0125",
    # consume
    "0012", "0014", "0022", "0036", "0041", "0042", "0051", "0067", "0083", "0112", "0137",
    # metadata
    "0007", "0016", "0035", "0044", "0053", "0057", "0063", "0123",
    # offsets
    "0015", "0029", "0030", "0031", "0034", "0061", "0099", "0130",
    # timestamps and headers
    "0054", "0059", "0073", "0085",
    # groups
    "0018", "0019", "0020", "0026", "0033", "0040", "0045", "0050", "0056", "0060",
    "0069", "0084", "0089", "0091", "0093", "0102", "0113", "0118", "0122", "0132",
    # admin
    "0081.CreateTopics", "0081.DeleteTopics", "0081.CreatePartitions", "0081.DeleteRecords",
    "0081.ConsumerGroups", "0081.DeleteGroups", "0081.ConsumerGroupOffsets",
    # idempotence and transactions (0103: CLUSTER_TESTS)
    "0090", "0129",
    # compression
    "0017",
]

# run on a 3-node cluster with replication factor 3 (see the module docstring)
CLUSTER_TESTS = ["0103"]

ANSI = re.compile(r"\x1b\[[0-9;]*m")

# test id -> (the step, the assertion) that fail only because the broker answered faster than
# the test assumes (see the module docstring)
FASTER_THAN_ASSUMED = {
    "0103": ("timeout on first", "Expected init_transactions() to fail"),
}


def failed_only_for_speed(test_id, outdir):
    step_and_assertion = FASTER_THAN_ASSUMED.get(test_id)
    log = outdir / "logs" / f"{test_id}.log"
    if not step_and_assertion or not log.exists():
        return False
    text = ANSI.sub("", log.read_text(errors="replace"))
    failures = re.findall(r"Test assertion failed: (.*)", text)
    step, assertion = step_and_assertion
    last_step = text[:text.find("TEST FAILURE")].rfind("[ Test ")
    return (len(failures) == 1 and assertion in failures[0] and last_step >= 0
            and step in text[last_step:text.find("TEST FAILURE")])

DEFAULT_BUDGET = 1500  # seconds; the whole list above takes about 20 minutes

pytestmark = pytest.mark.skipif(os.environ.get("SAMSA_LIBRDKAFKA_SUITE") == "0",
                                reason="SAMSA_LIBRDKAFKA_SUITE=0: librdkafka's test suite skipped")


def parse_summary(output):
    """The script's result lines: {'PASS': [...], 'FAIL': [...], 'SKIP': [...]}."""
    lines = {"PASS": [], "FAIL": [], "SKIP": []}
    for line in output.splitlines():
        word = line.split(" ", 1)[0]
        if word in lines:
            lines[word].append(line)
    return lines


def run_suite(bootstrap, only, tmp_path, extra_env=None):
    """Runs the script on the given tests against bootstrap and asserts every one passed (a test
    failing only for speed is run again, see FASTER_THAN_ASSUMED)."""
    budget = int(os.environ.get("SAMSA_LIBRDKAFKA_SUITE_BUDGET", DEFAULT_BUDGET))
    env = dict(os.environ, SUITE_ONLY=only, SUITE_BUDGET=str(budget), **(extra_env or {}))
    outdir = tmp_path / "suite"
    # The script bounds itself by SUITE_BUDGET; the margin covers a first-time build.
    r = subprocess.run(["bash", SCRIPT, bootstrap, str(outdir)], env=env, capture_output=True, text=True,
                       timeout=budget + 600)
    lines = parse_summary(r.stdout)
    report = r.stdout[-6000:] + "\n--- stderr ---\n" + r.stderr[-3000:]
    rerun = []
    for line in list(lines["FAIL"]):
        test_id = line.split()[1]
        if not failed_only_for_speed(test_id, outdir):
            continue
        for attempt in range(3):
            again = tmp_path / f"again-{test_id}-{attempt}"
            rr = subprocess.run(["bash", SCRIPT, bootstrap, str(again)], capture_output=True, text=True,
                                env=dict(env, SUITE_ONLY=test_id), timeout=900)
            if parse_summary(rr.stdout)["PASS"]:
                break
            assert failed_only_for_speed(test_id, again), f"{test_id} failed again:\n{rr.stdout[-4000:]}"
        else:
            raise AssertionError(f"{test_id} answered faster than it assumes in 4 runs out of 4")
        lines["FAIL"].remove(line)
        rerun.append(test_id)
    assert not lines["FAIL"], "failed:\n" + "\n".join(lines["FAIL"]) + "\n" + report
    # A SKIP because the budget ran out would hide untested entries
    # (results.tsv: status, id, name, feature, seconds, reason).
    tsv = outdir / "results.tsv"
    rows = [l.split("\t") for l in tsv.read_text().splitlines()] if tsv.exists() else []
    budget_skips = ["\t".join(x) for x in rows if x[0] == "SKIP" and "budget" in x[-1]]
    assert not budget_skips, "budget exhausted:\n" + "\n".join(budget_skips)
    # An entry split by sub-test that passed but whose sub-test the script
    # did not see in the log is reported SKIP; look again ourselves (the
    # script's `sed | grep -q` can lose that race under pipefail).
    unseen = [x for x in rows if x[0] == "SKIP" and x[-1].startswith("no sub-test matching")]
    for x in unseen:
        subtest = x[-1].split("'")[1]
        log = ANSI.sub("", (outdir / "logs" / f"{x[1]}.log").read_text(errors="replace"))
        assert re.search(r"\[ [^\]]*" + re.escape(subtest), log), f"sub-test {subtest} of {x[1]} did not run"
    assert lines["PASS"] or rerun or unseen, "no test passed:\n" + report
    assert r.returncode == 0 or rerun, report


# pytest.ini's 600 s per-test timeout is too short for the whole list.
@pytest.mark.timeout(DEFAULT_BUDGET + 900)
def test_librdkafka_suite(broker_factory, tmp_path):
    if not os.path.isfile(SCRIPT):
        pytest.skip(f"{SCRIPT} not found")
    b = broker_factory(num_partitions=4, auto_create_topics_enable="true")
    run_suite(b.bootstrap, os.environ.get("SAMSA_LIBRDKAFKA_SUITE_ONLY", " ".join(PASSING)), tmp_path)
    assert b.proc.poll() is None, "broker died during the suite:\n" + b.log_text()[-4000:]


@pytest.mark.timeout(900)
def test_librdkafka_acls(broker_factory, tmp_path):
    """0081.Acls: CreateAcls/DescribeAcls/DeleteAcls through librdkafka's admin API, on a node with
    Kafka's StandardAuthorizer configured as librdkafka's test cluster (trivup) configures it."""
    if not os.path.isfile(SCRIPT):
        pytest.skip(f"{SCRIPT} not found")
    if os.environ.get("SAMSA_LIBRDKAFKA_SUITE_ONLY"):
        pytest.skip("SAMSA_LIBRDKAFKA_SUITE_ONLY runs the single-node test only")
    b = broker_factory(num_partitions=4, auto_create_topics_enable="true",
                       **{"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                          "super.users": "User:ANONYMOUS", "allow.everyone.if.no.acl.found": "true"})
    run_suite(b.bootstrap, "0081.Acls", tmp_path)
    assert b.proc.poll() is None, "broker died during the suite:\n" + b.log_text()[-4000:]


@pytest.mark.timeout(DEFAULT_BUDGET + 900)
def test_librdkafka_suite_on_a_cluster(samsa_cluster_factory, tmp_path):
    """The transaction tests as upstream runs them: 3 brokers, topics with replication factor 3."""
    from cluster import HAVE_ETCD
    from test_cluster import wait_all_registered
    if not os.path.isfile(SCRIPT):
        pytest.skip(f"{SCRIPT} not found")
    if not HAVE_ETCD:
        pytest.skip("/usr/bin/etcd not installed (scripts/install-deps.sh)")
    if os.environ.get("SAMSA_LIBRDKAFKA_SUITE_ONLY"):
        pytest.skip("SAMSA_LIBRDKAFKA_SUITE_ONLY runs the single-node test only")
    c = samsa_cluster_factory(3, overrides={"num.partitions": "4", "auto.create.topics.enable": "true"})
    wait_all_registered(c)
    run_suite(c.bootstrap, " ".join(CLUSTER_TESTS), tmp_path, {"SUITE_RF": "3"})  # a node's crash fails the fixture
