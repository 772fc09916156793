"""The shell at a real terminal (a pseudo-terminal): line editing with history that
outlives the session, Tab completion of commands and user names, Ctrl-C cancelling a
stalled GET_FILE, and Ctrl-D ending the session on a line of its own."""

import os
import shutil
import tempfile
import unittest

from harness import Terminal, Tracker, files_open_in, scaled, wait_until
from test_user_errors import stalling_peer

PEERDEX = os.environ["PEERDEX"]
UP = "\x1b[A"


class Shell(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="peerdex-state-")
        self.dir = tempfile.mkdtemp(prefix="peerdex-term-")
        self.t = Tracker("-q")

    def tearDown(self):
        self.t.stop()
        shutil.rmtree(self.state)
        shutil.rmtree(self.dir)

    def shell(self):
        env = dict(os.environ, XDG_STATE_HOME=self.state)
        term = Terminal([PEERDEX, "-s", "127.0.0.1", "-p", str(self.t.port), "--clock", "none"], env=env)
        self.addCleanup(term.close)
        term.until("c> ")
        return term

    def run_line(self, term, keys, result):
        term.type(keys)
        return term.until(result)

    @unittest.skipUnless(os.environ.get("PEERDEX_LINE_EDITING") == "1", "built without line editing")
    def test_history_completion_and_ctrl_d(self):
        term = self.shell()
        self.run_line(term, "REGISTER alice\r", r"c> REGISTER OK")
        self.run_line(term, UP + "\r", r"c> USERNAME IN USE")  # Up: the last line again
        self.run_line(term, "CONN\t alice\r", r"c> CONNECT OK")  # Tab: a command word
        self.run_line(term, "LIST_U\t\r", r"c> LIST_USERS OK")
        self.run_line(term, "LIST_CONTENT ali\t\r", r"c> LIST_CONTENT OK")  # Tab: a name LIST_USERS showed
        term.until("c> ")
        term.type("\x04")  # Ctrl-D at the prompt
        term.until(r"\nc> DISCONNECT OK\r\n\+\+\+ FINISHED \+\+\+")  # not on the prompt's line
        self.assertEqual(term.wait(), 1)  # USERNAME IN USE failed
        with open(os.path.join(self.state, "peerdex", "history")) as f:
            self.assertIn("LIST_CONTENT", f.read())
        # A new session remembers the last one.
        again = self.shell()
        self.run_line(again, UP + "\r", r"c> LIST_CONTENT FAIL, USER NOT CONNECTED")

    def test_ctrl_c_cancels_a_stalled_get_file_and_returns_to_the_prompt(self):
        peer = stalling_peer()
        self.addCleanup(peer.close)
        self.t.user("slow", peer.port)
        term = self.shell()
        self.run_line(term, "REGISTER me\r", r"c> REGISTER OK")
        self.run_line(term, "CONNECT me\r", r"c> CONNECT OK")
        term.type("GET_FILE slow /big.iso %s\r" % os.path.join(self.dir, "big.iso"))
        wait_until(lambda: files_open_in(term.pid, self.dir), what="the download's file")
        term.type("\x03")  # Ctrl-C
        term.until(r"c> GET_FILE FAIL")
        self.assertEqual(os.listdir(self.dir), [])
        self.run_line(term, "LIST_USERS\r", r"c> LIST_USERS OK")  # back at the prompt, same session
        term.until("c> ")
        term.type("\x03")  # a second Ctrl-C, at the prompt, quits
        term.until(r"\+\+\+ FINISHED \+\+\+")
        self.assertEqual(term.wait(timeout=scaled(15)), 1)


if __name__ == "__main__":
    unittest.main()
