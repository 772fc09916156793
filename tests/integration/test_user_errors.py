"""What a new user runs into: interrupted downloads leave nothing, fields over the
protocol's limits are refused before anything is sent (and the session goes on),
downloads into a directory, files the user publishes are not overwritten, and the
exit status tells whether every command succeeded."""

import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import Client, FakePeer, Tracker, enc, files_open_in, scaled, wait_until

PEERDEX = os.environ["PEERDEX"]


def stall(conn):
    """The header and the first MiB of a large file, then nothing until the client goes
    away (a peer whose uplink died)."""
    conn.sendall(b"\x00" + enc(1 << 30) + os.urandom(1 << 20))
    while conn.recv(4096):
        pass


def stalling_peer():
    return FakePeer(stall)


def wait_for_error(client, text):
    """stderr is read by its own thread: a reason may come just after the result line."""
    wait_until(lambda: any(text in e for e in client.errors), what="%r on stderr" % text)


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-user-")
        self.before = ["kept.txt"]
        with open(os.path.join(self.dir, "kept.txt"), "w") as f:
            f.write("there before")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def assert_nothing_left(self):
        self.assertEqual(sorted(os.listdir(self.dir)), self.before)


class InterruptedDownloads(Base):
    def download_then(self, sig):
        peer = stalling_peer()
        try:
            proc = subprocess.Popen([PEERDEX, "download", "-H", "127.0.0.1", "-p", str(peer.port), "big.iso",
                                     "-d", self.dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            wait_until(lambda: files_open_in(proc.pid, self.dir), what="the download's file")
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=scaled(15))
            return proc.returncode, err.decode()
        finally:
            peer.close()

    def test_sigint_leaves_nothing(self):
        rc, err = self.download_then(signal.SIGINT)
        self.assertEqual(rc, 128 + signal.SIGINT, err)
        self.assertIn("interrupted", err)
        self.assert_nothing_left()

    def test_sigterm_leaves_nothing(self):
        rc, err = self.download_then(signal.SIGTERM)
        self.assertEqual(rc, 128 + signal.SIGTERM, err)
        self.assert_nothing_left()


class ShellCase(Base):
    def setUp(self):
        super().setUp()
        self.t = Tracker("-q")

    def tearDown(self):
        self.t.stop()
        super().tearDown()

    def start_stalled_get_file(self, c):
        """Starts GET_FILE from a stalling peer and returns once bytes are on disk."""
        self.peer = stalling_peer()
        self.t.user("slow", self.peer.port)
        c.run("REGISTER me")
        c.run("CONNECT me")
        c.proc.stdin.write(("GET_FILE slow /big.iso %s\n" % os.path.join(self.dir, "big.iso")).encode())
        c.proc.stdin.flush()
        wait_until(lambda: files_open_in(c.proc.pid, self.dir), what="the download's file")


class ShellInterrupts(ShellCase):
    def test_ctrl_c_cancels_get_file_and_the_session_goes_on(self):
        with Client(self.t.port, cwd=self.dir) as c:
            try:
                self.start_stalled_get_file(c)
                c.proc.send_signal(signal.SIGINT)
                out = c.run("LIST_USERS")
                self.assertEqual(out[0], "c> GET_FILE FAIL")
                self.assertEqual(out[1], "c> LIST_USERS OK")
                self.assert_nothing_left()
                wait_for_error(c, "peerdex: GET_FILE: interrupted; nothing was kept")
                self.assertEqual(c.quit()[-1], "+++ FINISHED +++")
            finally:
                self.peer.close()

    def test_sigterm_mid_get_file_quits_and_leaves_nothing(self):
        with Client(self.t.port, cwd=self.dir) as c:
            try:
                self.start_stalled_get_file(c)
                c.proc.send_signal(signal.SIGTERM)
                c.proc.wait(scaled(15))
                self.assert_nothing_left()
                c.quit(None)
                self.assertEqual(c.lines[-3:], ["c> GET_FILE FAIL", "c> DISCONNECT OK", "+++ FINISHED +++"])
            finally:
                self.peer.close()


class FieldLimits(ShellCase):
    def test_a_long_description_is_refused_before_sending_and_the_session_goes_on(self):
        with open(os.path.join(self.dir, "notes.txt"), "w") as f:
            f.write("n")
        with Client(self.t.port, cwd=self.dir) as c:
            c.run("REGISTER alice")
            c.run("CONNECT alice")
            self.assertEqual(c.run("PUBLISH notes.txt " + "d" * 300), ["c> PUBLISH FAIL"])
            wait_for_error(c, "peerdex: PUBLISH: the description is 300 bytes long; the protocol allows at most 255 "
                              "(peerdex-protocol(7), TRACKER REQUESTS)")
            self.assertEqual(c.run("LIST_USERS")[0], "c> LIST_USERS OK")  # the same session, still open
            self.assertEqual(c.run("REGISTER " + "u" * 300), ["c> REGISTER FAIL"])
            wait_for_error(c, "user name is 300 bytes long")
            self.assertEqual(c.run('PUBLISH "my notes.txt" mine'), ["c> PUBLISH FAIL"])
            wait_for_error(c, "paths cannot contain spaces")
            self.assertEqual(c.run("LIST_CONTENT alice"), ["c> LIST_CONTENT OK"])  # nothing was published

    def test_user_already_connected_says_how_to_recover(self):
        with Client(self.t.port) as a, Client(self.t.port) as b:
            a.run("REGISTER alice")
            a.run("CONNECT alice")
            self.assertEqual(b.run("CONNECT alice"), ["c> USER ALREADY CONNECTED"])
            wait_for_error(b, "run DISCONNECT alice here, then CONNECT alice again")


class Targets(ShellCase):
    def test_get_file_into_a_directory_lands_under_the_remote_name(self):
        src = tempfile.mkdtemp(prefix="peerdex-src-")
        try:
            with open(os.path.join(src, "song.ogg"), "wb") as f:
                f.write(b"music" * 1000)
            with Client(self.t.port, cwd=src) as owner, Client(self.t.port, cwd=self.dir) as getter:
                for line in ["REGISTER owner", "CONNECT owner", "PUBLISH song.ogg a song"]:
                    self.assertTrue(owner.run(line)[0].endswith("OK"), line)
                getter.run("REGISTER getter")
                getter.run("CONNECT getter")
                remote = os.path.join(src, "song.ogg")
                self.assertEqual(getter.run("GET_FILE owner %s ." % remote), ["c> GET_FILE OK"])
                sub = os.path.join(self.dir, "sub")
                os.mkdir(sub)
                self.assertEqual(getter.run("GET_FILE owner %s %s" % (remote, sub)), ["c> GET_FILE OK"])
                for d in (self.dir, sub):
                    with open(os.path.join(d, "song.ogg"), "rb") as f:
                        self.assertEqual(f.read(), b"music" * 1000)
        finally:
            shutil.rmtree(src)

    def test_a_download_never_replaces_a_published_file(self):
        with open(os.path.join(self.dir, "mine.txt"), "w") as f:
            f.write("my own")
        with open(os.path.join(self.dir, "other.txt"), "w") as f:
            f.write("theirs")
        with Client(self.t.port, cwd=self.dir) as c:
            for line in ["REGISTER me", "CONNECT me", "PUBLISH mine.txt mine", "PUBLISH other.txt other"]:
                self.assertTrue(c.run(line)[0].endswith("OK"), line)
            self.assertEqual(c.run("GET_FILE me %s mine.txt" % os.path.join(self.dir, "other.txt")),
                             ["c> GET_FILE FAIL"])
            wait_for_error(c, "is a file you publish")
            with open(os.path.join(self.dir, "mine.txt")) as f:
                self.assertEqual(f.read(), "my own")
            self.assertEqual(c.run("STATS")[3], "\trequests: GET_FILE 0, LIST_FILES 0, PUT_FILE 0, GET_RANGE 0, GET_TREE 0, other 0")


class ExitStatus(ShellCase):
    def test_zero_when_every_command_succeeded_one_otherwise(self):
        script = "REGISTER zed\nCONNECT zed\nLIST_USERS\n"
        ok = subprocess.run([PEERDEX, "-s", "127.0.0.1", "-p", str(self.t.port), "--clock", "none"],
                            input=script.encode(), capture_output=True, timeout=scaled(30))
        self.assertEqual(ok.returncode, 0, ok)
        bad = subprocess.run([PEERDEX, "-s", "127.0.0.1", "-p", str(self.t.port), "--clock", "none"],
                             input=b"REGISTER zed\nCONNECT zed\n", capture_output=True, timeout=scaled(30))
        self.assertEqual(bad.returncode, 1, bad)  # USERNAME IN USE
        self.assertIn(b"c> USERNAME IN USE", bad.stdout)


class OneShotArguments(Base):
    def test_an_empty_upload_name_is_refused(self):
        r = subprocess.run([PEERDEX, "upload", os.path.join(self.dir, "kept.txt"), "-n", ""],
                           capture_output=True, timeout=scaled(30))
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"-n needs a file name, not an empty string", r.stderr)

    def test_unknown_options_and_stray_arguments_say_which(self):
        r = subprocess.run([PEERDEX, "--bogus"], capture_output=True, timeout=scaled(30))
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.decode().splitlines()[-1], "Try 'peerdex --help' for the options.")
        self.assertLess(len(r.stderr.splitlines()), 3)  # not the whole help text
        r = subprocess.run([PEERDEX, "ls", "extra"], capture_output=True, timeout=scaled(30))
        self.assertIn(b"unexpected argument 'extra'", r.stderr)


if __name__ == "__main__":
    unittest.main()
