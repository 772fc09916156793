"""The README's run command, tools/run.sh: it starts the three daemons on loopback and
stops them on Ctrl-C; with a port already taken it says which and starts nothing."""

import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import free_port, scaled, wait_until

ROOT = os.environ["PEERDEX_SOURCE_ROOT"]
BUILD = os.environ["PEERDEX_BUILD_ROOT"]
HTTP = b"--http" in subprocess.run([os.environ["PEERDEX_TRACKER"], "--help"], capture_output=True).stdout


def run_script(data, tracker, logd, clock, *args, **ports):
    for name in ("HTTP_PORT", "LOGD_HTTP_PORT", "HTTP2_PORT"):
        ports.setdefault(name, free_port())
    env = dict(os.environ, BUILD_DIR=BUILD, DATA_DIR=data, TRACKER_PORT=str(tracker), LOGD_PORT=str(logd),
               CLOCK_PORT=str(clock), **{k: str(v) for k, v in ports.items()})
    # Ctrl-C reaches the script as it would from a terminal, even when this test was
    # started with SIGINT ignored (a shell's background job): bash cannot trap a signal it
    # was started ignoring.
    return subprocess.Popen(["bash", os.path.join(ROOT, "tools", "run.sh")] + list(args), cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def said_running(proc, seconds):
    """What run.sh said on stderr up to "peerdex is running", read for at most `seconds`:
    a script that hangs or ends first fails the test with what it said."""
    fd = proc.stderr.fileno()
    said = b""
    end = time.monotonic() + seconds
    while b"peerdex is running" not in said:
        ready, _, _ = select.select([fd], [], [], max(end - time.monotonic(), 0))
        chunk = os.read(fd, 65536) if ready else None
        if not chunk:
            raise AssertionError("run.sh %s before it said it runs; it said:\n%s" %
                                 ("ended" if chunk == b"" else "said nothing more for %d s" % seconds,
                                  said.decode(errors="replace")))
        said += chunk
    return said


def stop(proc):
    """Ctrl-C, then what the script said as it stopped."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=scaled(120))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def daemon_pids(logd, clock, tracker):
    """The pids of the three daemons run.sh started on these ports, by name."""
    pids = {}
    for name, pattern in (("logd", "peerdex-logd -l 127.0.0.1 -p %d " % logd),
                          ("clock", "peerdex-clock -l 127.0.0.1 -p %d$" % clock),
                          ("tracker", "peerdex-tracker -l 127.0.0.1 -p %d " % tracker)):
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        assert len(found) == 1, (name, found)
        pids[name] = int(found[0])
    return pids


def suspend(pid):
    """SIGSTOP, and wait until the daemon has stopped. Until then it may still act on a
    signal sent after (the kernel takes the lowest pending signal first: a Ctrl-C's SIGINT
    before the SIGSTOP), and stop gracefully where the test wants it stuck."""
    os.kill(pid, signal.SIGSTOP)

    def stopped():
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"  # the state, after the name

    wait_until(stopped, scaled(10), "pid %d to stop on SIGSTOP" % pid)


def kill_left(proc, pids):
    """After a failed test: the script and any daemon it left, so that none outlives it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate()


class RunScript(unittest.TestCase):
    def setUp(self):
        self.data = tempfile.mkdtemp(prefix="peerdex-run-")

    def tearDown(self):
        shutil.rmtree(self.data, True)

    def test_help_prints_the_whole_header(self):
        r = subprocess.run(["bash", os.path.join(ROOT, "tools", "run.sh"), "--help"], capture_output=True,
                           timeout=scaled(30))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"TRACKER_PORT (default 4000)", r.stdout)
        self.assertIn(b"--state file.\n", r.stdout)  # the --shared paragraph to its end
        self.assertIn(b"exit 1.\n", r.stdout)  # and the last line of the header
        self.assertNotIn(b"set -euo", r.stdout)

    def test_a_port_in_use_is_named_and_nothing_starts(self):
        taken = socket.create_server(("127.0.0.1", 0))
        with taken:
            port = taken.getsockname()[1]
            proc = run_script(self.data, port, free_port(), free_port())
            out, err = proc.communicate(timeout=scaled(120))
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn(("run: port %d (the tracker) is already in use" % port).encode(), err)
        self.assertNotIn(b"peerdex is running", err)
        self.assertFalse(os.path.exists(os.path.join(self.data, "ops.log")))  # the log server never started

    def test_it_runs_until_ctrl_c(self):
        tracker, logd, clock, http = free_port(), free_port(), free_port(), free_port()
        proc = run_script(self.data, tracker, logd, clock, HTTP_PORT=http)
        try:
            line = said_running(proc, scaled(120))
            with socket.create_connection(("127.0.0.1", tracker), timeout=scaled(10)) as s:
                s.sendall(b"REGISTER\0runner\0")
                self.assertEqual(s.recv(1), b"\x00")
            if HTTP:  # the status page and metrics are on, on loopback
                self.assertIn(("status page http://127.0.0.1:%d/" % http).encode(), line)
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http, timeout=scaled(10)) as r:
                    self.assertIn(b"peerdex_tracker_users_registered 1\n", r.read())
        finally:
            err = stop(proc)[1]
        self.assertEqual(proc.returncode, 0, err)
        self.assertNotIn(b"did not stop", err)  # each daemon ended on SIGTERM, none was killed
        for port in (tracker, logd, clock):  # every daemon stopped with it
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=scaled(5)).close()
        with open(os.path.join(self.data, "ops.log")) as f:
            self.assertIn("runner REGISTER", f.read())

    def test_a_daemon_that_cannot_start_is_named_with_its_status(self):
        with open(os.path.join(self.data, "tracker.db"), "wb") as f:
            f.write(b"not a database, " * 512)
        tracker = free_port()
        proc = run_script(self.data, tracker, free_port(), free_port())
        out, err = proc.communicate(timeout=scaled(120))
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn(("run: peerdex-tracker exited (status 1) instead of listening on port %d" % tracker).encode(),
                      err)
        self.assertNotIn(b"peerdex is running", err)
        self.assertNotIn(b"did not stop", err)  # the log server and the clock were stopped

    def disturbed(self, act):
        """Starts the script, has act(proc, pids) disturb it and return what it said on
        stderr, and checks that no daemon is left listening: (exit status, stderr, pids)."""
        tracker, logd, clock = free_port(), free_port(), free_port()
        proc = run_script(self.data, tracker, logd, clock)
        pids = {}
        try:
            said_running(proc, scaled(120))
            pids = daemon_pids(logd, clock, tracker)
            err = act(proc, pids)
        finally:
            if proc.returncode is None:
                kill_left(proc, pids)
        for port in (tracker, logd, clock):
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=scaled(5)).close()
        return proc.returncode, err, pids

    def test_a_daemon_ending_by_itself_stops_the_others(self):
        def clock_ends(proc, pids):
            os.kill(pids["clock"], signal.SIGTERM)
            return proc.communicate(timeout=scaled(120))[1]

        code, err, pids = self.disturbed(clock_ends)
        self.assertEqual(code, 1, err)
        self.assertIn(("run: peerdex-clock (pid %d) ended by itself (status 0): stopping the others" %
                       pids["clock"]).encode(), err)
        self.assertNotIn(b"did not stop", err)

    def test_ctrl_c_again_kills_what_has_not_stopped(self):
        def twice(proc, pids):
            suspend(pids["tracker"])  # a tracker that does not act on SIGTERM
            os.killpg(proc.pid, signal.SIGINT)
            # The script is waiting for it once its SIGTERM is pending.
            deadline = time.monotonic() + scaled(30)
            while not self.pending_term(pids["tracker"]):
                self.assertLess(time.monotonic(), deadline, "run.sh never sent SIGTERM to the tracker")
                time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGINT)
            return proc.communicate(timeout=scaled(60))[1]

        code, err, pids = self.disturbed(twice)
        self.assertEqual(code, 0, err)
        # At once, not after 15 s; and the daemons not yet stopped with it.
        self.assertIn(("run: peerdex-tracker (pid %d) killed: interrupted again while it stopped" %
                       pids["tracker"]).encode(), err)
        self.assertNotIn(b"did not stop", err)

    def test_a_daemon_still_running_15_s_after_sigterm_is_killed(self):
        def clock_stuck(proc, pids):
            suspend(pids["clock"])  # a clock that does not act on SIGTERM
            return stop(proc)[1]

        code, err, pids = self.disturbed(clock_stuck)
        self.assertEqual(code, 0, err)
        self.assertIn(("run: peerdex-clock (pid %d) did not stop within 15 s of SIGTERM: killed" %
                       pids["clock"]).encode(), err)
        self.assertIn(b"entries written", err)  # the log server, after it, still stopped on SIGTERM

    @staticmethod
    def pending_term(pid):
        with open("/proc/%d/status" % pid) as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return any(int(fields[k], 16) & (1 << (signal.SIGTERM - 1)) for k in ("SigPnd", "ShdPnd"))

    @unittest.skipUnless(shutil.which("redis-server"), "no redis-server on this machine")
    def test_shared_runs_two_trackers_on_one_index(self):
        tracker, tracker2, redis, logd, clock = (free_port() for _ in range(5))
        proc = run_script(self.data, tracker, logd, clock, "--shared", TRACKER2_PORT=tracker2, REDIS_PORT=redis)
        try:
            said_running(proc, scaled(120))
            for port, code in ((tracker, b"\x00"), (tracker2, b"\x01")):  # the second sees the first's user
                with socket.create_connection(("127.0.0.1", port), timeout=scaled(10)) as s:
                    s.sendall(b"REGISTER\0runner\0")
                    self.assertEqual(s.recv(1), code)
        finally:
            err = stop(proc)[1]
        self.assertEqual(proc.returncode, 0, err)
        self.assertNotIn(b"did not stop", err)  # each daemon ended on SIGTERM, none was killed
        for port in (tracker, tracker2, redis, logd, clock):
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=scaled(5)).close()
        self.assertTrue(os.path.exists(os.path.join(self.data, "redis", "redis.log")))


if __name__ == "__main__":
    unittest.main()
