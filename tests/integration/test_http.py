"""The tracker's HTTP side (peerdex-tracker(8), HTTP and METRICS): /metrics counters that
move as requests dictate, /healthz, the status page (connected users a page at a time, a
search with the shell command of each hit, every value escaped), access rules and limits,
and nothing listening without --http. Runs against every store (tests/meson.build), so the
page's reads as the operator are checked where the store answers later too."""

import html.parser
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import HOST, TIMEOUT, Tracker, enc, fd_count, rss, scaled, wait_until


def http_get(port, path, headers=None, timeout=TIMEOUT):
    """(status, headers, body) of GET http://127.0.0.1:port/path."""
    req = urllib.request.Request("http://%s:%d%s" % (HOST, port, path), headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def samples(text):
    """Prometheus text as {'name{labels}': value}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


class HttpTracker(Tracker):
    def __init__(self, *args, **kw):
        super().__init__("-q", "--probe-interval", "0", "--http", "%s:0" % HOST, *args, **kw)
        line = self.wait_for(r"^s> http: listening on ")
        self.http_port = int(line.rsplit(":", 1)[1])

    def get(self, path, **kw):
        return http_get(self.http_port, path, **kw)

    def metrics(self):
        status, headers, body = self.get("/metrics")
        assert status == 200, (status, body)
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
        return samples(body)


class Cells(html.parser.HTMLParser):
    """The rows of the page's tables by table id, its script elements, its links."""

    def __init__(self):
        super().__init__()
        self.tables, self.scripts, self.links = {}, 0, []
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        elif tag == "table":
            self._table = self.tables.setdefault(a.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "a":
            self.links.append(a.get("href"))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def parse_page(body):
    p = Cells()
    p.feed(body)
    return p


class Http(unittest.TestCase):
    def setUp(self):
        self.t = HttpTracker()

    def tearDown(self):
        self.t.stop()

    def connected(self, name, port):
        self.assertEqual(self.t.code("REGISTER", name), 0)
        self.assertEqual(self.t.code("CONNECT", name, port), 0)

    def test_counters_move_as_the_requests_dictate(self):
        before = self.t.metrics()
        key = 'peerdex_tracker_requests_total{operation="REGISTER",code="%s"}'
        for name in ("a", "b", "c"):
            self.assertEqual(self.t.code("REGISTER", name), 0)
        self.assertEqual(self.t.code("REGISTER", "a"), 1)
        after = self.t.metrics()
        self.assertEqual(after[key % "0"] - before[key % "0"], 3)
        self.assertEqual(after.get(key % "1", 0) - before.get(key % "1", 0), 1)
        self.assertEqual(after["peerdex_tracker_users_registered"], 3)
        self.assertEqual(after["peerdex_tracker_users_connected"], 0)
        count = 'peerdex_tracker_request_duration_seconds_count{operation="REGISTER"}'
        self.assertEqual(after[count] - before[count], 4)
        inf = 'peerdex_tracker_request_duration_seconds_bucket{operation="REGISTER",le="+Inf"}'
        self.assertEqual(after[inf], after[count])
        self.assertEqual(after["peerdex_tracker_sessions_total"] - before["peerdex_tracker_sessions_total"], 4)
        self.assertGreater(after["peerdex_tracker_received_bytes_total"], before["peerdex_tracker_received_bytes_total"])
        self.assertEqual(after["peerdex_tracker_sent_bytes_total"] - before["peerdex_tracker_sent_bytes_total"], 4)
        self.connected("d", 4001)
        self.assertEqual(self.t.code("PUBLISH", "d", "/x/song.ogg", "s"), 0)
        s, r = self.t.hello()
        with s:
            s.sendall(enc("SEARCH", "d", "song", "10"))
            self.assertEqual(r.list_reply(5), (0, [("d", "127.0.0.1", "4001", "/x/song.ogg", "s")]))
        m = self.t.metrics()
        self.assertEqual((m["peerdex_tracker_users_connected"], m["peerdex_tracker_publications"]), (1, 1))
        self.assertEqual(m['peerdex_tracker_requests_total{operation="SEARCH",code="0"}'], 1)
        self.assertEqual(m["peerdex_tracker_searches_total"], 1)
        self.assertEqual(m["peerdex_tracker_search_hits_total"], 1)
        self.assertGreater(m["peerdex_tracker_loop_busy_seconds_count"], 0)
        # The durable and the shared store time their commits; the memory stores have none.
        commits = m.get("peerdex_tracker_store_commit_duration_seconds_count")
        if os.environ.get("PEERDEX_TEST_STORE") in ("sqlite", "redis"):
            self.assertGreater(commits, 0)
        else:
            self.assertIsNone(commits)

    def test_healthz_other_paths_and_methods(self):
        self.assertEqual(self.t.get("/healthz")[::2], (200, "ok\n"))
        self.assertEqual(self.t.get("/nothing")[0], 404)
        with socket.create_connection((HOST, self.t.http_port), timeout=TIMEOUT) as s:
            s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 405"))

    def test_status_page_counts_users_and_an_escaped_name(self):
        evil = "<script>alert(1)</script>"
        self.connected(evil, 4001)
        self.connected("alice", 4002)
        self.assertEqual(self.t.code("REGISTER", "bob"), 0)
        status, headers, body = self.t.get("/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        page = parse_page(body)
        self.assertEqual(page.scripts, 0)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", body)
        counts = {row[0]: row[1] for row in page.tables["counts"]}
        self.assertEqual((counts["Users registered"], counts["Users connected"]), ("3", "2"))
        self.assertEqual(page.tables["users"][1:], [[evil, "127.0.0.1", "4001"], ["alice", "127.0.0.1", "4002"]])

    def test_search_shows_the_shell_command_of_each_hit(self):
        self.connected("alice", 4002)
        self.assertEqual(self.t.code("PUBLISH", "alice", "/music/Song_2.ogg", "live & <loud>"), 0)
        self.assertEqual(self.t.code("PUBLISH", "alice", "/docs/other.txt", "no"), 0)
        self.connected("gone", 4003)
        self.assertEqual(self.t.code("PUBLISH", "gone", "/song.txt", ""), 0)
        self.assertEqual(self.t.code("DISCONNECT", "gone"), 0)  # a disconnected user's files are not found
        status, _, body = self.t.get("/?q=" + urllib.parse.quote("song -other"))
        self.assertEqual(status, 200)
        page = parse_page(body)
        self.assertEqual(page.tables["results"][1:],
                         [["alice", "/music/Song_2.ogg", "live & <loud>", "", "GET_FILE alice /music/Song_2.ogg Song_2.ogg"]])
        self.assertIn('value="song -other"', body)
        # A query out of SEARCH's rules is said so, not sent.
        status, _, body = self.t.get("/?q=" + urllib.parse.quote(" ".join("t%d" % i for i in range(17))))
        self.assertEqual(status, 200)
        self.assertIn('id="search-error"', body)
        self.assertIn("more than 16 terms", body)

    def test_connected_users_come_a_page_at_a_time(self):
        s, r = self.t.hello()
        with s:
            names = ["u%03d" % i for i in range(150)]
            s.sendall(b"".join(enc("REGISTER", n) + enc("CONNECT", n, 5000 + i) for i, n in enumerate(names)))
            self.assertEqual([r.byte() for _ in range(300)], [0] * 300)
        first = parse_page(self.t.get("/")[2])
        self.assertEqual([row[0] for row in first.tables["users"][1:]], names[:100])
        self.assertIn("/?from=100", first.links)
        second = parse_page(self.t.get("/?from=100")[2])
        self.assertEqual([row[0] for row in second.tables["users"][1:]], names[100:])
        self.assertIn("/?from=0", second.links)
        self.assertNotIn("/?from=200", second.links)
        self.assertNotIn("users", parse_page(self.t.get("/?from=999")[2]).tables)


    def test_a_page_far_down_a_long_list(self):
        # Past the entries one loop turn passes over (kPullEntries, 4096): the skip goes on
        # over later turns, and the page is still exactly the users asked for.
        n = 5000
        s, r = self.t.hello()
        with s:
            s.sendall(b"".join(enc("REGISTER", "v%04d" % i) + enc("CONNECT", "v%04d" % i, 1000 + i) for i in range(n)))
            self.assertEqual([r.byte() for _ in range(2 * n)], [0] * (2 * n))
        page = parse_page(self.t.get("/?from=4500")[2])
        self.assertEqual([row[0] for row in page.tables["users"][1:]], ["v%04d" % i for i in range(4500, 4600)])
        self.assertIn("/?from=4600", page.links)


class Access(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="peerdex-http-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def token_file(self, token, mode=0o600):
        path = os.path.join(self.tmp, "token-%d-%d-%o" % (len(os.listdir(self.tmp)), len(token), mode))
        with open(path, "w") as f:
            f.write(token + "\n")
        os.chmod(path, mode)
        return path

    def test_bearer_token_guards_metrics_only(self):
        token = "s3cret-token-0123456789"
        t = HttpTracker("--http-token-file", self.token_file(token))
        try:
            status, headers, _ = t.get("/metrics")
            self.assertEqual(status, 401)
            self.assertIn("Bearer", headers["WWW-Authenticate"])
            self.assertEqual(t.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"})[0], 401)
            self.assertEqual(t.get("/metrics", headers={"Authorization": "Bearer " + token})[0], 200)
            self.assertEqual(t.get("/healthz")[0], 200)
        finally:
            t.stop()

    def test_bad_options_are_refused_with_a_reason(self):
        import subprocess
        tracker = os.environ["PEERDEX_TRACKER"]
        cases = [
            (["--http", "99999"], "--http: '99999' is not [ADDR:]PORT"),
            (["--http", "localhost:80"], "not a numeric IPv4 or IPv6 address"),
            (["--http-allow", "10.0.0.0/8"], "need --http"),
            (["--http", "0", "--http-allow", "10.0.0.0/33"], "--http-allow: '10.0.0.0/33'"),
                    ]
        for token, mode, message in [("x" * 20, 0o644, "chmod 600"), ("short", 0o600, "16 to 256 characters"),
                                     ("y" * 257, 0o600, "16 to 256 characters"),
                                     ("z" * 300, 0o600, "16 to 256 characters"),
                                     ("nul-inside-the\0token", 0o600, "must be printable")]:
            cases.append((["--http", "0", "--http-token-file", self.token_file(token, mode)], message))
        for args, message in cases:
            r = subprocess.run([tracker, "-p", "0"] + args, capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(message, r.stderr, args)


def listening_sockets(pid):
    """The TCP sockets process `pid` listens on (state 0A in /proc/net/tcp{,6})."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    found += 1
    return found


class Bounds(unittest.TestCase):
    def test_without_http_nothing_else_listens(self):
        t = Tracker("-q", "--probe-interval", "0")
        try:
            self.assertEqual(listening_sockets(t.proc.pid), 1)
        finally:
            t.stop()
        t = HttpTracker()
        try:
            self.assertEqual(listening_sockets(t.proc.pid), 2)
        finally:
            t.stop()

    def test_idle_slow_and_garbage_http_clients_leave_the_tracker_serving(self):
        t = HttpTracker()
        try:
            self.assertEqual(t.code("REGISTER", "before"), 0)
            fds, mem = fd_count(t.proc.pid), rss(t.proc.pid)
            held = []
            try:
                # A thousand connections that never send a byte, garbage, and a request
                # whose reader never reads.
                for _ in range(1000):
                    try:
                        held.append(socket.create_connection((HOST, t.http_port), timeout=TIMEOUT))
                    except OSError:
                        break  # the backlog is full: refused, as it should be
                for s in held[:20]:
                    s.sendall(os.urandom(2048) + b"\r\n\r\n")
                slow = socket.create_connection((HOST, t.http_port), timeout=TIMEOUT)
                slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
                held.append(slow)
                # The protocol side answers throughout, and holds at most the HTTP side's caps.
                for i in range(50):
                    self.assertEqual(t.code("REGISTER", "during%d" % i), 0)
                self.assertLessEqual(fd_count(t.proc.pid), fds + 64 + 4)
                self.assertLess(rss(t.proc.pid) - mem, 16 << 20)
            finally:
                for s in held:
                    s.close()
            # Once they are gone the HTTP side serves again.
            def healthy():
                try:  # refused or reset while the tracker still closes the flood's connections
                    return http_get(t.http_port, "/healthz", timeout=scaled(5))[0] == 200
                except OSError:
                    return False

            wait_until(healthy, timeout=scaled(30), what="/healthz after the flood")
            self.assertEqual(t.code("REGISTER", "after"), 0)
        finally:
            t.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
