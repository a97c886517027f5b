"""Kafka requests and responses for the tests, encoded and decoded from Kafka 3.6.1's own message
definitions (../shared/kafka-protocol/3.6.1/messages/*.json), so a test can send any API at any
version without a hand-typed wire layout.

Values are dicts keyed by the definitions' field names ("Topics", "PartitionIndex", ...); a field
left out takes its default (0, "", [], false, null where the definition says so). Tagged fields
are written when given and read when known. `Conn` is a blocking connection that can log in with
SASL/PLAIN and `call(api, version, body)` returns the decoded response.
"""
import json
import os
import socket
import struct
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEC_DIR = os.environ.get("SAMSA_PROTOCOL_SPEC",
                          os.path.join(ROOT, "..", "shared", "kafka-protocol", "3.6.1", "messages"))

_specs = {}


def have_specs():
    return os.path.isdir(SPEC_DIR)


def spec(name):
    """The definition of a message, e.g. spec("DeleteRecordsRequest")."""
    if name not in _specs:
        with open(os.path.join(SPEC_DIR, name + ".json"), encoding="utf-8") as f:
            text = "\n".join(line for line in f.read().split("\n") if not line.lstrip().startswith("//"))
        _specs[name] = json.loads(text)
    return _specs[name]


def in_versions(rng, v):
    """Whether version v is in a range such as "0+", "1-3", "3", "none"."""
    if rng is None or rng == "none":
        return False
    if rng.endswith("+"):
        return v >= int(rng[:-1])
    if "-" in rng:
        lo, hi = rng.split("-")
        return int(lo) <= v <= int(hi)
    return v == int(rng)


# ---- primitive writers and readers

def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"short read: {n} bytes at {self.pos} of {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def uvarint(self):
        n = shift = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")


FIXED = {"bool": ">?", "int8": ">b", "int16": ">h", "uint16": ">H", "int32": ">i", "int64": ">q",
         "float64": ">d"}


class Codec:
    """Encoder/decoder of one message definition at one version."""

    def __init__(self, message, version):
        self.spec = spec(message)
        self.version = version
        self.flexible = in_versions(self.spec.get("flexibleVersions"), version)
        self.common = {s["name"]: s for s in self.spec.get("commonStructs", [])}

    def _fields_of(self, f):
        if "fields" in f:
            return f["fields"]
        return self.common[f["type"].lstrip("[]")]["fields"]

    def _present(self, f):
        return in_versions(f.get("versions"), self.version)

    def _nullable(self, f):
        return in_versions(f.get("nullableVersions"), self.version)

    def _tagged(self, f):
        return "tag" in f and in_versions(f.get("taggedVersions"), self.version)

    @staticmethod
    def _default(f):
        t, d = f["type"], f.get("default")
        if d == "null":
            return None
        if t.startswith("[]"):
            return []
        if t in ("string",):
            return d if d is not None else ""
        if t == "bool":
            return d in (True, "true")
        if t in FIXED:
            if d is None:
                return 0.0 if t == "float64" else 0
            return float(d) if t == "float64" else int(str(d), 0)
        if t == "uuid":
            return b"\0" * 16
        if t in ("bytes", "records"):
            return b""
        return {}

    # -- encode
    def encode(self, value):
        return self._struct(self.spec["fields"], value or {})

    def _struct(self, fields, value):
        # a misspelt or absent-at-this-version field would silently take its default: refuse it
        known = {f["name"] for f in fields if self._present(f)}
        unknown = set(value) - known
        if unknown:
            raise KeyError(f"{sorted(unknown)} not in {self.spec['name']} v{self.version} (has {sorted(known)})")
        out = bytearray()
        tagged = []
        for f in fields:
            if not self._present(f):
                continue
            if self._tagged(f):
                if f["name"] in value:
                    tagged.append((f["tag"], self._value(f, value[f["name"]])))
                continue
            out += self._value(f, value.get(f["name"], self._default(f)))
        if self.flexible:
            out += uvarint(len(tagged))
            for tag, data in sorted(tagged):
                out += uvarint(tag) + uvarint(len(data)) + data
        return bytes(out)

    def _length(self, n, null=False):
        if self.flexible:
            return uvarint(0 if null else n + 1)
        return struct.pack(">i", -1 if null else n)

    def _value(self, f, v):
        t = f["type"]
        if t.startswith("[]"):
            if v is None:
                return self._length(0, null=True)
            inner = t[2:]
            out = self._length(len(v))
            for item in v:
                if inner in FIXED or inner in ("string", "bytes", "uuid", "records"):
                    out += self._value({"type": inner}, item)
                else:
                    out += self._struct(self._fields_of(f), item)
            return out
        if t in FIXED:
            return struct.pack(FIXED[t], v)
        if t == "uuid":
            return v.bytes if isinstance(v, uuid.UUID) else bytes(v)
        if t == "string":
            if v is None:
                return uvarint(0) if self.flexible else struct.pack(">h", -1)
            b = v.encode("utf-8")
            return (uvarint(len(b) + 1) if self.flexible else struct.pack(">h", len(b))) + b
        if t in ("bytes", "records"):
            if v is None:
                return self._length(0, null=True)
            return self._length(len(v)) + bytes(v)
        return self._struct(self._fields_of(f), v or {})  # a nested struct

    # -- decode
    def decode(self, data):
        r = Reader(data)
        return self._read_struct(self.spec["fields"], r)

    def _read_struct(self, fields, r):
        value = {}
        for f in fields:
            if not self._present(f) or self._tagged(f):
                continue
            value[f["name"]] = self._read_value(f, r)
        if self.flexible:
            by_tag = {f["tag"]: f for f in fields if self._present(f) and self._tagged(f)}
            for _ in range(r.uvarint()):
                tag, size = r.uvarint(), r.uvarint()
                data = r.take(size)
                if tag in by_tag:
                    value[by_tag[tag]["name"]] = self._read_value(by_tag[tag], Reader(data))
        return value

    def _read_length(self, r):
        if self.flexible:
            return r.uvarint() - 1
        return r.unpack(">i")

    def _read_value(self, f, r):
        t = f["type"]
        if t.startswith("[]"):
            n = self._read_length(r)
            if n < 0:
                return None
            inner = t[2:]
            if inner in FIXED or inner in ("string", "bytes", "uuid", "records"):
                return [self._read_value({"type": inner}, r) for _ in range(n)]
            return [self._read_struct(self._fields_of(f), r) for _ in range(n)]
        if t in FIXED:
            return r.unpack(FIXED[t])
        if t == "uuid":
            return r.take(16)
        if t == "string":
            n = r.uvarint() - 1 if self.flexible else r.unpack(">h")
            return None if n < 0 else r.take(n).decode("utf-8")
        if t in ("bytes", "records"):
            n = self._read_length(r)
            return None if n < 0 else r.take(n)
        return self._read_struct(self._fields_of(f), r)


def api_key(api):
    return spec(api + "Request")["apiKey"]


def encode_request(api, version, body, correlation_id, client_id="kproto"):
    """A whole request frame (size prefix included)."""
    req = Codec(api + "Request", version)
    header = struct.pack(">hhi", api_key(api), version, correlation_id)
    cid = client_id.encode()
    header += struct.pack(">h", len(cid)) + cid
    if req.flexible:
        header += uvarint(0)  # request header v2: no tagged fields
    payload = header + req.encode(body)
    return struct.pack(">i", len(payload)) + payload


def decode_response(api, version, frame):
    """(correlation id, body) of a response frame without its size prefix."""
    resp = Codec(api + "Response", version)
    r = Reader(frame)
    corr = r.unpack(">i")
    if resp.flexible and api != "ApiVersions":  # ApiVersions answers with header v0 always
        for _ in range(r.uvarint()):
            r.uvarint()
            r.take(r.uvarint())
    body = resp._read_struct(resp.spec["fields"], r)
    return corr, body


class Conn:
    """A blocking connection to one broker."""

    def __init__(self, host, port, timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.corr = 0

    def close(self):
        self.sock.close()

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            buf += chunk
        return buf

    def call(self, api, version, body=None):
        self.corr += 1
        self.sock.sendall(encode_request(api, version, body or {}, self.corr))
        size = struct.unpack(">i", self._recv(4))[0]
        corr, resp = decode_response(api, version, self._recv(size))
        assert corr == self.corr, (corr, self.corr)
        return resp

    def login_plain(self, user, password):
        r = self.call("SaslHandshake", 1, {"Mechanism": "PLAIN"})
        assert r["ErrorCode"] == 0, r
        r = self.call("SaslAuthenticate", 2, {"AuthBytes": b"\0" + user.encode() + b"\0" + password.encode()})
        assert r["ErrorCode"] == 0, r
        return self
