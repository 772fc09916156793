"""HELLO persistent sessions (peerdex-protocol(7), SESSIONS), concurrency and large list replies."""

import threading
import time
import unittest

from harness import TS, Reader, Tracker, enc, parse_list, read_all


class Hello(unittest.TestCase):
    def setUp(self):
        self.t = Tracker()

    def tearDown(self):
        self.assertEqual(self.t.stop(), 0)

    def test_pipelined_thousand_requests_in_one_write(self):
        s, r = self.t.hello()
        with s:
            batch = enc("REGISTER", TS, "pipe") + enc("CONNECT", "pipe", 4321)
            for i in range(998):
                batch += enc("PUBLISH", TS, "pipe", "/f%d" % i, "d") if i % 2 else enc("LIST_USERS", "pipe")
            s.sendall(batch)
            self.assertEqual(r.byte(), 0)
            self.assertEqual(r.byte(), 0)
            for i in range(998):
                if i % 2:
                    self.assertEqual(r.byte(), 0, "PUBLISH #%d" % i)
                else:
                    self.assertEqual(r.list_reply(3), (0, [("pipe", "127.0.0.1", "4321")]))
            # The session stays open for more.
            s.sendall(enc("LIST_CONTENT", "pipe", "pipe"))
            code, paths = r.list_reply(1)
            self.assertEqual(paths, [("/f%d" % i,) for i in range(1, 998, 2)])

    def test_every_kind_of_reply_in_one_pipeline_stays_in_order(self):
        # A list longer than one 64 KiB chunk between short answers, refusals, an endpoint,
        # then a malformed request: each reply whole and in request order, then the close.
        paths = ["/a/rather/long/path/to/make/the/list/big/%05d" % i for i in range(3000)]
        s, r = self.t.hello()
        with s:
            s.sendall(enc("REGISTER", "mix") + enc("CONNECT", "mix", 777) +
                      b"".join(enc("PUBLISH", "mix", p, "") for p in paths))
            self.assertEqual([r.byte() for _ in range(3002)], [0] * 3002)
            s.sendall(enc("REGISTER", "mix") + enc("LIST_CONTENT", "mix", "mix") + enc("GET_USER_INFO", "mix", "mix") +
                      enc("LIST_CONTENT", "mix", "ghost") + enc("LIST_USERS", "mix") + enc("DELETE", "mix", "/none") +
                      enc("LIST_CONTENT", "mix", "mix") + enc("CONNECT", "mix", "x") + enc("REGISTER", "never"))
            self.assertEqual(r.byte(), 1)
            self.assertEqual(r.list_reply(1), (0, [(p,) for p in paths]))
            self.assertEqual((r.byte(), r.field(), r.field()), (0, "127.0.0.1", "777"))
            self.assertEqual(r.byte(), 3)
            self.assertEqual(r.list_reply(3), (0, [("mix", "127.0.0.1", "777")]))
            self.assertEqual(r.byte(), 3)
            self.assertEqual(r.list_reply(1), (0, [(p,) for p in paths]))
            self.assertEqual(r.byte(), 3)  # CONNECT with a bad port: its generic error
            self.assertRaises(EOFError, r.byte)
        self.assertEqual(self.t.code("REGISTER", "never"), 0)

    def test_request_after_an_empty_list_is_answered(self):
        # An empty list ends without a byte after its head; a request that arrived while it
        # was ending must still be read. Many rounds: the arrival has to fall in that window.
        s, r = self.t.hello()
        with s:
            s.sendall(enc("REGISTER", "empty") + enc("CONNECT", "empty", 1))
            self.assertEqual((r.byte(), r.byte()), (0, 0))
            for i in range(300):
                s.sendall(enc("LIST_CONTENT", "empty", "empty"))
                self.assertEqual(r.list_reply(1), (0, []))
                s.sendall(enc("REGISTER", "after%d" % i))
                self.assertEqual(r.byte(), 0, "round %d" % i)

    def test_replies_come_in_order_across_segments(self):
        s, r = self.t.hello()
        with s:
            data = enc("REGISTER", "seg") + enc("REGISTER", "seg") + enc("UNREGISTER", "seg") + enc("UNREGISTER", "seg")
            for b in data:  # one byte per segment
                s.send(bytes([b]))
            self.assertEqual([r.byte() for _ in range(4)], [0, 1, 0, 1])

    def test_unknown_version_is_refused(self):
        reply = self.t.raw(enc("HELLO", "peerdex/3") + enc("REGISTER", "x"))
        self.assertEqual(reply, b"\x02")
        self.assertEqual(self.t.code("REGISTER", "x"), 0)  # the REGISTER after it was not run

    def test_canonical_connection_closes_after_one_reply(self):
        reply = self.t.raw(enc("REGISTER", "one") + enc("REGISTER", "two"))
        self.assertEqual(reply, b"\x00")
        self.assertEqual(self.t.code("REGISTER", "two"), 0)

    def test_malformed_request_in_session_gets_error_and_close(self):
        s, r = self.t.hello()
        with s:
            s.sendall(enc("REGISTER", "ok1") + enc("CONNECT", "ok1", "port") + enc("REGISTER", "never"))
            self.assertEqual(r.byte(), 0)
            self.assertEqual(r.byte(), 3)
            self.assertRaises(EOFError, r.byte)
        self.assertEqual(self.t.code("REGISTER", "never"), 0)

    def test_half_close_after_pipelined_requests_still_gets_every_reply(self):
        s, r = self.t.hello()
        with s:
            s.sendall(b"".join(enc("REGISTER", "hc%d" % i) for i in range(100)))
            s.shutdown(1)  # SHUT_WR
            self.assertEqual([r.byte() for _ in range(100)], [0] * 100)
            self.assertRaises(EOFError, r.byte)


class IdleTimeout(unittest.TestCase):
    def test_idle_session_is_closed_and_progress_resets_the_timer(self):
        with Tracker("--idle-timeout", "2") as t:
            s, r = t.hello()
            with s:
                # Activity every 0.4 s keeps the session for longer than the timeout
                # (the margin holds on a loaded machine).
                started = time.monotonic()
                for i in range(10):
                    s.sendall(enc("REGISTER", "idle%d" % i))
                    self.assertEqual(r.byte(), 0)
                    time.sleep(0.4)
                self.assertGreater(time.monotonic() - started, 4.0)
                # Then silence: the tracker closes it.
                self.assertRaises(EOFError, r.byte)
            self.assertEqual(t.stop(), 0)


class Concurrency(unittest.TestCase):
    def test_two_hundred_concurrent_full_sessions(self):
        with Tracker("-q") as t:
            errors = []
            barrier = threading.Barrier(200)

            def client(i):
                try:
                    name = "c%d" % i
                    barrier.wait()
                    steps = [
                        (("REGISTER", name), 0),
                        (("CONNECT", name, 10000 + i), 0),
                        (("PUBLISH", name, "/file%d" % i, "shared by %s" % name), 0),
                        (("DELETE", name, "/nothing"), 3),
                        (("PUBLISH", name, "/keep", ""), 0),
                    ]
                    for fields, want in steps:
                        got = t.code(*fields)
                        if got != want:
                            errors.append((fields, got))
                    code, users = parse_list(t.op("LIST_USERS", name), 3)
                    if code != 0 or (name, "127.0.0.1", str(10000 + i)) not in users:
                        errors.append(("LIST_USERS", code))
                    code, paths = parse_list(t.op("LIST_CONTENT", name, name), 1)
                    if paths != [("/file%d" % i,), ("/keep",)]:
                        errors.append(("LIST_CONTENT", paths))
                    for fields in (("DISCONNECT", name), ("UNREGISTER", name)):
                        if t.code(*fields) != 0:
                            errors.append(fields)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))

            threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            self.assertEqual(errors, [])
            t.user("after")
            code, users = parse_list(t.op("LIST_USERS", "after"), 3)
            self.assertEqual(users, [("after", "127.0.0.1", "4000")])
            self.assertEqual(t.stop(), 0)


class LargeLists(unittest.TestCase):
    USERS = 20000

    def test_large_list_is_streamed_consistently_to_a_slow_reader(self):
        with Tracker("-q") as t:
            s, r = t.hello()
            with s:
                batch = bytearray()
                for i in range(self.USERS):
                    batch += enc("REGISTER", "user%05d" % i) + enc("CONNECT", "user%05d" % i, 1 + i % 60000)
                s.sendall(batch)
                for i in range(2 * self.USERS):
                    self.assertEqual(r.byte(), 0)
                # Ask for the list twice but do not read yet: the tracker must stop
                # at its output cap instead of buffering both replies.
                s.sendall(enc("LIST_USERS", "user00000") * 2)
                time.sleep(0.3)
                # Meanwhile the registry changes a lot.
                churn = bytearray()
                for i in range(0, self.USERS, 2):
                    churn += enc("UNREGISTER", "user%05d" % i)
                with t.connect() as other:
                    other.sendall(enc("HELLO", "peerdex/1") + churn)
                    ro = Reader(other)
                    ro.byte(), ro.field()
                    self.assertEqual([ro.byte() for _ in range(self.USERS // 2)], [0] * (self.USERS // 2))
                # The first reply is the snapshot taken when it was asked for.
                full = [("user%05d" % i, "127.0.0.1", str(1 + i % 60000)) for i in range(self.USERS)]
                self.assertEqual(r.list_reply(3), (0, full))
                # The second was taken before or after the churn (depending on how much
                # the kernel buffered), never in the middle of it.
                code, users2 = r.list_reply(3)
                self.assertIn(users2, (full, full[1::2]))
            self.assertEqual(t.stop(), 0)

    def test_large_canonical_list(self):
        with Tracker("-q") as t:
            s, r = t.hello()
            with s:
                s.sendall(enc("REGISTER", "owner") + enc("CONNECT", "owner", 4000) +
                          b"".join(enc("PUBLISH", "owner", "/p/%06d" % i, "x" * 50) for i in range(30000)))
                for _ in range(30002):
                    self.assertEqual(r.byte(), 0)
            code, paths = parse_list(t.op("LIST_CONTENT", "owner", "owner"), 1)
            self.assertEqual(code, 0)
            self.assertEqual(paths, [("/p/%06d" % i,) for i in range(30000)])
            self.assertEqual(t.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
