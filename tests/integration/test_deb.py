"""`make deb` (issue 17): the Debian package `samsa`, built with dpkg-deb
from the test's build (scripts/make-deb.sh), inspected with dpkg-deb -I/-c,
then unpacked into a temporary root (not installed: that would change this
machine) where its own scripts start a node from its own
/etc/samsa/server.properties and its own tools create and list a topic."""
import os
import re
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
    for dep in ("adduser", "libc6", "librdkafka1", "libzstd1", "libjansson4"):
        assert dep in field["Depends"], field["Depends"]
    assert "postinst" in info and "conffiles" in info

    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    files = {line.split()[-1] if "->" not in line else line.split()[-3] for line in listing.splitlines()}
    for f in ("./usr/lib/samsa/libexec/samsa-broker", "./usr/lib/samsa/libexec/samsa-tools",
              "./usr/lib/samsa/bin/kafka-topics.sh", "./usr/lib/samsa/bin/kafka-server-start.sh",
              "./usr/bin/kafka-topics.sh", "./usr/bin/kafka-server-stop.sh", "./etc/samsa/server.properties",
              "./lib/systemd/system/samsa.service", "./usr/share/doc/samsa/copyright",
              "./usr/share/doc/samsa/changelog.gz", "./var/lib/samsa/", "./var/log/samsa/"):
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
