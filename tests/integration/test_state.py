"""The tracker's durable state, --state FILE (peerdex-protocol(7), TRACKER STATE): what was
acknowledged survives SIGTERM, kill -9 and a full disk; files that are not ours are refused
and left as they were."""

import os
import random
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import unittest

from harness import HOST, TIMEOUT, Tracker, enc, hold_fsync_env, parse_list, read_all, scaled, wait_until

TRACKER = os.environ["PEERDEX_TRACKER"]


def sha(path):
    with open(path, "rb") as f:
        return f.read()


class Model:
    """What one user is, as its acknowledged replies say."""

    def __init__(self):
        self.registered = False
        self.port = None  # connected on this port
        self.paths = []

    def copy(self):
        m = Model()
        m.registered, m.port, m.paths = self.registered, self.port, list(self.paths)
        return m

    def apply(self, op, args):
        """The change a successful `op` makes (its code 0)."""
        if op == "REGISTER":
            self.registered = True
        elif op == "UNREGISTER":
            self.registered, self.port, self.paths = False, None, []
        elif op == "CONNECT":
            self.port = int(args[0])
        elif op == "DISCONNECT":
            self.port = None
        elif op == "PUBLISH":
            self.paths.append(args[0])
        elif op == "DELETE":
            self.paths.remove(args[0])

    def key(self):
        return (self.registered, self.port, tuple(self.paths))


def read_back(t, names):
    """The state of every name in `names`, read through one HELLO session of a watcher."""
    s, r = t.hello()
    with s:
        s.sendall(enc("REGISTER", "watcher") + enc("CONNECT", "watcher", 1) + enc("LIST_USERS", "watcher"))
        r.byte(), r.byte()
        code, users = r.list_reply(3)
        assert code == 0, code
        ports = {u: int(p) for u, _, p in users}
        s.sendall(b"".join(enc("LIST_CONTENT", "watcher", n) for n in names) + enc("UNREGISTER", "watcher"))
        state = {}
        for n in names:
            code, paths = r.list_reply(1)
            m = Model()
            if code == 0:
                m.registered, m.port, m.paths = True, ports.get(n), [p for (p,) in paths]
            else:
                assert code == 3, (n, code)  # not registered
            state[n] = m.key()
        assert r.byte() == 0
    return state


class StateTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-state-test-")
        self.db = os.path.join(self.dir, "tracker.db")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def tracker(self, *args, db=None):
        return Tracker("-q", "--state", db or self.db, *args)


class Restarts(StateTest):
    def test_everything_survives_a_restart_and_the_file_is_readable(self):
        with self.tracker() as t:
            t.user("alice", 1111)
            t.user("bob", 2222)
            self.assertEqual(t.code("REGISTER", "carol"), 0)
            for p in ("/one", "/two", "/three"):
                self.assertEqual(t.code("PUBLISH", "alice", p, "about " + p), 0)
            self.assertEqual(t.code("DELETE", "alice", "/two"), 0)
            self.assertEqual(t.code("PUBLISH", "bob", "/b", ""), 0)
            self.assertEqual(t.code("DISCONNECT", "bob"), 0)
            before = t.state("alice")
            # An operator reads the live database as the man page says.
            rows = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True).execute(
                "SELECT name, port FROM users WHERE connected IS NOT NULL ORDER BY connected").fetchall()
            self.assertEqual(rows, [("alice", 1111)])
            self.assertEqual(t.stop(), 0)
        with self.tracker() as t:
            self.assertEqual(t.state("alice"), before)
            self.assertEqual(t.code("REGISTER", "carol"), 1)  # still registered
            code, paths = parse_list(t.op("LIST_CONTENT", "alice", "bob"), 1)
            self.assertEqual(paths, [("/b",)])
            self.assertEqual(t.op("GET_USER_INFO", "alice", "bob"), b"\x03")  # offline, kept
            self.assertEqual(t.stop(), 0)

    def test_sizes_and_content_ids_survive_a_restart(self):
        id_ = "sha256:" + "ab" * 32
        with self.tracker() as t:
            t.user("alice", 1111)
            s = t.connect()
            with s:
                s.sendall(enc("HELLO", "peerdex/2") + enc("PUBLISH", "alice", "/v2", "d", 5, "sha256:" + "AB" * 32) +
                          enc("PUBLISH", "alice", "/none", "", "", ""))
                s.shutdown(1)
                self.assertEqual(read_all(s), b"\x00" + enc("peerdex/2") + b"\x00\x00")
            rows = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True).execute(
                "SELECT path, size, content_id FROM publications ORDER BY seq").fetchall()
            self.assertEqual(rows, [("/v2", 5, id_), ("/none", None, None)])
            self.assertEqual(t.stop(), 0)
        with self.tracker() as t:
            s = t.connect()
            with s:
                s.sendall(enc("HELLO", "peerdex/2") + enc("LIST_CONTENT", "alice", "alice"))
                s.shutdown(1)
                self.assertEqual(read_all(s), b"\x00" + enc("peerdex/2") + b"\x00" + enc(2, "/v2", "d", 5, id_) +
                                 enc("/none", "", "", ""))
            self.assertEqual(t.op("LIST_CONTENT", "alice", "alice"), b"\x00" + enc(2, "/v2", "/none"))
            self.assertEqual(t.stop(), 0)

    def test_sigterm_with_a_batch_pending_loses_nothing_acknowledged(self):
        t = self.tracker()
        s, r = t.hello()
        n = 5000
        s.sendall(b"".join(enc("REGISTER", "p%05d" % i) for i in range(n)))
        acked = 0
        while acked < 100:
            self.assertEqual(r.byte(), 0)
            acked += 1
        t.proc.send_signal(signal.SIGTERM)
        try:
            while True:
                self.assertEqual(r.byte(), 0)
                acked += 1
        except (EOFError, ConnectionError):
            pass
        s.close()
        self.assertEqual(t.proc.wait(TIMEOUT), 0)
        t.stop()
        with self.tracker() as t2:
            s, r = t2.hello()
            with s:
                s.sendall(b"".join(enc("REGISTER", "p%05d" % i) for i in range(acked)))
                codes = [r.byte() for _ in range(acked)]
            self.assertEqual(codes, [1] * acked, "an acknowledged REGISTER was lost")
            self.assertEqual(t2.stop(), 0)


class SlowDisk(StateTest):
    """With --sync full a reply waits for the flush of the write-ahead log that holds its
    change, and so does every reply computed after that change; the flush is held here
    (tests/integration/hold_fsync.c) as a slow disk would hold it."""

    def held_tracker(self, *args):
        gate = os.path.join(self.dir, "hold")
        env = hold_fsync_env(gate)
        return Tracker("-q", "--state", self.db, *args, env=env), gate

    def test_no_reply_leaves_before_its_change_is_flushed(self):
        t, gate = self.held_tracker()
        with t:
            self.assertEqual(t.code("REGISTER", "alice"), 0)
            open(gate, "w").close()
            writer, wr = t.hello()
            writer.sendall(enc("REGISTER", "bob"))
            wait_until(lambda: os.path.exists(gate + ".held"), what="the flush of bob's REGISTER to begin")
            # A second session asks after the change: its refusal depends on it too.
            reader, rr = t.hello()
            reader.sendall(enc("REGISTER", "bob"))
            ready, _, _ = select.select([writer, reader], [], [], scaled(0.5))
            self.assertEqual(ready, [], "a reply left while its change was not yet on the disk")
            os.unlink(gate)
            self.assertEqual(wr.byte(), 0)
            self.assertEqual(rr.byte(), 1)
            writer.close()
            reader.close()
            self.assertEqual(t.stop(), 0)

    def test_sync_normal_does_not_wait_for_a_flush(self):
        t, gate = self.held_tracker("--sync", "normal")
        with t:
            open(gate, "w").close()
            self.assertEqual(t.code("REGISTER", "alice"), 0)
            self.assertFalse(os.path.exists(gate + ".held"))
            os.unlink(gate)
            self.assertEqual(t.stop(), 0)


class Files(StateTest):
    def refused(self, path, reason):
        before = sha(path)
        p = subprocess.run([TRACKER, "-p", "0", "-l", HOST, "--state", path], capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn(path, p.stderr)
        self.assertRegex(p.stderr, reason)
        self.assertNotIn("init server", p.stdout)
        self.assertEqual(sha(path), before, "the file was changed")

    def test_foreign_newer_and_corrupt_files_are_refused_untouched(self):
        text = os.path.join(self.dir, "notes.txt")
        with open(text, "w") as f:
            f.write("my shopping list, not a database\n" * 100)
        self.refused(text, "not an SQLite database")

        other = os.path.join(self.dir, "other.db")
        db = sqlite3.connect(other)
        db.execute("CREATE TABLE t(x)")
        db.commit()
        db.close()
        self.refused(other, "not a peerdex state database")

        with self.tracker() as t:  # a real one, then marked as a later schema
            t.user("x")
            self.assertEqual(t.stop(), 0)
        db = sqlite3.connect(self.db)
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA user_version=4")
        db.close()
        self.refused(self.db, "schema version 4 is newer")

        db = sqlite3.connect(self.db)
        db.execute("PRAGMA user_version=2")
        db.execute("INSERT INTO users(name, ip, port, connected) VALUES('bad', 'not an address', 1, 99)")
        db.commit()
        db.close()
        self.refused(self.db, "unreadable address")

        garbled = os.path.join(self.dir, "garbled.db")
        with self.tracker(db=garbled) as t:
            for i in range(300):
                self.assertEqual(t.code("REGISTER", "g%03d" % i), 0)
            self.assertEqual(t.stop(), 0)
        with open(garbled, "r+b") as f:  # the table's pages, past the header page
            f.seek(4096 + 100)
            f.write(os.urandom(4096 * 2))
        self.refused(garbled, "malformed|corrupt|not a database")

    def test_a_version_1_file_is_migrated_with_owners(self):
        # Schema version 1 (before owners): users and publications, as that tracker wrote them.
        db = sqlite3.connect(self.db)
        db.executescript(
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, ip TEXT, port INTEGER, connected INTEGER)"
            " WITHOUT ROWID;"
            "CREATE TABLE publications (seq INTEGER PRIMARY KEY, user TEXT NOT NULL, path TEXT NOT NULL,"
            " description TEXT NOT NULL, UNIQUE (user, path));"
            "INSERT INTO users VALUES('on', '127.0.0.1', 4000, 1), ('off', NULL, NULL, NULL);"
            "INSERT INTO publications(user, path, description) VALUES('on', '/a', 'kept');"
            "PRAGMA application_id=1346656305; PRAGMA user_version=1;")
        db.close()
        with self.tracker("--auth", "ip") as t:
            self.assertEqual(t.state("on"), ([("on", "127.0.0.1", "4000")], {"on": [("/a",)]}))
            # A connected user belongs to the address it is connected from; the other to nobody.
            with socket.socket() as other:
                other.settimeout(TIMEOUT)
                other.bind(("127.0.0.2", 0))
                other.connect((t.host, t.port))
                other.sendall(enc("UNREGISTER", "on"))
                self.assertEqual(read_all(other), b"\x02")
            self.assertEqual(t.code("DISCONNECT", "on"), 0)
            self.assertEqual(t.stop(), 0)
        db = sqlite3.connect(self.db)
        # Each step in turn: 2 the owners, 3 sizes and content ids (unknown for what was there).
        self.assertEqual(db.execute("PRAGMA user_version").fetchone(), (3,))
        self.assertEqual(sorted(db.execute("SELECT name, owner, key FROM users")),
                         [("off", None, None), ("on", "127.0.0.1", None)])
        self.assertEqual(db.execute("SELECT path, size, content_id FROM publications").fetchall(),
                         [("/a", None, None)])
        db.close()

    def test_a_directory_and_an_unwritable_place(self):
        p = subprocess.run([TRACKER, "-p", "0", "--state", self.dir], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a regular file", p.stderr)
        p = subprocess.run([TRACKER, "-p", "0", "--state", os.path.join(self.dir, "no", "such", "dir.db")],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 1)
        self.assertIn("dir.db", p.stderr)

    def test_usage_errors(self):
        for args, what in ((["--state", self.db, "--store", "memory"], "give one"),
                           (["--sync", "sometimes"], "neither full nor normal"),
                           (["--store", "postgres"], "unknown store")):
            p = subprocess.run([TRACKER, "-p", "0"] + args, capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(what, p.stderr)
        self.assertFalse(os.path.exists(self.db))


class DiskFull(StateTest):
    def test_a_full_disk_refuses_with_the_generic_code_and_keeps_serving(self):
        mnt = os.path.join(self.dir, "small")
        os.mkdir(mnt)
        m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], capture_output=True, text=True)
        if m.returncode != 0:
            self.skipTest("cannot mount a tmpfs here: " + m.stderr.strip())
        try:
            db = os.path.join(mnt, "tracker.db")
            acked, refused = [], []
            with self.tracker(db=db) as t:
                s, r = t.hello()
                with s:
                    i = 0
                    while len(refused) < 20 and i < 20000:
                        batch = ["f%05d%s" % (j, "x" * 200) for j in range(i, i + 100)]
                        s.sendall(b"".join(enc("REGISTER", n) for n in batch))
                        for n in batch:
                            (acked if r.byte() == 0 else refused).append(n)
                        i += 100
                self.assertGreater(len(refused), 0, "the disk never filled")
                self.assertGreater(len(acked), 0)
                # The refused one is not there; the acknowledged ones are (the reloaded state).
                self.assertIn(t.code("REGISTER", refused[0]), (0, 2))  # 0 only if space came back
                self.assertEqual(t.code("REGISTER", acked[0]), 1)
                self.assertTrue(t.alive())
                self.assertTrue(any("cannot commit" in e for e in t.errors), t.errors)
                t.stop()
            with self.tracker(db=db) as t:
                s, r = t.hello()
                with s:
                    s.sendall(b"".join(enc("REGISTER", n) for n in acked[1:]))
                    self.assertEqual([r.byte() for _ in acked[1:]], [1] * (len(acked) - 1),
                                     "an acknowledged REGISTER is missing after the restart")
                self.assertEqual(t.stop(), 0)
        finally:
            subprocess.run(["umount", mnt])


class Crashes(StateTest):
    def test_kill_9_at_random_moments_loses_no_acknowledged_mutation(self):
        rng = random.Random(20261202)
        workers, per_worker, phases, per_phase = 64, 5, 4, 5200
        names = ["w%02d_%d" % (w, j) for w in range(workers) for j in range(per_worker)]
        model = {n: Model() for n in names}
        maybe = {}  # name -> (op, args) sent but never answered
        lock = threading.Lock()
        state = {"tracker": self.tracker(), "budget": 0}
        counted = [0]

        def call(sock_reader, w, fields):
            """One request; its code, or None when the tracker went away."""
            try:
                if w % 2 == 0:
                    s, r = sock_reader
                    s.sendall(enc(*fields))
                    return r.byte()
                with socket.create_connection((HOST, state["tracker"].port), timeout=TIMEOUT) as c:
                    c.sendall(enc(*fields))
                    b = c.recv(1)
                    return b[0] if b else None
            except (OSError, EOFError):
                return None

        def work(w, seed, count):
            wr = random.Random(seed)
            conn = None
            if w % 2 == 0:
                try:
                    conn = state["tracker"].hello()
                except OSError:
                    return
            try:
                for _ in range(count):
                    n = "w%02d_%d" % (w, wr.randrange(per_worker))
                    m = model[n]
                    op = wr.choice(["REGISTER", "REGISTER", "CONNECT", "PUBLISH", "PUBLISH", "PUBLISH", "DELETE",
                                    "DISCONNECT", "UNREGISTER"])
                    args = []
                    if op == "CONNECT":
                        args = [str(wr.randrange(1024, 65535))]
                    elif op == "PUBLISH":
                        args = ["/f%d" % wr.randrange(30), "d"]
                    elif op == "DELETE":
                        args = [wr.choice(m.paths) if m.paths and wr.random() < 0.8 else "/none"]
                    code = call(conn, w, [op, n] + args)
                    if code is None:
                        with lock:
                            maybe[n] = (op, args)
                        return
                    with lock:
                        counted[0] += 1
                        if code == 0:
                            m.apply(op, args)
            finally:
                if conn:
                    conn[0].close()

        for phase in range(phases):
            threads = [threading.Thread(target=work, args=(w, rng.random(), 4 * per_phase // workers))
                       for w in range(workers)]
            for th in threads:
                th.start()
            # A kill at a random moment while the workers run, once the phase has its share of
            # acknowledged requests (the last phase ends with SIGTERM instead).
            target = per_phase * (phase + 1)
            while counted[0] < target and any(th.is_alive() for th in threads):
                threading.Event().wait(0.01)
            threading.Event().wait(rng.uniform(0, 0.05))
            t = state["tracker"]
            if phase < phases - 1:
                t.proc.kill()
            else:
                t.proc.send_signal(signal.SIGTERM)
            for th in threads:
                th.join()
            t.proc.wait(TIMEOUT)
            t.stop()
            state["tracker"] = self.tracker()
            actual = read_back(state["tracker"], names)
            for n in names:
                want = model[n].key()
                if actual[n] != want and n in maybe:
                    op, args = maybe[n]
                    after = model[n].copy()
                    try:
                        after.apply(op, args)
                    except ValueError:
                        pass
                    if actual[n] == after.key():
                        model[n] = after  # the unanswered request had been stored: it stays
                        want = after.key()
                self.assertEqual(actual[n], want, "user %s after kill %d" % (n, phase + 1))
            maybe.clear()
        self.assertGreaterEqual(counted[0], 20000, "fewer acknowledged requests than the test means to check")
        self.assertEqual(state["tracker"].stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
