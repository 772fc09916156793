"""SEARCH on the wire (peerdex-protocol(7), SEARCH): the example of the page byte for byte,
every code, the session that survives a mistyped query, the caps (--max-results, the read
caps of the query and the limit), streaming, the rate limit and the operation log."""

import os
import re
import socket
import tempfile
import unittest

from harness import TS, Logd, Reader, Tracker, enc, read_all, scaled, wait_for_log_lines, wait_until


def hits(reply):
    """(code, [(user, ip, port, path, description)]) of a complete SEARCH reply."""
    r = Reader(None)
    r.buf = bytearray(reply)
    code = r.byte()
    if code != 0:
        assert not r.rest(), reply
        return code, None
    n = int(r.field())
    out = [tuple(r.field() for _ in range(5)) for _ in range(n)]
    assert not r.rest(), "trailing bytes: %r" % r.rest()[:50]
    return code, out


class Search(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Tracker()
        cls.t.user("alice", 4001)
        cls.t.user("bob", 35911)
        assert cls.t.code("PUBLISH", "bob", "/music/Song_2.ogg", "live at home") == 0
        assert cls.t.code("PUBLISH", "bob", "/docs/songbook.pdf", "chords") == 0

    @classmethod
    def tearDownClass(cls):
        assert cls.t.stop() == 0

    def search(self, user, query, limit=10, ts=True):
        return self.t.op("SEARCH", user, query, limit, ts=ts)

    def test_the_example_of_the_protocol_page_byte_for_byte(self):
        song2 = enc("bob", "127.0.0.1", 35911, "/music/Song_2.ogg", "live at home")
        songbook = enc("bob", "127.0.0.1", 35911, "/docs/songbook.pdf", "chords")
        self.assertEqual(self.search("alice", "song"), b"\x00" + enc(2) + songbook + song2)
        self.assertEqual(self.search("alice", "song", ts=False), b"\x00" + enc(2) + songbook + song2)
        self.assertEqual(self.search("alice", "song -chords"), b"\x00" + enc(1) + song2)
        self.assertEqual(self.search("alice", "home"), b"\x00" + enc(1) + song2)  # a description token
        self.assertEqual(self.search("alice", "-song"), b"\x03")
        self.assertEqual(self.search("ghost", "song"), b"\x01")

    def test_codes_in_the_order_of_the_rules(self):
        self.assertEqual(self.t.code("REGISTER", "offline"), 0)
        self.assertEqual(self.search("offline", "song"), b"\x02")
        self.assertEqual(self.search("ghost", "-song", 0), b"\x01")       # the requester first
        self.assertEqual(self.search("offline", "-song", 0), b"\x02")
        for query, limit in [("", 10), ("   ", 10), ("song", 0), ("song", 1001), ("song", "ten"),
                             ("song", "-1"), ("song", " 5"), ("x" * 256, 10), (" ".join("t%d" % i for i in range(17)), 10),
                             ("- -", 10)]:
            self.assertEqual(self.search("alice", query, limit), b"\x03", (query[:40], limit))
        self.assertEqual(hits(self.search("alice", "song", 1000))[0], 0)
        self.assertEqual(hits(self.search("alice", "x" * 255))[0], 0)  # 255 bytes: allowed

    def test_rules_case_prefixes_separators_inside_terms(self):
        self.assertEqual(len(hits(self.search("alice", "SONG"))[1]), 2)
        self.assertEqual(len(hits(self.search("alice", "So"))[1]), 2)
        self.assertEqual([h[3] for h in hits(self.search("alice", "Song_2"))[1]], ["/music/Song_2.ogg"])
        self.assertEqual([h[3] for h in hits(self.search("alice", "song -live.pdf"))[1]], [])  # -live -pdf
        self.assertEqual([h[3] for h in hits(self.search("alice", "  music   ogg  "))[1]], ["/music/Song_2.ogg"])
        self.assertEqual(hits(self.search("alice", "ongbook"))[1], [])  # prefixes only

    def test_a_session_survives_a_mistyped_query(self):
        s, r = self.t.hello()
        with s:
            s.sendall(enc("SEARCH", "alice", "-song", 10) + enc("SEARCH", "alice", "song", "many") +
                      enc("SEARCH", "alice", "song", 1))
            self.assertEqual(r.byte(), 3)
            self.assertEqual(r.byte(), 3)
            self.assertEqual(r.byte(), 0)
            self.assertEqual(r.field(), "1")
            self.assertEqual([r.field() for _ in range(5)][3], "/docs/songbook.pdf")
            s.sendall(enc("LIST_USERS", "alice"))
            self.assertEqual(r.byte(), 0)

    def test_an_over_long_query_field_is_malformed_and_closes(self):
        with self.t.connect() as s:
            s.sendall(enc("HELLO", "peerdex/1"))
            r = Reader(s)
            self.assertEqual((r.byte(), r.field()), (0, "peerdex/1"))
            s.sendall(b"SEARCH\0alice\0" + b"q" * 2000 + b"\0" + enc(10))
            self.assertEqual(r.byte(), 3)
            self.assertEqual(read_all(s), b"")  # closed after the code
        with self.t.connect() as s:  # a query of 1024 bytes is read whole and answered 3
            s.sendall(enc("HELLO", "peerdex/1") + enc("SEARCH", "alice", "q" * 1024, 10) + enc("LIST_USERS", "alice"))
            r = Reader(s)
            self.assertEqual((r.byte(), r.field()), (0, "peerdex/1"))
            self.assertEqual(r.byte(), 3)
            self.assertEqual(r.byte(), 0)


class Caps(unittest.TestCase):
    def test_max_results_caps_the_limit_and_zero_turns_search_off(self):
        with Tracker("--max-results", "3") as t:
            t.user("alice")
            for i in range(5):
                self.assertEqual(t.code("PUBLISH", "alice", "/f%d.txt" % i, "file"), 0)
            code, found = hits(t.op("SEARCH", "alice", "file", 1000))
            self.assertEqual((code, [h[3] for h in found]), (0, ["/f4.txt", "/f3.txt", "/f2.txt"]))
            self.assertEqual(t.stop(), 0)
        with Tracker("--max-results", "0") as t:
            t.user("alice")
            self.assertEqual(t.code("PUBLISH", "alice", "/f.txt", "file"), 0)
            self.assertEqual(t.op("SEARCH", "alice", "file", 10), b"\x03")
            self.assertEqual(t.op("SEARCH", "ghost", "file", 10), b"\x01")
            self.assertEqual(t.stop(), 0)

    def test_search_budget_bounds_the_candidates_examined(self):
        # 50 publications match "common" outside their file names: the walk would look at all
        # 50 to be sure no file-name match hides further back. With a budget of 20, it
        # answers with what the 20 newest gave, in order.
        with Tracker("--search-budget", "20") as t:
            t.user("alice")
            for i in range(50):
                self.assertEqual(t.code("PUBLISH", "alice", "/common/f%02d.txt" % i, ""), 0)
            code, found = hits(t.op("SEARCH", "alice", "common f", 100))
            self.assertEqual((code, [h[3] for h in found]), (0, ["/common/f%02d.txt" % i for i in range(49, 29, -1)]))
            self.assertEqual(t.stop(), 0)
        with Tracker() as t:  # the default budget: all of them
            t.user("alice")
            for i in range(50):
                self.assertEqual(t.code("PUBLISH", "alice", "/common/f%02d.txt" % i, ""), 0)
            code, found = hits(t.op("SEARCH", "alice", "common f", 100))
            self.assertEqual((code, len(found)), (0, 50))
            self.assertEqual(t.stop(), 0)

    def test_a_long_answer_is_streamed_whole(self):
        # 1000 hits of about 520 bytes: eight chunks of the tracker's 64 KiB.
        with Tracker("--max-results", "1000") as t:
            t.user("alice")
            s, r = t.hello()
            with s:
                for i in range(1000):
                    s.sendall(enc("PUBLISH", "alice", "/big/%04d-%s.bin" % (i, "p" * 240), "d" * 250))
                self.assertEqual([r.byte() for _ in range(1000)], [0] * 1000)
                s.sendall(enc("SEARCH", "alice", "big", 1000) + enc("SEARCH", "alice", "0999", 5))
                self.assertEqual(r.byte(), 0)
                self.assertEqual(r.field(), "1000")
                found = [tuple(r.field() for _ in range(5)) for _ in range(1000)]
                self.assertEqual([h[3][5:9] for h in found], ["%04d" % i for i in range(999, -1, -1)])
                self.assertEqual((r.byte(), r.field()), (0, "1"))
            self.assertEqual(t.stop(), 0)

    def test_search_rate_holds_a_session_back_and_not_the_others(self):
        with Tracker("--search-rate", "20") as t:
            t.user("alice")
            t.user("bob")
            s, r = t.hello()
            with s:
                n = 60  # a burst of 20, then 20 a second: held back at least once
                s.sendall(b"".join(enc("SEARCH", "alice", "x", 1) for _ in range(n)))
                first = (r.byte(), r.field())
                # While alice's session waits for its allowance, bob is served.
                self.assertEqual(t.code("LIST_USERS", "bob"), 0)
                self.assertEqual([first] + [(r.byte(), r.field()) for _ in range(n - 1)], [(0, "0")] * n)
            line = t.report("s> search:")
            m = re.search(r"(\d+) queries, (\d+) times", line)
            self.assertEqual(int(m.group(1)), n)
            self.assertGreaterEqual(int(m.group(2)), 1, line)
            self.assertEqual(t.stop(), 0)


class Log(unittest.TestCase):
    def test_search_is_logged_with_its_query_in_the_path_field(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "ops.log")
            with Logd("-o", log) as logd, Tracker("--log", "127.0.0.1:%d" % logd.port) as t:
                t.user("alice")
                self.assertEqual(t.op("SEARCH", "alice", "song -live", 10), b"\x00" + enc(0))
                self.assertEqual(t.op("SEARCH", "alice", "x", 10, ts=False), b"\x00" + enc(0))
                wait_for_log_lines(log, 4)
                self.assertEqual(t.stop(), 0)
                t.wait_for(r"4 delivered, 0 dropped", stream="stderr")
                with open(log) as f:
                    self.assertEqual(f.read().splitlines()[2:], ["alice SEARCH song -live " + TS, "alice SEARCH x"])
                self.assertEqual(logd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
