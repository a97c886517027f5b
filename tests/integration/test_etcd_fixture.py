"""The etcd side of the cluster test rig (tests/integration/cluster.py):
three members healthy, put/get, kill -9 of the leader elects a new one and
the data survives, the killed member rejoins and catches up, stop/restart
and SIGSTOP/SIGCONT of a member, nothing left running at teardown."""
import os
import time

import pytest

from cluster import HAVE_ETCD, EtcdCluster, etcd_cluster, etcd_cluster_factory  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")


def test_three_members_healthy(etcd_cluster):
    assert len(etcd_cluster.members) == 3
    assert all(m.healthy() for m in etcd_cluster.members)
    r = etcd_cluster.etcdctl("endpoint", "health")
    assert r.stderr.count("is healthy") == 3 or r.stdout.count("is healthy") == 3, r.stdout + r.stderr
    ids = etcd_cluster.member_ids()
    assert len(set(ids.values())) == 3
    r = etcd_cluster.etcdctl("member", "list")
    assert len(r.stdout.strip().splitlines()) == 3
    # Every endpoint is a distinct loopback URL, and the comma form is what etcd.endpoints takes.
    assert len(set(etcd_cluster.endpoints)) == 3
    assert all(e.startswith("http://127.0.0.1:") for e in etcd_cluster.endpoints)
    assert etcd_cluster.endpoints_str == ",".join(etcd_cluster.endpoints)


def test_put_get(etcd_cluster):
    etcd_cluster.put("/samsa/test/a", "one")
    etcd_cluster.put("/samsa/test/b", "two")
    assert etcd_cluster.get("/samsa/test/a") == "one"
    assert etcd_cluster.get("/samsa/test/missing") is None
    assert etcd_cluster.get_prefix("/samsa/test/") == {"/samsa/test/a": "one", "/samsa/test/b": "two"}
    # Each member serves the same data (linearizable reads through any of them).
    for m in etcd_cluster.members:
        assert etcd_cluster.get("/samsa/test/b", endpoints=[m.endpoint]) == "two"


def test_kill9_leader_elects_new_leader_and_restart_rejoins(etcd_cluster):
    etcd_cluster.put("k", "before")
    old = etcd_cluster.leader()
    old_term = old.status()["raft_term"]
    old.kill9()
    assert not old.alive()
    t0 = time.time()
    new = etcd_cluster.leader(exclude=[old])
    elected_in = time.time() - t0
    assert new.index != old.index
    assert new.status()["raft_term"] > old_term
    assert elected_in < 10, elected_in
    # Two of three keep the quorum: writes go on.
    etcd_cluster.put("k", "during")
    assert etcd_cluster.get("k") == "during"

    etcd_cluster.restart(old.index)
    assert old.alive() and old.healthy()
    # The rejoined member has the write it missed.
    deadline = time.time() + 10
    while etcd_cluster.get("k", endpoints=[old.endpoint]) != "during":
        assert time.time() < deadline, "restarted member did not catch up"
        time.sleep(0.1)
    etcd_cluster.wait_healthy(members=etcd_cluster.members)
    assert etcd_cluster.leader() is not None


def test_quorum_loss_and_recovery(etcd_cluster):
    etcd_cluster.put("q", "1")
    etcd_cluster.stop_member(1)
    etcd_cluster.kill9(2)
    # One member of three has no leader: reads and writes fail.
    assert not etcd_cluster.members[0].healthy()
    r = etcd_cluster.etcdctl("put", "q", "2", check=False, command_timeout=2)
    assert r.returncode != 0
    etcd_cluster.start_member(1, wait=False)
    etcd_cluster.start_member(2, wait=False)
    etcd_cluster.wait_healthy(members=etcd_cluster.members)
    etcd_cluster.put("q", "3")
    assert etcd_cluster.get("q") == "3"


def test_sigstop_leader(etcd_cluster):
    old = etcd_cluster.leader()
    old.sigstop()
    try:
        new = etcd_cluster.leader(exclude=[old])
        etcd_cluster.put("z", "while stopped", endpoints=[new.endpoint])
    finally:
        old.sigcont()
    # The resumed member steps down to follower and catches up.
    deadline = time.time() + 10
    while etcd_cluster.get("z", endpoints=[old.endpoint], check=False) != "while stopped":
        assert time.time() < deadline
        time.sleep(0.1)
    leaders = [m for m in etcd_cluster.members if (st := m.status()) and st["leader"] == st["member_id"]]
    assert len(leaders) == 1


def test_teardown_leaves_no_process(tmp_path):
    c = EtcdCluster(str(tmp_path), members=3)
    pids = [m.pid for m in c.members]
    c.members[0].sigstop()  # a stopped member must not hang the teardown
    c.stop()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
