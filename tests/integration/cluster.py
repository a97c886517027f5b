"""A real cluster on loopback for tests: etcd members and Samsa nodes.

    from cluster import etcd_cluster, samsa_cluster        # fixtures, by import

    def test_x(samsa_cluster):
        samsa_cluster.bootstrap                            # "127.0.0.1:P1,127.0.0.1:P2,..."
        samsa_cluster.kill9(2); samsa_cluster.restart(2)
        samsa_cluster.etcd.kill9(samsa_cluster.etcd.leader().index)

`EtcdCluster(workdir, members=3)` runs Debian's etcd 3.4 (/usr/bin/etcd) on free
127.0.0.1 ports with data under workdir; `SamsaCluster(workdir, etcd, nodes=3,
overrides=None)` writes one server.properties per node (metadata.store=etcd,
etcd.endpoints = every member), formats all with one cluster id and starts the
nodes with conftest's Broker machinery. Every process started here is stopped
at teardown, after a failure too, and dies with the Python process
(PR_SET_PDEATHSIG) if pytest itself is killed.
"""
import atexit
import base64
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid

import pytest

from conftest import BIN, BROKER_BIN, SERVER_PROPERTIES, Broker, free_port, tool_env

ETCD_BIN = os.environ.get("SAMSA_ETCD", "/usr/bin/etcd")
ETCDCTL_BIN = os.environ.get("SAMSA_ETCDCTL", os.path.join(os.path.dirname(ETCD_BIN), "etcdctl"))
HAVE_ETCD = os.access(ETCD_BIN, os.X_OK) and os.access(ETCDCTL_BIN, os.X_OK)

_live = set()  # every Popen started here and not yet reaped, for the atexit sweep


def _die_with_parent():
    # prctl(PR_SET_PDEATHSIG, SIGKILL): no stray etcd or broker if pytest is killed.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


@atexit.register
def _sweep():
    for p in list(_live):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
    _live.clear()


def _terminate(proc, timeout):
    """SIGTERM (after SIGCONT, a stopped process would hold it), then SIGKILL.
    Returns (exit code, whether SIGTERM sufficed)."""
    if proc is None:
        return None, True
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            _live.discard(proc)
            return proc.returncode, False
    _live.discard(proc)
    return proc.returncode, True


# ---------------------------------------------------------------- etcd


class EtcdMember:
    """One etcd member: name m<index>, its ports, data dir and process."""

    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.name = f"m{index}"
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.client_port}"
        self.peer_url = f"http://127.0.0.1:{self.peer_port}"
        self.data_dir = os.path.join(cluster.workdir, f"etcd-{self.name}")
        self.log_path = os.path.join(cluster.workdir, f"etcd-{self.name}.log")
        self.proc = None

    def argv(self):
        return [ETCD_BIN,
                "--name", self.name,
                "--data-dir", self.data_dir,
                "--listen-client-urls", self.endpoint,
                "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.cluster.initial_cluster,
                "--initial-cluster-token", self.cluster.token,
                "--initial-cluster-state", "new",  # ignored once the data dir exists
                "--logger", "zap", "--log-outputs", "stderr",
                *self.cluster.extra_args]

    def start(self):
        """Start the process (with its existing data dir, if any); does not wait."""
        if self.alive():
            return self
        out = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        out.close()
        _live.add(self.proc)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.alive() else None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc is not None:
            _live.discard(self.proc)

    def stop(self, timeout=10):
        """SIGTERM, SIGKILL after timeout; returns the exit code."""
        code, _ = _terminate(self.proc, timeout)
        return code

    def sigstop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP)

    def sigcont(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)

    def restart(self):
        self.stop()
        return self.start()

    def healthy(self, timeout=1.0):
        """GET /health answers {"health":"true"} (the member has a leader)."""
        if not self.alive():
            return False
        try:
            with urllib.request.urlopen(self.endpoint + "/health", timeout=timeout) as r:
                return json.loads(r.read().decode()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def status(self, timeout=3):
        """`etcdctl endpoint status -w json` of this member: a dict with
        member_id, leader, raft_term, revision... or None if it does not answer."""
        if not self.alive():
            return None
        r = self.cluster.etcdctl("endpoint", "status", "-w", "json", endpoints=[self.endpoint],
                                 check=False, timeout=timeout + 2, command_timeout=timeout)
        if r.returncode != 0:
            return None
        try:
            st = json.loads(r.stdout)[0]["Status"]
        except (ValueError, LookupError, TypeError):
            return None
        return {"member_id": st["header"]["member_id"], "leader": st.get("leader", 0),
                "raft_term": st.get("raftTerm", st["header"].get("raft_term")),
                "revision": st["header"].get("revision"), "db_size": st.get("dbSize")}

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""


class EtcdCluster:
    """`members` etcd members on 127.0.0.1, started and healthy on return
    (unless start=False). Index members from 0: cluster.members[i]."""

    def __init__(self, workdir, members=3, start=True, extra_args=None):
        if not HAVE_ETCD:
            raise RuntimeError(f"{ETCD_BIN} or {ETCDCTL_BIN} missing (scripts/install-deps.sh installs them)")
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.token = "samsa-test-" + uuid.uuid4().hex[:12]
        self.extra_args = list(extra_args or [])
        self.members = [EtcdMember(self, i) for i in range(members)]
        self.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise

    # -- addresses

    @property
    def endpoints(self):
        """Client URLs of every member: ["http://127.0.0.1:P", ...]."""
        return [m.endpoint for m in self.members]

    @property
    def endpoints_str(self):
        """Comma-separated client URLs, the etcd.endpoints setting."""
        return ",".join(self.endpoints)

    def live_members(self):
        return [m for m in self.members if m.alive()]

    # -- life cycle

    def start(self, timeout=30):
        for m in self.members:
            m.start()
        self.wait_healthy(timeout=timeout)
        return self

    def wait_healthy(self, timeout=30, members=None):
        """Wait until every given member (default: every running one) answers
        /health true; raises with the logs otherwise."""
        deadline = time.time() + timeout
        while True:
            group = members if members is not None else self.live_members()
            dead = [m for m in group if not m.alive()]
            if dead:
                raise RuntimeError(f"etcd {dead[0].name} exited with {dead[0].proc.returncode}:\n"
                                   + dead[0].log_text()[-4000:])
            if all(m.healthy() for m in group):
                return self
            if time.time() > deadline:
                bad = [m for m in group if not m.healthy()]
                raise RuntimeError("etcd not healthy: " + ", ".join(m.name for m in bad) + "\n"
                                   + "\n".join(m.log_text()[-2000:] for m in bad))
            time.sleep(0.1)

    def kill9(self, i):
        self.members[i].kill9()

    def stop_member(self, i, timeout=10):
        return self.members[i].stop(timeout)

    def start_member(self, i, wait=True, timeout=30):
        m = self.members[i].start()
        if wait:
            self.wait_healthy(timeout=timeout, members=[m])
        return m

    def restart(self, i, wait=True, timeout=30):
        """Stop (if running) and start member i with its data dir; waits for its health."""
        self.members[i].stop()
        return self.start_member(i, wait=wait, timeout=timeout)

    def sigstop(self, i):
        self.members[i].sigstop()

    def sigcont(self, i):
        self.members[i].sigcont()

    def stop(self, timeout=10):
        """Stop every member (SIGTERM, then SIGKILL); returns {name: exit code}."""
        return {m.name: m.stop(timeout) for m in self.members}

    # -- state

    def leader(self, timeout=15, exclude=()):
        """The member that is raft leader, as seen by a live member that reports
        itself as leader; waits up to timeout for an election. exclude: members
        (or indexes) not to accept, e.g. the leader just killed."""
        excluded = {x.index if isinstance(x, EtcdMember) else x for x in exclude}
        deadline = time.time() + timeout
        while True:
            for m in self.live_members():
                if m.index in excluded:
                    continue
                st = m.status()
                if st and st["leader"] and st["leader"] == st["member_id"]:
                    return m
            if time.time() > deadline:
                raise RuntimeError("no etcd leader within %.0f s" % timeout)
            time.sleep(0.1)

    def member_ids(self):
        """{member index: etcd member id} of the members that answer."""
        out = {}
        for m in self.live_members():
            st = m.status()
            if st:
                out[m.index] = st["member_id"]
        return out

    # -- etcdctl

    def etcdctl(self, *args, endpoints=None, check=True, timeout=20, command_timeout=5, input=None):
        """Run etcdctl (v3 API) against the given endpoints (default: live members)."""
        eps = endpoints or [m.endpoint for m in self.live_members()] or self.endpoints
        env = dict(os.environ, ETCDCTL_API="3")
        r = subprocess.run([ETCDCTL_BIN, "--endpoints=" + ",".join(eps),
                            f"--command-timeout={command_timeout}s", "--dial-timeout=2s", *args],
                           capture_output=True, text=True, timeout=timeout, env=env, input=input)
        if check and r.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def put(self, key, value, **kw):
        self.etcdctl("put", key, value, **kw)

    def get(self, key, **kw):
        """The value of key (str) or None."""
        r = self.etcdctl("get", key, "--print-value-only", **kw)
        out = r.stdout
        if out == "":
            return None
        return out[:-1] if out.endswith("\n") else out

    def get_prefix(self, prefix, **kw):
        """{key: value} under prefix."""
        r = self.etcdctl("get", prefix, "--prefix", "-w", "json", **kw)
        kvs = json.loads(r.stdout).get("kvs", [])
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
                for kv in kvs}


# ---------------------------------------------------------------- Samsa nodes


class ClusterNode(Broker):
    """One Samsa node of a SamsaCluster. Reuses conftest.Broker's start (waits
    for the PLAINTEXT port), stop (SIGTERM), kill9, log_text and run_tool;
    formatting is done by the cluster with its shared cluster id."""

    def __init__(self, cluster, node_id, overrides):
        self.cluster = cluster
        self.node_id = node_id
        self.workdir = os.path.join(cluster.workdir, f"node{node_id}")
        os.makedirs(self.workdir, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"{self.host}:{self.port}"
        self.log_dir = os.path.join(self.workdir, "data")
        self.config = os.path.join(self.workdir, "server.properties")
        self.stdout_path = os.path.join(self.workdir, "broker.out")
        self.bin = BIN
        self.proc = None
        self.cluster_id = cluster.cluster_id
        self.overrides = {
            "node.id": str(node_id),
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.quorum.voters": f"{node_id}@{self.host}:{self.controller_port}",
            "log.dirs": self.log_dir,
        }
        window = os.environ.get("SAMSA_TEST_PAGE_CACHE_WINDOW")
        if window:  # every log trims its page cache behind this window (make check-page-window)
            self.overrides["log.page.cache.window.bytes"] = window
        self.overrides.update(overrides)
        self.write_config()

    def write_config(self):
        with open(SERVER_PROPERTIES) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(text)
            f.write("\n# cluster test overrides\n")
            for k, v in self.overrides.items():
                f.write(f"{k}={v}\n")

    def format(self):
        r = self.run_tool("kafka-storage", "format", "-t", self.cluster_id, "-c", self.config)
        if r.returncode != 0:
            raise RuntimeError(f"kafka-storage format of node {self.node_id} failed: {r.stdout}{r.stderr}")
        return r

    def start(self, timeout=15):
        super().start(timeout=timeout)
        _live.add(self.proc)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.alive() else None

    def kill9(self):
        super().kill9()
        if self.proc is not None:
            _live.discard(self.proc)

    def sigstop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP)

    def sigcont(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout=20):
        """Clean shutdown with SIGTERM (a stopped node gets SIGCONT first);
        returns the exit code; SIGKILL and an AssertionError after timeout."""
        if self.proc is not None and self.proc.poll() is None:
            code, clean = _terminate(self.proc, timeout)
            if not clean:
                raise AssertionError(f"node {self.node_id} did not shut down on SIGTERM:\n"
                                     + self.log_text()[-4000:])
            return code
        if self.proc is not None:
            _live.discard(self.proc)
        return self.proc.returncode if self.proc else None

    def wipe(self):
        """Delete the data dir and format it again (a node back without its disk)."""
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.format()

    def restart(self, wipe_data=False, timeout=15):
        self.stop()
        if wipe_data:
            self.wipe()
        return self.start(timeout=timeout)


class SamsaCluster:
    """`nodes` Samsa nodes with ids 1..nodes against an EtcdCluster. overrides
    apply to every node (keys with '.' as in server.properties);
    node_overrides={id: {...}} to single nodes."""

    DEFAULTS = {
        "metadata.store": "etcd",
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
    }

    def __init__(self, workdir, etcd, nodes=3, overrides=None, node_overrides=None, start=True,
                 cluster_id=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.etcd = etcd
        self.cluster_id = cluster_id or self._random_uuid()
        common = dict(self.DEFAULTS)
        common["etcd.endpoints"] = etcd.endpoints_str
        common.update({k: str(v) for k, v in (overrides or {}).items()})
        self.nodes = []
        for i in range(1, nodes + 1):
            o = dict(common)
            o.update({k: str(v) for k, v in ((node_overrides or {}).get(i) or {}).items()})
            self.nodes.append(ClusterNode(self, i, o))
        for n in self.nodes:
            n.format()
        if start:
            try:
                self.start()
            except BaseException:
                self.stop(check=False)
                raise

    @staticmethod
    def _random_uuid():
        r = subprocess.run([os.path.join(BIN, "kafka-storage.sh"), "random-uuid"], capture_output=True,
                           text=True, timeout=30, env=tool_env())
        if r.returncode != 0 or not r.stdout.strip():
            raise RuntimeError("kafka-storage random-uuid failed: " + r.stderr)
        return r.stdout.strip()

    # -- addresses

    def node(self, node_id):
        """The ClusterNode with this node.id (1-based)."""
        return self.nodes[node_id - 1]

    @property
    def bootstrap(self):
        """Every node's host:port, comma-separated (bootstrap.servers)."""
        return ",".join(n.bootstrap for n in self.nodes)

    def bootstrap_of(self, *node_ids):
        return ",".join(self.node(i).bootstrap for i in node_ids)

    def live_nodes(self):
        return [n for n in self.nodes if n.alive()]

    # -- life cycle

    def start(self, timeout=15):
        for n in self.nodes:
            if not n.alive():
                n.start(timeout=timeout)
        return self

    def kill9(self, node_id):
        self.node(node_id).kill9()

    def sigstop(self, node_id):
        self.node(node_id).sigstop()

    def sigcont(self, node_id):
        self.node(node_id).sigcont()

    def stop_node(self, node_id, timeout=20):
        return self.node(node_id).stop(timeout)

    def start_node(self, node_id, timeout=15):
        return self.node(node_id).start(timeout=timeout)

    def restart(self, node_id, wipe_data=False, timeout=15):
        return self.node(node_id).restart(wipe_data=wipe_data, timeout=timeout)

    def stop(self, check=True, timeout=20):
        """Stop every node. With check, an exit code other than 0 (or -9 after
        a kill9, or None if never started) raises AssertionError with the log."""
        failures = []
        for n in self.nodes:
            try:
                code = n.stop(timeout)
            except AssertionError as e:
                failures.append(str(e))
                continue
            if code not in (0, None, -9):
                failures.append(f"node {n.node_id} exited with {code}:\n{n.log_text()[-4000:]}")
        if check and failures:
            raise AssertionError("\n".join(failures))

    def run_tool(self, name, *args, input=None, timeout=60):
        """bin/<name>.sh, as a user runs it (e.g. run_tool("kafka-topics",
        "--bootstrap-server", c.bootstrap, "--list"))."""
        return self.nodes[0].run_tool(name, *args, input=input, timeout=timeout)


# ---------------------------------------------------------------- fixtures

needs_etcd = pytest.mark.skipif(not HAVE_ETCD, reason=f"{ETCD_BIN} not installed (scripts/install-deps.sh)")


@pytest.fixture
def etcd_cluster_factory():
    """make(members=3, **kw) -> a started EtcdCluster; all stopped at teardown."""
    if not HAVE_ETCD:
        pytest.skip(f"{ETCD_BIN} not installed (scripts/install-deps.sh)")
    made, dirs = [], []

    def make(members=3, **kw):
        d = tempfile.mkdtemp(prefix="samsa-etcd-")
        dirs.append(d)
        c = EtcdCluster(d, members=members, **kw)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def etcd_cluster(etcd_cluster_factory):
    """Three healthy etcd members on loopback."""
    return etcd_cluster_factory(3)


@pytest.fixture
def samsa_cluster_factory(etcd_cluster):
    """make(nodes=3, overrides=None, node_overrides=None) -> a started
    SamsaCluster on the test's etcd_cluster. Nodes are stopped at teardown and
    a crash or sanitizer exit code fails the test, as broker_factory does."""
    if not os.access(BROKER_BIN, os.X_OK):
        pytest.skip(f"{BROKER_BIN} not built")
    made, dirs = [], []

    def make(nodes=3, overrides=None, node_overrides=None, **kw):
        d = tempfile.mkdtemp(prefix="samsa-cluster-")
        dirs.append(d)
        c = SamsaCluster(d, etcd_cluster, nodes=nodes, overrides=overrides, node_overrides=node_overrides, **kw)
        made.append(c)
        return c

    failures = []
    try:
        yield make
    finally:
        for c in made:
            try:
                c.stop(check=True)
            except AssertionError as e:
                failures.append(str(e))
        for d in dirs:
            if os.environ.get("SAMSA_KEEP_DIRS"):  # debugging a failure: keep the nodes' data and logs
                print(f"kept {d}")
            else:
                shutil.rmtree(d, ignore_errors=True)
    assert not failures, "\n".join(failures)


@pytest.fixture
def samsa_cluster(samsa_cluster_factory):
    """Three Samsa nodes (ids 1-3) with metadata.store=etcd on three etcd members."""
    return samsa_cluster_factory(3)
