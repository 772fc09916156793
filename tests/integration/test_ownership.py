"""No one changes another user's state (peerdex-protocol(7), OWNERSHIP): --auth ip ties a
user to the address that registered it, --auth key to the key a peerdex client registered
it with; refusals get the operation's generic code and change nothing; the log server
takes calls only from the addresses --allow names."""

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import unittest

from harness import (CONFIG_HOME, Client, Logd, Reader, TS, TIMEOUT, Tracker, enc, parse_list, read_all,
                     scaled, wait_until)

OWNER, OTHER = "127.0.0.1", "127.0.0.2"


def connect_from(t, source):
    """A connection to the tracker whose source address is `source` (a loopback address)."""
    s = socket.socket()
    s.settimeout(TIMEOUT)
    s.bind((source, 0))
    s.connect((t.host, t.port))
    return s


def op_from(t, source, op, *fields):
    """One canonical operation from `source`; its whole reply."""
    with connect_from(t, source) as s:
        s.sendall(enc(op, TS, *fields))
        return read_all(s)


def code_from(t, source, op, *fields):
    return op_from(t, source, op, *fields)[0]


def hello_from(t, source):
    s = connect_from(t, source)
    s.sendall(enc("HELLO", "peerdex/1"))
    r = Reader(s)
    assert r.byte() == 0 and r.field() == "peerdex/1"
    return s, r


def session_codes(t, source, *requests):
    """Sends requests (tuples of fields) on one HELLO session from `source`; their codes."""
    s, r = hello_from(t, source)
    with s:
        s.sendall(b"".join(enc(*req) for req in requests))
        return [r.byte() for _ in requests]


def state(t, observer_source, observer):
    code, users = parse_list(op_from(t, observer_source, "LIST_USERS", observer), 3)
    assert code == 0, code
    contents = {}
    for name, _, _ in users:
        code, paths = parse_list(op_from(t, observer_source, "LIST_CONTENT", observer, name), 1)
        assert code == 0, code
        contents[name] = [p[0] for p in paths]
    return users, contents


def refusals(t):
    """The tracker's count of refused changes, from a fresh SIGUSR1 report."""
    return int(re.search(r"(\d+) changes refused", t.report("s> ownership:")).group(1))


class ByAddress(unittest.TestCase):
    def test_another_address_changes_nothing_and_reads_stay_open(self):
        with Tracker("--auth", "ip", "-v") as t:
            self.assertEqual(code_from(t, OWNER, "REGISTER", "alice"), 0)
            self.assertEqual(code_from(t, OWNER, "CONNECT", "alice", 4000), 0)
            self.assertEqual(code_from(t, OWNER, "PUBLISH", "alice", "/f", "a file"), 0)
            self.assertEqual(code_from(t, OTHER, "REGISTER", "bob"), 0)
            self.assertEqual(code_from(t, OTHER, "CONNECT", "bob", 5000), 0)
            before = state(t, OWNER, "alice")
            # Every change of alice from bob's address: the generic code of each operation.
            self.assertEqual(code_from(t, OTHER, "UNREGISTER", "alice"), 2)
            self.assertEqual(code_from(t, OTHER, "DISCONNECT", "alice"), 3)
            self.assertEqual(code_from(t, OTHER, "CONNECT", "alice", 6000), 3)
            self.assertEqual(code_from(t, OTHER, "PUBLISH", "alice", "/g", "planted"), 4)
            self.assertEqual(code_from(t, OTHER, "DELETE", "alice", "/f"), 4)
            # Nothing changed, seen from either address; reads work from both.
            self.assertEqual(state(t, OWNER, "alice"), before)
            self.assertEqual(state(t, OTHER, "bob"), before)
            self.assertEqual(before[0], [("alice", OWNER, "4000"), ("bob", OTHER, "5000")])
            self.assertEqual(before[1]["alice"], ["/f"])
            self.assertEqual(op_from(t, OTHER, "GET_USER_INFO", "bob", "alice"), b"\x00" + enc(OWNER, 4000))
            # Counted, and with -v who tried what on whom, from where.
            self.assertEqual(refusals(t), 5)
            for op in ("UNREGISTER", "DISCONNECT", "CONNECT", "PUBLISH", "DELETE"):
                t.wait_for(r"^s> %s of alice refused from 127\.0\.0\.2:\d+: the user belongs to another" % op,
                           stream="stderr")
            # The owner's own requests, as a course client sends them, all succeed.
            self.assertEqual(code_from(t, OWNER, "DELETE", "alice", "/f"), 0)
            self.assertEqual(code_from(t, OWNER, "DISCONNECT", "alice"), 0)
            self.assertEqual(code_from(t, OWNER, "CONNECT", "alice", 4001), 0)
            self.assertEqual(code_from(t, OWNER, "UNREGISTER", "alice"), 0)
            self.assertEqual(code_from(t, OTHER, "UNREGISTER", "bob"), 0)

    def test_none_is_the_course_behaviour(self):
        with Tracker("--auth", "none") as t:
            self.assertEqual(code_from(t, OWNER, "REGISTER", "alice"), 0)
            self.assertEqual(code_from(t, OTHER, "UNREGISTER", "alice"), 0)

    def test_ownership_survives_a_kill_and_restart(self):
        d = tempfile.mkdtemp(prefix="peerdex-own-")
        try:
            db = os.path.join(d, "tracker.db")
            key = "5" * 64
            with Tracker("--state", db) as t:  # the default mode, key
                self.assertEqual(code_from(t, OWNER, "REGISTER", "carol"), 0)  # a course client: its address
                self.assertEqual(session_codes(t, OWNER, ("OWN", "dave", key), ("REGISTER", "dave")), [0, 0])
                t.proc.kill()
                t.proc.wait()
            with Tracker("--state", db) as t:
                self.assertEqual(code_from(t, OTHER, "UNREGISTER", "carol"), 2)
                self.assertEqual(code_from(t, OWNER, "CONNECT", "dave", 1), 3)  # keyed: its address is not enough
                self.assertEqual(session_codes(t, OTHER, ("OWN", "dave", key), ("CONNECT", "dave", 7)), [0, 0])
                self.assertEqual(code_from(t, OWNER, "UNREGISTER", "carol"), 0)
                self.assertEqual(t.stop(), 0)
            # The state file holds the key's hash, never the key.
            with sqlite3.connect(db) as conn:
                (stored,) = conn.execute("SELECT key FROM users WHERE name = 'dave'").fetchone()
            self.assertEqual(len(stored), 32)
            for name in os.listdir(d):
                with open(os.path.join(d, name), "rb") as f:
                    self.assertNotIn(key.encode(), f.read(), name)
        finally:
            shutil.rmtree(d)


class ByKey(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-own-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_a_client_keeps_its_user_from_another_address(self):
        with open(os.path.join(self.dir, "f"), "wb") as f:
            f.write(b"x" * 10)
        with Tracker() as t, Client(t.port, cwd=self.dir) as alice:  # the default: --auth key
            for line in ["REGISTER alice", "CONNECT alice", "PUBLISH f a file"]:
                self.assertTrue(alice.run(line)[0].endswith("OK"), line)
            path = os.path.join(CONFIG_HOME, "peerdex", "keys", "127.0.0.1:%d" % t.port, "alice")
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            with open(path) as f:
                key = f.read().strip()
            self.assertRegex(key, r"^[0-9a-f]{64}$")
            # Without the key, or with a wrong one, nobody changes alice: not from another
            # address, not even from hers (a keyed user belongs to its key).
            self.assertEqual(code_from(t, OTHER, "DISCONNECT", "alice"), 3)
            self.assertEqual(code_from(t, OWNER, "DISCONNECT", "alice"), 3)
            self.assertEqual(session_codes(t, OTHER, ("OWN", "alice", "0" * 64), ("DISCONNECT", "alice")), [1, 3])
            self.assertEqual(session_codes(t, OTHER, ("OWN", "alice", ""), ("DISCONNECT", "alice")), [1, 3])
            # With it, from another address: alice's client has moved.
            self.assertEqual(session_codes(t, OTHER, ("OWN", "alice", key), ("DISCONNECT", "alice"),
                                           ("CONNECT", "alice", 7000)), [0, 0, 0])
            users, _ = state(t, OTHER, "alice")
            self.assertEqual(users, [("alice", OTHER, "7000")])
            # The client itself still acts for alice, and forgets the key with the user.
            self.assertEqual(alice.run("DISCONNECT alice"), ["c> DISCONNECT OK"])
            self.assertEqual(alice.run("UNREGISTER alice"), ["c> UNREGISTER OK"])
            self.assertFalse(os.path.exists(path))

    def test_the_client_explains_a_refusal(self):
        with Tracker() as t:
            self.assertEqual(session_codes(t, OWNER, ("OWN", "erin", "7" * 64), ("REGISTER", "erin")), [0, 0])
            # Another client, on this host but with its own configuration: no key for erin.
            env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.dir, "config"))
            with Client(t.port, env=env) as other:
                self.assertEqual(other.run("CONNECT erin"), ["c> CONNECT FAIL"])
                wait_until(lambda: any("OWNERSHIP" in e for e in other.errors), what="the explanation")
                self.assertTrue(any("another client" in e for e in other.errors), other.errors)
            self.assertEqual(refusals(t), 1)

    def test_a_session_tracker_that_knows_no_own_still_serves_the_client(self):
        # An older peerdex tracker: HELLO sessions, no OWN (it closes on an unknown
        # operation). The client goes on without OWN, on a new session.
        server = socket.create_server(("127.0.0.1", 0))
        seen = []

        def serve():
            for _ in range(3):
                conn, _ = server.accept()
                with conn:
                    r = Reader(conn)
                    if r.field() != "HELLO":
                        return
                    if r.field() != "peerdex/1":
                        conn.sendall(b"\x02")  # it speaks peerdex/1 only
                        continue
                    conn.sendall(b"\0" + enc("peerdex/1"))
                    op = r.field()
                    seen.append(op)
                    if op == "OWN":
                        continue  # closes: an operation it does not know
                    seen.append(r.field())
                    conn.sendall(b"\0")

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        with Client(server.getsockname()[1]) as c:
            self.assertEqual(c.run("REGISTER zoe"), ["c> REGISTER OK"])
        th.join(TIMEOUT)
        server.close()
        self.assertEqual(seen, ["OWN", "REGISTER", "zoe"])

    def test_own_outside_a_session_is_refused(self):
        with Tracker() as t:
            self.assertEqual(op_from(t, OWNER, "OWN", "x", "1" * 64), b"\x01")


class LogServerAllowList(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-allow-")
        self.log = os.path.join(self.dir, "ops.log")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def captured_call(self):
        """The bytes of one real OPLOG_ENTRY call, as peerdex-oplog-send sends it."""
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        send = subprocess.Popen([os.environ["PEERDEX_OPLOG_SEND"], "-H", "127.0.0.1", "-p", str(port), "abc", "1",
                                 "mallory", "REGISTER", "", TS], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn, _ = server.accept()
        conn.settimeout(TIMEOUT)
        data = conn.recv(65536)
        conn.close()
        server.close()
        send.kill()
        send.wait()
        return data

    def test_calls_from_elsewhere_are_closed_unread(self):
        call = self.captured_call()
        with Logd("-o", self.log, "--rpcbind", "no", "--allow", "127.0.0.1", "-v") as logd:
            with socket.socket() as s:
                s.settimeout(TIMEOUT)
                s.bind((OTHER, 0))
                s.connect(("127.0.0.1", logd.port))
                try:
                    s.sendall(call)
                except OSError:
                    pass
                try:
                    self.assertEqual(s.recv(100), b"")  # closed, no reply
                except ConnectionResetError:
                    pass
            logd.wait_for(r"closed a connection from 127\.0\.0\.2:\d+: not in --allow", stream="stderr")
            # The same call from an allowed address is written: it was the address that counted.
            with socket.socket() as s:
                s.settimeout(TIMEOUT)
                s.bind((OWNER, 0))
                s.connect(("127.0.0.1", logd.port))
                s.sendall(call)
                self.assertGreater(len(s.recv(100)), 0)
            def written():
                if not os.path.exists(self.log):
                    return 0
                with open(self.log) as f:
                    return f.read().count("mallory")

            wait_until(lambda: written() == 1, what="the allowed entry")
            logd.send_signal(signal.SIGUSR1)
            logd.wait_for(r"1 connections not allowed", stream="stderr")
            self.assertEqual(logd.stop(), 0)

    def test_listening_beyond_loopback_needs_an_allow_list(self):
        out = subprocess.run([os.environ["PEERDEX_LOGD"], "-l", "0.0.0.0", "-p", "0"], capture_output=True,
                             text=True, timeout=scaled(10))
        self.assertEqual(out.returncode, 2)
        self.assertIn("--allow", out.stderr)
        out = subprocess.run([os.environ["PEERDEX_LOGD"], "--allow", "10.0.0.0/33"], capture_output=True, text=True,
                             timeout=scaled(10))
        self.assertEqual(out.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
