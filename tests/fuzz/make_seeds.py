#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (tests/fuzz/corpus/NAME/seed-*): small valid
inputs of every shape each decoder reads. Deterministic; run it after changing a decoder's
input format. Each input's first byte is the target's choice byte (tests/fuzz/pieces.hh):
how the rest is split, and for some targets what is expected."""

import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
TS = b"22/11/2026 22:38:16"
ID = b"sha256:" + b"0123456789abcdef" * 4


def z(*fields):
    return b"".join(f + b"\0" for f in fields)


def xdr_string(b):
    return struct.pack(">I", len(b)) + b + b"\0" * (-len(b) % 4)


def rpc_record(payload):
    return struct.pack(">I", 0x80000000 | len(payload)) + payload


def call(xid, proc, args=b"", prog=0x20504458, vers=1):
    return rpc_record(struct.pack(">IIIIII", xid, 0, 2, prog, vers, proc) + b"\0" * 16 + args)


def entry(user, op, path, ts, instance, seq):
    return xdr_string(user) + xdr_string(op) + xdr_string(path) + xdr_string(ts) + struct.pack(">QQ", instance, seq)


def reply(xid, body=b""):
    return rpc_record(struct.pack(">III", xid, 1, 0) + b"\0" * 8 + struct.pack(">I", 0) + body)


def leaf(data):
    return hashlib.sha256(b"\0" + data).digest()


def node(left, right):
    return hashlib.sha256(b"\1" + left + right).digest()


def tree_reply(size, leaves, root):
    return b"\0" + z(b"%d" % size, b"sha256:" + root.hex().encode(), b"%d" % len(leaves)) + b"".join(leaves)


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def num(n):
    return b":%d\r\n" % n


def answer(*fields):
    """A script's answer: ok, three counts (-1: unchanged), then `fields` (encoded)."""
    return b"*%d\r\n" % (4 + len(fields)) + num(0) + num(3) + num(-1) + num(-1) + b"".join(fields)


MIB = 1 << 20
TWO = [leaf(b"a" * MIB), leaf(b"b" * 5)]

SEEDS = {
    "wire_fields": [
        b"\x01" + z(b"alice", b"/home/alice/notes.txt", b"my notes"),
        b"\x00" + z(TS, b"4000", b"18446744073709551615", b"0", b""),
        b"\x03" + b"x" * 300,
    ],
    "tracker_request": [
        b"\x00" + z(b"REGISTER", TS, b"alice"),
        b"\x02" + z(b"CONNECT", b"alice", b"4000"),
        b"\x04" + z(b"PUBLISH", TS, b"alice", b"/home/alice/notes.txt", b"my notes"),
        b"\x06" + z(b"DELETE", b"alice", b"/home/alice/notes.txt"),
        b"\x08" + z(b"LIST_USERS", TS, b"alice") + z(b"LIST_CONTENT", b"alice", b"bob"),
        b"\x0a" + z(b"GET_USER_INFO", b"alice", b"bob") + z(b"DISCONNECT", b"alice") + z(b"UNREGISTER", b"alice"),
        b"\x0c" + z(b"HELLO", b"peerdex/1") + z(b"REGISTER", b"a") + z(b"SEARCH", TS, b"a", b"song -live", b"10")
        + z(b"OWN", b"a", b"ab" * 32),
        b"\x0e" + z(b"HELLO", b"peerdex/2") + z(b"PUBLISH", TS, b"a", b"/f", b"d", b"5", ID) + z(b"SOURCES", b"a", ID, b"4"),
        b"\x01" + z(b"PUBLISH", b"a", b"/g", b"", b"", b""),  # peerdex/2 from the start
        b"\x10" + z(b"REGISTER", b"bad name"),
        b"\x12" + z(b"NOT_AN_OP", b"x"),
    ],
    # The choice byte % 6 is the shape: code, list of 1, of 3, of 4, 2 fields, 1 field.
    "reply_decoder": [
        b"\x00" + b"\x00",
        b"\x06" + b"2\0",
        b"\x01" + b"\x00" + z(b"2", b"/a.txt", b"/b.txt"),
        b"\x02" + b"\x00" + z(b"1", b"alice", b"127.0.0.1", b"4000"),
        b"\x03" + b"\x00" + z(b"1", b"alice", b"/song.mp3", b"5", ID),
        b"\x04" + b"\x00" + z(b"127.0.0.1", b"4000"),
        b"\x05" + b"\x00" + z(b"12"),
        b"\x0b" + b"1",
    ],
    "peer_request": [
        b"\x00" + z(b"LIST_FILES"),
        b"\x01" + z(b"GET_FILE", b"notes.txt"),
        b"\x02" + z(b"GET_RANGE", b"big.bin", b"1048576", b"65536"),
        b"\x03" + z(b"GET_TREE", b"big.bin"),
        b"\x04" + z(b"PUT_FILE", b"new.txt", b"5") + b"hello",
        b"\x05" + z(b"DELETE_FILE", b"x"),
        b"\x06" + z(b"GET_FILE") + b"n" * 300,
    ],
    "oncrpc_records": [
        b"\x00" + call(1, 0),
        b"\x01" + call(2, 2, struct.pack(">I", 2) + entry(b"alice", b"REGISTER", b"", TS, 0xabc, 1)
                       + entry(b"alice", b"PUBLISH", b"/f", TS, 0xabc, 2)),
        b"\x02" + call(3, 1, entry(b"bob", b"CONNECT", b"", b"", 7, 9)),
        b"\x03" + reply(2, struct.pack(">I", 0)),
        b"\x04" + call(4, 3, prog=100000, vers=2) + reply(4, struct.pack(">I", 4000)),
    ],
    "file_names": [
        b"\x04" + b"notes.txt", b"\x00" + b"..", b"\x01" + b"a/b", b"\x02" + b".peerdex-upload-1",
        b"\x02" + b"10M", b"\x03" + b"5" + ID, b"\x00" + ID.upper(),
    ],
    "search_query": [
        b"\x00" + z(b"song -live", b"/music/song.mp3", b"studio recording"),
        b"\x00" + z(b"Caf\xc3\xa9 mus-ic", b"/caf\xc3\xa9/music.ogg", b""),
        b"\x00" + z(b" ".join(b"t%d" % i for i in range(17)), b"/x", b"", b"100"),
    ],
    "clock_accept": [
        b"\x00" + b"application/json",
        b"\x00" + b"text/plain;q=0.5, application/json",
        b"\x00" + b"*/*",
        b"\x00" + b"application/*;q=0.9, text/*;q=0.8",
    ],
    # Rows of six fields: users (first field even) and publications (odd; its seq is the row's).
    "sqlite_state": [
        b"\x02" + z(b"talice", b"t127.0.0.1", b"i4000", b"i1", b"t127.0.0.1", b"n")
        + z(b"u", b"talice", b"t/notes.txt", b"tmy notes", b"i5", b"t" + ID),
        b"\x01" + z(b"tbob", b"n", b"n", b"n", b"n", b"n") + z(b"tcarol", b"t::1", b"i4001", b"i9", b"t::1", b"n"),
        b"\x00" + z(b"teve", b"t10.0.0.1", b"i65535", b"i9223372036854775807", b"n", b"n"),
        b"\x12" + z(b"tkeyed", b"n", b"n", b"n", b"t127.0.0.1", b"b" + b"k" * 32),
        b"\x02" + z(b"u", b"tnobody", b"t/x", b"t", b"n", b"n"),
    ],
    # The choice byte % 8 picks the size: 0, 1, 65535, 65536, 65537, 1 MiB, 1 MiB + 3, 5 GiB.
    "part_record": [
        b"\x05" + b"peerdex-part 2\n" + b"sha256:" + b"a" * 64 + b"\n1048576\n0 3\n7 2\n",
        b"\x07" + b"peerdex-part 2\n" + b"sha256:" + b"a" * 64 + b"\n5368709120\n0 1\n",
        b"\x06" + b"peerdex-part 1\n" + b"sha256:" + b"a" * 64 + b"\n1048579\n1048579\n",
        b"\x02" + b"peerdex-part 1\n" + b"sha256:" + b"a" * 64 + b"\n65535\n0\n",
    ],
    "tree_reply": [
        b"\x00" + tree_reply(5, [leaf(b"hello")], leaf(b"hello")),
        b"\x01" + tree_reply(0, [leaf(b"")], leaf(b"")),
        b"\x02" + tree_reply(MIB + 5, TWO, node(*TWO)),
        b"\x03" + tree_reply(MIB + 5, TWO, TWO[0]),  # leaves that do not give the id
        b"\x04" + tree_reply(0, [leaf(b"x")], leaf(b"x")),  # a non-empty tree for an empty file
        b"\x05" + b"\x01", b"\x06" + b"2",
        b"\x07" + b"\0" + z(b"5", b"sha256:xyz", b"1"),
    ],
    "redis_answer": [
        b"\x00" + answer(),  # a change
        b"\x01" + answer(bulk(b"127.0.0.1"), num(4000)),  # GET_USER_INFO
        b"\x02" + answer(num(2), bulk(b""), bulk(b"ann\x00127.0.0.1\x004001"), bulk(b"bob\x00::1\x004002")),
        b"\x03" + answer(num(1), bulk(b""), bulk(z(b"/a.ogg", b"song", b"5")[:-1] + b"\x00" + ID)),
        b"\x04" + answer(num(1000), bulk(b"{pdx}:snap:7")),  # a long list: its snapshot key
        b"\x05" + answer(num(1), bulk(b"ann"), bulk(b"127.0.0.1"), num(4001), bulk(b"/a.ogg"), bulk(b"song"),
                          bulk(b"5"), bulk(ID)),  # SEARCH
        b"\x06" + answer(num(1), bulk(b"ann"), bulk(b"::1"), num(4001), bulk(b"/a.ogg"), bulk(b"5")),  # SOURCES
        b"\x07" + answer(num(0), bulk(b"12"), bulk(b"ann"), bulk(b"127.0.0.1"), num(4001)),  # liveness walk
        b"\x08" + b"*3\r\n$1\r\n5\r\n$-1\r\n:2\r\n",  # the counts
        b"\x09" + b"-NOSCRIPT No matching script.\r\n" + b"*3\r\n*1\r\n*0\r\n+OK\r\n:1\r\n",
    ],
    "logd_journal": [
        b"\x00" + b"J 0 120 abc:5\nS 120 120 abc:5 def:9\n",
        b"\x00" + b"J 120 100 abc:1\nJ 5\n",
    ],
}

for target, seeds in SEEDS.items():
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if name.startswith("seed-"):
            os.remove(os.path.join(d, name))
    for i, data in enumerate(seeds):
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(data)
