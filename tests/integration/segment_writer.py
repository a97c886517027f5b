"""segment_writer.py - write Kafka v2 log segments (.log/.index/.timeindex) for tests.

Builds record batches byte by byte (varints, CRC-32C) so kafka-dump-log can
be tested without a broker. Only what the tests need: uncompressed batches,
optional keys and headers, producer fields, control batches.
"""
import struct


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(n):
    z = (n << 1) ^ (n >> 63)
    z &= (1 << 64) - 1
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _varbytes(b):
    return varint(-1) if b is None else varint(len(b)) + b


def record(offset_delta, ts_delta, key, value, headers=()):
    body = bytes([0]) + varint(ts_delta) + varint(offset_delta) + _varbytes(key) + _varbytes(value)
    body += varint(len(headers))
    for hk, hv in headers:
        body += _varbytes(hk) + _varbytes(hv)
    return varint(len(body)) + body


def batch(base_offset, records, base_ts=1700000000000, attributes=0, producer_id=-1,
          producer_epoch=-1, base_sequence=-1, leader_epoch=0, max_ts=None):
    """records: list of (key, value, headers) ; offsets/timestamps consecutive."""
    recs = b"".join(record(i, i, k, v, h) for i, (k, v, h) in enumerate(records))
    last_delta = len(records) - 1
    if max_ts is None:
        max_ts = base_ts + last_delta
    after_crc = struct.pack(">hiqqqhii", attributes, last_delta, base_ts, max_ts, producer_id,
                            producer_epoch, base_sequence, len(records)) + recs
    crc = crc32c(after_crc)
    length = 4 + 1 + 4 + len(after_crc)  # leader epoch + magic + crc + rest
    return struct.pack(">qiibI", base_offset, length, leader_epoch, 2, crc) + after_crc


def write_segment(directory, base_offset, batches):
    """Writes <base>.log, .index and .timeindex (one entry per batch). Returns the .log path."""
    name = "%020d" % base_offset
    log = b"".join(batches)
    idx = bytearray()
    tix = bytearray()
    pos = 0
    for b in batches:
        boff, length = struct.unpack(">qi", b[:12])
        last = boff + struct.unpack(">i", b[23:27])[0]
        max_ts = struct.unpack(">q", b[35:43])[0]
        idx += struct.pack(">ii", last - base_offset, pos)
        tix += struct.pack(">qi", max_ts, last - base_offset)
        pos += len(b)
    with open("%s/%s.log" % (directory, name), "wb") as f:
        f.write(log)
    with open("%s/%s.index" % (directory, name), "wb") as f:
        f.write(idx)
    with open("%s/%s.timeindex" % (directory, name), "wb") as f:
        f.write(tix)
    return "%s/%s.log" % (directory, name)
