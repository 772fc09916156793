"""peerdex-clock over raw sockets: every HTTP behaviour of peerdex-protocol(7), DATE-TIME SERVICE and of its
man page, and the limits that keep bad clients from holding it."""

import json
import os
import re
import socket
import time
import unittest

from harness import Daemon, read_all, scaled

TS = re.compile(r"^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d$")


class Clock(Daemon):
    def __init__(self, *args, env=None):
        super().__init__([os.environ["PEERDEX_CLOCK"], "-l", "127.0.0.1", "-p", "0"] + list(args),
                         r"listening on 127\.0\.0\.1:(\d+)", env=env, ready_stream="stderr")
        self.port = int(self.match.group(1))

    def raw(self, data, timeout=scaled(15)):
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            return read_all(s, timeout)


def request(path, method="GET", headers=""):
    return ("%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n" % (method, path, headers)).encode()


def split(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return status, headers, body


class ClockTest(unittest.TestCase):
    def setUp(self):
        self.c = Clock(env=dict(os.environ, TZ="UTC"))

    def tearDown(self):
        self.assertEqual(self.c.stop(), 0)

    def test_datetime_plain(self):
        status, headers, body = split(self.c.raw(request("/datetime")))
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")
        self.assertRegex(body.decode(), TS)  # no trailing newline
        self.assertEqual(headers["content-length"], "19")

    def test_iso8601_json_and_head(self):
        status, _, body = split(self.c.raw(request("/datetime?format=iso8601")))
        self.assertRegex(body.decode(), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
        status, headers, body = split(self.c.raw(request("/datetime", headers="Accept: application/json\r\n")))
        self.assertEqual(headers["content-type"], "application/json")
        self.assertRegex(json.loads(body)["datetime"], TS)
        status, headers, body = split(self.c.raw(request("/datetime", "HEAD")))
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(split(self.c.raw(request("/datetime?format=rfc9999")))[0], 400)

    def test_other_methods_paths_and_health(self):
        status, headers, _ = split(self.c.raw(request("/datetime", "POST", "Content-Length: 5\r\n") + b"hello"))
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")
        self.assertEqual(split(self.c.raw(request("/time")))[0], 404)
        self.assertEqual(split(self.c.raw(request("/healthz")))[2], b"ok\n")

    def test_pipelined_requests_on_one_connection(self):
        reqs = b"".join(("GET /datetime HTTP/1.1\r\nHost: t\r\n\r\n").encode() for _ in range(5))
        reqs += request("/healthz")
        resp = self.c.raw(reqs)
        self.assertEqual(resp.count(b"HTTP/1.1 200 OK"), 6)

    def test_ten_kilobyte_uri_and_garbage_get_a_clear_error(self):
        status, _, _ = split(self.c.raw(request("/" + "a" * 10000)))
        self.assertIn(status, (404, 414))
        resp = self.c.raw(b"\x00\x01garbage\r\n\r\n")
        self.assertTrue(resp == b"" or resp.startswith(b"HTTP/1.1 400"), resp[:40])
        self.assertEqual(split(self.c.raw(request("/datetime")))[0], 200)

    def test_request_that_never_ends_is_cut_off_and_others_are_served(self):
        with socket.create_connection(("127.0.0.1", self.c.port), timeout=scaled(30)) as slow:
            slow.sendall(b"GET /datetime HTTP/1.1\r\nHost: t\r\n")  # never finished
            self.assertEqual(split(self.c.raw(request("/datetime")))[0], 200)
            started = time.monotonic()
            self.assertEqual(read_all(slow, timeout=scaled(30)), b"")
            self.assertLess(time.monotonic() - started, scaled(25))

    def test_time_zone_comes_from_tz(self):
        tokyo = Clock(env=dict(os.environ, TZ="Asia/Tokyo"))
        try:
            utc_hour = int(split(self.c.raw(request("/datetime")))[2].decode()[11:13])
            tokyo_hour = int(split(tokyo.raw(request("/datetime")))[2].decode()[11:13])
            self.assertEqual(tokyo_hour, (utc_hour + 9) % 24)
        finally:
            self.assertEqual(tokyo.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
