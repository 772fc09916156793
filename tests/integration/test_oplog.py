"""The tracker forwards every operation to peerdex-logd (peerdex-protocol(7), OPERATION LOG): the right
fields, exactly once and in order across log server restarts, and never at the
expense of the tracker's own service."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import Logd, TS, Tracker, enc, free_port, scaled, wait_until


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()


class OplogTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-oplog-")
        self.log = os.path.join(self.dir, "ops.log")

    def tearDown(self):
        shutil.rmtree(self.dir)


class Fields(OplogTest):
    def test_every_operation_appears_with_its_fields(self):
        with Logd("-o", self.log) as logd, Tracker("--log", "127.0.0.1:%d" % logd.port) as t:
            t.wait_for(r"forwarding to 127\.0\.0\.1:%d as instance [0-9a-f]{16}" % logd.port, stream="stderr")
            t.code("REGISTER", "alice")
            t.code("REGISTER", "bob", ts=False)
            t.code("CONNECT", "alice", 4000)
            t.code("CONNECT", "bob", 4001)
            t.code("PUBLISH", "alice", "/home/alice/notes.txt", "my notes")
            t.code("LIST_USERS", "alice")
            t.code("LIST_CONTENT", "bob", "alice", ts=False)
            t.code("GET_USER_INFO", "bob", "alice")
            t.code("DELETE", "alice", "/home/alice/notes.txt")
            t.code("DISCONNECT", "alice")
            t.code("UNREGISTER", "alice")
            t.code("REGISTER", "bob")            # refused (in use): still an operation handled
            t.raw(enc("REGISTER", "bad name"))   # malformed: not an operation
            self.assertEqual(t.stop(), 0)        # flushes before exit
            t.wait_for(r"12 delivered, 0 dropped", stream="stderr")
            self.assertEqual(lines(self.log), [
                "alice REGISTER " + TS,
                "bob REGISTER",
                "alice CONNECT " + TS,
                "bob CONNECT " + TS,
                "alice PUBLISH /home/alice/notes.txt " + TS,
                "alice LIST_USERS " + TS,
                "bob LIST_CONTENT",
                "bob GET_USER_INFO " + TS,
                "alice DELETE /home/alice/notes.txt " + TS,
                "alice DISCONNECT " + TS,
                "alice UNREGISTER " + TS,
                "bob REGISTER " + TS,
            ])
            self.assertEqual(logd.stop(), 0)

    def test_an_idle_link_closed_by_the_log_server_is_no_outage(self):
        with Logd("-v", "-o", self.log, "--idle-timeout", "1") as logd, \
                Tracker("--log", "127.0.0.1:%d" % logd.port) as t:
            for i in range(3):
                t.code("REGISTER", "idle%d" % i)
                wait_until(lambda: len(lines(self.log)) == i + 1, what="entry %d" % i)
                # The log server closes the link after a second without calls.
                wait_until(lambda: sum("idle timeout" in e for e in logd.errors) > i, what="idle close %d" % i)
            t.code("REGISTER", "after")
            wait_until(lambda: len(lines(self.log)) == 4, what="the entry after the idle closes")
            self.assertEqual(t.stop(), 0)
            self.assertEqual([e for e in t.errors if "unavailable" in e or "reachable again" in e], [])

    def test_no_log_server_configured_logging_off(self):
        env = dict(os.environ)
        env.pop("LOG_RPC_IP", None)
        with Tracker(env=env) as t:
            t.wait_for(r"no log server configured .*logging off", stream="stderr")
            self.assertEqual(t.code("REGISTER", "x"), 0)
            self.assertEqual(t.stop(), 0)
            self.assertEqual(sum("oplog" in e for e in t.errors), 1)  # said once


class Availability(OplogTest):
    def test_log_server_down_tracker_unaffected_then_backlog_delivered_in_order(self):
        port = free_port()
        with Tracker("-q", "--log", "127.0.0.1:%d" % port) as t:
            s, r = t.hello()
            with s:
                s.sendall(b"".join(enc("REGISTER", "early%04d" % i) for i in range(2000)))
                self.assertEqual([r.byte() for _ in range(2000)], [0] * 2000)
                t.wait_for(r"unavailable .*retrying", stream="stderr")
                with Logd("-o", self.log, port=port) as logd:
                    t.wait_for(r"reachable again", stream="stderr", timeout=scaled(20))
                    s.sendall(b"".join(enc("REGISTER", "late%04d" % i) for i in range(100)))
                    self.assertEqual([r.byte() for _ in range(100)], [0] * 100)
                    want = ["early%04d REGISTER" % i for i in range(2000)] + ["late%04d REGISTER" % i for i in range(100)]
                    wait_until(lambda: len(lines(self.log)) >= 2100, what="the backlog")
                    self.assertEqual(lines(self.log), want)
                    self.assertEqual(sum("unavailable" in e for e in t.errors), 1, t.errors)  # said once
                    self.assertEqual(t.stop(), 0)
                    self.assertEqual(logd.stop(), 0)

    def test_killed_and_restarted_log_server_loses_and_doubles_nothing(self):
        logd = Logd("-o", self.log)
        port = logd.port
        n = 10000
        with Tracker("-q", "--log", "127.0.0.1:%d" % port) as t:
            s, r = t.hello()
            with s:
                for chunk in range(10):
                    s.sendall(b"".join(enc("REGISTER", "u%05d" % i) for i in range(chunk * 1000, chunk * 1000 + 1000)))
                    self.assertEqual([r.byte() for _ in range(1000)], [0] * 1000)
                    if chunk in (3, 6):
                        logd.stop(signal.SIGKILL)  # mid-stream, possibly mid-batch
                        logd = Logd("-o", self.log, port=port)
            wait_until(lambda: len(lines(self.log)) >= n, timeout=scaled(30), what="all entries")
            time.sleep(0.5)  # anything doubled would arrive now
            self.assertEqual(lines(self.log), ["u%05d REGISTER" % i for i in range(n)])
            self.assertEqual(t.stop(), 0)
        self.assertEqual(logd.stop(), 0)

    def test_queue_overflow_drops_the_oldest_and_counts_them(self):
        port = free_port()
        with Tracker("-q", "--log", "127.0.0.1:%d" % port, "--log-queue", "100") as t:
            s, r = t.hello()
            with s:
                s.sendall(b"".join(enc("REGISTER", "o%03d" % i) for i in range(500)))
                self.assertEqual([r.byte() for _ in range(500)], [0] * 500)
            t.send_signal(signal.SIGUSR1)
            t.wait_for(r"0 delivered, 400 dropped \(queue full\), 100 queued", stream="stderr")
            with Logd("-o", self.log, port=port) as logd:
                wait_until(lambda: len(lines(self.log)) >= 100, timeout=scaled(20), what="the newest 100")
                self.assertEqual(lines(self.log), ["o%03d REGISTER" % i for i in range(400, 500)])
                self.assertEqual(t.stop(), 0)
                t.wait_for(r"100 delivered, 400 dropped", stream="stderr")
                self.assertEqual(logd.stop(), 0)

    def test_sigterm_flushes_for_at_most_two_seconds(self):
        port = free_port()
        t = Tracker("-q", "--log", "127.0.0.1:%d" % port)
        self.assertEqual(t.code("REGISTER", "x"), 0)
        started = time.monotonic()
        self.assertEqual(t.stop(), 0)
        self.assertLess(time.monotonic() - started, scaled(5))
        t.wait_for(r"0 delivered, 0 dropped \(queue full\), 1 queued", stream="stderr")


class Rpcbind(OplogTest):
    """LOG_RPC_IP: the course's way, through rpcbind on the log server's host."""

    rpcbind = None

    @classmethod
    def setUpClass(cls):
        if subprocess.run(["rpcinfo", "-p", "127.0.0.1"], capture_output=True).returncode == 0:
            return  # one already runs
        exe = shutil.which("rpcbind") or "/usr/sbin/rpcbind"
        if not os.path.exists(exe):
            raise unittest.SkipTest("rpcbind is not installed")
        cls.rpcbind = subprocess.Popen([exe, "-f", "-w"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while subprocess.run(["rpcinfo", "-p", "127.0.0.1"], capture_output=True).returncode != 0:
            if cls.rpcbind.poll() is not None or time.monotonic() > deadline:
                err = cls.rpcbind.stderr.read() if cls.rpcbind.poll() is not None else b""
                cls.rpcbind.kill()
                raise unittest.SkipTest("rpcbind cannot start here: %r" % err)
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        if cls.rpcbind:
            cls.rpcbind.terminate()
            cls.rpcbind.wait()

    def test_log_rpc_ip_finds_the_log_server_through_rpcbind(self):
        with Logd("-o", self.log, "--rpcbind", "yes") as logd:
            logd.wait_for(r"registered with rpcbind", stream="stderr")
            info = subprocess.run(["rpcinfo", "-p", "127.0.0.1"], capture_output=True, text=True).stdout
            self.assertRegex(info, r"\b%d\s+1\s+tcp\s+%d\b" % (0x20504458, logd.port))
            env = dict(os.environ, LOG_RPC_IP="127.0.0.1")
            with Tracker(env=env) as t:
                t.wait_for(r"forwarding to 127\.0\.0\.1 \(rpcbind\)", stream="stderr")
                self.assertEqual(t.code("REGISTER", "carol"), 0)
                wait_until(lambda: lines(self.log) == ["carol REGISTER " + TS], what="the entry")
                # The log server moves to another port: found again through rpcbind.
                logd.stop()
                with Logd("-o", self.log, "--rpcbind", "yes") as moved:
                    self.assertEqual(t.code("UNREGISTER", "carol"), 0)
                    wait_until(lambda: len(lines(self.log)) == 2, timeout=scaled(20), what="the entry after the move")
                    self.assertEqual(lines(self.log)[1], "carol UNREGISTER " + TS)
                    self.assertEqual(t.stop(), 0)
                    self.assertEqual(moved.stop(), 0)
        info = subprocess.run(["rpcinfo", "-p", "127.0.0.1"], capture_output=True, text=True).stdout
        self.assertNotIn(str(0x20504458), info)  # unregistered at exit

    def test_rpcgen_client_stubs_through_rpcbind(self):
        with Logd("-o", self.log) as logd:
            logd.wait_for(r"registered with rpcbind", stream="stderr")
            send = [os.environ["PEERDEX_OPLOG_SEND"], "-H", "127.0.0.1"]
            self.assertEqual(subprocess.run(send + ["f00d", "1", "dave", "REGISTER", "", TS]).returncode, 0)
            self.assertEqual(subprocess.run(send + ["f00d", "1", "dave", "REGISTER", "", TS]).returncode, 0)
            self.assertEqual(lines(self.log), ["dave REGISTER " + TS])  # the retry was dropped
            self.assertEqual(logd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
