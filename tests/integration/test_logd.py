"""peerdex-logd on its own: a standard ONC-RPC server that survives garbage, huge
XDR lengths and silent clients, drops duplicates, and rotates its file on SIGHUP."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import Logd, TS, hold_fsync_env, read_all, scaled, wait_until

PROG, VERS = 0x20504458, 1


def record(payload, last=True):
    return struct.pack(">I", (0x80000000 if last else 0) | len(payload)) + payload


def xdr_string(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * (-len(b) % 4)


def entry(user, op, path, ts, instance, seq):
    return xdr_string(user) + xdr_string(op) + xdr_string(path) + xdr_string(ts) + struct.pack(">QQ", instance, seq)


def call(xid, proc, args=b"", prog=PROG, vers=VERS, rpcvers=2):
    return record(struct.pack(">IIIIII", xid, 0, rpcvers, prog, vers, proc) + b"\0" * 16 + args)


def read_reply(sock):
    """(xid, reply_stat, accept_stat or None, rest) of one record."""
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            raise EOFError
        header += chunk
    n = struct.unpack(">I", header)[0] & 0x7FFFFFFF
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise EOFError
        body += chunk
    xid, mtype, rstat = struct.unpack(">III", body[:12])
    assert mtype == 1
    if rstat != 0:
        return xid, rstat, None, body[12:]
    stat = struct.unpack(">I", body[20:24])[0]  # after the AUTH_NONE verifier
    return xid, rstat, stat, body[24:]


class LogdTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-logd-")
        self.log = os.path.join(self.dir, "ops.log")
        self.logd = Logd("-o", self.log, "--rpcbind", "no", "--idle-timeout", "2")

    def tearDown(self):
        if self.logd.alive():
            self.assertEqual(self.logd.stop(), 0)
        shutil.rmtree(self.dir)

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.logd.port), timeout=scaled(10))

    def lines(self):
        with open(self.log) as f:
            return f.read().splitlines()

    def send_entry(self, instance, seq, user="eve"):
        cmd = [os.environ["PEERDEX_OPLOG_SEND"], "-H", "127.0.0.1", "-p", str(self.logd.port),
               "%x" % instance, str(seq), user, "REGISTER", "", TS]
        return subprocess.run(cmd, timeout=scaled(10)).returncode

    def assert_still_serves(self):
        seq = getattr(self, "_seq", 0) + 1
        self._seq = seq
        self.assertEqual(self.send_entry(0x5e, seq, "alive%d" % seq), 0)
        self.assertEqual(self.lines()[-1], "alive%d REGISTER %s" % (seq, TS))

    def test_rpcgen_client_direct_and_duplicates(self):
        self.assertEqual(self.send_entry(0xabc, 1), 0)
        self.assertEqual(self.send_entry(0xabc, 1), 0)  # a retry: acknowledged, not written
        self.assertEqual(self.send_entry(0xabc, 2), 0)
        self.assertEqual(self.send_entry(0xdef, 1), 0)  # another tracker instance
        self.assertEqual(self.lines(), ["eve REGISTER " + TS] * 3)

    def test_batch_call_and_null_procedure(self):
        with self.connect() as s:
            s.sendall(call(1, 0))
            self.assertEqual(read_reply(s)[:3], (1, 0, 0))
            batch = struct.pack(">I", 3) + b"".join(
                entry("u%d" % i, "PUBLISH", "/f%d" % i, TS, 7, i) for i in (1, 2, 3))
            s.sendall(call(2, 2, batch))
            xid, rstat, stat, rest = read_reply(s)
            self.assertEqual((xid, rstat, stat, rest), (2, 0, 0, b"\0\0\0\0"))  # OPLOG_OK
        self.assertEqual(self.lines(), ["u%d PUBLISH /f%d %s" % (i, i, TS) for i in (1, 2, 3)])

    def test_a_call_held_by_a_slow_disk_is_answered_past_the_idle_timeout(self):
        # The log's fdatasync is held (tests/integration/hold_fsync.c) for longer than the
        # idle timeout: waiting for the disk is not idleness, and the reply must arrive.
        gate = os.path.join(self.dir, "hold")
        log = os.path.join(self.dir, "slow.log")
        env = hold_fsync_env(gate, PEERDEX_HOLD_FSYNC_SUFFIX="/slow.log")
        open(gate, "w").close()
        with Logd("-o", log, "--rpcbind", "no", "--idle-timeout", "1", env=env) as logd, \
                socket.create_connection(("127.0.0.1", logd.port), timeout=scaled(10)) as s:
            s.sendall(call(1, 2, struct.pack(">I", 1) + entry("slow", "REGISTER", "", TS, 9, 1)))
            wait_until(lambda: os.path.exists(gate + ".held"), what="the log's flush held")
            # A witness connected after the call was read is closed for idleness only once
            # the sweep has passed the calling connection's deadline too.
            with socket.create_connection(("127.0.0.1", logd.port), timeout=scaled(10)) as witness:
                self.assertEqual(read_all(witness), b"")
            os.unlink(gate)
            self.assertEqual(read_reply(s), (1, 0, 0, b"\0\0\0\0"))  # OPLOG_OK
        with open(log) as f:
            self.assertEqual(f.read(), "slow REGISTER %s\n" % TS)

    def test_wrong_program_version_procedure_and_rpc_version(self):
        with self.connect() as s:
            s.sendall(call(1, 1, prog=PROG + 1))
            self.assertEqual(read_reply(s)[:3], (1, 0, 1))  # PROG_UNAVAIL
            s.sendall(call(2, 1, vers=9))
            xid, rstat, stat, rest = read_reply(s)
            self.assertEqual((xid, stat, rest), (2, 2, struct.pack(">II", 1, 1)))  # PROG_MISMATCH 1..1
            s.sendall(call(3, 99))
            self.assertEqual(read_reply(s)[:3], (3, 0, 3))  # PROC_UNAVAIL
            s.sendall(call(4, 1, b"\0\0"))
            self.assertEqual(read_reply(s)[:3], (4, 0, 4))  # GARBAGE_ARGS
            s.sendall(call(5, 0, rpcvers=3))
            self.assertEqual(read_reply(s)[:2], (5, 1))  # MSG_DENIED
        self.assert_still_serves()

    def test_garbage_and_huge_lengths(self):
        cases = [
            os.urandom(200000),                                   # noise
            struct.pack(">I", 0xFFFFFFFF) + b"x" * 100,           # a 2 GB fragment announced
            record(b"\0" * 3),                                    # too short for a header
            record(struct.pack(">II", 1, 1) + b"\0" * 40),        # a REPLY sent to a server
        ]
        for data in cases:
            with self.subTest(data=data[:16]):
                with self.connect() as s:
                    try:
                        s.sendall(data)
                        got = read_all(s, timeout=scaled(10))
                    except ConnectionResetError:  # cut off with our input unread: a reset
                        got = b""
                    self.assertEqual(got, b"")  # no reply to garbage
                self.assert_still_serves()
        # A 4 GB string length inside a well-formed call, and a batch of 2^31 entries.
        for args in (struct.pack(">I", 0xFFFFFFF0) + b"abcd", struct.pack(">I", 0x80000000) + b"\0" * 64):
            with self.connect() as s:
                s.sendall(call(9, 1 if len(args) == 8 else 2, args))
                self.assertEqual(read_reply(s)[:3], (9, 0, 4))  # GARBAGE_ARGS
            self.assert_still_serves()

    def test_silent_and_half_sent_clients_are_timed_out(self):
        with self.connect() as silent, self.connect() as half:
            half.sendall(call(1, 1, entry("x", "REGISTER", "", TS, 1, 1))[:30])
            self.assert_still_serves()  # others are served meanwhile
            started = time.monotonic()
            self.assertEqual(read_all(silent, timeout=scaled(10)), b"")
            self.assertEqual(read_all(half, timeout=scaled(10)), b"")
            self.assertLess(time.monotonic() - started, scaled(8))

    def test_sighup_reopens_the_file_for_rotation(self):
        self.assertEqual(self.send_entry(0x1, 1, "before"), 0)
        os.rename(self.log, self.log + ".1")
        self.logd.send_signal(signal.SIGHUP)
        wait_until(lambda: os.path.exists(self.log), what="the new log file")
        self.assertEqual(self.send_entry(0x1, 2, "after"), 0)
        with open(self.log + ".1") as f:
            self.assertEqual(f.read(), "before REGISTER %s\n" % TS)
        self.assertEqual(self.lines(), ["after REGISTER " + TS])

    def test_duplicates_are_dropped_across_a_kill(self):
        self.assertEqual(self.send_entry(0x77, 1), 0)
        self.assertEqual(self.send_entry(0x77, 2), 0)
        self.logd.stop(signal.SIGKILL)
        self.logd = Logd("-o", self.log, "--rpcbind", "no")
        self.assertEqual(self.send_entry(0x77, 2), 0)  # the retry of an unacknowledged call
        self.assertEqual(self.send_entry(0x77, 3), 0)
        self.assertEqual(len(self.lines()), 3)

    def test_stdout_output_and_usage_errors(self):
        out = subprocess.run([os.environ["PEERDEX_LOGD"], "--fsync", "sometimes"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 2)
        self.assertIn("invalid --fsync mode 'sometimes'", out.stderr)
        out = subprocess.run([os.environ["PEERDEX_LOGD"]], capture_output=True, text=True)
        self.assertEqual(out.returncode, 2)  # every address, and nobody named who may write
        self.assertIn("--allow", out.stderr)
        out = subprocess.run([os.environ["PEERDEX_LOGD"], "-l", "127.0.0.1", "-o", "/nonexistent/dir/x.log"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn("cannot open log file /nonexistent/dir/x.log", out.stderr)
        with Logd("--rpcbind", "no") as logd:
            cmd = [os.environ["PEERDEX_OPLOG_SEND"], "-H", "127.0.0.1", "-p", str(logd.port), "1", "1", "stdout",
                   "CONNECT"]
            self.assertEqual(subprocess.run(cmd).returncode, 0)
            logd.wait_for(r"^stdout CONNECT$")
            self.assertEqual(logd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
