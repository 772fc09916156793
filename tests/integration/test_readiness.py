"""A daemon's readiness line is a promise: whoever reads it may connect or signal at once.

Test harnesses, service managers and operators send SIGUSR1 (statistics) or SIGTERM the
moment a daemon says it is up. If the line came before the signal handlers were in place, the
default action of SIGUSR1 would end the daemon: a race that only shows on a busy machine. The
order is checked exactly, from the daemon's own system calls (strace), not by trying luck."""

import os
import re
import signal
import subprocess
import tempfile
import unittest

from harness import Daemon, HOST, TIMEOUT

TRACKER = os.environ["PEERDEX_TRACKER"]
LOGD = os.environ["PEERDEX_LOGD"]
PEERDEX = os.environ["PEERDEX"]

# One traced call per line: "PID rt_sigaction(SIGUSR1, {sa_handler=0x…, …" or "PID write(1, "…"".
HANDLER = re.compile(r"rt_sigaction\((SIG[A-Z0-9]+), \{sa_handler=(0x[0-9a-f]+|SIG_DFL|SIG_IGN)")


def traced(argv, trace):
    return ["strace", "-f", "-qq", "-s", "200", "-e", "trace=rt_sigaction,write", "-o", trace] + argv


class Readiness(unittest.TestCase):
    def check(self, argv, ready_pattern, banner, signals, ready_stream="stdout"):
        with tempfile.TemporaryDirectory(prefix="peerdex-readiness-") as tmp:
            trace = os.path.join(tmp, "trace")
            # LeakSanitizer cannot run under ptrace; every other test checks for leaks.
            env = dict(os.environ)
            env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
            d = Daemon(traced(argv, trace), ready_pattern, env=env, ready_stream=ready_stream)
            # Signals go to the daemon itself (strace's only child), never to strace.
            with open("/proc/%d/task/%d/children" % (d.proc.pid, d.proc.pid)) as f:
                pid = int(f.read().split()[0])
            # Asked for statistics the instant it said it is up, it lives on to exit 0 on SIGTERM.
            os.kill(pid, signal.SIGUSR1)
            os.kill(pid, signal.SIGTERM)
            self.assertEqual(d.proc.wait(TIMEOUT), 0)  # strace exits with its child's status
            d.stop()
            with open(trace, errors="replace") as f:
                calls = f.read().splitlines()
        at = next((i for i, c in enumerate(calls) if "write(" in c and banner in c), None)
        self.assertIsNotNone(at, "the readiness line was not written: %r" % calls[-10:])
        installed = {m.group(1) for c in calls[:at] for m in [HANDLER.search(c)]
                     if m and m.group(2).startswith("0x")}
        for sig in signals:
            self.assertIn(sig, installed, "%s has no handler when %r is printed" % (sig, banner))

    def test_tracker_handles_its_signals_before_it_says_init_server(self):
        self.check([TRACKER, "-p", "0", "-l", HOST], r"^s> init server ", "s> init server",
                   ["SIGINT", "SIGTERM", "SIGUSR1"])

    def test_log_server_handles_its_signals_before_it_says_listening(self):
        with tempfile.TemporaryDirectory(prefix="peerdex-readiness-logd-") as tmp:
            self.check([LOGD, "-l", HOST, "-p", "0", "-o", os.path.join(tmp, "log")],
                       r"listening on ", "listening on", ["SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1"],
                       ready_stream="stderr")

    def test_serve_handles_its_signals_before_it_says_serving(self):
        with tempfile.TemporaryDirectory(prefix="peerdex-readiness-serve-") as tmp:
            self.check([PEERDEX, "serve", "-H", HOST, "-p", "0", "-s", tmp], r"serving .* on ",
                       "peerdex: serving", ["SIGINT", "SIGTERM", "SIGUSR1"])


if __name__ == "__main__":
    unittest.main()
