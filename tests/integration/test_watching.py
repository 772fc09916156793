"""The daemons watched as operators watch them (peerdex-tracker(8), peerdex-logd(8),
peerdex-clock(8), METRICS): every /metrics accepted by Prometheus's own checker, a real
prometheus scraping the tracker every second and answering its query, and the status page
loaded by a real headless Chromium. The tools are Debian's prometheus and chromium; .ci/run
installs them, and a machine without them skips these tests and says so."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
import urllib.parse

from harness import HOST, TIMEOUT, Daemon, Logd, Tracker, free_port, scaled, wait_for_log_lines, wait_until
from test_http import HttpTracker, http_get, parse_page, samples

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def promtool_check(text):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=TIMEOUT)
    return r.returncode, r.stdout + r.stderr


@unittest.skipUnless(PROMTOOL, "promtool is not installed (Debian: prometheus)")
class PromtoolChecks(unittest.TestCase):
    def test_tracker_metrics(self):
        t = HttpTracker()
        try:
            for name in ("a", "b"):
                self.assertEqual(t.code("REGISTER", name), 0)
            status, _, body = t.get("/metrics")
            self.assertEqual(status, 200)
            self.assertIn("peerdex_tracker_request_duration_seconds_bucket", body)
            self.assertEqual(promtool_check(body), (0, ""))
        finally:
            t.stop()

    def test_log_server_metrics_count_what_it_stored(self):
        tmp = tempfile.mkdtemp(prefix="peerdex-watch-")
        try:
            log = os.path.join(tmp, "ops.log")
            with Logd("--rpcbind", "no", "-o", log, "--http", "%s:0" % HOST) as logd:
                http_port = int(logd.wait_for(r"http: serving on ", stream="stderr").rsplit(":", 1)[1])
                t = Tracker("-q", "--log", "%s:%d" % (HOST, logd.port))
                try:
                    for name in ("a", "b", "c"):
                        self.assertEqual(t.code("REGISTER", name), 0)
                    wait_for_log_lines(log, 3)
                    m = {}

                    def written():
                        m.update(samples(http_get(http_port, "/metrics")[2]))
                        return m["peerdex_logd_entries_written_total"] == 3

                    wait_until(written, what="3 entries written in the log server's metrics")
                    self.assertGreaterEqual(m["peerdex_logd_calls_total"], 1)
                    self.assertGreaterEqual(m["peerdex_logd_sync_duration_seconds_count"], 1)
                    self.assertEqual(m["peerdex_logd_connections_total"], 1)
                finally:
                    t.stop()
                body = http_get(http_port, "/metrics")[2]
                self.assertEqual(promtool_check(body), (0, ""))
                self.assertEqual(http_get(http_port, "/healthz")[0], 200)
        finally:
            shutil.rmtree(tmp)

    def test_clock_metrics(self):
        clock = Daemon([os.environ["PEERDEX_CLOCK"], "-p", "0"], r"listening on 127\.0\.0\.1:(\d+)",
                       ready_stream="stderr")
        try:
            port = int(clock.match.group(1))
            self.assertEqual(http_get(port, "/datetime")[0], 200)
            self.assertEqual(http_get(port, "/datetime?format=iso8601")[0], 200)
            self.assertEqual(http_get(port, "/nothing")[0], 404)
            body = http_get(port, "/metrics")[2]
            self.assertEqual(promtool_check(body), (0, ""))
            m = samples(body)
            self.assertEqual(m['peerdex_clock_timestamps_total{format="course"}'], 1)
            self.assertEqual(m['peerdex_clock_timestamps_total{format="iso8601"}'], 1)
            self.assertEqual(m['peerdex_clock_responses_total{code="404"}'], 1)
            self.assertEqual(m['peerdex_clock_responses_total{code="200"}'], 2)
        finally:
            clock.stop()


@unittest.skipUnless(PROMETHEUS, "prometheus is not installed (Debian: prometheus)")
class RealPrometheus(unittest.TestCase):
    def test_prometheus_scrapes_the_connected_user_count(self):
        tmp = tempfile.mkdtemp(prefix="peerdex-prometheus-")
        t = HttpTracker()
        prom = None
        try:
            config = os.path.join(tmp, "prometheus.yml")
            with open(config, "w") as f:
                f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        "scrape_configs:\n  - job_name: peerdex-tracker\n"
                        "    static_configs:\n      - targets: ['%s:%d']\n" % (HOST, t.http_port))
            port = free_port()
            prom = subprocess.Popen([PROMETHEUS, "--config.file", config, "--storage.tsdb.path", os.path.join(tmp, "data"),
                                     "--web.listen-address", "%s:%d" % (HOST, port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_until(lambda: prom.poll() is None and ready(port), timeout=scaled(60), what="prometheus ready")
            for name, p in (("alice", 4001), ("bob", 4002)):
                self.assertEqual(t.code("REGISTER", name), 0)
                self.assertEqual(t.code("CONNECT", name, p), 0)
            query = "/api/v1/query?query=" + urllib.parse.quote("peerdex_tracker_users_connected")
            seen = []

            def scraped():
                status, _, body = http_get(port, query)
                result = json.loads(body)["data"]["result"] if status == 200 else []
                seen[:] = [r["value"][1] for r in result]
                return seen == ["2"]

            wait_until(scraped, timeout=scaled(60), what="prometheus's answer 2 (last: %r)" % seen)
            up = json.loads(http_get(port, "/api/v1/query?query=up")[2])["data"]["result"]
            self.assertEqual([(r["metric"]["job"], r["value"][1]) for r in up], [("peerdex-tracker", "1")])
        finally:
            if prom:
                prom.send_signal(signal.SIGTERM)
                try:
                    prom.wait(scaled(30))
                except subprocess.TimeoutExpired:
                    prom.kill()
                    prom.wait()
            t.stop()
            shutil.rmtree(tmp)


def ready(port):
    try:
        return http_get(port, "/-/ready", timeout=scaled(2))[0] == 200
    except OSError:
        return False


@unittest.skipUnless(CHROMIUM, "chromium is not installed (Debian: chromium)")
class RealBrowser(unittest.TestCase):
    def chromium(self, url, *args):
        profile = tempfile.mkdtemp(prefix="peerdex-chromium-")
        try:
            r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--user-data-dir=" + profile] + list(args) + [url],
                               capture_output=True, text=True, timeout=scaled(120))
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            return r.stdout
        finally:
            shutil.rmtree(profile, True)

    def test_status_page_in_a_browser(self):
        t = HttpTracker()
        try:
            evil = "<script>alert(1)</script>"
            for name, port in ((evil, 4001), ("alice", 4002), ("bob", 4003)):
                self.assertEqual(t.code("REGISTER", name), 0)
                self.assertEqual(t.code("CONNECT", name, port), 0)
            self.assertEqual(t.code("PUBLISH", "alice", "/music/Song_2.ogg", "live at home"), 0)
            self.assertEqual(t.code("PUBLISH", "bob", "/docs/songbook.pdf", "chords"), 0)
            url = "http://%s:%d/?q=song" % (HOST, t.http_port)
            dom = self.chromium(url, "--dump-dom")
            page = parse_page(dom)
            # The browser ran no script of a user's making: the name is text in its cell.
            self.assertEqual(page.scripts, 0)
            self.assertIn([evil, "127.0.0.1", "4001"], page.tables["users"])
            counts = {row[0]: row[1] for row in page.tables["counts"]}
            self.assertEqual((counts["Users registered"], counts["Users connected"], counts["Publications"]),
                             ("3", "3", "2"))
            commands = [row[4] for row in page.tables["results"][1:]]
            self.assertEqual(commands, ["GET_FILE bob /docs/songbook.pdf songbook.pdf",
                                        "GET_FILE alice /music/Song_2.ogg Song_2.ogg"])
            shot = os.environ.get("PEERDEX_SCREENSHOT")  # docs/status-page.png is made this way
            if shot:
                self.chromium(url, "--screenshot=" + os.path.abspath(shot), "--window-size=1000,760",
                              "--hide-scrollbars")
                self.assertTrue(os.path.getsize(shot) > 0)
        finally:
            t.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
