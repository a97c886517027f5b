#!/usr/bin/env python3
"""gen.py - generate Samsa's Kafka protocol codecs from Kafka's JSON schemas.

Reads every message / record schema under the spec directory and writes, for
each JSON file, a C header and source file into the output directory: one C
struct per struct type, plus T_init / T_decode / T_encode for each of them.
It also writes kmsg.h (includes everything), kmsg_api.c (the API table,
header-version helpers and a generic per-message descriptor table) and a
test-only include with sample fillers for the round-trip tests.

Usage: python3 codegen/gen.py --spec ../shared/kafka-protocol/3.6.1 \
                              --out src/protocol/gen [--samples FILE]

Output is deterministic: files are processed in sorted order and nothing
depends on hash ordering or the clock. Only the standard library is used.
"""

import argparse
import json
import os
import re
import sys

SPEC_DIRS = ["messages", "metadata-records", "group-records",
             "storage-records", "raft-records"]
MAX_VERSION = 0x7FFF

C_KEYWORDS = set("""auto break case char const continue default do double else
enum extern float for goto if inline int long register restrict return short
signed sizeof static struct switch typedef union unsigned void volatile while
bool true false""".split())

# Primitive types: C type, reader, writer, minimum wire size (non-compact,
# compact), whether the value is variable length.
PRIMS = {
    "int8": ("int8_t", "kr_i8", "kw_i8", 1, 1),
    "int16": ("int16_t", "kr_i16", "kw_i16", 2, 2),
    "int32": ("int32_t", "kr_i32", "kw_i32", 4, 4),
    "int64": ("int64_t", "kr_i64", "kw_i64", 8, 8),
    "uint16": ("uint16_t", "kr_u16", "kw_u16", 2, 2),
    "uint32": ("uint32_t", "kr_u32", "kw_u32", 4, 4),
    "float64": ("double", "kr_f64", "kw_f64", 8, 8),
    "bool": ("bool", "kr_bool", "kw_bool", 1, 1),
    "uuid": ("kuuid", "kr_uuid", None, 16, 16),
    "string": ("kstr", "kr_string", "kw_string", 2, 1),
    "bytes": ("kbytes", "kr_bytes", "kw_bytes", 4, 1),
    "records": ("krecords", "kr_records", "kw_records", 4, 1),
}
NUMERIC = {"int8", "int16", "int32", "int64", "uint16", "uint32", "float64"}
VARLEN = {"string", "bytes", "records"}


class GenError(Exception):
    pass


# ---------------------------------------------------------------- versions

class Versions:
    """An inclusive version range; empty when lo > hi."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    @staticmethod
    def parse(s):
        if s is None or s == "none":
            return Versions(1, 0)
        s = s.strip()
        if s.endswith("+"):
            return Versions(int(s[:-1]), MAX_VERSION)
        if "-" in s:
            a, b = s.split("-")
            return Versions(int(a), int(b))
        return Versions(int(s), int(s))

    def empty(self):
        return self.lo > self.hi

    def intersect(self, o):
        return Versions(max(self.lo, o.lo), min(self.hi, o.hi))

    def subtract(self, o):
        """self minus o; must be a single range (true of every schema)."""
        if o.empty() or self.intersect(o).empty():
            return self
        if o.lo <= self.lo and o.hi >= self.hi:
            return Versions(1, 0)
        if o.lo <= self.lo:
            return Versions(o.hi + 1, self.hi)
        if o.hi >= self.hi:
            return Versions(self.lo, o.lo - 1)
        raise GenError("version subtraction splits a range")

    def contains(self, v):
        return self.lo <= v <= self.hi

    def cond(self, within):
        """C condition on `version` for membership, given that version is
        always inside `within`. Returns "1", "0" or an expression."""
        r = self.intersect(within)
        if r.empty():
            return "0"
        parts = []
        if r.lo > within.lo:
            parts.append("version >= %d" % r.lo)
        if r.hi < within.hi:
            parts.append("version <= %d" % r.hi)
        if not parts:
            return "1"
        if len(parts) == 2 and r.lo == r.hi:
            return "version == %d" % r.lo
        return " && ".join(parts)


def and_cond(a, b):
    if a == "0" or b == "0":
        return "0"
    if a == "1":
        return b
    if b == "1":
        return a
    return "%s && %s" % (a, b)


# ---------------------------------------------------------------- naming

def snake(name):
    """Kafka's own CamelCase -> snake_case rule: an underscore before each
    capital that follows a non-capital (so isKRaftController ->
    is_kraft_controller, V0Host -> v0_host)."""
    out = []
    prev_cap = True
    for ch in name:
        if ch.isupper():
            if not prev_cap:
                out.append("_")
            out.append(ch.lower())
            prev_cap = True
        else:
            out.append(ch)
            prev_cap = False
    s = "".join(out)
    return s + "_" if s in C_KEYWORDS else s


def upper_snake(name):
    return snake(name).rstrip("_").upper()


def c_string(s):
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.append("\\x%02x" % ord(ch))
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------- model

class Field:
    def __init__(self, js, msg):
        self.js = js
        self.name = js["name"]
        self.cname = snake(self.name)
        t = js["type"]
        self.is_array = t.startswith("[]")
        self.base = t[2:] if self.is_array else t
        self.struct = None          # StructDef for struct / struct-array fields
        self.versions = Versions.parse(js.get("versions"))
        self.nullable = Versions.parse(js.get("nullableVersions"))
        self.tagged = Versions.parse(js.get("taggedVersions"))
        self.tag = js.get("tag")
        fv = js.get("flexibleVersions")
        self.flexible = Versions.parse(fv) if fv is not None else msg.flexible
        self.default = js.get("default")
        if isinstance(self.default, bool):
            self.default = "true" if self.default else "false"
        if self.default is not None:
            self.default = str(self.default)
        if not self.tagged.empty() and self.tag is None:
            raise GenError("%s: tagged field %s has no tag" % (msg.name, self.name))

    @property
    def is_struct(self):
        return self.struct is not None

    def default_is_null(self):
        return self.default == "null"


class StructDef:
    def __init__(self, cname, fields_js):
        self.cname = cname
        self.fields_js = fields_js
        self.fields = []


class Message:
    def __init__(self, path, js):
        self.path = path
        self.js = js
        self.name = js["name"]
        self.kind = js["type"]
        self.api_key = js.get("apiKey")
        self.valid = Versions.parse(js["validVersions"])
        self.flexible = Versions.parse(js.get("flexibleVersions", "none"))
        self.file_stem = snake(self.name).rstrip("_")
        self.structs = {}      # struct type name -> StructDef
        self.order = []        # StructDefs, dependencies first
        self._collect()

    def _collect(self):
        # Register every struct type defined in the file (inline or common)
        # before resolving fields, since references may come first.
        def register(tname, fields_js):
            cname = "%s_%s" % (self.name, tname)
            if tname in self.structs:
                old = [f["name"] for f in self.structs[tname].fields_js]
                new = [f["name"] for f in fields_js]
                if old != new:
                    raise GenError("%s: struct %s defined twice differently" % (self.name, tname))
                return
            self.structs[tname] = StructDef(cname, fields_js)

        def scan(fields_js):
            for f in fields_js:
                if "fields" in f:
                    t = f["type"]
                    register(t[2:] if t.startswith("[]") else t, f["fields"])
                    scan(f["fields"])

        for cs in self.js.get("commonStructs", []):
            register(cs["name"], cs["fields"])
            scan(cs["fields"])
        scan(self.js["fields"])
        self.top = StructDef(self.name, self.js["fields"])
        for sd in list(self.structs.values()) + [self.top]:
            sd.fields = [self._field(f) for f in sd.fields_js]
            check_names(self.name, sd)
        seen = set()

        def visit(sd):
            if sd.cname in seen:
                return
            seen.add(sd.cname)
            for f in sd.fields:
                if f.is_struct:
                    visit(f.struct)
            self.order.append(sd)
        visit(self.top)

    def _field(self, js):
        f = Field(js, self)
        if f.base not in PRIMS:
            if f.base not in self.structs:
                raise GenError("%s: unknown type %s" % (self.name, f.base))
            f.struct = self.structs[f.base]
        return f


def check_names(msg, sd):
    names = set()
    for f in sd.fields:
        mine = [f.cname]
        if f.is_array:
            mine.append(f.cname + "_count")
        if f.is_struct and not f.is_array and not f.nullable.empty():
            mine.append(f.cname + "_present")
        for n in mine:
            if n in names:
                raise GenError("%s: member name clash %s in %s" % (msg, n, sd.cname))
            names.add(n)


# ---------------------------------------------------------------- C emitter

class Out:
    def __init__(self):
        self.lines = []
        self.ind = 0

    def __call__(self, s=""):
        if s:
            self.lines.append("    " * self.ind + s)
        else:
            self.lines.append("")

    def block(self, head):
        self(head + " {")
        self.ind += 1

    def end(self, tail=""):
        self.ind -= 1
        self("}" + tail)

    def text(self):
        return "\n".join(self.lines) + "\n"


def elem_ctype(f):
    return f.struct.cname if f.is_struct else PRIMS[f.base][0]


def struct_decl(o, sd):
    o("typedef struct %s {" % sd.cname)
    o.ind += 1
    for f in sd.fields:
        ct = elem_ctype(f)
        note = []
        if f.versions.empty():
            note.append("never on the wire")
        else:
            note.append("v" + vstr(f.versions))
        if not f.nullable.empty():
            note.append("nullable v" + vstr(f.nullable))
        if not f.tagged.empty():
            note.append("tag %d v%s" % (f.tag, vstr(f.tagged)))
        if f.is_array:
            o("%s *%s; /* %s */" % (ct, f.cname, ", ".join(note)))
            o("int32_t %s_count; /* -1: null array */" % f.cname)
        else:
            o("%s %s; /* %s */" % (ct, f.cname, ", ".join(note)))
            if f.is_struct and not f.nullable.empty():
                o("bool %s_present; /* false: null */" % f.cname)
    if not sd.fields:
        o("char unused_; /* the schema has no fields */")
    o.ind -= 1
    o("} %s;" % sd.cname)


def vstr(v):
    if v.hi == MAX_VERSION:
        return "%d+" % v.lo
    if v.lo == v.hi:
        return "%d" % v.lo
    return "%d-%d" % (v.lo, v.hi)


def number_literal(base, text):
    if base == "bool":
        t = text.lower()
        if t not in ("true", "false"):
            raise GenError("bad bool default %r" % text)
        return t
    if base == "float64":
        return repr(float(text))
    v = int(text, 0)
    if base == "int32" and v == -2**31:
        return "INT32_MIN"
    if base == "int64" and v == -2**63:
        return "INT64_MIN"
    if base == "int64":
        return "INT64_C(%d)" % v
    if base in ("uint32",):
        return "%du" % v
    return str(v)


def default_value(f):
    """C expression for a non-array, non-struct field's default, or None
    when the default is all-zero bytes."""
    b = f.base
    d = f.default
    if b in NUMERIC or b == "bool":
        if d is None or d == "":
            return None
        lit = number_literal(b, d)
        if lit in ("0", "false", "0.0", "0u", "INT64_C(0)"):
            return None
        return lit
    if b == "string":
        if d == "null":
            return "KSTR_NULL"
        return "KSTR_LIT(%s)" % c_string(d or "")
    if b == "bytes":
        return "(kbytes){NULL, -1}" if d == "null" else "(kbytes){NULL, 0}"
    if b == "records":
        # fd must be -1 even for empty records (0 would be a file reference).
        if d == "null" or (d is None and not f.nullable.empty()):
            return "KRECORDS_NULL"
        return "(krecords){NULL, 0, -1, 0}"
    if b == "uuid":
        return None
    raise GenError("no default for " + b)


def is_default_expr(f, acc):
    """C expression: the field at `acc` (e.g. m->x) equals its default."""
    if f.is_array:
        return "%s_count == %d" % (acc, -1 if f.default_is_null() else 0)
    if f.is_struct:
        if not f.nullable.empty():
            if f.default_is_null():
                return "!%s_present" % acc
            return "(%s_present && %s_is_default(&%s))" % (acc, f.struct.cname, acc)
        return "%s_is_default(&%s)" % (f.struct.cname, acc)
    b = f.base
    if b in NUMERIC or b == "bool":
        lit = default_value(f)
        if lit is None:
            lit = "false" if b == "bool" else "0"
        return "%s == %s" % (acc, lit)
    if b == "string":
        if f.default_is_null():
            return "%s.len < 0" % acc
        return "kstr_eq(%s, KSTR_LIT(%s))" % (acc, c_string(f.default or ""))
    if b in ("bytes", "records"):
        return "%s.len == %d" % (acc, -1 if f.default_is_null() else 0)
    if b == "uuid":
        return "kuuid_is_zero(&%s)" % acc
    raise GenError(b)


class StructGen:
    """Emits the functions of one struct type of one message."""

    def __init__(self, msg, sd):
        self.msg = msg
        self.sd = sd
        self.valid = msg.valid

    def flex_cond(self, f=None):
        fl = f.flexible if f is not None else self.msg.flexible
        return fl.cond(self.valid)

    def compact_expr(self, f):
        """C bool expression for whether f uses compact encodings."""
        if f.flexible is self.msg.flexible:
            return "flex" if self.uses_flex() else "false"
        c = self.flex_cond(f)
        return {"1": "true", "0": "false"}.get(c, "(%s)" % c)

    def nullable_expr(self, f):
        c = f.nullable.cond(self.valid)
        return {"1": "true", "0": "false"}.get(c, "(%s)" % c)

    def present_untagged(self, f):
        return f.versions.subtract(f.tagged)

    def present_tagged(self, f):
        return f.versions.intersect(f.tagged).intersect(self.msg.flexible)

    def uses_flex(self):
        return self.msg.flexible.cond(self.valid) != "0"

    # -- init
    def gen_init(self, o):
        sd = self.sd
        o("void %s_init(%s *m)" % (sd.cname, sd.cname))
        o("{")
        o.ind += 1
        o("memset(m, 0, sizeof *m);")
        for f in sd.fields:
            acc = "m->" + f.cname
            if f.is_array:
                if f.default_is_null():
                    o("%s_count = -1;" % acc)
            elif f.is_struct:
                o("%s_init(&%s);" % (f.struct.cname, acc))
                if not f.nullable.empty() and not f.default_is_null():
                    o("%s_present = true;" % acc)
            else:
                v = default_value(f)
                if v is not None:
                    o("%s = %s;" % (acc, v))
        o.ind -= 1
        o("}")

    # -- is_default (only for structs used as tagged fields)
    def gen_is_default(self, o):
        sd = self.sd
        o("static bool %s_is_default(const %s *m)" % (sd.cname, sd.cname))
        o("{")
        o.ind += 1
        exprs = [is_default_expr(f, "m->" + f.cname) for f in sd.fields]
        if not exprs:
            o("(void)m;")
            o("return true;")
        else:
            o("return " + ("\n" + "    " * o.ind + "    && ").join(exprs) + ";")
        o.ind -= 1
        o("}")

    # -- decode
    def read_value(self, o, f, acc, rd, compact, nullable, tagged):
        """Statements reading one non-array value of f into acc from reader rd."""
        b = f.base
        if f.is_struct:
            if nullable != "false":
                marker = "kr_uvarint(%s) == 0" % rd if tagged else "kr_i8(%s) < 0" % rd
                pre = "" if nullable == "true" else nullable + " && "
                o.block("if (%s%s)" % (pre, marker))
                o("%s_present = false;" % acc)
                o.end()
                o.block("else")
                o("%s_present = true;" % acc)
                o("%s_decode(&%s, %s, version, a);" % (f.struct.cname, acc, rd))
                o.end()
            else:
                if not f.nullable.empty():
                    o("%s_present = true;" % acc)
                o("%s_decode(&%s, %s, version, a);" % (f.struct.cname, acc, rd))
            return
        if b in ("string", "bytes"):
            o("%s = %s(%s, %s, %s);" % (acc, PRIMS[b][1], rd, compact, nullable))
        elif b == "records":
            o("%s = kr_records(%s, %s);" % (acc, rd, compact))
            if nullable != "true":
                o("if (!%s && %s.len < 0) kmsg_bad(%s);" % (nullable, acc, rd))
        else:
            o("%s = %s(%s);" % (acc, PRIMS[b][1], rd))

    def read_field(self, o, f, rd, tagged):
        acc = "m->" + f.cname
        compact = "true" if tagged else self.compact_expr(f)
        nullable = self.nullable_expr(f)
        rp = rd
        if not f.is_array:
            self.read_value(o, f, acc, rp, compact, nullable, tagged)
            return
        o("{")
        o.ind += 1
        minsz = self.min_size_expr(f, compact)
        o("int32_t n = kr_array_len(%s, %s, %s, %s);" % (rp, compact, nullable, minsz))
        o("%s_count = n;" % acc)
        o.block("if (n > 0)")
        o("%s = karena_calloc(a, (size_t)n, sizeof *%s);" % (acc, acc))
        o.block("if (!%s)" % acc)
        o("%s_count = 0;" % acc)
        o("return kmsg_fail(r);")
        o.end()
        o.end()
        o.block("for (int32_t i = 0; i < n && !%s; i++)" % ("r->err" if rp == "r" else "sub.err"))
        ea = "%s[i]" % acc
        if f.is_struct:
            o("%s_decode(&%s, %s, version, a);" % (f.struct.cname, ea, rp))
        elif f.base in ("string", "bytes"):
            o("%s = %s(%s, %s, false);" % (ea, PRIMS[f.base][1], rp, compact))
        elif f.base == "records":
            o("%s = kr_records(%s, %s);" % (ea, rp, compact))
        else:
            o("%s = %s(%s);" % (ea, PRIMS[f.base][1], rp))
        o.end()
        o.end()

    def min_size_expr(self, f, compact):
        if f.is_struct:
            return "%s_min_size(version)" % f.struct.cname
        lo, hi = PRIMS[f.base][3], PRIMS[f.base][4]
        if lo == hi:
            return str(lo)
        if compact == "true":
            return str(hi)
        if compact == "false":
            return str(lo)
        return "(%s ? %d : %d)" % (compact, hi, lo)

    def gen_min_size(self, out):
        """Smallest encoding of one element at a version: bounds array
        counts before allocating."""
        sd = self.sd
        o = Out()
        o.ind = 1
        o("size_t n = 0;")
        for f in sd.fields:
            c = self.present_untagged(f).cond(self.valid)
            if c == "0":
                continue
            if f.is_array:
                sz = "(%s ? 1 : 4)" % self.flex_c()
            elif f.is_struct:
                if not f.nullable.empty():
                    sz = "1"
                else:
                    sz = "%s_min_size(version)" % f.struct.cname
            else:
                lo, hi = PRIMS[f.base][3], PRIMS[f.base][4]
                cmp = f.flexible.cond(self.valid)
                if lo == hi or cmp == "0":
                    sz = str(lo)
                elif cmp == "1":
                    sz = str(hi)
                else:
                    sz = "(%s ? %d : %d)" % (cmp, hi, lo)
            if c == "1":
                o("n += %s;" % sz)
            else:
                o("if (%s) n += %s;" % (c, sz))
        fc = self.msg.flexible.cond(self.valid)
        if fc == "1":
            o("n += 1; /* tagged-field count */")
        elif fc != "0":
            o("if (%s) n += 1; /* tagged-field count */" % fc)
        o("return n ? n : 1;")
        out("static size_t %s_min_size(int16_t version)" % sd.cname)
        out("{")
        out.lines.extend(unused_params(o.lines, ["version"]))
        out("}")

    def flex_c(self):
        c = self.msg.flexible.cond(self.valid)
        return {"1": "true", "0": "false"}.get(c, "(%s)" % c)

    def gen_decode(self, out):
        sd = self.sd
        o = Out()
        o.ind = 1
        o("%s_init(m);" % sd.cname)
        uses_flex = self.uses_flex()
        if uses_flex:
            o("const bool flex = %s;" % self.flex_c())
        for f in sd.fields:
            c = self.present_untagged(f).cond(self.valid)
            if c == "0":
                continue
            if c != "1":
                o.block("if (%s)" % c)
            self.read_field(o, f, "r", False)
            if c != "1":
                o.end()
        tagged = [f for f in sd.fields if self.present_tagged(f).cond(self.valid) != "0"]
        if uses_flex:
            if not tagged:
                o("if (flex) kr_skip_tagged_fields(r);")
            else:
                self.gen_read_tags(o, tagged)
        o("return r->err ? -1 : 0;")
        out("int %s_decode(%s *m, kreader *r, int16_t version, karena *a)" % (sd.cname, sd.cname))
        out("{")
        out.lines.extend(unused_params(o.lines, ["version", "a"]))
        out("}")

    def gen_read_tags(self, o, tagged):
        o.block("if (flex)")
        o("uint32_t ntags = kr_uvarint(r);")
        o.block("for (uint32_t t = 0; t < ntags && !r->err; t++)")
        o("uint32_t tag = kr_uvarint(r);")
        o("uint32_t size = kr_uvarint(r);")
        o("const uint8_t *p = kr_take(r, size);")
        o("if (r->err) break;")
        o("kreader sub;")
        o("kr_init(&sub, p, size);")
        o.block("switch (tag)")
        for f in sorted(tagged, key=lambda f: f.tag):
            o("case %d:" % f.tag)
            o.ind += 1
            c = self.present_tagged(f).cond(self.valid)
            if c != "1":
                o.block("if (%s)" % c)
            self.read_field(o, f, "&sub", True)
            if c != "1":
                o.end()
            o("break;")
            o.ind -= 1
        o("default: /* unknown tags are skipped */")
        o("    break;")
        o.end()
        o("if (sub.err) r->err = 1;")
        o.end()
        o.end()

    # -- encode
    def write_value(self, o, f, acc, compact, nullable):
        b = f.base
        if f.is_struct:
            if nullable != "false":
                pre = "" if nullable == "true" else nullable + " && "
                o.block("if (%s!%s_present)" % (pre, acc))
                o("kw_i8(w, -1);")
                o.end()
                o.block("else")
                if nullable != "true":
                    o("if (%s) kw_i8(w, 1);" % nullable)
                else:
                    o("kw_i8(w, 1);")
                o("%s_encode(&%s, w, version);" % (f.struct.cname, acc))
                o.end()
            else:
                o("%s_encode(&%s, w, version);" % (f.struct.cname, acc))
            return
        if b == "string":
            o("kw_string(w, %s, %s);" % (compact, self.nonnull(acc, nullable, "kmsg_str_or_empty")))
        elif b == "bytes":
            o("kw_bytes(w, %s, %s);" % (compact, self.nonnull(acc, nullable, "kmsg_bytes_or_empty")))
        elif b == "records":
            if nullable == "true":
                o("kw_records(w, %s, &%s);" % (compact, acc))
            else:
                o("kmsg_records_or_empty(w, %s, &%s, %s);" % (compact, acc, nullable))
        elif b == "uuid":
            o("kw_uuid(w, &%s);" % acc)
        else:
            o("%s(w, %s);" % (PRIMS[b][2], acc))

    @staticmethod
    def nonnull(acc, nullable, fn):
        if nullable == "true":
            return acc
        return "%s(%s, %s)" % (fn, acc, nullable)

    def write_field(self, o, f, tagged):
        acc = "m->" + f.cname
        compact = "true" if tagged else self.compact_expr(f)
        nullable = self.nullable_expr(f)
        if tagged and f.is_struct and nullable != "false":
            # Tagged nullable structs use a varint presence marker.
            pre = "" if nullable == "true" else nullable + " && "
            o.block("if (%s!%s_present)" % (pre, acc))
            o("kw_uvarint(w, 0);")
            o.end()
            o.block("else")
            o("if (%s) kw_uvarint(w, 1);" % nullable if nullable != "true" else "kw_uvarint(w, 1);")
            o("%s_encode(&%s, w, version);" % (f.struct.cname, acc))
            o.end()
            return
        if not f.is_array:
            self.write_value(o, f, acc, compact, nullable)
            return
        if nullable == "true":
            o("kw_array_len(w, %s, %s_count);" % (compact, acc))
        else:
            o("kw_array_len(w, %s, kmsg_count_or_empty(%s_count, %s));" % (compact, acc, nullable))
        o.block("for (int32_t i = 0; i < %s_count; i++)" % acc)
        ea = "%s[i]" % acc
        if f.is_struct:
            o("%s_encode(&%s, w, version);" % (f.struct.cname, ea))
        elif f.base == "string":
            o("kw_string(w, %s, kmsg_str_or_empty(%s, false));" % (compact, ea))
        elif f.base == "bytes":
            o("kw_bytes(w, %s, kmsg_bytes_or_empty(%s, false));" % (compact, ea))
        elif f.base == "uuid":
            o("kw_uuid(w, &%s);" % ea)
        elif f.base == "records":
            o("kw_records(w, %s, &%s);" % (compact, ea))
        else:
            o("%s(w, %s);" % (PRIMS[f.base][2], ea))
        o.end()

    def gen_encode(self, out):
        sd = self.sd
        o = Out()
        o.ind = 1
        uses_flex = self.uses_flex()
        if uses_flex:
            o("const bool flex = %s;" % self.flex_c())
        for f in sd.fields:
            c = self.present_untagged(f).cond(self.valid)
            if c == "0":
                continue
            if c != "1":
                o.block("if (%s)" % c)
            self.write_field(o, f, False)
            if c != "1":
                o.end()
        tagged = sorted([f for f in sd.fields if self.present_tagged(f).cond(self.valid) != "0"],
                        key=lambda f: f.tag)
        if uses_flex:
            if not tagged:
                o("if (flex) kw_no_tagged_fields(w);")
            else:
                o.block("if (flex)")
                o("/* Tagged fields go out only when they differ from their default. */")
                for f in tagged:
                    c = self.present_tagged(f).cond(self.valid)
                    cond = and_cond(c, "!(%s)" % is_default_expr(f, "m->" + f.cname))
                    o("const bool put_%s = %s;" % (f.cname, cond))
                o("kw_uvarint(w, %s);" % " + ".join("(uint32_t)put_%s" % f.cname for f in tagged))
                for f in tagged:
                    o.block("if (put_%s)" % f.cname)
                    o("size_t at = kmsg_tag_begin(w, %d);" % f.tag)
                    self.write_field(o, f, True)
                    o("kmsg_tag_end(w, at);")
                    o.end()
                o.end()
        o("return w->err ? -1 : 0;")
        out("int %s_encode(const %s *m, kwriter *w, int16_t version)" % (sd.cname, sd.cname))
        out("{")
        out.lines.extend(unused_params(o.lines, ["m", "version"]))
        out("}")


def unused_params(lines, params):
    """Prefix a function body with (void) casts for parameters it never
    mentions, which -Wunused-parameter would otherwise reject."""
    text = "\n".join(lines)
    pre = ["    (void)%s;" % p for p in params
           if not re.search(r"(?<![>.])\b%s\b" % p, text)]
    return pre + lines


# ---------------------------------------------------------------- files

HEADER_NOTE = "/* Generated by codegen/gen.py from Kafka 3.6.1's %s. Do not edit. */"


def gen_header(msg):
    o = Out()
    guard = "SAMSA_GEN_%s_H" % msg.file_stem.upper()
    o(HEADER_NOTE % os.path.relpath(msg.path, os.path.dirname(os.path.dirname(msg.path))))
    o("/* %s: %s%s, versions %s%s. */" % (
        msg.name, msg.kind,
        "" if msg.api_key is None else " (api key %d)" % msg.api_key,
        vstr(msg.valid),
        "" if msg.flexible.empty() else ", flexible %s" % vstr(msg.flexible)))
    o("#ifndef " + guard)
    o("#define " + guard)
    o()
    o("#include <stdbool.h>")
    o("#include <stdint.h>")
    o()
    o('#include "protocol/wire.h"')
    o('#include "util/arena.h"')
    o()
    for sd in msg.order:
        struct_decl(o, sd)
        o()
    for sd in msg.order:
        o("void %s_init(%s *m);" % (sd.cname, sd.cname))
        o("int %s_decode(%s *m, kreader *r, int16_t version, karena *a);" % (sd.cname, sd.cname))
        o("int %s_encode(const %s *m, kwriter *w, int16_t version);" % (sd.cname, sd.cname))
    o()
    o("#endif")
    return o.text()


def gen_source(msg):
    o = Out()
    o(HEADER_NOTE % os.path.relpath(msg.path, os.path.dirname(os.path.dirname(msg.path))))
    o("/* Codecs for %s; see %s.h for the types. */" % (msg.name, msg.file_stem))
    o('#include "protocol/gen/%s.h"' % msg.file_stem)
    o()
    o("#include <string.h>")
    o()
    o('#include "protocol/gen/kmsg_util.h"')
    # Helpers (_is_default, _min_size) are static, so emit only the ones
    # something calls: generate every piece, then keep helpers that are
    # referenced, repeating until nothing changes (helpers call helpers).
    pieces = []   # (helper name or None, lines)
    for sd in msg.order:
        g = StructGen(msg, sd)
        pieces.append((None, ["", "/* ---- %s ---- */" % sd.cname]))
        for helper, fn in ((None, g.gen_init), (sd.cname + "_is_default", g.gen_is_default),
                           (sd.cname + "_min_size", g.gen_min_size),
                           (None, g.gen_decode), (None, g.gen_encode)):
            part = Out()
            part()
            fn(part)
            pieces.append((helper, part.lines))
    keep = [True] * len(pieces)
    changed = True
    while changed:
        changed = False
        body = "\n".join("\n".join(ls) for k, (_, ls) in zip(keep, pieces) if k)
        for i, (helper, lines) in enumerate(pieces):
            if helper and keep[i]:
                calls = len(re.findall(r"\b%s\(" % helper, body))
                if calls <= 1:          # only its own definition
                    keep[i] = False
                    changed = True
    for k, (_, lines) in zip(keep, pieces):
        if k:
            o.lines.extend(lines)
    return o.text()


UTIL_H = """/* Generated by codegen/gen.py. Do not edit. */
/* kmsg_util.h - small helpers shared by the generated codecs (internal). */
#ifndef SAMSA_GEN_KMSG_UTIL_H
#define SAMSA_GEN_KMSG_UTIL_H

#include <string.h>

#include "protocol/wire.h"

/* Mark a decode failure (e.g. the arena is exhausted) and return -1. */
static inline int kmsg_fail(kreader *r)
{
    r->err = 1;
    return -1;
}

static inline void kmsg_bad(kreader *r) { r->err = 1; }

/* A null where the version does not allow one goes out as empty, which is
 * what a peer would have to assume anyway. */
static inline kstr kmsg_str_or_empty(kstr s, bool nullable)
{
    if (s.len < 0 && !nullable) return (kstr){"", 0};
    return s;
}

static inline kbytes kmsg_bytes_or_empty(kbytes b, bool nullable)
{
    if (b.len < 0 && !nullable) return (kbytes){NULL, 0};
    return b;
}

static inline int32_t kmsg_count_or_empty(int32_t n, bool nullable)
{
    return n < 0 && !nullable ? 0 : n;
}

static inline void kmsg_records_or_empty(kwriter *w, bool compact, const krecords *rec,
                                         bool nullable)
{
    if (rec->len < 0 && !nullable) {
        kw_bytes(w, compact, (kbytes){NULL, 0});
        return;
    }
    kw_records(w, compact, rec);
}

/* A tagged field is tag, size, value. The value is written first and its
 * size spliced in front afterwards, so no temporary buffer is needed.
 * (Records, the only type written as file references, cannot be tagged.) */
static inline size_t kmsg_tag_begin(kwriter *w, uint32_t tag)
{
    kw_uvarint(w, tag);
    return w->len;
}

static inline void kmsg_tag_end(kwriter *w, size_t start)
{
    if (w->err) return;
    size_t n = w->len - start;
    if (n > UINT32_MAX) { w->err = 1; return; }
    int k = kw_uvarint_size((uint32_t)n);
    kw_reserve(w, (size_t)k);
    if (w->err) return;
    memmove(w->buf + start + k, w->buf + start, n);
    uint32_t v = (uint32_t)n;
    for (int i = 0; i < k; i++) {
        w->buf[start + i] = (uint8_t)((v & 0x7f) | (i + 1 < k ? 0x80 : 0));
        v >>= 7;
    }
}

#endif
"""


def gen_kmsg_h(msgs, requests, metas):
    o = Out()
    o("/* Generated by codegen/gen.py. Do not edit. */")
    o("""/* kmsg.h - every Kafka 3.6.1 message and record type, and the API table.
 *
 * Each JSON schema becomes one C struct (named as in Kafka) with nested
 * struct types named <Message>_<Type>. For every struct type T:
 *   void T_init(T *m);            every field to its schema default
 *   int  T_decode(T *m, kreader *r, int16_t version, karena *a);
 *   int  T_encode(const T *m, kwriter *w, int16_t version);
 * decode/encode return 0, or -1 once the reader/writer has failed. Decoded
 * strings and bytes point into the reader's buffer; arrays live in the
 * arena. Arrays are `T *x; int32_t x_count;` with x_count == -1 for null.
 * A nullable struct field x also has `bool x_present` (false: null).
 * Nested types take the top-level message's version. Encoding a null where
 * the version does not allow one writes the empty value instead.
 */""")
    o("#ifndef SAMSA_GEN_KMSG_H")
    o("#define SAMSA_GEN_KMSG_H")
    o()
    o("#include <stdbool.h>")
    o("#include <stddef.h>")
    o("#include <stdint.h>")
    o()
    o('#include "protocol/wire.h"')
    o('#include "util/arena.h"')
    o()
    for m in msgs:
        o('#include "protocol/gen/%s.h"' % m.file_stem)
    o()
    o("/* API keys, from the request schemas. */")
    o("typedef enum kapi_key {")
    for r in requests:
        o("    KAPI_%s = %d," % (upper_snake(api_name(r)), r.api_key))
    o("} kapi_key;")
    o()
    o("/* Metadata log record types (the apiKey of each metadata record). */")
    o("typedef enum kmeta_type {")
    for m in metas:
        o("    KMETA_%s = %d," % (upper_snake(m.name), m.api_key))
    o("} kmeta_type;")
    o()
    o("""typedef struct kapi_info {
    int16_t key;
    const char *name;       /* "Produce", "ApiVersions", ... */
    int16_t min_version, max_version;
    int16_t first_flexible; /* INT16_MAX when never flexible */
    bool latest_version_unstable; /* max_version is not advertised by default */
    unsigned listeners;     /* KAPI_LISTENER_* bits: who serves this API */
} kapi_info;

/* Which kinds of node serve an API (the schema's "listeners"). */
#define KAPI_LISTENER_ZK_BROKER 1u
#define KAPI_LISTENER_BROKER 2u
#define KAPI_LISTENER_CONTROLLER 4u

/* Every API, in key order. */
extern const kapi_info kapi_table[];
extern const int kapi_table_len;

/* NULL if the key is unknown. */
const kapi_info *kapi_lookup(int16_t api_key);

/* Header versions for a request/response of the given API version:
 * request 2 when flexible, else 1 (ControlledShutdown v0 uses 0);
 * response 1 when flexible, else 0 (ApiVersions responses always 0). */
int16_t kapi_request_header_version(int16_t api_key, int16_t api_version);
int16_t kapi_response_header_version(int16_t api_key, int16_t api_version);

/* A generic view of one top-level message type, for code that works by
 * api key (dispatch, tests). m points at the struct named by `name`. */
typedef struct kmsg_type {
    const char *name;       /* "FetchRequest" */
    const char *kind;       /* "request", "response", "header", "data", "metadata" */
    int16_t api_key;        /* -1 when the schema has none */
    int16_t min_version, max_version;
    int16_t first_flexible; /* INT16_MAX when never flexible */
    size_t size;            /* sizeof the struct */
    void (*init)(void *m);
    int (*decode)(void *m, kreader *r, int16_t version, karena *a);
    int (*encode)(const void *m, kwriter *w, int16_t version);
} kmsg_type;

/* Every generated top-level type, sorted by name. */
extern const kmsg_type kmsg_types[];
extern const int kmsg_types_len;

/* NULL when unknown. */
const kmsg_type *kmsg_request_type(int16_t api_key);
const kmsg_type *kmsg_response_type(int16_t api_key);
const kmsg_type *kmsg_metadata_type(int16_t record_type);
const kmsg_type *kmsg_type_by_name(const char *name);""")
    o()
    o("#endif")
    return o.text()


def api_name(req):
    if not req.name.endswith("Request"):
        raise GenError("request %s does not end in Request" % req.name)
    return req.name[:-len("Request")]


def listener_bits(m):
    bits = {"zkBroker": "KAPI_LISTENER_ZK_BROKER", "broker": "KAPI_LISTENER_BROKER",
            "controller": "KAPI_LISTENER_CONTROLLER"}
    names = [bits[x] for x in m.js.get("listeners", [])]
    return " | ".join(names) if names else "0"


def first_flexible(m):
    return "INT16_MAX" if m.flexible.empty() else str(m.flexible.lo)


def gen_api_c(msgs, requests):
    o = Out()
    o("/* Generated by codegen/gen.py. Do not edit. */")
    o("/* kmsg_api.c - the API table, header versions and type descriptors. */")
    o('#include "protocol/gen/kmsg.h"')
    o()
    o("#include <string.h>")
    o()
    o("const kapi_info kapi_table[] = {")
    for r in requests:
        o("    {%d, %s, %d, %d, %s, %s, %s}," % (
            r.api_key, c_string(api_name(r)), r.valid.lo, r.valid.hi, first_flexible(r),
            "true" if r.js.get("latestVersionUnstable") else "false", listener_bits(r)))
    o("};")
    o("const int kapi_table_len = (int)(sizeof kapi_table / sizeof kapi_table[0]);")
    o()
    maxkey = max(r.api_key for r in requests)
    o("/* kapi_table index by key; -1 for keys with no API. */")
    o("static const int16_t kapi_index[%d] = {" % (maxkey + 1))
    idx = {r.api_key: i for i, r in enumerate(requests)}
    row = [str(idx.get(k, -1)) for k in range(maxkey + 1)]
    for i in range(0, len(row), 16):
        o("    " + ", ".join(row[i:i + 16]) + ",")
    o("};")
    o()
    o("""const kapi_info *kapi_lookup(int16_t api_key)
{
    if (api_key < 0 || (size_t)api_key >= sizeof kapi_index / sizeof kapi_index[0])
        return NULL;
    int i = kapi_index[api_key];
    return i < 0 ? NULL : &kapi_table[i];
}

int16_t kapi_request_header_version(int16_t api_key, int16_t api_version)
{
    /* ControlledShutdown v0 predates the client id in the header. */
    if (api_key == KAPI_CONTROLLED_SHUTDOWN && api_version == 0)
        return 0;
    const kapi_info *api = kapi_lookup(api_key);
    if (api && api_version >= api->first_flexible)
        return 2;
    return 1;
}

int16_t kapi_response_header_version(int16_t api_key, int16_t api_version)
{
    /* ApiVersions responses keep header v0 so that clients can parse them
     * before knowing which versions the broker speaks. */
    if (api_key == KAPI_API_VERSIONS)
        return 0;
    const kapi_info *api = kapi_lookup(api_key);
    if (api && api_version >= api->first_flexible)
        return 1;
    return 0;
}
""")
    o("/* void-pointer adapters so every type fits one descriptor shape. */")
    o("#define KMSG_ADAPT(T) \\")
    o("    static void T##_init_any(void *m) { T##_init(m); } \\")
    o("    static int T##_decode_any(void *m, kreader *r, int16_t v, karena *a) \\")
    o("    { return T##_decode(m, r, v, a); } \\")
    o("    static int T##_encode_any(const void *m, kwriter *w, int16_t v) \\")
    o("    { return T##_encode(m, w, v); }")
    o()
    by_name = sorted(msgs, key=lambda m: m.name)
    for m in by_name:
        o("KMSG_ADAPT(%s)" % m.name)
    o()
    o("#define KMSG_TYPE(T, kind, key, lo, hi, flex) \\")
    o("    {#T, kind, key, lo, hi, flex, sizeof(T), T##_init_any, T##_decode_any, T##_encode_any}")
    o()
    o("const kmsg_type kmsg_types[] = {")
    for m in by_name:
        o("    KMSG_TYPE(%s, %s, %d, %d, %d, %s)," % (
            m.name, c_string(m.kind), -1 if m.api_key is None else m.api_key,
            m.valid.lo, m.valid.hi, first_flexible(m)))
    o("};")
    o("const int kmsg_types_len = (int)(sizeof kmsg_types / sizeof kmsg_types[0]);")
    o()
    o("""static const kmsg_type *find_type(const char *kind, int16_t key)
{
    for (int i = 0; i < kmsg_types_len; i++)
        if (kmsg_types[i].api_key == key && strcmp(kmsg_types[i].kind, kind) == 0)
            return &kmsg_types[i];
    return NULL;
}

const kmsg_type *kmsg_request_type(int16_t api_key) { return find_type("request", api_key); }
const kmsg_type *kmsg_response_type(int16_t api_key) { return find_type("response", api_key); }
const kmsg_type *kmsg_metadata_type(int16_t record_type) { return find_type("metadata", record_type); }

const kmsg_type *kmsg_type_by_name(const char *name)
{
    int lo = 0, hi = kmsg_types_len - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(kmsg_types[mid].name, name);
        if (c == 0) return &kmsg_types[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}""")
    return o.text()


# ---------------------------------------------------------------- samples

def gen_samples(msgs):
    """Test-only fillers: every field gets a deterministic non-default value
    (or, where the version allows, sometimes null) so that round trips
    exercise every code path."""
    o = Out()
    o("/* Generated by codegen/gen.py. Do not edit. Test-only. */")
    o("/* gen_samples.inc - T_fill_sample() for every generated struct, and a")
    o(" * table of the top-level ones (parallel to nothing: looked up by name). */")
    o()
    for m in msgs:
        for sd in m.order:
            o("static void %s_fill_sample(%s *m, int16_t version, karena *a);" % (sd.cname, sd.cname))
    o()
    for m in msgs:
        valid = m.valid
        for sd in m.order:
            o("static void %s_fill_sample(%s *m, int16_t version, karena *a)" % (sd.cname, sd.cname))
            o("{")
            o.ind += 1
            o("%s_init(m);" % sd.cname)
            o("(void)version;")
            o("(void)a;")
            for f in sd.fields:
                acc = "m->" + f.cname
                nc = f.nullable.cond(valid)
                nullable = {"1": "true", "0": "false"}.get(nc, "(%s)" % nc)
                if f.is_array:
                    o.block("if (sample_null(%s))" % nullable)
                    o("%s_count = -1;" % acc)
                    o.end()
                    o.block("else")
                    o("%s_count = 2;" % acc)
                    o("%s = karena_calloc(a, 2, sizeof *%s);" % (acc, acc))
                    o.block("for (int i = 0; i < 2; i++)")
                    o(sample_value(f, "%s[i]" % acc, "false"))
                    o.end()
                    o.end()
                elif f.is_struct:
                    o("%s_fill_sample(&%s, version, a);" % (f.struct.cname, acc))
                    if not f.nullable.empty():
                        o("%s_present = !sample_null(%s);" % (acc, nullable))
                else:
                    o(sample_value(f, acc, nullable))
            o.ind -= 1
            o("}")
            o()
    o("typedef void (*sample_fill_fn)(void *m, int16_t version, karena *a);")
    o()
    by_name = sorted(msgs, key=lambda m: m.name)
    for m in by_name:
        o("static void %s_fill_any(void *m, int16_t v, karena *a) { %s_fill_sample(m, v, a); }"
          % (m.name, m.name))
    o()
    o("static const struct sample_entry {")
    o("    const char *name;")
    o("    sample_fill_fn fill;")
    o("} sample_table[] = {")
    for m in by_name:
        o("    {%s, %s_fill_any}," % (c_string(m.name), m.name))
    o("};")
    return o.text()


def sample_value(f, acc, nullable):
    b = f.base
    if f.is_struct:
        return "%s_fill_sample(&%s, version, a);" % (f.struct.cname, acc)
    if b in NUMERIC:
        return "%s = (%s)sample_number();" % (acc, PRIMS[b][0])
    if b == "bool":
        return "%s = sample_bool();" % acc
    if b == "uuid":
        return "%s = sample_uuid();" % acc
    if b == "string":
        return "%s = sample_kstr(a, %s);" % (acc, nullable)
    if b == "bytes":
        return "%s = sample_kbytes(a, %s);" % (acc, nullable)
    if b == "records":
        return "%s = sample_krecords(a, %s);" % (acc, nullable)
    raise GenError(b)


# ---------------------------------------------------------------- main

def load(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    kept = [ln for ln in text.split("\n") if not ln.lstrip().startswith("//")]
    return json.loads("\n".join(kept))


def write_if_changed(path, text):
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--samples", default=os.path.join(here, "..", "tests", "unit", "gen_samples.inc"))
    args = ap.parse_args()

    msgs = []
    for d in SPEC_DIRS:
        dirpath = os.path.join(args.spec, d)
        for fn in sorted(os.listdir(dirpath)):
            if fn.endswith(".json"):
                p = os.path.join(dirpath, fn)
                try:
                    msgs.append(Message(p, load(p)))
                except GenError as e:
                    sys.exit("gen.py: %s: %s" % (p, e))
    msgs.sort(key=lambda m: m.name)
    names = [m.name for m in msgs]
    if len(set(names)) != len(names):
        sys.exit("gen.py: duplicate message names")
    requests = sorted([m for m in msgs if m.kind == "request"], key=lambda m: m.api_key)
    metas = sorted([m for m in msgs if m.kind == "metadata"], key=lambda m: m.api_key)

    os.makedirs(args.out, exist_ok=True)
    wanted = set()
    for m in msgs:
        for ext, fn in ((".h", gen_header), (".c", gen_source)):
            name = m.file_stem + ext
            wanted.add(name)
            write_if_changed(os.path.join(args.out, name), fn(m))
    extra = {
        "kmsg.h": gen_kmsg_h(msgs, requests, metas),
        "kmsg_api.c": gen_api_c(msgs, requests),
        "kmsg_util.h": UTIL_H,
    }
    for name, text in extra.items():
        wanted.add(name)
        write_if_changed(os.path.join(args.out, name), text)
    # Drop files from schemas that no longer exist.
    for fn in sorted(os.listdir(args.out)):
        if fn.endswith((".c", ".h")) and fn not in wanted:
            os.remove(os.path.join(args.out, fn))
    if args.samples:
        write_if_changed(args.samples, gen_samples(msgs))


if __name__ == "__main__":
    main()
