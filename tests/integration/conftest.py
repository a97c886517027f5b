"""Fixtures that run the real broker binary on free loopback ports.

`broker` gives a freshly formatted node (config/kraft/server.properties with
listeners, log.dirs and any overrides changed) per test; `broker_factory`
starts nodes with extra settings. Tools run through bin/*.sh exactly as a user
runs them. SAMSA_BUILD picks the build dir (build-asan in CI).
"""
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SAMSA_BUILD", "build")
BROKER_BIN = os.path.join(ROOT, BUILD, "samsa-broker")
BIN = os.path.join(ROOT, "bin")
SERVER_PROPERTIES = os.path.join(ROOT, "config", "kraft", "server.properties")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-kafka and python3-confluent-kafka


_handed_out = set()


def free_port():
    """A port nothing listens on now, never one this process handed out
    before: the kernel may offer a just-closed port again, and two nodes of a
    cluster being configured would then get the same one."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no unused loopback port")


# Prepended to the Python scripts tests run in a child process: an exception
# in one of the script's threads (which Python only prints) ends the child
# with exit code 1, so the test that checks its exit code fails.
CHILD_THREAD_GUARD = """import os as _os, sys as _sys, threading as _threading
def _thread_failed(args):
    _threading.__excepthook__(args)
    _sys.stderr.flush()
    _os._exit(1)
_threading.excepthook = _thread_failed
"""


def tool_env():
    env = dict(os.environ)
    env["SAMSA_BUILD"] = BUILD
    # ASan's leak report at exit of a tool is noise for the output checks;
    # leaks are checked by the unit tests and the broker's clean shutdown.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    return env


def wait_until(cond, timeout, what, interval=0.05):
    """Polls cond() every interval seconds until it returns something true (returned) or timeout
    seconds pass (AssertionError naming what and the last answer); an OSError, AssertionError or
    ConnectionError from cond (a node between states) counts as a no until the timeout."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            last = cond()
        except (OSError, AssertionError, ConnectionError) as e:  # a node between states
            last = e
            if time.time() > deadline:
                raise
        else:
            if last:
                return last
        if time.time() > deadline:
            what = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def log_segment_bytes(partition_dir):
    """The bytes of a partition directory's .log files. The broker's cleaner and retention delete
    segments while this runs, so a file listed and then gone counts as 0 bytes, not an error."""
    total = 0
    for name in os.listdir(partition_dir):
        if name.endswith(".log"):
            try:
                total += os.path.getsize(os.path.join(partition_dir, name))
            except FileNotFoundError:
                pass
    return total


class Broker:
    """One broker process with its own data dir and port."""

    env = None  # more environment for the broker process only (a test's fault injection)

    def __init__(self, workdir, overrides=None):
        self.workdir = workdir
        self.port = free_port()
        self.host = "127.0.0.1"
        self.bootstrap = f"{self.host}:{self.port}"
        self.log_dir = os.path.join(workdir, "data")
        self.config = os.path.join(workdir, "server.properties")
        self.stdout_path = os.path.join(workdir, "broker.out")
        self.bin = BIN
        self.proc = None
        self.overrides = {
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{free_port()}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "log.dirs": self.log_dir,
        }
        threads = os.environ.get("SAMSA_TEST_NETWORK_THREADS")
        if threads:  # sockets on network threads even on a small machine (make check-tsan)
            self.overrides.update({"network.threads.min.cpus": "1", "num.network.threads": threads})
        window = os.environ.get("SAMSA_TEST_PAGE_CACHE_WINDOW")
        if window:  # every log trims its page cache behind this window (make check-page-window)
            self.overrides["log.page.cache.window.bytes"] = window
        self.overrides.update(overrides or {})
        with open(SERVER_PROPERTIES) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(text)
            f.write("\n# test overrides\n")
            for k, v in self.overrides.items():
                f.write(f"{k}={v}\n")
        cluster_id = self.run_tool("kafka-storage", "random-uuid").stdout.strip()
        r = self.run_tool("kafka-storage", "format", "-t", cluster_id, "-c", self.config)
        assert r.returncode == 0, r.stderr
        self.cluster_id = cluster_id

    def start(self, timeout=15):
        out = open(self.stdout_path, "a")
        self.proc = subprocess.Popen([BROKER_BIN, self.config], stdout=out, stderr=subprocess.STDOUT,
                                     env={**tool_env(), **(self.env or {})})
        out.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("broker did not start listening:\n" + self.log_text())

    def stop(self, timeout=20):
        """Clean shutdown with SIGTERM; returns the exit code."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("broker did not shut down on SIGTERM:\n" + self.log_text())

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    def thread_names(self):
        """The running broker's thread names (as top -H shows them)."""
        names = []
        for comm in glob.glob(f"/proc/{self.proc.pid}/task/*/comm"):
            try:
                with open(comm) as f:
                    names.append(f.read().strip())
            except OSError:  # the thread ended meanwhile
                pass
        return names

    def log_text(self):
        try:
            with open(self.stdout_path) as f:
                return f.read()
        except OSError:
            return ""

    def run_tool(self, name, *args, input=None, timeout=60):
        script = os.path.join(BIN, name if name.endswith(".sh") else name + ".sh")
        return subprocess.run([script, *args], input=input, capture_output=True, text=True, timeout=timeout,
                              env=tool_env())


@pytest.fixture
def broker_factory():
    started = []
    dirs = []

    def make(**overrides):
        d = tempfile.mkdtemp(prefix="samsa-test-")
        dirs.append(d)
        b = Broker(d, {k.replace("_", "."): str(v) for k, v in overrides.items()})
        b.start()
        started.append(b)
        return b

    yield make
    failures = []
    for b in started:
        code = b.stop()
        # A sanitizer report or a crash at shutdown fails the test that caused it.
        if code not in (0, None, -9):
            failures.append(f"broker exited with {code}:\n{b.log_text()[-4000:]}")
    for d in dirs:
        if os.environ.get("SAMSA_KEEP_DIRS"):  # debugging a failure: keep the broker's data and log
            print(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)
    assert not failures, "\n".join(failures)


@pytest.fixture
def broker(broker_factory):
    return broker_factory()
