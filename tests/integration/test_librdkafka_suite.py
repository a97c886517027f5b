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
0097 ssl_verify and 0135 sasl_credentials are outside the script's curated list (they need SSL and
SASL listeners): test_librdkafka_ssl_verify_and_sasl_credentials runs them with the script's
test-runner, flags and report against a node with an SSL listener requiring client certificates
and one with a SASL_PLAINTEXT listener.
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
import glob
import json
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


def built_test_runner(tmp_path):
    """librdkafka's test-runner as the script builds it (the script is run once with no test when
    it is not built yet); skips when it cannot be built here."""
    workdir = os.environ.get("SUITE_WORKDIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "samsa-peer-suites"))
    found = sorted(glob.glob(os.path.join(workdir, "librdkafka-*", "tests", "test-runner")))
    if not found:
        subprocess.run(["bash", SCRIPT, "127.0.0.1:9", str(tmp_path / "build-only")], capture_output=True,
                       text=True, timeout=1800, env=dict(os.environ, SUITE_ONLY="none", SUITE_NO_PREFLIGHT="1"))
        found = sorted(glob.glob(os.path.join(workdir, "librdkafka-*", "tests", "test-runner")))
    if not found:
        pytest.skip("librdkafka's test-runner could not be built")
    return found[-1]


def run_one_outside_the_curated_list(runner, test_id, bootstrap, conf_lines, env_extra, tmp_path):
    """One librdkafka test the script's curated list leaves out (it needs SSL or SASL listeners),
    run as the script runs its tests (same flags, test.conf and report); it must say PASSED."""
    src = os.path.dirname(os.path.dirname(runner))
    run_dir = tmp_path / f"run-{test_id}"
    os.makedirs(run_dir)
    conf = tmp_path / f"{test_id}.conf"
    conf.write_text("\n".join([f"bootstrap.servers={bootstrap}", "broker.address.family=v4",
                               "test.timeout.multiplier=2", f"test.topic.prefix=rdkafkatest_{os.getpid()}",
                               *conf_lines]) + "\n")
    report = tmp_path / f"{test_id}.json"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "KAFKA_PATH", "ZK_ADDRESS", "BROKERS")}
    env.update(env_extra, TESTS=test_id, TEST_REPORT=str(report), RDKAFKA_TEST_CONF=str(conf),
               TEST_KAFKA_VERSION="3.1.0", TEST_SCENARIO="default",
               LD_LIBRARY_PATH=f"{src}/src:{src}/src-cpp")
    r = subprocess.run([runner, "-L", "-E", "-K", "-p1", "-Q"], cwd=run_dir, env=env, capture_output=True,
                       text=True, timeout=600)
    out = ANSI.sub("", r.stdout + r.stderr)
    states = {name: t.get("state") for name, t in json.loads(report.read_text()).get("tests", {}).items()} \
        if report.exists() else {}
    # its *_local twin (no broker) is left out by -L, as in the script
    ours = {name: st for name, st in states.items() if name.startswith(test_id) and not name.endswith("_local")}
    assert r.returncode == 0 and ours and all(st == "PASSED" for st in ours.values()), \
        f"{test_id}: rc={r.returncode} states={states}\n{out[-6000:]}"
    return out


@pytest.mark.timeout(900)
def test_librdkafka_ssl_verify_and_sasl_credentials(tmp_path):
    """The suite's SSL and SASL tests that fit one node: 0097 ssl_verify (the client's key,
    certificate and CA in PEM, DER and PKCS#12, through files, inline settings and setters,
    against an SSL listener that requires client certificates; certificates made with openssl
    as trivup makes them, passed in its SSL_* variables) and 0135 sasl_credentials (wrong
    credentials, then sasl_set_credentials, against a SASL_PLAINTEXT listener with PLAIN)."""
    from test_sasl import ADMIN_PW, SaslNode
    from test_tls import Certs, TlsBroker, openssl
    if not os.path.isfile(SCRIPT):
        pytest.skip(f"{SCRIPT} not found")
    if os.environ.get("SAMSA_LIBRDKAFKA_SUITE_ONLY"):
        pytest.skip("SAMSA_LIBRDKAFKA_SUITE_ONLY runs the single-node test only")
    runner = built_test_runner(tmp_path)
    for sub in ("certs", "tls", "sasl"):
        os.makedirs(tmp_path / sub)
    certs = Certs(str(tmp_path / "certs"))
    d = certs.dir
    pw = "client-key-pw"
    # the client's key encrypted (ssl.key.password), and DER and PKCS#12 forms of the same
    openssl("pkcs8", "-topk8", "-in", "client.key", "-out", "client.enc.key", "-passout", f"pass:{pw}", cwd=d)
    openssl("x509", "-in", "client.crt", "-outform", "DER", "-out", "client.der", cwd=d)
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "client.key", "-outform", "DER", "-out", "client.key.der", cwd=d)
    openssl("x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der", cwd=d)
    openssl("pkcs12", "-export", "-in", "client.crt", "-inkey", "client.key", "-certfile", "ca.pem",
            "-out", "client.p12", "-passout", f"pass:{pw}", cwd=d)
    ssl_env = {"SSL_pkcs": certs.path("client.p12"), "SSL_pub_der": certs.path("client.der"),
               "SSL_pub_pem": certs.path("client.crt"), "SSL_priv_der": certs.path("client.key.der"),
               "SSL_priv_pem": certs.path("client.enc.key"), "SSL_ca_der": certs.path("ca.der"),
               "SSL_all_cas_pem": certs.path("ca.pem"), "SSL_password": pw}
    ssl_conf = ["security.protocol=SSL", f"ssl.ca.location={certs.path('ca.pem')}",
                f"ssl.certificate.location={certs.path('client.crt')}",
                f"ssl.key.location={certs.path('client.enc.key')}", f"ssl.key.password={pw}"]
    tls = TlsBroker(str(tmp_path / "tls"), certs, {"ssl.client.auth": "required"}).start()
    try:
        run_one_outside_the_curated_list(runner, "0097", tls.ssl_bootstrap, ssl_conf, ssl_env, tmp_path)
        assert tls.proc.poll() is None, "broker died during 0097:\n" + tls.log_text()[-4000:]
    finally:
        tls.stop()
    node = SaslNode(str(tmp_path / "sasl"))
    try:
        sasl_conf = ["security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN", "sasl.username=admin",
                     f"sasl.password={ADMIN_PW}"]
        out = run_one_outside_the_curated_list(runner, "0135", node.sasl_bootstrap, sasl_conf, {}, tmp_path)
        assert "Authentication error seen" in out, out[-4000:]
        assert node.b.proc.poll() is None, "broker died during 0135:\n" + node.b.log_text()[-4000:]
    finally:
        node.b.stop()
