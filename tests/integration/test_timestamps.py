"""Every tracker operation carries the clock's timestamp (peerdex-protocol(7), TRACKER REQUESTS and DATE-TIME SERVICE): from
peerdex-clock when it answers, from the client's own clock (one warning) when not."""

import datetime
import os
import re
import socket
import threading
import unittest
from zoneinfo import ZoneInfo

from harness import Client, Daemon, Tracker


class Clock(Daemon):
    def __init__(self, tz):
        super().__init__([os.environ["PEERDEX_CLOCK"], "-l", "127.0.0.1", "-p", "0"],
                         r"listening on 127\.0\.0\.1:(\d+)", env=dict(os.environ, TZ=tz), ready_stream="stderr")
        self.url = "http://127.0.0.1:%s/datetime" % self.match.group(1)


def received(tracker, op, user_count):
    """The timestamps the tracker printed (-v) for `op`, waiting for user_count of them."""
    pattern = r"s> %s from \S+ at (\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)$" % op
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=15)
    while True:
        found = [re.search(pattern, e).group(1) for e in list(tracker.errors) if re.search(pattern, e)]
        if len(found) >= user_count or datetime.datetime.now() > deadline:
            return found
        threading.Event().wait(0.05)


def close_to_now(ts, tz):
    got = datetime.datetime.strptime(ts, "%d/%m/%Y %H:%M:%S").replace(tzinfo=ZoneInfo(tz))
    return abs((datetime.datetime.now(ZoneInfo(tz)) - got).total_seconds()) < 30


class Timestamps(unittest.TestCase):
    def setUp(self):
        self.t = Tracker("-v")

    def tearDown(self):
        self.t.stop()

    def test_timestamps_come_from_the_clock_not_the_client(self):
        clock = Clock("Asia/Tokyo")
        try:
            env = dict(os.environ, TZ="America/New_York")  # the client's zone differs by 13-14 h
            with Client(self.t.port, "--clock", clock.url, env=env) as c:
                self.assertEqual(c.run("REGISTER kenji"), ["c> REGISTER OK"])
                self.assertEqual(c.run("CONNECT kenji"), ["c> CONNECT OK"])
                c.quit()
            for op in ("REGISTER", "CONNECT", "DISCONNECT"):
                ts = received(self.t, op, 1)
                self.assertEqual(len(ts), 1, op)
                self.assertTrue(close_to_now(ts[0], "Asia/Tokyo"), (op, ts))
                self.assertFalse(close_to_now(ts[0], "America/New_York"), (op, ts))
            self.assertEqual([e for e in c.errors if "clock" in e], [])
        finally:
            clock.stop()

    def test_clock_down_falls_back_to_the_local_clock_with_one_warning(self):
        with socket.socket() as s:  # a port where nothing listens
            s.bind(("127.0.0.1", 0))
            dead = "http://127.0.0.1:%d/datetime" % s.getsockname()[1]
        env = dict(os.environ, TZ="America/New_York")
        with Client(self.t.port, "--clock", dead, env=env) as c:
            for name in ("a1", "a2", "a3"):
                self.assertEqual(c.run("REGISTER " + name), ["c> REGISTER OK"])  # never fails for it
            c.quit()
        ts = received(self.t, "REGISTER", 3)
        self.assertEqual(len(ts), 3)
        self.assertTrue(all(close_to_now(x, "America/New_York") for x in ts), ts)
        warnings = [e for e in c.errors if "clock" in e]
        self.assertEqual(len(warnings), 1, c.errors)
        self.assertIn("using the local clock", warnings[0])

    def test_malformed_clock_answer_falls_back(self):
        srv = socket.create_server(("127.0.0.1", 0))

        def serve():
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")

        threading.Thread(target=serve, daemon=True).start()
        try:
            with Client(self.t.port, "--clock", "http://127.0.0.1:%d/datetime" % srv.getsockname()[1]) as c:
                self.assertEqual(c.run("REGISTER m1"), ["c> REGISTER OK"])
                c.quit()
            self.assertTrue(any("not DD/MM/YYYY" in e for e in c.errors), c.errors)
            self.assertEqual(len(received(self.t, "REGISTER", 1)), 1)
        finally:
            srv.close()

    def test_clock_local_stamps_from_this_machine_without_asking_a_service(self):
        env = dict(os.environ, TZ="Asia/Kolkata")  # half-hour offset: a zone no default gives
        with Client(self.t.port, "--clock", "local", env=env) as c:
            self.assertEqual(c.run("REGISTER l1"), ["c> REGISTER OK"])
            self.assertEqual(c.run("REGISTER l2"), ["c> REGISTER OK"])
            c.quit()
        ts = received(self.t, "REGISTER", 2)
        self.assertEqual(len(ts), 2)
        self.assertTrue(all(close_to_now(x, "Asia/Kolkata") for x in ts), ts)
        self.assertEqual([e for e in c.errors if "clock" in e], [])  # no service tried, none missed

    def test_clock_none_sends_no_timestamp(self):
        with Client(self.t.port, "--clock", "none") as c:
            self.assertEqual(c.run("REGISTER plain"), ["c> REGISTER OK"])
            c.quit()
        self.t.wait_for(r"^s> OPERATION REGISTER FROM plain$")
        self.assertEqual(received(self.t, "REGISTER", 0), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
