"""`make deb` (issue 17): the Debian package `samsa`, built with dpkg-deb
from the test's build (scripts/make-deb.sh), inspected with dpkg-deb -I/-c,
then unpacked into a temporary root (not installed: that would change this
machine) where its own scripts start a node from its own
/etc/samsa/server.properties and its own tools create and list a topic."""
import os
import re
import shlex
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BUILD, ROOT, free_port

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    r = subprocess.run([os.path.join(ROOT, "scripts", "make-deb.sh"), os.path.join(ROOT, BUILD), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip().splitlines()[-1]
    assert os.path.isfile(path) and path.endswith(".deb"), r.stdout
    return path


def test_make_deb_target_exists():
    r = subprocess.run(["make", "-n", "deb", f"BUILD={BUILD}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "scripts/make-deb.sh" in r.stdout, r.stdout + r.stderr


def test_control_and_contents(deb):
    info = subprocess.run(["dpkg-deb", "-I", deb], capture_output=True, text=True, check=True).stdout
    field = dict(re.findall(r"^ (\S+): (.*)$", info, re.M))
    assert field["Package"] == "samsa"
    assert field["Architecture"] == subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                                                   text=True).stdout.strip()
    assert re.match(r"^3\.6\.1\+samsa", field["Version"])
    for dep in ("adduser", "libc6", "librdkafka1", "libzstd1", "libjansson4", "libsnappy1v5"):
        assert dep in field["Depends"], field["Depends"]
    assert "postinst" in info and "conffiles" in info

    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    files = {line.split()[-1] if "->" not in line else line.split()[-3] for line in listing.splitlines()}
    for f in ("./usr/lib/samsa/libexec/samsa-broker", "./usr/lib/samsa/libexec/samsa-tools",
              "./usr/lib/samsa/bin/kafka-topics.sh", "./usr/lib/samsa/bin/kafka-server-start.sh",
              "./usr/bin/kafka-topics.sh", "./usr/bin/kafka-server-stop.sh", "./etc/samsa/server.properties",
              "./lib/systemd/system/samsa.service", "./usr/share/doc/samsa/copyright",
              "./usr/share/doc/samsa/changelog.gz", "./usr/share/man/man1/kafka-topics.sh.1.gz", "./var/lib/samsa/", "./var/log/samsa/"):
        assert f in files, f"{f} not in the package:\n{listing}"
    scripts = sorted(os.listdir(os.path.join(ROOT, "bin")))
    assert all(f"./usr/bin/{s}" in files for s in scripts if s.startswith("kafka-"))
    assert all(" root/root " in line for line in listing.splitlines()), "files owned by root"

    ctl = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True).stdout
    assert b"conffiles" in ctl


@pytest.mark.skipif(shutil.which("lintian") is None, reason="lintian not installed")
def test_lintian_clean(deb):
    """No errors and no warnings; what is meant so (the .sh names, no manual
    pages) is overridden in the package, with the reasons."""
    r = subprocess.run(["lintian", "--tag-display-limit", "0", deb], capture_output=True, text=True, timeout=300)
    tags = [line for line in r.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    assert tags == [], r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr


def test_unpacked_package_runs_a_node(deb, tmp_path):
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", deb, str(root)], check=True)
    conffiles = subprocess.run(["dpkg-deb", "-f", deb, "Package"], capture_output=True, text=True).stdout
    assert conffiles.strip() == "samsa"
    props = (root / "etc/samsa/server.properties").read_text()
    assert "log.dirs=/var/lib/samsa/data" in props
    unit = (root / "lib/systemd/system/samsa.service").read_text()
    for line in ("User=samsa", "ExecStart=/usr/lib/samsa/bin/kafka-server-start.sh /etc/samsa/server.properties",
                 "KillSignal=SIGTERM", "LimitNOFILE=", "Type=notify", "Environment=LOG_DIR=/var/log/samsa"):
        assert line in unit, unit
    wrapper = (root / "usr/bin/kafka-topics.sh").read_text()
    assert wrapper == '#!/bin/sh\nexec /usr/lib/samsa/bin/kafka-topics.sh "$@"\n'

    # the package's config with this test's ports and data dir, run by the package's scripts
    port, cport = free_port(), free_port()
    conf = tmp_path / "server.properties"
    conf.write_text(props.replace("log.dirs=/var/lib/samsa/data", f"log.dirs={tmp_path}/data")
                    + f"\nlisteners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n"
                      f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n")
    bindir = root / "usr/lib/samsa/bin"
    env = {k: v for k, v in os.environ.items() if k != "SAMSA_BUILD"}
    env["ASAN_OPTIONS"] = "detect_leaks=0"

    def tool(name, *args):
        r = subprocess.run([str(bindir / f"{name}.sh"), *args], capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, f"{name} {args}: {r.stdout}{r.stderr}"
        return r.stdout
    cid = tool("kafka-storage", "random-uuid").strip()
    tool("kafka-storage", "format", "-t", cid, "-c", str(conf))
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([str(bindir / "kafka-server-start.sh"), str(conf)], stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.05)
        assert tool("kafka-topics", "--bootstrap-server", f"127.0.0.1:{port}", "--create", "--topic", "pkg") == \
            "Created topic pkg.\n"
        assert "pkg" in tool("kafka-topics", "--bootstrap-server", f"127.0.0.1:{port}", "--list").split()
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
        log.close()
    assert code == 0


def _installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and "installed" in r.stdout.split()


def _unit_settings(unit_text):
    """The [Service] settings of a unit file, each key's values in order."""
    settings = {}
    for line in unit_text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


# Installs the package on this machine: only as root and when asked (.ci/run
# sets SAMSA_DEB_INSTALL_TEST=1 on its fresh machine), never over an
# installed samsa.
INSTALL_OK = (os.geteuid() == 0 and os.environ.get("SAMSA_DEB_INSTALL_TEST") == "1"
              and shutil.which("dpkg") is not None and not _installed("samsa"))


@pytest.mark.skipif(not INSTALL_OK, reason="needs root, SAMSA_DEB_INSTALL_TEST=1 and no samsa installed")
def test_install_run_the_lab_and_purge(deb):
    """dpkg -i, then what systemd would do without systemd: the unit's
    ExecStartPre and ExecStart as the samsa user with the unit's environment
    (ports moved off 9092/9093 with --override) and a notify socket of ours;
    the lab's steps with the installed tools from /usr/bin; SIGTERM; then
    dpkg --purge leaves none of the package's files, data or logs."""
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    paths = ["/" + line.split()[5].lstrip("./") for line in listing.splitlines() if not line.startswith("d")]
    assert not any(os.path.lexists(p) for p in paths), "files of the package already on this machine"
    r = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True, timeout=120)
    proc = None
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert _installed("samsa")
        import pwd
        samsa = pwd.getpwnam("samsa")
        for d in ("/var/lib/samsa", "/var/log/samsa"):
            assert os.stat(d).st_uid == samsa.pw_uid, d
        assert shutil.which("kafka-topics.sh") == "/usr/bin/kafka-topics.sh"

        if shutil.which("systemd-analyze"):  # the unit as systemd reads it, without running systemd
            r = subprocess.run(["systemd-analyze", "verify", "/lib/systemd/system/samsa.service"],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0 and "samsa.service" not in r.stdout + r.stderr, r.stdout + r.stderr
        unit = _unit_settings(open("/lib/systemd/system/samsa.service").read())
        assert unit["Type"] == ["notify"] and unit["User"] == ["samsa"]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "ASAN_OPTIONS": "detect_leaks=0"}
        for assignment in unit.get("Environment", []):
            k, v = assignment.split("=", 1)
            env[k] = v
        as_samsa = dict(user="samsa", group="samsa", extra_groups=[], cwd=unit["WorkingDirectory"][0])
        for pre in unit["ExecStartPre"]:
            r = subprocess.run(shlex.split(pre), capture_output=True, text=True, env=env, timeout=60, **as_samsa)
            assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.isfile("/var/lib/samsa/data/meta.properties")

        port, cport = free_port(), free_port()
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"samsa-deb-test-{os.getpid()}"
        notify.bind("\0" + name)
        notify.settimeout(0.2)
        start = shlex.split(unit["ExecStart"][0]) + [
            "--override", f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", f"controller.quorum.voters=1@127.0.0.1:{cport}"]
        proc = subprocess.Popen(start, env=dict(env, NOTIFY_SOCKET="@" + name), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, **as_samsa)

        def notified():
            deadline = time.time() + 60
            while time.time() < deadline:
                assert proc.poll() is None, open("/var/log/samsa/server.log").read()
                try:
                    return notify.recv(100).decode()
                except socket.timeout:
                    pass
            raise AssertionError("no notification")
        assert notified() == "READY=1"

        tool_env = {"PATH": "/usr/bin:/bin", "ASAN_OPTIONS": "detect_leaks=0"}
        bootstrap = f"127.0.0.1:{port}"

        def tool(*args, input=None):
            r = subprocess.run(list(args), capture_output=True, text=True, env=tool_env, input=input, timeout=60)
            assert r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"
            return r.stdout
        assert tool("kafka-topics.sh", "--bootstrap-server", bootstrap, "--create", "--topic", "test",
                    "--partitions", "1", "--replication-factor", "1") == "Created topic test.\n"
        tool("kafka-console-producer.sh", "--bootstrap-server", bootstrap, "--topic", "test", input="hello\nworld\n")
        assert tool("kafka-console-consumer.sh", "--bootstrap-server", bootstrap, "--topic", "test",
                    "--from-beginning", "--max-messages", "2", "--timeout-ms", "30000") == "hello\nworld\n"
        assert tool("kafka-get-offsets.sh", "--bootstrap-server", bootstrap, "--topic", "test") == "test:0:2\n"
        assert "Produce(0): 0 to 9 [usable: 9]" in tool("kafka-broker-api-versions.sh", "--bootstrap-server",
                                                         bootstrap)

        proc.terminate()  # what systemctl stop sends (KillSignal=SIGTERM, KillMode=mixed)
        assert notified() == "STOPPING=1"
        assert proc.wait(timeout=60) == 0
        server_log = open("/var/log/samsa/server.log").read()
        assert "Kafka Server started" in server_log and "shut down completed" in server_log
        assert "Created topic test" in open("/var/log/samsa/controller.log").read()
        assert os.stat("/var/log/samsa/server.log").st_uid == samsa.pw_uid
        notify.close()
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        r = subprocess.run(["dpkg", "--purge", "samsa"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not _installed("samsa")
    left = [p for p in paths + ["/var/lib/samsa", "/var/log/samsa", "/etc/samsa", "/usr/lib/samsa"]
            if os.path.lexists(p)]
    assert left == [], f"left after purge: {left}"


@pytest.mark.skipif(not INSTALL_OK, reason="needs root, SAMSA_DEB_INSTALL_TEST=1 and no samsa installed")
def test_provision_lab_installs_the_package(deb):
    """The Vagrantfile's path with SAMSA_INSTALL=deb: scripts/provision-lab.sh
    installs the package with apt-get (here the test's .deb, without starting
    it: no systemd), and provisioning again changes nothing."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SAMSA_INSTALL": "deb", "SAMSA_DEB": deb,
           "SAMSA_SKIP_DEPS": "1", "SAMSA_START": "none"}
    script = os.path.join(ROOT, "scripts", "provision-lab.sh")
    try:
        for _ in range(2):
            r = subprocess.run(["sh", script], capture_output=True, text=True, env=env, timeout=300)
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
            assert _installed("samsa")
            assert os.access("/usr/bin/kafka-server-start.sh", os.X_OK)
            assert os.path.isfile("/lib/systemd/system/samsa.service")
    finally:
        r = subprocess.run(["dpkg", "--purge", "samsa"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.lexists("/usr/bin/kafka-server-start.sh")
