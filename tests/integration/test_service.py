"""The broker as a systemd service (issue 17, docs/packaging.md): the unit is
Type=notify, so the broker tells the service manager "READY=1" once its
listeners are open and "STOPPING=1" when a SIGTERM starts its shutdown, with
one datagram to the unix socket named by $NOTIFY_SOCKET (a path, or an
abstract name written with a leading '@'). Here the test plays systemd: it
binds the socket itself."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BROKER_BIN, Broker, tool_env


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def receive(sock, proc, deadline):
    """The next datagram, failing if the broker exits or time runs out first."""
    while time.time() < deadline:
        assert proc.poll() is None, f"broker exited with {proc.returncode}"
        try:
            return sock.recv(4096).decode()
        except socket.timeout:
            continue
    raise AssertionError("no notification from the broker")


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="samsa-svc-", dir="/tmp")  # short: a unix socket path is at most 107 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_ready_after_listening_and_stopping_on_sigterm(workdir, kind):
    node = Broker(workdir)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if kind == "path":
        address = os.path.join(workdir, "notify")
        sock.bind(address)
    else:
        name = f"samsa-test-notify-{os.getpid()}-{time.monotonic_ns()}"
        sock.bind("\0" + name)
        address = "@" + name
    sock.settimeout(0.2)
    env = tool_env()
    env["NOTIFY_SOCKET"] = address
    with open(node.stdout_path, "w") as out:
        proc = subprocess.Popen([BROKER_BIN, node.config], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        msg = receive(sock, proc, time.time() + 30)
        assert msg == "READY=1"
        assert port_open(node.port), "READY=1 came before the listener was open"
        assert "Kafka Server started" in node.log_text()

        proc.send_signal(signal.SIGTERM)
        assert receive(sock, proc, time.time() + 30) == "STOPPING=1"
        assert proc.wait(timeout=30) == 0, node.log_text()
        assert "shut down completed" in node.log_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()


def test_without_notify_socket_the_output_is_unchanged(workdir):
    """Not under systemd: nothing is sent and nothing is logged about it."""
    node = Broker(workdir)
    env = tool_env()
    env.pop("NOTIFY_SOCKET", None)
    with open(node.stdout_path, "w") as out:
        proc = subprocess.Popen([BROKER_BIN, node.config], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 30
        while not port_open(node.port):
            assert proc.poll() is None and time.time() < deadline, node.log_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "service manager" not in node.log_text()


def test_log_dir_files_as_kafka_log4j(workdir):
    """With LOG_DIR (kafka-run-class.sh's, log4j's kafka.logs.dir) the broker
    writes Kafka's files there: the root logger to server.log and stdout, the
    controller's loggers only to controller.log. A server.log last written in
    an earlier hour is rolled to server.log.<that hour> by the first line, as
    log4j's DailyRollingFileAppender with '.'yyyy-MM-dd-HH does."""
    node = Broker(workdir)
    logs = os.path.join(workdir, "logs")
    os.mkdir(logs)
    old = os.path.join(logs, "server.log")
    with open(old, "w") as f:
        f.write("an old line\n")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    rolled = old + "." + time.strftime("%Y-%m-%d-%H", time.localtime(two_hours_ago))

    env = tool_env()
    env["LOG_DIR"] = logs
    with open(node.stdout_path, "w") as out:
        proc = subprocess.Popen([BROKER_BIN, node.config], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 30
        while not port_open(node.port):
            assert proc.poll() is None and time.time() < deadline, node.log_text()
            time.sleep(0.05)
        r = node.run_tool("kafka-topics", "--bootstrap-server", node.bootstrap, "--create", "--topic", "logged")
        assert r.returncode == 0, r.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(rolled) as f:
        assert f.read() == "an old line\n"
    with open(old) as f:
        server = f.read()
    with open(os.path.join(logs, "controller.log")) as f:
        controller = f.read()
    stdout = node.log_text()
    assert "Kafka Server started" in server and "shut down completed" in server
    # stdout has the root logger's lines, byte for byte those of server.log
    assert stdout == server
    assert "Created topic logged" in controller and "controller.ReplicationControlManager)" in controller, controller
    assert "(org.apache.kafka.controller." not in server and "(kafka.controller." not in server
    for name in ("state-change.log", "log-cleaner.log", "kafka-authorizer.log", "kafka-request.log"):
        assert os.path.isfile(os.path.join(logs, name)), name


def broker_pids(config):
    """The samsa-broker processes whose command line names this config."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"samsa-broker") and config.encode() in argv:
            pids.append(int(d))
    return pids


def test_daemon_start_and_kafka_server_stop(workdir):
    """kafka-server-start.sh -daemon returns at once with the node running in
    the background (nohup, console output in $LOG_DIR/kafkaServer.out, as
    Kafka's kafka-run-class.sh); kafka-server-stop.sh finds it by name and
    stops it with SIGTERM. --node-id (unique here) keeps the stop script away
    from other nodes running on this machine."""
    node = Broker(workdir)
    node_id = 3000 + os.getpid() % 5000
    cport = node.overrides["listeners"].rsplit(":", 1)[1]
    with open(node.config, "a") as f:
        f.write(f"node.id={node_id}\ncontroller.quorum.voters={node_id}@127.0.0.1:{cport}\n")
    shutil.rmtree(node.log_dir)
    r = node.run_tool("kafka-storage", "format", "-t", node.cluster_id, "-c", node.config)
    assert r.returncode == 0, r.stdout + r.stderr
    logs = os.path.join(workdir, "logs")
    env = tool_env()
    env["LOG_DIR"] = logs
    start = os.path.join(node.bin, "kafka-server-start.sh")
    stop = os.path.join(node.bin, "kafka-server-stop.sh")
    try:
        r = subprocess.run([start, "-daemon", node.config], capture_output=True, text=True, env=env, timeout=20)
        assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr
        out = os.path.join(logs, "kafkaServer.out")
        # the script returns before its background child has exec'd the broker: the process may
        # take a moment to appear; once it has, it must not exit before its port opens
        deadline = time.time() + 30
        seen = False
        while not port_open(node.port):
            running = bool(broker_pids(node.config))
            assert running or not seen, "the node exited:\n" + open(out).read()
            seen = seen or running
            assert time.time() < deadline, "the node did not open its port:\n" + open(out).read()
            time.sleep(0.05)
        assert len(broker_pids(node.config)) == 1
        # asking for help stops nothing (Kafka's script would stop every node)
        r = subprocess.run([stop, "--help"], capture_output=True, text=True, env=env, timeout=20)
        assert r.returncode == 0 and r.stdout.startswith("USAGE: "), r.stdout + r.stderr
        assert len(broker_pids(node.config)) == 1 and port_open(node.port)

        r = subprocess.run([stop, "--node-id", str(node_id)], capture_output=True, text=True, env=env, timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr
        deadline = time.time() + 30
        while broker_pids(node.config):
            assert time.time() < deadline, "the node did not stop"
            time.sleep(0.05)
        assert not port_open(node.port)
        with open(out) as f:
            console = f.read()
        assert "Kafka Server started" in console and "shut down completed" in console, console
        assert "Sanitizer" not in console, console
        with open(os.path.join(logs, "server.log")) as f:
            assert f.read() == console

        r = subprocess.run([stop, "--node-id", str(node_id)], capture_output=True, text=True, env=env, timeout=20)
        assert r.returncode == 1 and r.stdout == "No kafka server to stop\n"
    finally:
        for pid in broker_pids(node.config):
            os.kill(pid, signal.SIGKILL)
