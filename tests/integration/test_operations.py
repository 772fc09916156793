"""Every operation and every result code of peerdex-protocol(7), TRACKER REQUESTS over the wire, with and
without the timestamp, and the console lines of CONSOLE LINES."""

import socket
import unittest

from harness import TS, Tracker, enc, parse_list


class Operations(unittest.TestCase):
    def setUp(self):
        self.t = Tracker()

    def tearDown(self):
        self.assertEqual(self.t.stop(), 0)

    def each_ts(self):
        for ts in (True, False):
            with self.subTest(timestamp=ts):
                yield ts

    def test_register(self):
        for ts in self.each_ts():
            name = "reg%d" % ts
            self.assertEqual(self.t.op("REGISTER", name, ts=ts), b"\x00")
            self.assertEqual(self.t.op("REGISTER", name, ts=ts), b"\x01")
            self.assertEqual(self.t.op("REGISTER", "", ts=ts), b"\x02")

    def test_unregister(self):
        for ts in self.each_ts():
            name = "unr%d" % ts
            self.assertEqual(self.t.op("UNREGISTER", name, ts=ts), b"\x01")
            self.t.user(name)
            self.assertEqual(self.t.code("PUBLISH", name, "/f", ""), 0)
            self.assertEqual(self.t.op("UNREGISTER", name, ts=ts), b"\x00")
            self.assertEqual(self.t.op("UNREGISTER", name, ts=ts), b"\x01")
            self.assertEqual(self.t.op("UNREGISTER", "a b", ts=ts), b"\x02")
            # The user and its publications are gone.
            self.t.user("obs%d" % ts)
            self.assertEqual(self.t.op("LIST_CONTENT", "obs%d" % ts, name), b"\x03")

    def test_connect(self):
        for ts in self.each_ts():
            name = "con%d" % ts
            self.assertEqual(self.t.op("CONNECT", name, "5000", ts=ts), b"\x01")
            self.assertEqual(self.t.code("REGISTER", name), 0)
            self.assertEqual(self.t.op("CONNECT", name, "5000", ts=ts), b"\x00")
            self.assertEqual(self.t.op("CONNECT", name, "5001", ts=ts), b"\x02")
            self.assertEqual(self.t.op("CONNECT", name, "70000", ts=ts), b"\x03")

    def test_publish(self):
        for ts in self.each_ts():
            name = "pub%d" % ts
            self.assertEqual(self.t.op("PUBLISH", name, "/a", "d", ts=ts), b"\x01")
            self.assertEqual(self.t.code("REGISTER", name), 0)
            self.assertEqual(self.t.op("PUBLISH", name, "/a", "d", ts=ts), b"\x02")
            self.assertEqual(self.t.code("CONNECT", name, 4000), 0)
            self.assertEqual(self.t.op("PUBLISH", name, "/a", "a description with spaces", ts=ts), b"\x00")
            self.assertEqual(self.t.op("PUBLISH", name, "/a", "d", ts=ts), b"\x03")
            self.assertEqual(self.t.op("PUBLISH", name, "", "d", ts=ts), b"\x04")

    def test_delete(self):
        for ts in self.each_ts():
            name = "del%d" % ts
            self.assertEqual(self.t.op("DELETE", name, "/a", ts=ts), b"\x01")
            self.assertEqual(self.t.code("REGISTER", name), 0)
            self.assertEqual(self.t.op("DELETE", name, "/a", ts=ts), b"\x02")
            self.assertEqual(self.t.code("CONNECT", name, 4000), 0)
            self.assertEqual(self.t.op("DELETE", name, "/a", ts=ts), b"\x03")
            self.assertEqual(self.t.code("PUBLISH", name, "/a", ""), 0)
            self.assertEqual(self.t.op("DELETE", name, "/a", ts=ts), b"\x00")
            self.assertEqual(self.t.op("DELETE", name, "/a" * 200, ts=ts), b"\x04")

    def test_list_users(self):
        for ts in self.each_ts():
            name = "lu%d" % ts
            self.assertEqual(self.t.op("LIST_USERS", name, ts=ts), b"\x01")
            self.assertEqual(self.t.code("REGISTER", name), 0)
            self.assertEqual(self.t.op("LIST_USERS", name, ts=ts), b"\x02")
            self.assertEqual(self.t.code("CONNECT", name, 23456), 0)
            code, users = parse_list(self.t.op("LIST_USERS", name, ts=ts), 3)
            self.assertEqual(code, 0)
            self.assertIn((name, "127.0.0.1", "23456"), users)  # the requester is listed
            self.assertEqual(self.t.op("LIST_USERS", "", ts=ts), b"\x03")
        # Exactly the connected users, in order of connection.
        self.t.user("late", 999)
        self.assertEqual(self.t.code("REGISTER", "offline"), 0)
        code, users = parse_list(self.t.op("LIST_USERS", "late"), 3)
        self.assertEqual(users, [("lu1", "127.0.0.1", "23456"), ("lu0", "127.0.0.1", "23456"),
                                 ("late", "127.0.0.1", "999")])

    def test_list_content(self):
        for ts in self.each_ts():
            name = "lc%d" % ts
            self.assertEqual(self.t.op("LIST_CONTENT", name, name, ts=ts), b"\x01")
            self.assertEqual(self.t.code("REGISTER", name), 0)
            self.assertEqual(self.t.op("LIST_CONTENT", name, name, ts=ts), b"\x02")
            self.assertEqual(self.t.code("CONNECT", name, 4000), 0)
            self.assertEqual(self.t.op("LIST_CONTENT", name, "ghost", ts=ts), b"\x03")
            self.assertEqual(self.t.op("LIST_CONTENT", name, name, ts=ts), b"\x00" + enc(0))
            for p in ("/z", "/a", "/m"):
                self.assertEqual(self.t.code("PUBLISH", name, p, "desc"), 0)
            self.assertEqual(self.t.op("LIST_CONTENT", name, name, ts=ts), b"\x00" + enc(3, "/z", "/a", "/m"))
            self.assertEqual(self.t.op("LIST_CONTENT", name, "", ts=ts), b"\x04")
        # Publications survive DISCONNECT and are listed for a disconnected target.
        self.assertEqual(self.t.code("DISCONNECT", "lc0"), 0)
        self.assertEqual(self.t.op("LIST_CONTENT", "lc1", "lc0"), b"\x00" + enc(3, "/z", "/a", "/m"))

    def test_disconnect(self):
        for ts in self.each_ts():
            name = "dis%d" % ts
            self.assertEqual(self.t.op("DISCONNECT", name, ts=ts), b"\x01")
            self.assertEqual(self.t.code("REGISTER", name), 0)
            self.assertEqual(self.t.op("DISCONNECT", name, ts=ts), b"\x02")
            self.assertEqual(self.t.code("CONNECT", name, 4000), 0)
            self.assertEqual(self.t.op("DISCONNECT", name, ts=ts), b"\x00")
            self.assertEqual(self.t.op("DISCONNECT", name, ts=ts), b"\x02")
            self.assertEqual(self.t.op("DISCONNECT", "\x01", ts=ts), b"\x03")

    def test_get_user_info(self):
        for ts in self.each_ts():
            a, b = "gia%d" % ts, "gib%d" % ts
            self.assertEqual(self.t.op("GET_USER_INFO", a, b, ts=ts), b"\x01")
            self.assertEqual(self.t.code("REGISTER", a), 0)
            self.assertEqual(self.t.op("GET_USER_INFO", a, b, ts=ts), b"\x02")
            self.assertEqual(self.t.code("CONNECT", a, 4000), 0)
            self.assertEqual(self.t.op("GET_USER_INFO", a, b, ts=ts), b"\x03")
            self.assertEqual(self.t.code("REGISTER", b), 0)
            self.assertEqual(self.t.op("GET_USER_INFO", a, b, ts=ts), b"\x03")  # not connected
            self.assertEqual(self.t.code("CONNECT", b, 35911), 0)
            self.assertEqual(self.t.op("GET_USER_INFO", a, b, ts=ts), b"\x00" + enc("127.0.0.1", 35911))
            self.assertEqual(self.t.op("GET_USER_INFO", a, "", ts=ts), b"\x04")

    def test_console_lines(self):
        self.t.user("carol")
        self.assertEqual(self.t.code("LIST_USERS", "carol", ts=False), 0)
        self.t.wait_for(r"^s> OPERATION REGISTER FROM carol$")
        self.t.wait_for(r"^s> OPERATION CONNECT FROM carol$")
        self.t.wait_for(r"^s> OPERATION LIST_USERS FROM carol$")
        self.assertEqual(self.t.lines[0], "s> init server 127.0.0.1:%d" % self.t.port)


class AddressFamilies(unittest.TestCase):
    def test_dual_stack_default_records_each_peer_address(self):
        try:
            socket.create_server(("::1", 0), family=socket.AF_INET6).close()
        except OSError:
            self.skipTest("no IPv6 loopback on this host")
        with Tracker(listen=None) as t:  # the default: every address, both families
            # Each user registered from the address it connects from (--auth: its owner).
            self.assertEqual(t.code("REGISTER", "v4"), 0)
            self.assertEqual(t.raw(enc("REGISTER", TS, "v6"), host="::1"), b"\x00")
            self.assertEqual(t.raw(enc("CONNECT", "v4", 1111), host="127.0.0.1"), b"\x00")
            self.assertEqual(t.raw(enc("CONNECT", "v6", 2222), host="::1"), b"\x00")
            code, users = parse_list(t.raw(enc("LIST_USERS", "v4"), host="::1"), 3)
            # IPv4 through the dual-stack socket is shown as IPv4, not ::ffff:127.0.0.1.
            self.assertEqual(users, [("v4", "127.0.0.1", "1111"), ("v6", "::1", "2222")])
            self.assertEqual(t.stop(), 0)

    def test_ipv6_only_listen_address(self):
        try:
            socket.create_server(("::1", 0), family=socket.AF_INET6).close()
        except OSError:
            self.skipTest("no IPv6 loopback on this host")
        with Tracker(listen="::1") as t:
            self.assertEqual(t.lines[0], "s> init server ::1:%d" % t.port)
            self.assertEqual(t.raw(enc("REGISTER", "six"), host="::1"), b"\x00")
            self.assertEqual(t.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
