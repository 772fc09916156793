"""Several trackers on one shared store (peerdex-tracker(8), --store; peerdex-protocol(7)
is unchanged): what one tracker did, another shows; racing operations through two trackers
agree with one serial order; Redis lost, damaged or restarted costs answers their generic
codes and never the tracker; a user's expiry outlives the tracker that accepted it."""

import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (TS, Client, FakePeer, HOST, Logd, Redis, TIMEOUT, Tracker, enc, fd_count, free_port, parse_list,
                     quiet_fd_count, random_file, rss, scaled, sha, wait_for_fds, wait_for_log_lines, wait_until)

FAST = ["--probe-interval", "1", "--probe-failures", "2", "--probe-timeout", "1"]


def users(t, observer):
    code, entries = parse_list(t.op("LIST_USERS", observer), 3)
    assert code == 0, code
    return sorted(e[0] for e in entries)


def probes_started(t):
    return int(re.search(r"(\d+) started", t.report("s> probes:")).group(1))


# ---- a linearizability check for one name's REGISTER/UNREGISTER history ----

def expected(kind, exists):
    """(code, exists after) of one operation on a name that exists or not (peerdex-protocol(7))."""
    if kind == "REGISTER":
        return (1, True) if exists else (0, True)
    return (0, False) if exists else (1, False)


def linearizable(history):
    """True when the operations on one name, each (called, returned, kind, code) in the
    clock of this process, can be put in one serial order that respects real time (no
    operation before one that returned before it was called) and gives every code seen.
    A depth-first search over the operations that may come next, remembering dead ends."""
    ops = sorted(history)
    n = len(ops)
    full = (1 << n) - 1
    dead = set()
    stack = [(0, False, 0)]  # (operations done, as a bit set; exists; next to try)
    while stack:
        done, exists, start = stack.pop()
        if done == full:
            return True
        # The earliest return among those not done bounds which may go next.
        horizon = min(ops[i][1] for i in range(n) if not done >> i & 1)
        for i in range(start, n):
            if done >> i & 1:
                continue
            if ops[i][0] > horizon:
                break
            code, after = expected(ops[i][2], exists)
            state = (done | 1 << i, after)
            if code == ops[i][3] and state not in dead:
                stack.append((done, exists, i + 1))  # the other choices, if this one fails
                stack.append((done | 1 << i, after, 0))
                break
        else:
            dead.add((done, exists))
    return False


class Linearizable(unittest.TestCase):
    """The checker itself, on histories whose answer is known."""

    def test_accepts_serial_and_overlapping_histories(self):
        self.assertTrue(linearizable([(0, 1, "REGISTER", 0), (2, 3, "UNREGISTER", 0), (4, 5, "UNREGISTER", 1)]))
        # Two overlapping REGISTERs: one wins, whichever started first.
        self.assertTrue(linearizable([(0, 5, "REGISTER", 1), (1, 2, "REGISTER", 0)]))

    def test_refuses_what_no_order_explains(self):
        self.assertFalse(linearizable([(0, 1, "REGISTER", 0), (2, 3, "REGISTER", 0)]))  # two winners
        self.assertFalse(linearizable([(0, 1, "UNREGISTER", 0)]))  # nothing to remove
        # The second REGISTER began after the first ended and said "in use": then the
        # UNREGISTER that ended before it began must have failed.
        self.assertFalse(linearizable([(0, 1, "REGISTER", 0), (2, 3, "UNREGISTER", 0), (4, 5, "REGISTER", 1)]))


class TwoTrackers(unittest.TestCase):
    def setUp(self):
        self.redis = Redis(tcp=True)
        self.dir = tempfile.mkdtemp(prefix="peerdex-redis-test-")

    def tearDown(self):
        self.redis.stop(signal.SIGKILL)

    def test_what_one_tracker_did_the_other_shows(self):
        with Tracker("--store", self.redis.target) as a, Tracker("--store", self.redis.target) as b:
            a.user("alice", 4001)
            self.assertEqual(a.code("PUBLISH", "alice", "/music/song.ogg", "a song"), 0)
            self.assertEqual(b.code("REGISTER", "alice"), 1)  # one name, whichever tracker asks
            b.user("bob", 4002)
            self.assertEqual(users(b, "bob"), ["alice", "bob"])
            self.assertEqual(users(a, "alice"), ["alice", "bob"])
            code, paths = parse_list(b.op("LIST_CONTENT", "bob", "alice"), 1)
            self.assertEqual((code, paths), (0, [("/music/song.ogg",)]))
            self.assertEqual(b.op("GET_USER_INFO", "bob", "alice"), b"\x00127.0.0.1\x004001\x00")
            self.assertEqual(b.code("PUBLISH", "alice", "/music/song.ogg", "again"), 3)  # already published
            self.assertEqual(b.code("DISCONNECT", "alice"), 0)
            self.assertEqual(a.code("PUBLISH", "alice", "/x", "d"), 2)  # not connected, seen by a
            self.assertEqual(a.code("UNREGISTER", "alice"), 0)
            self.assertEqual(b.code("GET_USER_INFO", "bob", "alice"), 3)  # no such target now
            # Each tracker reports what it handled itself.
            a.wait_for(r"^s> OPERATION UNREGISTER FROM alice$")
            b.wait_for(r"^s> OPERATION LIST_USERS FROM bob$")
            self.assertNotIn("s> OPERATION LIST_USERS FROM bob", a.lines)

    def test_a_client_downloads_from_a_peer_that_came_through_the_other_tracker(self):
        src = os.path.join(self.dir, "shared.bin")
        random_file(src, 3 << 20)
        dst = os.path.join(self.dir, "copy.bin")
        with Tracker("--store", self.redis.target) as a, Tracker("--store", self.redis.target) as b, \
                Client(a.port) as alice, Client(b.port) as bob:
            self.assertEqual(alice.run("REGISTER alice"), ["c> REGISTER OK"])
            self.assertEqual(alice.run("CONNECT alice"), ["c> CONNECT OK"])
            self.assertEqual(alice.run("PUBLISH %s a file" % src), ["c> PUBLISH OK"])
            self.assertEqual(bob.run("REGISTER bob"), ["c> REGISTER OK"])
            self.assertEqual(bob.run("CONNECT bob"), ["c> CONNECT OK"])
            self.assertEqual(bob.run("LIST_CONTENT alice"), ["c> LIST_CONTENT OK", "\t" + src])
            self.assertEqual(bob.run("GET_FILE alice %s %s" % (src, dst)), ["c> GET_FILE OK"])
            self.assertEqual(sha(dst), sha(src))

    def test_racing_registrations_agree_with_one_serial_order(self):
        names = ["n%d" % i for i in range(100)]
        histories = {n: [] for n in names}
        lock = threading.Lock()
        failures = []
        with Tracker("--store", self.redis.target) as a, Tracker("--store", self.redis.target) as b:
            stop = time.monotonic() + scaled(4)

            def session(t, seed):
                rng = random.Random(seed)
                mine = []
                try:
                    s, r = t.hello()
                    with s:
                        while time.monotonic() < stop:
                            kind, name = rng.choice(("REGISTER", "UNREGISTER")), rng.choice(names)
                            called = time.monotonic()
                            s.sendall(enc(kind, name))
                            code = r.byte()
                            mine.append((name, (called, time.monotonic(), kind, code)))
                except Exception as e:  # noqa: BLE001 - reported below
                    failures.append(repr(e))
                with lock:
                    for name, op in mine:
                        histories[name].append(op)

            threads = [threading.Thread(target=session, args=(a if i % 2 else b, i)) for i in range(64)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            self.assertEqual(failures, [])
            total = sum(len(h) for h in histories.values())
            self.assertGreater(total, 1000)  # enough that sessions overlapped on every name
            codes = {op[3] for h in histories.values() for op in h}
            self.assertEqual(codes, {0, 1})  # never the generic error
            # What is left must agree too: a REGISTER of each name after the race joins its history.
            for name in names:
                called = time.monotonic()
                code = a.code("REGISTER", name)
                histories[name].append((called, time.monotonic(), "REGISTER", code))
            for name in names:
                self.assertTrue(linearizable(histories[name]), "no serial order explains %s: %r" %
                                (name, sorted(histories[name])[-20:]))

    def test_each_tracker_logs_what_it_handled(self):
        log = os.path.join(self.dir, "ops.log")
        with Logd("-o", log) as logd, \
                Tracker("--store", self.redis.target, "--log", "%s:%d" % (HOST, logd.port)) as a, \
                Tracker("--store", self.redis.target, "--log", "%s:%d" % (HOST, logd.port)) as b:
            self.assertEqual(a.code("REGISTER", "alice"), 0)
            self.assertEqual(b.code("CONNECT", "alice", 4000), 0)
            self.assertEqual(a.code("PUBLISH", "alice", "/notes.txt", "notes"), 0)
            self.assertEqual(b.code("REGISTER", "alice"), 1)
            wait_for_log_lines(log, 4)
            self.assertEqual(a.stop(), 0)  # each flushes what it handled before it exits
            self.assertEqual(b.stop(), 0)
            a.wait_for(r"2 delivered, 0 dropped", stream="stderr")
            b.wait_for(r"2 delivered, 0 dropped", stream="stderr")
            with open(log) as f:
                entries = sorted(line.rstrip("\n") for line in f)
            self.assertEqual(entries, sorted(["alice REGISTER " + TS, "alice CONNECT " + TS,
                                              "alice PUBLISH /notes.txt " + TS, "alice REGISTER " + TS]))
            self.assertEqual(logd.stop(), 0)

    def test_store_and_state_together_are_refused(self):
        r = subprocess.run([os.environ["PEERDEX_TRACKER"], "-p", "0", "-l", HOST, "--store", self.redis.target,
                            "--state", os.path.join(self.dir, "t.db")], capture_output=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"--state", r.stderr)
        self.assertIn(b"--store", r.stderr)

    def test_an_unreachable_store_at_start_is_a_clear_error(self):
        r = subprocess.run([os.environ["PEERDEX_TRACKER"], "-p", "0", "-l", HOST, "--store",
                            "redis://%s:%d" % (HOST, free_port())], capture_output=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"redis://", r.stderr)
        r = subprocess.run([os.environ["PEERDEX_TRACKER"], "-p", "0", "-l", HOST, "--store", "redis://h:x"],
                           capture_output=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"port", r.stderr)


class LyingRedis:
    """A server that speaks Redis's protocol (RESP) on loopback and answers each operation's
    script with whatever `answer(op)` returns (raw RESP bytes): a broken or hostile store,
    which the tracker must survive. SCRIPT LOAD gets a made-up digest; anything else +OK."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.target = "redis://%s:%d" % (HOST, self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    raise EOFError
                buf += chunk
            head, buf = buf.split(b"\r\n", 1)
            return head

        def exactly(n):
            nonlocal buf
            while len(buf) < n + 2:
                chunk = conn.recv(65536)
                if not chunk:
                    raise EOFError
                buf += chunk
            data, buf = buf[:n], buf[n + 2:]
            return data

        with conn:
            try:
                while True:
                    argv = [exactly(int(line()[1:])) for _ in range(int(line()[1:]))]
                    cmd = argv[0].upper()
                    if cmd == b"SCRIPT":
                        conn.sendall(b"$40\r\n" + b"%040d" % len(argv[2]) + b"\r\n")
                    elif cmd == b"EVALSHA":
                        conn.sendall(self.answer(argv[4].decode()))
                    else:
                        conn.sendall(b"+OK\r\n")
            except (EOFError, OSError, ValueError):
                return

    def close(self):
        self.sock.close()


class LyingStore(unittest.TestCase):
    def test_a_count_that_wraps_its_size_is_refused_not_allocated(self):
        # SEARCH's answer: outcome, three counts, then a hit count and 7 fields per hit. A
        # count n with 5 + 7n = 6 modulo 2^64 matches a reply of 6 elements if multiplied.
        wrapping = 7905747460161236407
        assert (5 + 7 * wrapping) % 2 ** 64 == 6

        def answer(op):
            if op == "search":
                return b"*6\r\n:0\r\n:-1\r\n:-1\r\n:-1\r\n:%d\r\n$0\r\n\r\n" % wrapping
            return b"*4\r\n:0\r\n:-1\r\n:-1\r\n:-1\r\n"  # ok, counts unchanged

        redis = LyingRedis(answer)
        try:
            with Tracker("--store", redis.target, "--probe-interval", "0") as t:
                s, r = t.hello()
                with s:
                    s.sendall(enc("SEARCH", "alice", "song", "10"))
                    self.assertNotEqual(r.byte(), 0)  # a failure's code, not a crash
                    s.sendall(enc("REGISTER", "bob"))
                    self.assertEqual(r.byte(), 0)  # and the session goes on
                t.wait_for("an answer of Redis has an unexpected shape", stream="stderr")
                self.assertTrue(t.alive())
        finally:
            redis.close()


class StoreAway(unittest.TestCase):
    def test_redis_killed_under_load_then_back(self):
        redis = Redis(appendonly=True)
        with Tracker("--store", redis.target) as t:
            t.user("keeper", 4000)
            stop = threading.Event()
            seen = {"ok": 0, "generic": 0, "other": []}

            def load():
                s, r = t.hello()
                i = 0
                with s:
                    while not stop.is_set():
                        name = "load%d" % (i % 50)
                        s.sendall(enc("REGISTER", name) + enc("UNREGISTER", name))
                        for _ in range(2):
                            code = r.byte()
                            if code == 0 or code == 1:
                                seen["ok"] += 1
                            elif code == 2:
                                seen["generic"] += 1
                            else:
                                seen["other"].append(code)
                        i += 1

            workers = [threading.Thread(target=load) for _ in range(4)]
            for w in workers:
                w.start()
            wait_until(lambda: seen["ok"] > 200, what="answers with Redis up")
            redis.stop(signal.SIGKILL)
            # Every request is answered, with its generic code, while Redis is away.
            wait_until(lambda: seen["generic"] > 200, timeout=scaled(30), what="generic codes with Redis away")
            self.assertTrue(t.alive())
            self.assertEqual(t.code("LIST_USERS", "keeper"), 3)  # reads too: never a hang
            # Nothing grows while it stays away and the tracker keeps redialling.
            fds, mem = quiet_fd_count(t.proc.pid), rss(t.proc.pid)
            base = seen["generic"]
            wait_until(lambda: seen["generic"] > base + 2000, timeout=scaled(60), what="more generic codes")
            t.wait_for(r"^s> store: .*", stream="stderr")
            self.assertLessEqual(quiet_fd_count(t.proc.pid), fds + 1)
            self.assertLess(rss(t.proc.pid), mem + (8 << 20))
            # Back (from its append-only file): the same tracker serves again, state kept.
            redis.start()
            ok = seen["ok"]
            wait_until(lambda: seen["ok"] > ok + 200, timeout=scaled(30), what="answers after Redis came back")
            stop.set()
            for w in workers:
                w.join()
            self.assertEqual(seen["other"], [])
            self.assertEqual(t.code("REGISTER", "keeper"), 1)
            self.assertIn("keeper", users(t, "keeper"))
        redis.stop(signal.SIGKILL)

    def test_over_tcp_the_tracker_redials_a_restarted_redis(self):
        redis = Redis(tcp=True, appendonly=True)
        with Tracker("--store", redis.target) as t:
            self.assertTrue(redis.target.startswith("redis://"))
            t.user("alice", 4000)
            redis.stop(signal.SIGKILL)
            self.assertEqual(t.code("REGISTER", "bob"), 2)
            self.assertEqual(t.code("GET_USER_INFO", "alice", "alice"), 4)
            redis.start()
            wait_until(lambda: t.code("REGISTER", "bob") == 0, what="the tracker back on Redis over TCP")
            self.assertEqual(users(t, "alice"), ["alice"])
            t.wait_for(r"^s> store: Redis at redis://.* is back$", stream="stderr")
        redis.stop(signal.SIGKILL)

    def test_append_only_redis_restarted_keeps_every_acknowledged_change(self):
        redis = Redis(appendonly=True)
        with Tracker("--store", redis.target) as t:
            for i in range(50):
                t.user("u%d" % i, 5000 + i)
                self.assertEqual(t.code("PUBLISH", "u%d" % i, "/f%d" % i, "file %d" % i), 0)
            self.assertEqual(t.code("UNREGISTER", "u7"), 0)
            redis.stop(signal.SIGKILL)  # every acknowledged write was appended and flushed
            redis.start()
            wait_until(lambda: t.code("REGISTER", "u0") == 1, what="the tracker back on Redis")
            self.assertEqual(users(t, "u0"), sorted("u%d" % i for i in range(50) if i != 7))
            code, paths = parse_list(t.op("LIST_CONTENT", "u0", "u49"), 1)
            self.assertEqual((code, paths), (0, [("/f49",)]))
            self.assertEqual(t.op("SEARCH", "u0", "f3", "10"), t.op("SEARCH", "u0", "f3", "10"))
        redis.stop(signal.SIGKILL)

    def test_bad_data_in_redis_costs_the_request_its_generic_code(self):
        redis = Redis()
        with Tracker("--store", redis.target) as t:
            t.user("watcher", 4000)
            t.user("trudy", 4001)
            self.assertEqual(t.code("PUBLISH", "trudy", "/t", "d"), 0)
            redis.cli("SET", "{pdx}:u:mallory", "not a hash")  # a key of the wrong type
            self.assertEqual(t.code("CONNECT", "mallory", 4002), 3)
            self.assertEqual(t.code("UNREGISTER", "mallory"), 2)
            redis.cli("HDEL", "{pdx}:u:trudy", "port")  # a truncated entry
            self.assertEqual(t.code("GET_USER_INFO", "watcher", "trudy"), 4)
            self.assertEqual(t.code("DISCONNECT", "trudy"), 3)
            redis.cli("ZADD", "{pdx}:conn", "1e15", "no fields")  # a connection entry without its fields
            self.assertEqual(t.code("LIST_USERS", "watcher"), 3)
            redis.cli("SET", "{pdx}:c:trudy", "x")  # her publications, of the wrong type
            self.assertEqual(t.code("LIST_CONTENT", "watcher", "trudy"), 4)
            self.assertEqual(t.code("PUBLISH", "trudy", "/u", "d"), 4)
            self.assertTrue(t.alive())
            redis.cli("DEL", "{pdx}:u:mallory")
            self.assertEqual(t.code("REGISTER", "mallory"), 0)  # the rest works on
            # A publication whose entry is gone: listed without its description, found by no
            # SEARCH, and its owner can still be removed whole.
            t.user("paula", 4003)
            self.assertEqual(t.code("PUBLISH", "paula", "/p/song.ogg", "a song"), 0)
            pid = redis.cli("ZSCORE", "{pdx}:c:paula", "/p/song.ogg")
            redis.cli("DEL", "{pdx}:p:" + pid)
            self.assertEqual(parse_list(t.op("LIST_CONTENT", "watcher", "paula"), 1), (0, [("/p/song.ogg",)]))
            self.assertEqual(t.op("SEARCH", "watcher", "song", "10"), b"\x000\x00")
            self.assertEqual(t.code("UNREGISTER", "paula"), 0)
            self.assertEqual(t.code("REGISTER", "paula"), 0)
        redis.stop(signal.SIGKILL)

    def test_a_damaged_connection_entry_does_not_stop_expiry(self):
        redis = Redis()
        with Tracker("--store", redis.target, *FAST) as t:
            live = FakePeer()
            t.user("watcher", live.port)
            # Walked before everyone else: one entry without its fields, one whose address
            # is not an address (redis-cli -x takes the member, NULs and all, from stdin).
            redis.cli("ZADD", "{pdx}:conn", "0.25", "no fields")
            subprocess.run(["redis-cli", "-s", redis.sock, "-x", "ZADD", "{pdx}:conn", "0.5"],
                           input=b"bad\0not an address\x004000", check=True, capture_output=True, timeout=TIMEOUT)
            t.user("gone", free_port())  # nothing listens there
            t.wait_for(r"^s> EXPIRE gone$", timeout=scaled(20))
            live.close()
        redis.stop(signal.SIGKILL)


class Expiry(unittest.TestCase):
    def test_a_gone_trackers_users_are_expired_by_another(self):
        redis = Redis()
        dead_port = free_port()  # nothing listens there
        live = FakePeer()
        # The first tracker probes but would take a hundred failures to expire anyone. Its
        # leases last two rounds (6 s): late by a round on a busy machine, it still holds them.
        a = Tracker("--store", redis.target, "--probe-interval", "3", "--probe-failures", "100")
        a.user("erin", dead_port)
        a.user("watcher", live.port)
        wait_until(lambda: probes_started(a) >= 2, what="the first tracker to probe its users")
        with Tracker("--store", redis.target, *FAST) as b:
            # While the first holds their leases, the second leaves its users alone.
            rounds = int(re.search(r"(\d+) rounds", b.report("s> probes:")).group(1))
            wait_until(lambda: int(re.search(r"(\d+) rounds", b.report("s> probes:")).group(1)) >= rounds + 3,
                       timeout=scaled(20), what="three rounds of the second tracker")
            self.assertEqual(probes_started(b), 0)
            self.assertEqual(users(b, "watcher"), ["erin", "watcher"])
            a.stop(signal.SIGKILL)  # gone without a word: its leases run out
            b.wait_for(r"^s> EXPIRE erin$", timeout=scaled(30))
            self.assertEqual(users(b, "watcher"), ["watcher"])
            self.assertGreater(probes_started(b), 0)
        live.close()
        redis.stop(signal.SIGKILL)


if __name__ == "__main__":
    unittest.main(verbosity=2)
