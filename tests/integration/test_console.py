"""The web console (issue 17, docs/console.md), black box: a real broker
with metrics.listener on a free loopback port, topics and a group made with
real clients and our Kafka tools; the JSON API is read with urllib and
compared with what kafka-topics, kafka-get-offsets and kafka-consumer-groups
print; then each page is loaded in headless Chromium (Debian's `chromium`):
the rendered DOM must show the same figures, the page must report no script
error (app.js writes them into #errors; Chromium's own log is grepped for
"Uncaught" too), and a screenshot of every page is saved in the test's tmp
dir. Writes (offset reset) answer 403 unless console.read.only=false, and
work on an Empty group when it is false. With a SASL listener, every
console request needs HTTP Basic credentials of the Kafka users."""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

from cluster import etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: F401
from conftest import PYTHON, free_port, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")




def http(port, path, method="GET", headers=None):
    """(status, body as text) of one request to the console."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def api(port, path, expect=200, **kw):
    status, body = http(port, "/api/" + path, **kw)
    assert status == expect, f"{path}: {status} {body[:500]}"
    return json.loads(body)


def run(broker, name, *args, timeout=60):
    r = broker.run_tool(name, *args, timeout=timeout)
    assert r.returncode == 0, f"{name} {args}: {r.stdout}{r.stderr}"
    return r.stdout


def python(script, timeout=90):
    r = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def produce(bootstrap, topic, n, partition=None):
    """n JSON records with keys and a header, to one partition or spread by key."""
    part = "" if partition is None else f", partition={partition}"
    python(f"""
import json
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{bootstrap}", "linger.ms": 5}})
errors = []
def cb(err, msg):
    if err: errors.append(err)
for i in range({n}):
    p.produce("{topic}", key=b"order-%d" % i, value=json.dumps({{"id": i, "item": "widget"}}).encode(),
              headers=[("source", b"test")], on_delivery=cb{part})
assert p.flush(30) == 0 and not errors, errors
""")


def consume_and_commit(bootstrap, topic, group, n):
    python(f"""
import time
from confluent_kafka import Consumer
c = Consumer({{"bootstrap.servers": "{bootstrap}", "group.id": "{group}", "auto.offset.reset": "earliest",
               "enable.auto.commit": False}})
c.subscribe(["{topic}"])
got, deadline = 0, time.time() + 40
while got < {n} and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    got += 1
assert got == {n}, got
c.commit(asynchronous=False)
c.close()
""")


def describe_group(broker, group):
    """kafka-consumer-groups --describe as {(topic, partition): (current, log end, lag)} ('-' kept)."""
    out = run(broker, "kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--describe", "--group", group)
    lines = out.splitlines()
    header = next(line.split() for line in lines if line.startswith("GROUP"))
    col = {h: i for i, h in enumerate(header)}
    rows = {}
    for line in lines:
        f = line.split()
        if f and f[0] == group:
            rows[(f[col["TOPIC"]], int(f[col["PARTITION"]]))] = (
                f[col["CURRENT-OFFSET"]], f[col["LOG-END-OFFSET"]], f[col["LAG"]])
    return rows


def describe_group_members(broker, group):
    """kafka-consumer-groups --describe --members as {(consumer id, client id, #partitions)}."""
    out = run(broker, "kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--describe", "--members",
              "--group", group)
    lines = out.splitlines()
    header = next(line.split() for line in lines if line.startswith("GROUP"))
    col = {h: i for i, h in enumerate(header)}
    return {(f[col["CONSUMER-ID"]], f[col["CLIENT-ID"]], int(f[col["#PARTITIONS"]]))
            for f in (line.split() for line in lines) if f and f[0] == group}


class Browser:
    """Headless Chromium: the DOM after the page's scripts ran, and screenshots."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)

    def _run(self, url, *mode):
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--user-data-dir=" + self.profile, "--enable-logging=stderr", "--v=0",
                "--virtual-time-budget=8000", *mode, url]
        r = subprocess.run(args, capture_output=True, text=True, timeout=90, cwd=self.workdir)
        assert "Uncaught" not in r.stderr, f"script error on {url}:\n{r.stderr[-3000:]}"
        assert "Refused to" not in r.stderr, f"content security policy violation on {url}:\n{r.stderr[-3000:]}"
        return r

    def dom(self, url, screenshot=None):
        """The DOM after the scripts ran; with screenshot, also a PNG of the page (one run)."""
        extra = []
        if screenshot:
            path = os.path.join(self.workdir, screenshot + ".png")
            extra = ["--window-size=1280,900", "--screenshot=" + path]
        r = self._run(url, *extra, "--dump-dom")
        if screenshot:
            with open(path, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 1000, f"screenshot {path}"
        dom = r.stdout
        assert 'data-ready="1"' in dom, f"{url} did not finish loading:\n{dom[-3000:]}\n{r.stderr[-2000:]}"
        m = re.search(r'<div id="errors"[^>]*>(.*?)</div>', dom, re.S)
        assert m is not None and m.group(1).strip() == "", f"{url} reported errors: {m.group(1) if m else dom}"
        assert "data-errors" not in dom, dom
        return dom


def text_of(dom):
    """The visible text of a dumped DOM, whitespace collapsed."""
    t = re.sub(r"<script.*?</script>", " ", dom, flags=re.S)
    t = re.sub(r"<[^>]+>", " ", t)
    t = t.replace("&quot;", '"').replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")
    return re.sub(r"\s+", " ", t)


def table_rows(dom, table_id):
    """Cells of each body row of <table id=...>, as text."""
    m = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert m, f"no table {table_id}"
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", m.group(1), re.S):  # not <tr class="empty">
        rows.append([text_of(td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)])
    return rows


@pytest.fixture
def console_broker(broker_factory):
    port = free_port()
    b = broker_factory(metrics_listener=f"http://127.0.0.1:{port}", group_initial_rebalance_delay_ms=0)
    b.console_port = port
    wait_until(lambda: http(port, "/api/cluster")[0] == 200, 15, "the console")
    return b


def test_api_matches_the_tools_and_pages_render(console_broker, tmp_path):
    b, port = console_broker, console_broker.console_port
    run(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "orders", "--partitions", "3")
    run(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "audit", "--partitions", "1",
        "--config", "retention.ms=123456789")
    produce(b.bootstrap, "orders", 30)
    produce(b.bootstrap, "audit", 5, partition=0)
    consume_and_commit(b.bootstrap, "orders", "billing", 30)
    consume_and_commit(b.bootstrap, "audit", "archive", 5)
    produce(b.bootstrap, "orders", 6)  # some lag

    # cluster and nodes
    c = api(port, "cluster")
    assert c["cluster_id"] == b.cluster_id and c["read_only"] is True and c["authentication"] == "none"
    assert c["cluster_id"] in run(b, "kafka-cluster", "cluster-id", "--bootstrap-server", b.bootstrap)
    assert [n["id"] for n in c["nodes"]] == [1] and c["nodes"][0]["port"] == b.port and c["controller_id"] == 1

    # topics == kafka-topics --list / --describe
    listed = run(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--list").split()
    topics = api(port, "topics")["topics"]
    assert [t["name"] for t in topics] == sorted(listed), "sorted by name"
    desc = run(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--describe", "--topic", "orders")
    t = api(port, "topic?name=orders")
    assert f"TopicId: {t['id']}" in desc
    for p in t["partitions"]:
        m = re.search(rf"Partition: {p['partition']}\s+Leader: (\d+)\s+Replicas: ([\d,]+)\s+Isr: ([\d,]+)", desc)
        assert m, desc
        assert p["leader"] == int(m.group(1)) and p["replicas"] == [int(x) for x in m.group(2).split(",")]
        assert p["isr"] == [int(x) for x in m.group(3).split(",")]
    offsets = run(b, "kafka-get-offsets", "--bootstrap-server", b.bootstrap, "--topic", "orders")
    leo = {int(p): int(o) for _, p, o in (line.split(":") for line in offsets.split())}
    assert {p["partition"]: p["high_watermark"] for p in t["partitions"]} == leo
    assert sum(leo.values()) == 36 and all(p["size_bytes"] > 0 for p in t["partitions"] if leo[p["partition"]])
    audit = api(port, "topic?name=audit")
    assert audit["overrides"] == {"retention.ms": "123456789"}
    rc = next(x for x in audit["configs"] if x["name"] == "retention.ms")
    assert rc["value"] == "123456789" and rc["source"] == "DYNAMIC_TOPIC_CONFIG"
    described = run(b, "kafka-configs", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "topics",
                    "--entity-name", "audit")
    assert "retention.ms=123456789" in described

    # messages: every record once, in offset order per partition, with key, value and header
    seen = []
    for p in range(3):
        m = api(port, f"messages?topic=orders&partition={p}&count=100")
        assert m["high_watermark"] == leo[p] and len(m["records"]) == leo[p] and m["next_offset"] == leo[p]
        assert [r["offset"] for r in m["records"]] == list(range(leo[p]))
        for r in m["records"]:
            v = json.loads(r["value"])
            assert r["key"] == f"order-{v['id']}" and r["headers"] == [{"key": "source", "value": "test"}]
            seen.append(v["id"])
    assert sorted(seen) == sorted(list(range(30)) + list(range(6)))
    page = api(port, "messages?topic=audit&partition=0&offset=1&count=2")
    assert [r["offset"] for r in page["records"]] == [1, 2] and page["next_offset"] == 3
    ts = page["records"][1]["timestamp"]
    by_time = api(port, f"messages?topic=audit&partition=0&timestamp={ts}&count=100")
    assert by_time["records"] and by_time["records"][0]["timestamp"] >= ts and by_time["from_offset"] <= 2
    newest = api(port, "messages?topic=audit&partition=0&from=end&count=2")
    assert [r["offset"] for r in newest["records"]] == [3, 4] and newest["next_offset"] == 5
    assert [r["offset"] for r in api(port, "messages?topic=audit&partition=0&from=end&count=50")["records"]] == \
        [0, 1, 2, 3, 4]
    future = api(port, f"messages?topic=audit&partition=0&timestamp={ts + 10**9}")
    assert future["records"] == [] and future["from_offset"] == 5

    # bad input: 400 with a message, never a crash
    for path, status in [("messages?topic=orders", 400), ("messages?topic=orders&partition=x", 400),
                         ("messages?topic=orders&partition=0&count=101", 400),
                         ("messages?topic=orders&partition=0&count=0", 400),
                         ("messages?topic=orders&partition=0&offset=-1", 400),
                         ("messages?topic=orders&partition=0&offset=1&timestamp=1", 400),
                         ("messages?topic=orders&partition=0&from=middle", 400),
                         ("messages?topic=orders&partition=0&from=end&offset=1", 400),
                         ("messages?topic=orders&partition=0&offset=99999999999999999999", 400),
                         ("messages?topic=orders&partition=0&offset=%zz", 400),
                         ("messages?topic=orders%00x&partition=0", 400),
                         ("messages?topic=nope&partition=0", 404), ("messages?topic=orders&partition=7", 404),
                         ("topic", 400), ("topic?name=nope", 404), ("group", 400), ("group?id=nope", 404),
                         ("nope", 404)]:
        got, body = http(port, "/api/" + path)
        assert got == status and json.loads(body)["error"], (path, got, body)

    # groups == kafka-consumer-groups
    groups = api(port, "groups")["groups"]
    assert [(g["group_id"], g["state"]) for g in groups] == [("archive", "Empty"), ("billing", "Empty")]
    g = api(port, "group?id=billing")
    rows = describe_group(b, "billing")
    assert {(o["topic"], o["partition"]): (str(o["current_offset"]), str(o["log_end_offset"]), str(o["lag"]))
            for o in g["offsets"]} == rows
    assert sum(o["lag"] for o in g["offsets"]) == 6 == groups[1]["lag"] and groups[0]["lag"] == 0

    # per-topic counters for the charts (the metrics module's MessagesIn/BytesIn)
    rates = api(port, "rates")["topics"]
    assert [x["topic"] for x in rates] == sorted(x["topic"] for x in rates)
    rates = {x["topic"]: x for x in rates}
    assert rates["orders"]["messages_in"] == 36 and rates["audit"]["messages_in"] == 5
    assert rates["orders"]["bytes_in"] > 36 * 20

    # read-only: writes are refused
    got, body = http(port, "/api/group/reset?group=billing&topic=orders&to=earliest", method="POST",
                      headers={"X-Samsa-Console": "1"})
    assert got == 403 and "read-only" in json.loads(body)["error"]
    assert http(port, "/api/group/reset?group=billing&topic=orders&to=earliest")[0] == 405  # GET
    assert http(port, "/metrics")[0] == 200, "the metrics stay where they were"

    # the static files are in the binary; pages may not be framed by other sites
    status, index = http(port, "/")
    assert status == 200 and "/static/app.js" in index
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as r:
        assert r.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert http(port, "/static/app.js")[0] == 200 and http(port, "/static/nope.js")[0] == 404

    if not CHROMIUM:
        pytest.skip("chromium is not installed (scripts/install-deps.sh installs it): pages not checked")
    br = Browser(str(tmp_path))
    base = f"http://127.0.0.1:{port}/"
    pages = {}
    for name, frag in [("cluster", "#/cluster"), ("topics", "#/topics"), ("topic", "#/topic/orders"),
                       ("messages", "#/messages?topic=orders&partition=0&count=5"),
                       ("newest", "#/messages?topic=orders&partition=0&count=2&from=end"), ("groups", "#/groups"),
                       ("group", "#/group/billing"), ("charts", "#/charts")]:
        pages[name] = br.dom(base + frag, screenshot="console-" + name)

    assert b.cluster_id in text_of(pages["cluster"])
    assert table_rows(pages["cluster"], "nodes")[0][:3] == ["1", "127.0.0.1", str(b.port)]
    trows = {r[0]: r for r in table_rows(pages["topics"], "topics")}
    assert set(trows) == set(listed) and trows["orders"][1] == "3" and trows["orders"][5] == "36"
    prows = table_rows(pages["topic"], "partitions")
    assert [(int(r[0]), int(r[1]), r[2], r[3], int(r[5])) for r in prows] == \
        [(p["partition"], p["leader"], ",".join(map(str, p["replicas"])), ",".join(map(str, p["isr"])),
          leo[p["partition"]]) for p in t["partitions"]]
    mrows = table_rows(pages["messages"], "records")
    assert [int(r[0]) for r in mrows] == list(range(min(5, leo[0])))
    assert re.search(r'<pre class="json">\{\n  "id": \d+,\n  "item": "widget"\n\}</pre>', pages["messages"]), \
        "values that are JSON are pretty-printed"
    assert [r[:2] for r in table_rows(pages["groups"], "groups")] == [["archive", "Empty"], ["billing", "Empty"]]
    grows = {(r[0], int(r[1])): (r[2], r[3], r[4]) for r in table_rows(pages["group"], "offsets")}
    assert grows == rows
    assert 'id="reset-disabled"' in pages["group"] and "read-only" in text_of(pages["group"])
    assert [int(r[0]) for r in table_rows(pages["newest"], "records")] == [leo[0] - 2, leo[0] - 1]
    assert table_rows(pages["group"], "members") == [] and '<tr class="empty">' in pages["group"], "no members"
    bad = br.dom(base + "#/messages?topic=orders&partition=9")  # an API error is shown, not a script error
    assert 'id="api-error"' in bad and "topic orders has no partition 9" in text_of(bad)
    crow = {r[0]: r for r in table_rows(pages["charts"], "rates")}
    assert crow["orders"][4] == "36"
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".png")]) == 8


def test_offset_reset_when_writable(broker_factory):
    port = free_port()
    b = broker_factory(metrics_listener=f"http://127.0.0.1:{port}", group_initial_rebalance_delay_ms=0,
                       console_read_only="false")
    wait_until(lambda: http(port, "/api/cluster")[0] == 200, 15, "the console")
    assert api(port, "cluster")["read_only"] is False
    run(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "r", "--partitions", "2")
    produce(b.bootstrap, "r", 20)
    consume_and_commit(b.bootstrap, "r", "rg", 20)
    leo = {p: o for (_, p), (_, o, _) in describe_group(b, "rg").items()}
    W = {"X-Samsa-Console": "1"}

    def reset(query, expect, headers=W):
        status, body = http(port, "/api/group/reset?" + query, method="POST", headers=headers)
        assert status == expect, (query, status, body)
        return json.loads(body)

    reset("group=rg&topic=r&to=earliest", 403, headers={})  # no header: a cross-site form cannot set it
    for bad in ["group=rg&topic=r", "group=rg&topic=r&to=sideways", "group=rg&topic=r&to=offset",
                "group=rg&topic=r&to=offset&offset=x", "topic=r&to=earliest", "group=rg&to=earliest",
                "group=rg&topic=r&to=earliest&partition=9"]:
        assert reset(bad, 400)["error"]
    assert reset("group=nope&topic=r&to=earliest", 404)["error"]
    assert reset("group=rg&topic=nope&to=earliest", 404)["error"]

    r = reset("group=rg&topic=r&to=earliest", 200)
    assert sorted((o["partition"], o["offset"]) for o in r["offsets"]) == [(0, 0), (1, 0)]
    wait_until(lambda: all(v[0] == "0" for v in describe_group(b, "rg").values()), 20, "the reset in the tool")
    reset("group=rg&topic=r&partition=1&to=offset&offset=3", 200)
    reset("group=rg&topic=r&partition=0&to=latest", 200)
    rows = describe_group(b, "rg")
    assert rows[("r", 1)][0] == "3" and rows[("r", 0)][0] == leo[0], rows
    g = api(port, "group?id=rg")
    assert {o["partition"]: o["current_offset"] for o in g["offsets"]} == {0: int(leo[0]), 1: 3}

    # a group with a live member is not reset (Kafka's tool refuses it too)
    stop = os.path.join(tempfile.mkdtemp(), "stop")
    member = subprocess.Popen([PYTHON, "-c", f"""
import os, time
from confluent_kafka import Consumer
c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "rg", "enable.auto.commit": False}})
c.subscribe(["r"])
deadline = time.time() + 60
while not os.path.exists("{stop}") and time.time() < deadline:
    c.poll(0.2)
c.close()
"""])
    try:
        wait_until(lambda: api(port, "group?id=rg")["state"] == "Stable", 40, "the member to join")
        g = api(port, "group?id=rg")
        [m] = g["members"]
        assert sorted((a["topic"], a["partition"]) for a in m["assignment"]) == [("r", 0), ("r", 1)]
        assert {o["partition"]: o["consumer_id"] for o in g["offsets"]} == {0: m["member_id"], 1: m["member_id"]}
        tool_rows = describe_group_members(b, "rg")
        assert tool_rows == {(m["member_id"], m["client_id"], 2)}, tool_rows
        err = reset("group=rg&topic=r&to=earliest", 409)["error"]
        assert "inactive" in err and "Stable" in err
    finally:
        open(stop, "w").close()
        member.wait(timeout=60)


def test_basic_auth_with_the_sasl_users(tmp_path):
    from test_sasl import ADMIN_PW, SaslNode
    port = free_port()
    node = SaslNode(str(tmp_path), {"metrics.listener": f"http://127.0.0.1:{port}"})
    try:
        wait_until(lambda: http(port, "/api/cluster")[0] == 401, 15, "the console")
        assert node.add_scram("bob", "bob-pw", "SCRAM-SHA-512").returncode == 0

        def basic(user, pw):
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}

        assert http(port, "/")[0] == 401
        assert http(port, "/api/topics", headers=basic("admin", "wrong"))[0] == 401
        assert http(port, "/api/topics", headers={"Authorization": "Basic !!!"})[0] == 401
        assert http(port, "/api/topics", headers=basic("nobody", "x"))[0] == 401
        assert http(port, "/api/cluster", headers=basic("admin", ADMIN_PW))[0] == 200  # PLAIN user
        wait_until(lambda: http(port, "/api/topics", headers=basic("bob", "bob-pw"))[0] == 200, 15,
                   "the SCRAM user")
        assert http(port, "/api/topics", headers=basic("bob", "bob-pw"))[0] == 200  # remembered
        assert http(port, "/api/topics", headers=basic("bob", "nope"))[0] == 401
        assert http(port, "/", headers=basic("admin", ADMIN_PW))[0] == 200
        assert http(port, "/metrics")[0] == 200, "Prometheus scrapes stay open"
        assert api(port, "cluster", headers=basic("admin", ADMIN_PW))["authentication"] == "basic"
    finally:
        code = node.b.stop()
        assert code in (0, None), node.b.log_text()[-3000:]


def test_message_browser_decodes_what_clients_write(console_broker):
    """Compressed batches, bytes that are not UTF-8, a value past the 64 KB
    shown, null keys, and a transaction (its commit marker is not a record)."""
    b, port = console_broker, console_broker.console_port
    run(b, "kafka-topics", "--bootstrap-server", b.bootstrap, "--create", "--topic", "enc", "--partitions", "1")
    python(f"""
from confluent_kafka import Producer
for codec in ["zstd", "lz4", "snappy", "gzip"]:
    p = Producer({{"bootstrap.servers": "{b.bootstrap}", "compression.type": codec, "linger.ms": 20}})
    for i in range(5):
        p.produce("enc", value=('{{"codec": "%s", "i": %d}}' % (codec, i)).encode())
    assert p.flush(30) == 0
p = Producer({{"bootstrap.servers": "{b.bootstrap}"}})
p.produce("enc", key=b"\\xff\\xfe", value=b"\\x00\\x01\\x80binary")
p.produce("enc", key=b"big", value=b"x" * 100000)
assert p.flush(30) == 0
t = Producer({{"bootstrap.servers": "{b.bootstrap}", "transactional.id": "console-tx"}})
t.init_transactions()
t.begin_transaction()
t.produce("enc", key=b"tx", value=b"in a transaction")
t.commit_transaction()
""")
    m = api(port, "messages?topic=enc&partition=0&count=100")
    recs = m["records"]
    assert len(recs) == 23, [r.get("key") for r in recs]
    codecs = [json.loads(r["value"])["codec"] for r in recs[:20]]
    assert codecs == [c for c in ["zstd", "lz4", "snappy", "gzip"] for _ in range(5)]
    assert all(r["key"] is None for r in recs[:20])
    binary = recs[20]
    assert base64.b64decode(binary["key_base64"]) == b"\xff\xfe"
    assert base64.b64decode(binary["value_base64"]) == b"\x00\x01\x80binary"
    big = recs[21]
    assert big["value_truncated"] == 100000 and big["value"] == "x" * 65536
    tx = recs[22]
    assert tx["key"] == "tx" and tx.get("transactional") is True
    # the commit marker takes an offset but is not shown; the page ends at the high watermark
    assert m["high_watermark"] == tx["offset"] + 2 and m["next_offset"] == m["high_watermark"]
    assert api(port, f"messages?topic=enc&partition=0&offset={tx['offset'] + 1}")["records"] == []
    # paging: 7 at a time visits every record once
    offsets, nxt = [], 0
    for _ in range(10):
        page = api(port, f"messages?topic=enc&partition=0&offset={nxt}&count=7")
        offsets += [r["offset"] for r in page["records"]]
        if page["next_offset"] >= page["high_watermark"]:
            break
        nxt = page["next_offset"]
    assert offsets == [r["offset"] for r in recs]


def test_each_node_shows_its_view_of_a_cluster(samsa_cluster_factory):
    """Three nodes (etcd): every console lists the same nodes and partitions;
    logs are read on the nodes holding them (409 naming the leader
    elsewhere); a group is shown by its coordinator."""
    from cluster import HAVE_ETCD
    if not HAVE_ETCD:
        pytest.skip("etcd is not installed")
    from test_cluster import create_topic, describe, wait_all_registered
    ports = {i: free_port() for i in (1, 2, 3)}
    c = samsa_cluster_factory(3, node_overrides={i: {"metrics.listener": f"http://127.0.0.1:{p}"}
                                                 for i, p in ports.items()})
    wait_all_registered(c)
    create_topic(c, 1, "spread", "--partitions", "3", "--replication-factor", "1")
    desc = describe(c, 1, "spread")
    leaders = {int(p): int(l) for p, l in re.findall(r"Partition: (\d+)\s+Leader: (\d+)", desc)}
    assert sorted(leaders) == [0, 1, 2], desc
    bootstrap = c.bootstrap_of(1, 2, 3)
    produce(bootstrap, "spread", 12)
    consume_and_commit(bootstrap, "spread", "cg", 12)

    coordinators = []
    for node, port in ports.items():
        cl = wait_until(lambda: http(port, "/api/cluster")[0] == 200 and api(port, "cluster"), 15, "the console")
        assert cl["node_id"] == node and sorted(n["id"] for n in cl["nodes"]) == [1, 2, 3]
        assert all(n["alive"] for n in cl["nodes"]) and cl["controller_id"] in (1, 2, 3)
        t = api(port, "topic?name=spread")
        assert {p["partition"]: p["leader"] for p in t["partitions"]} == leaders
        for p in t["partitions"]:
            assert p["local"] == (p["leader"] == node)
            if p["local"]:
                m = api(port, f"messages?topic=spread&partition={p['partition']}")
                assert len(m["records"]) == p["high_watermark"]
            else:
                got, body = http(port, f"/api/messages?topic=spread&partition={p['partition']}")
                assert got == 409 and f"node {p['leader']}" in json.loads(body)["error"]
        groups = [g["group_id"] for g in api(port, "groups")["groups"]]
        if groups == ["cg"]:
            coordinators.append(node)
            assert sum(o["current_offset"] for o in api(port, "group?id=cg")["offsets"]) == 12
        else:
            assert groups == []
            got, body = http(port, "/api/group?id=cg")
            assert got == 404 and "coordinated by node" in json.loads(body)["error"], body
    assert len(coordinators) == 1, coordinators
