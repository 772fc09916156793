"""Dead peers leave the index (peerdex-protocol(7), EXPIRY): the tracker probes each
connected user's peer listener and, after --probe-failures consecutive failures,
disconnects the user exactly as DISCONNECT would, says so on the console and logs it."""

import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import unittest

from harness import (FD_NOISE, quiet_fd_count, CONFIG_HOME, Client, FakePeer, Logd, Tracker, enc, fd_count, free_port, parse_list, scaled, settled_stats,
                     wait_until)

# One probe a second, two failures expire, a second to answer.
FAST = ["--probe-interval", "1", "--probe-failures", "2", "--probe-timeout", "1"]


def bound(failures=2, interval=1, timeout=1, users=1, rate=1000):
    """The documented bound on the time from a peer's death to its expiry: one round to
    reach it, then `failures` rounds, each at most max(interval, users / rate), plus the
    last probe's timeout; scaled for this build and a busy machine, with a margin."""
    round_s = max(interval, users / rate)
    return scaled((failures + 1) * round_s + timeout + 3)


def probe_counters(t):
    """The prober's counters, from the SIGUSR1 statistics on stderr."""
    line = t.report("s> probes:")
    m = re.search(r"(\d+) started, (\d+) accepted, (\d+) failed, (\d+) not counted .* (\d+) users expired, "
                  r"(\d+) rounds", line)
    keys = ("started", "accepted", "failed", "local", "expired", "rounds")
    return dict(zip(keys, map(int, m.groups())))


def wait_rounds(t, n):
    """Waits until n more probe rounds have completed."""
    start = probe_counters(t)["rounds"]
    wait_until(lambda: probe_counters(t)["rounds"] >= start + n, timeout=scaled(10 + 2 * n),
               what="%d probe rounds" % n)


def users(t, observer):
    code, entries = parse_list(t.op("LIST_USERS", observer), 3)
    assert code == 0, code
    return [e[0] for e in entries]


class Expiry(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-expiry-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_a_killed_client_expires_and_a_live_one_stays(self):
        with open(os.path.join(self.dir, "f"), "wb") as f:
            f.write(b"x" * 100)
        with Tracker(*FAST) as t, Client(t.port, cwd=self.dir) as alice, Client(t.port, cwd=self.dir) as bob:
            for line in ["REGISTER alice", "CONNECT alice"]:
                self.assertTrue(alice.run(line)[0].endswith("OK"), line)
            for line in ["REGISTER bob", "CONNECT bob", "PUBLISH f a file"]:
                self.assertTrue(bob.run(line)[0].endswith("OK"), line)
            self.assertEqual(users(t, "alice"), ["alice", "bob"])
            bob.proc.kill()  # kill -9: no DISCONNECT, its listener gone with it
            bob.proc.wait()
            t.wait_for(r"^s> EXPIRE bob$", timeout=bound(users=2))
            self.assertEqual(users(t, "alice"), ["alice"])
            # Exactly as DISCONNECT: offline, still registered, its publications kept.
            self.assertEqual(t.code("GET_USER_INFO", "alice", "bob"), 3)
            self.assertEqual(t.code("REGISTER", "bob"), 1)
            code, paths = parse_list(t.op("LIST_CONTENT", "alice", "bob"), 1)
            self.assertEqual(code, 0)
            self.assertEqual(len(paths), 1)
            self.assertTrue(paths[0][0].endswith("f"), paths)
            # A DISCONNECT that came too late, from bob's own client (its key: the tracker's
            # default --auth key keeps bob for it): the code of a user not connected.
            with open(os.path.join(CONFIG_HOME, "peerdex", "keys", "127.0.0.1:%d" % t.port, "bob")) as f:
                key = f.read().strip()
            s, r = t.hello()
            with s:
                s.sendall(enc("OWN", "bob", key) + enc("DISCONNECT", "bob"))
                self.assertEqual([r.byte(), r.byte()], [0, 2])
            # The live client is never expired, round after round, and its listener takes the
            # probes as nothing: no error line, no refused or abandoned request.
            wait_rounds(t, 5)
            self.assertEqual(users(t, "alice"), ["alice"])
            self.assertFalse([l for l in t.lines if "EXPIRE alice" in l])
            counters = probe_counters(t)
            self.assertEqual(counters["expired"], 1)
            self.assertGreaterEqual(counters["accepted"], 5)
            stats = settled_stats(lambda: dict(line[1:].split(": ", 1) for line in alice.run("STATS")[1:]))
            self.assertGreaterEqual(int(stats["connections"].split()[0]), 5)
            self.assertEqual(stats["refused"], "0")
            self.assertEqual(stats["abandoned"], "0")
            self.assertEqual(stats["requests"], "GET_FILE 0, LIST_FILES 0, PUT_FILE 0, GET_RANGE 0, GET_TREE 0, other 0")
            self.assertEqual([e for e in alice.errors if "peer" in e], [])

    def test_a_paused_client_within_the_window_stays(self):
        with Tracker(*FAST) as t, Client(t.port, cwd=self.dir) as carol:
            for line in ["REGISTER carol", "CONNECT carol"]:
                self.assertTrue(carol.run(line)[0].endswith("OK"), line)
            carol.proc.send_signal(signal.SIGSTOP)  # the kernel still completes the handshakes
            try:
                wait_rounds(t, 3)
            finally:
                carol.proc.send_signal(signal.SIGCONT)
            self.assertEqual(users(t, "carol"), ["carol"])
            self.assertEqual(probe_counters(t)["failed"], 0)

    def test_a_full_backlog_shorter_than_the_window_is_not_expired(self):
        # A listener that does not accept, its backlog filled: the probes' handshakes go
        # unanswered and time out. Freed after a failure, the user stays. Five failures
        # expire: the probes already in flight when the backlog is freed fail too (their SYN
        # was dropped and is resent only after the probe's timeout), and on a busy machine
        # the test may see the first failure late; three would leave no room for either.
        slow = socket.socket()
        slow.bind(("127.0.0.1", 0))
        slow.listen(0)
        fillers = []
        with Tracker("--probe-interval", "1", "--probe-failures", "5", "--probe-timeout", "1") as t:
            for _ in range(4):  # a backlog of 0 holds one; the rest wait in SYN_SENT
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(slow.getsockname())
                fillers.append(s)
            t.user("dave", slow.getsockname()[1])
            wait_until(lambda: probe_counters(t)["failed"] >= 1, timeout=scaled(20), what="a failed probe")
            while True:  # accept everything: the listener is back
                slow.setblocking(False)
                try:
                    slow.accept()[0].close()
                except BlockingIOError:
                    break
            slow.setblocking(True)

            def accept_all():
                while True:
                    try:
                        slow.accept()[0].close()
                    except OSError:
                        return

            threading.Thread(target=accept_all, daemon=True).start()
            before = probe_counters(t)
            wait_rounds(t, 4)
            after = probe_counters(t)
            self.assertGreater(after["accepted"], before["accepted"])
            self.assertEqual(after["expired"], 0)
            self.assertEqual(t.code("GET_USER_INFO", "dave", "dave"), 0)
            self.assertFalse([l for l in t.lines if "EXPIRE" in l])
            t.stop()
        for s in fillers:
            s.close()
        slow.close()

    def test_an_expired_user_may_connect_again(self):
        with Tracker(*FAST) as t:
            live = FakePeer()
            t.user("erin", free_port())  # nothing listens there
            t.user("watcher", live.port)
            t.wait_for(r"^s> EXPIRE erin$", timeout=bound(users=2))
            self.assertEqual(users(t, "watcher"), ["watcher"])
            self.assertEqual(t.code("CONNECT", "erin", live.port), 0)  # a fresh connection
            self.assertEqual(users(t, "watcher"), ["watcher", "erin"])
            wait_rounds(t, 3)
            self.assertEqual(users(t, "watcher"), ["watcher", "erin"])
            self.assertEqual(len([l for l in t.lines if l == "s> EXPIRE erin"]), 1)
            live.close()

    def test_probing_off_keeps_the_course_behaviour(self):
        with Tracker("--probe-interval", "0") as t:
            t.user("frank", free_port())
            time.sleep(scaled(2.5))  # would-be rounds: nothing may happen, so there is no signal to wait for
            self.assertEqual(users(t, "frank"), ["frank"])
            before = len(t.errors)
            t.send_signal(signal.SIGUSR1)
            t.wait_for(r"^s> index:", stream="stderr")
            self.assertFalse([l for l in t.errors[before:] if l.startswith("s> probes:")])

    def test_each_expiry_is_logged_once_with_the_trackers_timestamp(self):
        log = os.path.join(self.dir, "ops.log")
        with Logd("-o", log) as logd, Tracker("--log", "127.0.0.1:%d" % logd.port, *FAST) as t:
            live = FakePeer()
            t.user("watcher", live.port)
            for name in ("g1", "g2", "g3"):
                t.user(name, free_port())
            for name in ("g1", "g2", "g3"):
                t.wait_for(r"^s> EXPIRE %s$" % name, timeout=bound(users=4))
            wait_rounds(t, 2)  # and no second expiry of the same users meanwhile

            def entries():
                with open(log) as f:
                    return [l for l in f.read().splitlines() if " EXPIRE " in l]

            wait_until(lambda: len(entries()) >= 3, timeout=scaled(20), what="the EXPIRE entries")
            got = entries()
            self.assertEqual(sorted(l.split(" ")[0] for l in got), ["g1", "g2", "g3"])
            for line in got:  # user EXPIRE DD/MM/YYYY HH:MM:SS, no path
                self.assertRegex(line, r"^g\d EXPIRE \d\d/\d\d/\d{4} \d\d:\d\d:\d\d$")
            self.assertEqual(t.stop(), 0)
            live.close()

    def test_probes_open_at_once_are_capped(self):
        # Peers that never answer the handshake (a listener whose backlog is full) hold
        # each probe for its whole timeout: at a rate far above the cap, at most 64 are open.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        fillers = []
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(silent.getsockname())
            fillers.append(f)
        n = 200
        with Tracker("--probe-interval", "1", "--probe-failures", "1", "--probe-timeout", "1",
                     "--probe-rate", "100000", "-q") as t:
            s, r = t.hello()
            base = quiet_fd_count(t.proc.pid)  # before any user: no probe can be open yet
            for i in range(n):
                s.sendall(enc("REGISTER", "s%03d" % i) + enc("CONNECT", "s%03d" % i, silent.getsockname()[1]))
            for _ in range(2 * n):
                self.assertEqual(r.byte(), 0)
            peak = base
            while probe_counters(t)["expired"] < n:
                peak = max(peak, fd_count(t.proc.pid))
                self.assertLessEqual(peak - base, 64 + FD_NOISE, "more than 64 probes open at once")
                time.sleep(0.05)
            self.assertGreaterEqual(peak - base, 32, "the probes did overlap: the cap was what held them")
            s.close()
        for f in fillers:
            f.close()
        silent.close()

    def test_ten_thousand_users_half_dead(self):
        # Fake listeners: the alive half shares a few accepting sockets, the dead half
        # points at ports nobody listens on. The dead half expires within the bound, the
        # alive half stays, and the tracker's descriptors stay bounded by its probe cap.
        n = 10000
        rate = 20000
        with Tracker("--probe-interval", "1", "--probe-failures", "2", "--probe-timeout", "2",
                     "--probe-rate", str(rate), "-q") as t:
            alive = [FakePeer() for _ in range(20)]
            dead_ports = [free_port() for _ in range(20)]
            s, r = t.hello()
            for i in range(n):
                port = alive[i % 20].port if i % 2 == 0 else dead_ports[i % 20]
                s.sendall(enc("REGISTER", "u%05d" % i) + enc("CONNECT", "u%05d" % i, port))
                if i % 500 == 499:  # keep the replies flowing
                    for _ in range(1000):
                        self.assertEqual(r.byte(), 0)
            base = quiet_fd_count(t.proc.pid)
            peak = [base]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    try:
                        peak[0] = max(peak[0], fd_count(t.proc.pid))
                    except OSError:
                        return
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                wait_until(lambda: probe_counters(t)["expired"] >= n // 2,
                           timeout=bound(failures=2, interval=1, timeout=2, users=n, rate=rate) + scaled(10),
                           what="the dead half to expire")
            finally:
                stop.set()
                sampler.join()
            s.sendall(enc("LIST_USERS", "u00000"))
            self.assertEqual(r.byte(), 0)
            count = int(r.field())
            names = [tuple(r.field() for _ in range(3))[0] for _ in range(count)]
            self.assertEqual(names, ["u%05d" % i for i in range(0, n, 2)])
            self.assertEqual(probe_counters(t)["expired"], n // 2)
            self.assertLessEqual(peak[0] - base, 64 + 8, "probes open at once are capped at 64")
            s.close()
            for l in alive:
                l.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
