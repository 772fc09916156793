"""SOURCES (peerdex-protocol(7), SOURCES) on the wire: the connected users' publications of
one content id, newest first, bounded by the limit and the tracker's --max-results; codes 1, 2
and 3 (a session survives a 3, as after SEARCH); peerdex/2 sessions only, so that a canonical
connection or a peerdex/1 session sending it is closed without a reply. Reruns against every
store (tests/integration/meson.build)."""

import os
import tempfile
import unittest

from harness import TS, Logd, Reader, Tracker, enc, read_all, wait_for_log_lines

ID = "sha256:8a2a5c9b768827de5a9552c38a044c66959c68f6d2f21b5260af54d2f87db827"
OTHER_ID = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def session(t, version="peerdex/2"):
    s = t.connect()
    s.sendall(enc("HELLO", version))
    r = Reader(s)
    assert (r.byte(), r.field()) == (0, version)
    return s, r


class Sources(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Tracker()
        t = cls.t
        for name, port in (("ann", 4001), ("ben", 4002), ("cat", 4003), ("dan", 4004)):
            t.user(name, port)
        s, r = session(t)
        with s:
            s.sendall(enc("PUBLISH", "ben", "/m/song.ogg", "live", 5, ID) +
                      enc("PUBLISH", "cat", "/c/song.ogg", "", 5, ID.upper().replace("SHA256", "sha256")) +
                      enc("PUBLISH", "dan", "/d/song.ogg", "", 5, ID) +
                      enc("PUBLISH", "ben", "/copy.ogg", "", 5, ID) +
                      enc("PUBLISH", "cat", "/other.iso", "", 9, OTHER_ID) +
                      enc("PUBLISH", "ann", "/mine.ogg", "", 5, ID))
            s.shutdown(1)
            assert read_all(s) == b"\x00" * 6
        assert t.code("DISCONNECT", "dan") == 0
        # A canonical publication of the same file has no id: never a source.
        assert t.code("PUBLISH", "ben", "/canonical.ogg", "") == 0

    @classmethod
    def tearDownClass(cls):
        assert cls.t.stop() == 0

    def test_sources_newest_first_connected_only(self):
        mine = enc("ann", "127.0.0.1", 4001, "/mine.ogg", 5)
        copy = enc("ben", "127.0.0.1", 4002, "/copy.ogg", 5)
        cat = enc("cat", "127.0.0.1", 4003, "/c/song.ogg", 5)
        ben = enc("ben", "127.0.0.1", 4002, "/m/song.ogg", 5)
        s, r = session(self.t)
        with s:
            s.sendall(enc("SOURCES", "ann", ID, 10) + enc("SOURCES", TS, "ann", ID.upper().replace("SHA256", "sha256"), 2) +
                      enc("SOURCES", "ann", OTHER_ID, 1000) +
                      enc("SOURCES", "ann", "sha256:" + "0" * 64, 10))
            s.shutdown(1)
            self.assertEqual(read_all(s), b"\x00" + enc(4) + mine + copy + cat + ben +
                             b"\x00" + enc(2) + mine + copy +
                             b"\x00" + enc(1) + enc("cat", "127.0.0.1", 4003, "/other.iso", 9) +
                             b"\x00" + enc(0))

    def test_codes_and_a_3_keeps_the_session(self):
        self.t.code("REGISTER", "eve")
        s, r = session(self.t)
        with s:
            bad = [(ID, 0), (ID, 1001), (ID, "x"), (ID, ""), (ID[:-1], 10), ("", 10), ("sha1:" + ID[7:], 10),
                   (ID + "0", 10)]
            s.sendall(enc("SOURCES", "ghost", ID, 10) + enc("SOURCES", "eve", ID, 10) +
                      enc("SOURCES", "ghost", "junk", 0) + enc("SOURCES", "eve", "junk", 0) +
                      b"".join(enc("SOURCES", "ann", i, n) for i, n in bad) +
                      enc("SOURCES", "ann", OTHER_ID, 1))
            s.shutdown(1)
            self.assertEqual(read_all(s), bytes([1, 2, 1, 2] + [3] * len(bad)) + b"\x00" + enc(1) +
                             enc("cat", "127.0.0.1", 4003, "/other.iso", 9))
        # An id field beyond its read cap is malformed: 3, and the session is closed.
        s, r = session(self.t)
        with s:
            s.sendall(enc("SOURCES", "ann", "a" * 129, 10) + enc("REGISTER", "never-sources"))
            s.shutdown(1)
            self.assertEqual(read_all(s), b"\x03")
        self.assertEqual(self.t.code("REGISTER", "never-sources"), 0)

    def test_delete_and_unregister_remove_sources(self):
        t = self.t
        t.user("fox", 4005)
        s, r = session(t)
        with s:
            s.sendall(enc("PUBLISH", "fox", "/f1", "", 3, OTHER_ID) + enc("PUBLISH", "fox", "/f2", "", 3, OTHER_ID) +
                      enc("SOURCES", "fox", OTHER_ID, 10) + enc("DELETE", "fox", "/f2") +
                      enc("SOURCES", "fox", OTHER_ID, 10) + enc("UNREGISTER", "fox") +
                      enc("SOURCES", "ann", OTHER_ID, 10))
            s.shutdown(1)
            f1, f2 = enc("fox", "127.0.0.1", 4005, "/f1", 3), enc("fox", "127.0.0.1", 4005, "/f2", 3)
            cat = enc("cat", "127.0.0.1", 4003, "/other.iso", 9)
            self.assertEqual(read_all(s), b"\x00\x00" + b"\x00" + enc(3) + f2 + f1 + cat + b"\x00" +
                             b"\x00" + enc(2) + f1 + cat + b"\x00" + b"\x00" + enc(1) + cat)

    def test_the_shared_stores_index_keeps_no_stale_entry(self):
        # Answers skip a publication whose hash is gone, so only the keys show a leak.
        redis = getattr(self.t, "redis", None)
        if redis is None:
            self.skipTest("the shared store's keys (PEERDEX_TEST_STORE=redis)")
        own_id = "sha256:" + "ab" * 32
        key = "{pdx}:i:" + own_id
        self.t.user("kim", 4008)
        s, r = session(self.t)
        with s:
            s.sendall(enc("PUBLISH", "kim", "/k1", "", 1, own_id) + enc("PUBLISH", "kim", "/k2", "", 1, own_id) +
                      enc("PUBLISH", "kim", "/k3", "", 1, own_id) + enc("DELETE", "kim", "/k1"))
            s.shutdown(1)
            self.assertEqual(read_all(s), b"\x00" * 4)
        self.assertEqual(redis.cli("ZCARD", key), "2")
        self.assertEqual(self.t.code("UNREGISTER", "kim"), 0)
        self.assertEqual(redis.cli("EXISTS", key), "0")

    def test_not_an_operation_outside_peerdex2(self):
        # Canonical: an unknown operation, closed without a reply; so in a peerdex/1 session.
        self.assertEqual(self.t.op("SOURCES", "ann", ID, 10), b"")
        self.assertEqual(self.t.op("SOURCES", "ann", ID, 10, ts=False), b"")
        s, r = session(self.t, "peerdex/1")
        with s:
            s.sendall(enc("LIST_USERS", "ann") + enc("SOURCES", "ann", ID, 10) + enc("REGISTER", "never-v1"))
            s.shutdown(1)
            reply = read_all(s)
            self.assertEqual(reply[:1], b"\x00")
            self.assertNotIn(b"mine.ogg", reply)
        self.assertEqual(self.t.code("REGISTER", "never-v1"), 0)

    def test_the_tracker_caps_the_limit(self):
        with Tracker("--max-results", "2") as t:
            t.user("gus", 4006)
            s, r = session(t)
            with s:
                s.sendall(b"".join(enc("PUBLISH", "gus", "/g%d" % i, "", 1, ID) for i in range(3)) +
                          enc("SOURCES", "gus", ID, 1000))
                s.shutdown(1)
                self.assertEqual(read_all(s), b"\x00" * 3 + b"\x00" + enc(2) + enc("gus", "127.0.0.1", 4006, "/g2", 1) +
                                 enc("gus", "127.0.0.1", 4006, "/g1", 1))
        # 0 turns SEARCH off, and SOURCES with it: every one is answered 3.
        with Tracker("--max-results", "0") as t:
            t.user("ivy", 4007)
            s, r = session(t)
            with s:
                s.sendall(enc("PUBLISH", "ivy", "/i", "", 1, ID) + enc("SOURCES", "ivy", ID, 10))
                s.shutdown(1)
                self.assertEqual(read_all(s), b"\x00\x03")

    def test_the_operation_log_records_it_like_search(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "ops.log")
            with Logd("-o", log) as logd, Tracker("--log", "127.0.0.1:%d" % logd.port) as t:
                t.user("hal")
                s, r = session(t)
                with s:
                    s.sendall(enc("SOURCES", TS, "hal", ID, 10))
                    self.assertEqual((r.byte(), r.field()), (0, "0"))
                wait_for_log_lines(log, 3)
                self.assertEqual(t.stop(), 0)
                t.wait_for(r"3 delivered, 0 dropped", stream="stderr")
                with open(log) as f:
                    self.assertEqual(f.read().splitlines()[2:], ["hal SOURCES " + ID + " " + TS])
                self.assertEqual(logd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
