"""The peerdex/2 session (peerdex-protocol(7), SESSIONS) on the wire: HELLO's negotiation,
PUBLISH's size and content id fields with their rules, LIST_CONTENT's and SEARCH's entries
that carry them, and the same publications seen byte for byte as before from a canonical
connection and a peerdex/1 session. Reruns against every store (tests/meson.build)."""

import os
import socket
import tempfile
import threading
import unittest

from harness import HOST, TS, Client, Logd, Reader, Tracker, enc, read_all, wait_for_log_lines

ID = "sha256:8a2a5c9b768827de5a9552c38a044c66959c68f6d2f21b5260af54d2f87db827"
UPPER_ID = "sha256:" + ID[7:].upper()
OTHER_ID = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_SIZE = "9223372036854775807"  # 2^63 - 1


def session(t, version):
    """A HELLO session of `version`, after its answer."""
    s = t.connect()
    s.sendall(enc("HELLO", version))
    r = Reader(s)
    assert (r.byte(), r.field()) == (0, version)
    return s, r


class Peerdex2(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Tracker()

    @classmethod
    def tearDownClass(cls):
        assert cls.t.stop() == 0

    def v2(self):
        return session(self.t, "peerdex/2")

    def test_hello_answers_the_version_asked_for(self):
        for version in ("peerdex/2", "peerdex/1"):
            with self.t.connect() as s:
                s.sendall(enc("HELLO", version) + enc("REGISTER", "hello-" + version[-1]))
                s.shutdown(1)
                self.assertEqual(read_all(s), b"\x00" + enc(version) + b"\x00")
        for version in ("peerdex/3", "PEERDEX/2", "peerdex/2 ", "peerdex/"):
            self.assertEqual(self.t.raw(enc("HELLO", version) + enc("REGISTER", "never-hello")), b"\x02", version)
        self.assertEqual(self.t.code("REGISTER", "never-hello"), 0)  # the REGISTERs after them were not run

    def test_publish_list_and_search_in_every_dialect(self):
        s, r = self.v2()
        with s:
            s.sendall(enc("REGISTER", "carl") + enc("CONNECT", TS, "carl", 35911) + enc("REGISTER", "dana") +
                      enc("CONNECT", "dana", 4001) +
                      enc("PUBLISH", TS, "carl", "/music/Tune_2.ogg", "live at home", 5, UPPER_ID) +
                      enc("PUBLISH", "carl", "/docs/tunebook.pdf", "chords", 0, "") +
                      enc("PUBLISH", "carl", "/docs/empty", "", "", "") +
                      enc("PUBLISH", "carl", "/big.iso", "disk", MAX_SIZE, OTHER_ID))
            self.assertEqual([r.byte() for _ in range(8)], [0] * 8)
        # A publication of the course protocol: size and id unknown.
        self.assertEqual(self.t.code("PUBLISH", "carl", "/old/tune.txt", "notes"), 0)

        tune = enc("/music/Tune_2.ogg", "live at home", 5, ID)  # the id in lowercase, as stored
        book = enc("/docs/tunebook.pdf", "chords", 0, "")
        empty = enc("/docs/empty", "", "", "")
        big = enc("/big.iso", "disk", MAX_SIZE, OTHER_ID)
        old = enc("/old/tune.txt", "notes", "", "")
        who = enc("carl", "127.0.0.1", 35911)
        s, r = self.v2()
        with s:
            s.sendall(enc("LIST_CONTENT", TS, "dana", "carl") + enc("SEARCH", "dana", "tune", 10) +
                      enc("LIST_CONTENT", "dana", "dana"))
            s.shutdown(1)
            self.assertEqual(read_all(s), b"\x00" + enc(5) + tune + book + empty + big + old +
                             b"\x00" + enc(3) + who + old + who + book + who + tune +
                             b"\x00" + enc(0))

        # The same publications from a canonical connection and a peerdex/1 session: today's bytes.
        canonical_list = b"\x00" + enc(5) + enc("/music/Tune_2.ogg", "/docs/tunebook.pdf", "/docs/empty", "/big.iso",
                                                "/old/tune.txt")
        canonical_hits = b"\x00" + enc(3) + who + enc("/old/tune.txt", "notes") + who + \
            enc("/docs/tunebook.pdf", "chords") + who + enc("/music/Tune_2.ogg", "live at home")
        self.assertEqual(self.t.op("LIST_CONTENT", "dana", "carl"), canonical_list)
        self.assertEqual(self.t.op("SEARCH", "dana", "tune", 10), canonical_hits)
        s, r = session(self.t, "peerdex/1")
        with s:
            s.sendall(enc("LIST_CONTENT", "dana", "carl") + enc("SEARCH", TS, "dana", "tune", 10))
            s.shutdown(1)
            self.assertEqual(read_all(s), canonical_list + canonical_hits)

    def test_an_already_published_path_keeps_its_size_and_id(self):
        s, r = self.v2()
        with s:
            s.sendall(enc("REGISTER", "erin") + enc("CONNECT", "erin", 4002) +
                      enc("PUBLISH", "erin", "/a", "first", 5, ID) + enc("PUBLISH", "erin", "/a", "second", 6, OTHER_ID) +
                      enc("PUBLISH", "erin", "/a", "third", "", "") + enc("LIST_CONTENT", "erin", "erin"))
            self.assertEqual([r.byte() for _ in range(5)], [0, 0, 0, 3, 3])
            self.assertEqual(r.list_reply(4), (0, [("/a", "first", "5", ID)]))
        self.assertEqual(self.t.code("PUBLISH", "erin", "/a", "canonical"), 3)

    def test_a_malformed_size_or_id_is_4_and_closes(self):
        self.t.user("fay", 4003)
        bad = [("-1", ""), ("+5", ""), ("05", ""), (" 5", ""), ("5x", ""), ("9223372036854775808", ""),
               ("12345678901234567890", ""), ("1" * 300, ""), ("", ID), ("5", ID[:-1]), ("5", ID + "0"),
               ("5", "sha1:" + ID[7:]), ("5", ID[:-1] + "g"), ("5", "\t")]
        for i, (size, id_) in enumerate(bad):
            s, r = self.v2()
            with s:
                s.sendall(enc("PUBLISH", "fay", "/bad%d" % i, "d", size, id_) + enc("REGISTER", "never-fay"))
                self.assertEqual(r.byte(), 4, (size, id_))
                self.assertRaises(EOFError, r.byte)
        # Nothing changed: no publication, and the request after the bad one was not run.
        self.assertEqual(self.t.op("LIST_CONTENT", "fay", "fay"), b"\x00" + enc(0))
        self.assertEqual(self.t.code("REGISTER", "never-fay"), 0)

    def test_peerdex1_publish_keeps_three_fields(self):
        self.t.user("gil", 4004)
        s, r = session(self.t, "peerdex/1")
        with s:
            s.sendall(enc("PUBLISH", "gil", "/one", "d") + enc("LIST_CONTENT", "gil", "gil"))
            self.assertEqual(r.byte(), 0)
            self.assertEqual(r.list_reply(1), (0, [("/one",)]))
            # The two fields of peerdex/2 are not PUBLISH's here: "5" is read as the next
            # operation, unknown, and the session is closed without a reply.
            s.sendall(enc("PUBLISH", "gil", "/two", "d", 5, ID))
            self.assertEqual(r.byte(), 0)
            self.assertRaises(EOFError, r.byte)
        s, r = self.v2()
        with s:
            s.sendall(enc("LIST_CONTENT", "gil", "gil"))
            self.assertEqual(r.list_reply(4), (0, [("/one", "d", "", ""), ("/two", "d", "", "")]))

    def test_each_answer_keeps_the_version_of_its_request(self):
        # Pipelined in one write: an answer given late (a store that waits) is still written in
        # the version in force when its request was read.
        self.t.user("hal", 4005)
        s, r = self.v2()
        with s:
            s.sendall(enc("PUBLISH", "hal", "/h", "d", 7, ID) + enc("LIST_CONTENT", "hal", "hal") +
                      enc("HELLO", "peerdex/1") + enc("LIST_CONTENT", "hal", "hal") + enc("HELLO", "peerdex/2") +
                      enc("LIST_CONTENT", "hal", "hal") + enc("PUBLISH", "hal", "/i", "e", "", ""))
            s.shutdown(1)
            v2_list = b"\x00" + enc(1) + enc("/h", "d", 7, ID)
            self.assertEqual(read_all(s), b"\x00" + v2_list + b"\x00" + enc("peerdex/1") + b"\x00" + enc(1, "/h") +
                             b"\x00" + enc("peerdex/2") + v2_list + b"\x00")

    def test_the_operation_log_is_unchanged(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "ops.log")
            with Logd("-o", log) as logd, Tracker("--log", "127.0.0.1:%d" % logd.port) as t:
                t.user("ida")
                s, r = session(t, "peerdex/2")
                with s:
                    s.sendall(enc("PUBLISH", TS, "ida", "/f", "d", 5, ID) + enc("PUBLISH", "ida", "/g", "", "", ""))
                    self.assertEqual((r.byte(), r.byte()), (0, 0))
                wait_for_log_lines(log, 4)
                self.assertEqual(t.stop(), 0)
                t.wait_for(r"4 delivered, 0 dropped", stream="stderr")
                with open(log) as f:
                    self.assertEqual(f.read().splitlines()[2:], ["ida PUBLISH /f " + TS, "ida PUBLISH /g"])
                self.assertEqual(logd.stop(), 0)


class ClientVersion(unittest.TestCase):
    """The client keeps peerdex/2 with a tracker that spoke it, through a restart."""

    def test_a_tracker_gone_as_the_session_opens_does_not_downgrade_the_client(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "a.txt"), "w") as f:
                f.write("alpha")
            t = Tracker("-q")
            port = t.port
            c = Client(port, cwd=d)
            try:
                self.assertEqual(c.run("REGISTER alice"), ["c> REGISTER OK"])  # a peerdex/2 session
                t.stop()
                # In the tracker's place for a moment: something that reads the HELLO and
                # closes, as a tracker going down just then does.
                gone = socket.create_server((HOST, port))

                def close_one():
                    conn, _ = gone.accept()
                    with conn:
                        conn.recv(100)

                th = threading.Thread(target=close_one)
                th.start()
                self.assertTrue(c.run("CONNECT alice")[0].startswith("c> CONNECT FAIL"))
                th.join()
                gone.close()
                t = Tracker("-q", "-p", str(port))
                self.assertEqual(c.run("REGISTER alice"), ["c> REGISTER OK"])
                self.assertEqual(c.run("CONNECT alice"), ["c> CONNECT OK"])
                self.assertEqual(c.run("PUBLISH a.txt first letter"), ["c> PUBLISH OK"])
                # Still peerdex/2: the PUBLISH carried the size and the content id.
                with t.connect() as s:
                    s.sendall(enc("HELLO", "peerdex/2", "LIST_CONTENT", "alice", "alice"))
                    r = Reader(s)
                    self.assertEqual((r.byte(), r.field()), (0, "peerdex/2"))
                    self.assertEqual((r.byte(), r.field()), (0, "1"))
                    path, _, size, ident = [r.field() for _ in range(4)]
                    self.assertEqual((path, size), (os.path.join(d, "a.txt"), "5"))
                    self.assertTrue(ident.startswith("sha256:"), ident)
            finally:
                c.__exit__(None, None, None)
                t.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
