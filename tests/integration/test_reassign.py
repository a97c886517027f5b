"""Partition reassignment, black box: 3 etcd members and 3 Samsa nodes on
loopback, kafka-reassign-partitions.sh as a user runs it, real producers.

1. a partition grows from RF 1 to RF 3 and another moves to other nodes
   (its leader removed) while an idempotent acks=all producer writes: the
   tool's --execute text, --list and --verify while the reassignment waits
   for a stopped node, then --verify's completion lines; nothing
   acknowledged lost or duplicated, the new replicas hold the leader's
   bytes, the removed replica's directory is gone;
2. --generate's current and proposed assignments, --execute --throttle
   (the rates and replicas visible in kafka-configs until --verify clears
   them), --cancel of a running reassignment (reverted), and the tool's
   refusals.
"""
import json
import os
import time

import pytest

from cluster import (HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory)  # noqa: F401 (fixtures)
from test_cluster import metadata, tool, wait_until
from test_cluster_faults import AckedProducer, read_back_exactly_once
from test_replication import log_bytes, partition_lines

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")

OVERRIDES = {"group.initial.rebalance.delay.ms": "0", "replica.lag.time.max.ms": "4000"}

RUN_VERIFY = ("Warning: You must run --verify periodically, until the reassignment completes, to ensure the "
              "throttle is removed.")


def reassign(c, *args, ok=True):
    return tool(c, "kafka-reassign-partitions", "--bootstrap-server", c.node(1).bootstrap, *args, ok=ok)


def write_json(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return str(p)


def create(c, topic, assignment):
    wait_until(lambda: len(metadata(c.node(1).bootstrap)["brokers"]) == 3, 10, "node 1 sees 3 brokers")
    r = tool(c, "kafka-topics", "--bootstrap-server", c.node(1).bootstrap, "--create", "--topic", topic,
             "--replica-assignment", assignment)
    assert r.stdout == f"Created topic {topic}.\n", r.stdout + r.stderr


def broker_configs(c, node_id):
    return tool(c, "kafka-configs", "--bootstrap-server", c.node(node_id).bootstrap, "--entity-type", "brokers",
                "--entity-name", str(node_id), "--describe").stdout


def topic_configs(c, topic):
    return tool(c, "kafka-configs", "--bootstrap-server", c.node(1).bootstrap, "--entity-type", "topics",
                "--entity-name", topic, "--describe").stdout


def test_grow_and_move_under_load(samsa_cluster_factory, tmp_path):
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    create(c, "g", "1,2")  # g-0 on node 1, g-1 on node 2
    prod = AckedProducer(c.bootstrap, "g", 2)
    wait_until(lambda: len(prod.acked) > 50, 20, "records acknowledged before the reassignment")
    target = write_json(tmp_path, "target.json", {"version": 1, "partitions": [
        {"topic": "g", "partition": 0, "replicas": [1, 2, 3]},
        {"topic": "g", "partition": 1, "replicas": [3, 1]}]})

    # node 3 stopped (for less than a session): the reassignment waits for it
    c.sigstop(3)
    try:
        r = reassign(c, "--execute", "--reassignment-json-file", target)
        assert r.stdout == (
            "Current partition replica assignment\n\n"
            '{"version":1,"partitions":[{"topic":"g","partition":0,"replicas":[1],"log_dirs":["any"]},'
            '{"topic":"g","partition":1,"replicas":[2],"log_dirs":["any"]}]}\n\n'
            "Save this to use as the --reassignment-json-file option during rollback\n"
            "Successfully started partition reassignments for g-0,g-1\n"), r.stdout + r.stderr
        r = reassign(c, "--list")
        assert r.stdout == ("Current partition reassignments:\n"
                            "g-0: replicas: 1,2,3. adding: 2,3.\n"
                            "g-1: replicas: 3,1,2. adding: 1,3. removing: 2.\n"), r.stdout
        r = reassign(c, "--verify", "--reassignment-json-file", target)
        assert r.stdout == ("Status of partition reassignment:\n"
                            "Reassignment of partition g-0 is still in progress.\n"
                            "Reassignment of partition g-1 is still in progress.\n\n"), r.stdout
        r = reassign(c, "--execute", "--reassignment-json-file", target, ok=False)
        assert r.returncode == 1 and r.stdout.startswith("Cannot execute because there is an existing partition "
                                                         "assignment.  Use --additional"), r.stdout
    finally:
        c.sigcont(3)
    done = ("Status of partition reassignment:\n"
            "Reassignment of partition g-0 is completed.\n"
            "Reassignment of partition g-1 is completed.\n\n"
            "Clearing broker-level throttles on brokers 1,2,3\n"
            "Clearing topic-level throttles on topic g\n")
    wait_until(lambda: reassign(c, "--verify", "--reassignment-json-file", target).stdout == done, 30,
               "--verify reports both reassignments completed")
    assert reassign(c, "--list").stdout == "No partition reassignments found.\n"

    n_before = len(prod.acked)
    wait_until(lambda: len(prod.acked) > n_before + 20, 20, "acks after the move")
    prod.stop()
    assert not prod.errors, prod.errors
    read_back_exactly_once(c, c.bootstrap, "g", 2, prod.acked)

    rows = partition_lines(c, 2, "g")
    assert rows[0][1] == ["1", "2", "3"] and sorted(rows[0][2]) == ["1", "2", "3"], rows
    assert rows[1][1] == ["3", "1"] and rows[1][0] == "3" and sorted(rows[1][2]) == ["1", "3"], rows

    def identical():
        g0 = {log_bytes(c, n, "g", 0) for n in (1, 2, 3)}
        g1 = {log_bytes(c, n, "g", 1) for n in (3, 1)}
        return len(g0) == 1 and len(g1) == 1
    wait_until(identical, 20, "the new replicas hold the leaders' bytes")
    assert log_bytes(c, 3, "g", 0) and log_bytes(c, 1, "g", 1)
    old = os.path.join(c.node(2).log_dir, "g-1")
    wait_until(lambda: not os.path.exists(old), 10, "node 2's removed replica g-1 deleted")


def test_generate_cancel_and_refusals(samsa_cluster_factory, tmp_path):
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    create(c, "c", "1,2,3")
    topics = write_json(tmp_path, "topics.json", {"version": 1, "topics": [{"topic": "c"}]})
    r = reassign(c, "--generate", "--topics-to-move-json-file", topics, "--broker-list", "2,3")
    lines = r.stdout.split("\n")
    assert lines[0] == "Current partition replica assignment", r.stdout
    assert lines[1] == ('{"version":1,"partitions":[{"topic":"c","partition":0,"replicas":[1],"log_dirs":["any"]},'
                        '{"topic":"c","partition":1,"replicas":[2],"log_dirs":["any"]},'
                        '{"topic":"c","partition":2,"replicas":[3],"log_dirs":["any"]}]}'), r.stdout
    assert lines[2] == "" and lines[3] == "Proposed partition reassignment configuration", r.stdout
    proposed = json.loads(lines[4])
    assert [p["partition"] for p in proposed["partitions"]] == [0, 1, 2]
    assert all(len(p["replicas"]) == 1 and p["replicas"][0] in (2, 3) and p["log_dirs"] == ["any"]
               for p in proposed["partitions"]), proposed
    assert lines[5:] == [""], r.stdout

    # refusals
    bad = write_json(tmp_path, "bad.json", {"version": 1, "partitions": [
        {"topic": "c", "partition": 0, "replicas": [1, 9]}]})
    r = reassign(c, "--execute", "--reassignment-json-file", bad, ok=False)
    assert r.returncode == 1 and r.stdout.startswith("Error: Unknown broker id 9\n"), r.stdout
    dup = write_json(tmp_path, "dup.json", {"version": 1, "partitions": [
        {"topic": "c", "partition": 0, "replicas": [1, 1]}]})
    r = reassign(c, "--execute", "--reassignment-json-file", dup, ok=False)
    assert r.stdout.startswith("Error: Partition replica lists may not contain duplicate entries: c-0 contains "
                               "multiple entries for 1\n"), r.stdout
    r = reassign(c, "--verify", "--reassignment-json-file", dup, "--throttle", "1", ok=False)
    assert r.returncode == 1 and 'Option "[throttle]" can\'t be used with action "[verify]"' in r.stderr, r.stderr
    r = tool(c, "kafka-reassign-partitions", "--bootstrap-server", c.node(1).bootstrap, ok=False)
    assert "Command must include exactly one action: --generate, --execute, --verify, --cancel, --list" in r.stderr

    # --throttle: rates on the brokers involved, replicas on the topic,
    # until --verify sees the reassignment done and clears them
    grow = write_json(tmp_path, "grow.json", {"version": 1, "partitions": [
        {"topic": "c", "partition": 1, "replicas": [2, 3]}]})
    r = reassign(c, "--execute", "--reassignment-json-file", grow, "--throttle", "50000000")
    assert r.stdout == (
        "Current partition replica assignment\n\n"
        '{"version":1,"partitions":[{"topic":"c","partition":1,"replicas":[2],"log_dirs":["any"]}]}\n\n'
        "Save this to use as the --reassignment-json-file option during rollback\n"
        f"{RUN_VERIFY}\n"
        "The inter-broker throttle limit was set to 50000000 B/s\n"
        "Successfully started partition reassignment for c-1\n"), r.stdout + r.stderr
    for n in (2, 3):
        out = broker_configs(c, n)
        assert "leader.replication.throttled.rate=50000000" in out, out
        assert "follower.replication.throttled.rate=50000000" in out, out
    assert "throttled.rate" not in broker_configs(c, 1)
    out = topic_configs(c, "c")
    assert "leader.replication.throttled.replicas=1:2" in out, out
    assert "follower.replication.throttled.replicas=1:3" in out, out
    done = ("Status of partition reassignment:\n"
            "Reassignment of partition c-1 is completed.\n\n"
            "Clearing broker-level throttles on brokers 1,2,3\n"
            "Clearing topic-level throttles on topic c\n")
    wait_until(lambda: reassign(c, "--verify", "--reassignment-json-file", grow).stdout == done, 30,
               "--verify reports the reassignment completed")
    for n in (2, 3):
        assert "throttled.rate" not in broker_configs(c, n)
    assert "throttled.replicas" not in topic_configs(c, "c")

    # cancel a reassignment that waits for a stopped node: reverted
    move = write_json(tmp_path, "move.json", {"version": 1, "partitions": [
        {"topic": "c", "partition": 0, "replicas": [1, 3]}]})
    c.sigstop(3)
    try:
        r = reassign(c, "--execute", "--reassignment-json-file", move)
        assert r.stdout.endswith("Successfully started partition reassignment for c-0\n"), r.stdout
        # (--preserve-throttles: clearing them would wait for the stopped node)
        r = reassign(c, "--cancel", "--reassignment-json-file", move, "--preserve-throttles")
        assert r.stdout == ("Successfully cancelled partition reassignment for: c-0\n"
                            "None of the specified partition moves are active.\n"), r.stdout
    finally:
        c.sigcont(3)
    r = reassign(c, "--cancel", "--reassignment-json-file", move)
    assert r.stdout == ("None of the specified partition reassignments are active.\n"
                        "None of the specified partition moves are active.\n"
                        "Clearing broker-level throttles on brokers 1,2,3\n"
                        "Clearing topic-level throttles on topic c\n"), r.stdout
    rows = partition_lines(c, 1, "c")
    assert rows[0][1] == ["1"] and rows[0][2] == ["1"], rows
    r = reassign(c, "--verify", "--reassignment-json-file", move)
    assert ("There is no active reassignment of partition c-0, but replica set is 1 rather than 1,3.\n"
            in r.stdout), r.stdout
    wait_until(lambda: not os.path.exists(os.path.join(c.node(3).log_dir, "c-0")), 10,
               "node 3's reverted replica c-0 deleted")
