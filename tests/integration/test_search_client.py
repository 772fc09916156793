"""The shell's SEARCH and GET (peerdex(1), COMMANDS): against our tracker, and against a
course tracker (no HELLO, no SEARCH) through the client's own walk of LIST_CONTENT."""

import os
import shutil
import socket
import tempfile
import threading
import unittest

from harness import Client, Tracker, enc, wait_until


def said(client, text):
    """Waits for a standard error line holding `text` (stderr is a pipe of its own)."""
    wait_until(lambda: any(text in e for e in client.errors), what="%r on stderr" % text)


class SearchCommand(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-search-")
        self.t = Tracker()

    def tearDown(self):
        self.t.stop()
        shutil.rmtree(self.dir)

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def test_search_then_get_the_n_th_hit(self):
        os.makedirs(self.path("bob", "songs"))
        os.makedirs(self.path("alice"))
        with open(self.path("bob", "song.ogg"), "wb") as f:
            f.write(b"la la la" * 1000)
        with open(self.path("bob", "songs", "notes.txt"), "w") as f:
            f.write("chords")
        with Client(self.t.port, cwd=self.path("bob")) as bob, Client(self.t.port, cwd=self.path("alice")) as alice:
            self.assertEqual(alice.run("SEARCH song"), ["c> SEARCH FAIL, USER NOT CONNECTED"])
            for c, name in ((bob, "bob"), (alice, "alice")):
                c.run("REGISTER " + name)
                self.assertEqual(c.run("CONNECT " + name), ["c> CONNECT OK"])
            self.assertEqual(bob.run("PUBLISH song.ogg studio take"), ["c> PUBLISH OK"])
            self.assertEqual(bob.run("PUBLISH songs/notes.txt chords"), ["c> PUBLISH OK"])
            song, notes = self.path("bob", "song.ogg"), self.path("bob", "songs", "notes.txt")
            self.assertEqual(alice.run("search SONG"), ["c> SEARCH OK", "\tbob %s studio take" % song,
                                                        "\tbob %s chords" % notes])
            self.assertEqual(alice.run("SEARCH song -chords"), ["c> SEARCH OK", "\tbob %s studio take" % song])
            self.assertEqual(alice.run("SEARCH nothing-like-it"), ["c> SEARCH OK"])
            self.assertEqual(alice.run("SEARCH song"), ["c> SEARCH OK", "\tbob %s studio take" % song,
                                                        "\tbob %s chords" % notes])
            self.assertEqual(alice.run("GET 3"), ["c> GET_FILE FAIL"])
            said(alice, "give 1 to 2")
            self.assertEqual(alice.run("GET x"), ["c> GET_FILE FAIL"])
            self.assertEqual(alice.run("GET 1"), ["c> GET_FILE OK"])
            with open(self.path("alice", "song.ogg"), "rb") as f:
                self.assertEqual(f.read(), b"la la la" * 1000)
            self.assertEqual(alice.run("GET 2 mine.txt"), ["c> GET_FILE OK"])
            with open(self.path("alice", "mine.txt")) as f:
                self.assertEqual(f.read(), "chords")
            # A query out of the rules is refused before anything is sent, with the reason.
            self.assertEqual(alice.run("SEARCH -song"), ["c> SEARCH FAIL"])
            said(alice, "SEARCH: the query only excludes")
            self.assertEqual(alice.run("SEARCH"), ["c> Syntax error. Usage: SEARCH <terms...>"])


class CourseTracker:
    """A course tracker in a few lines: canonical requests only, one per connection; HELLO,
    SEARCH and anything else unknown are closed without a reply. No descriptions shown."""

    FIELDS = {b"REGISTER": 1, b"UNREGISTER": 1, b"CONNECT": 2, b"DISCONNECT": 1, b"PUBLISH": 3, b"DELETE": 2,
              b"LIST_USERS": 1, b"LIST_CONTENT": 2}

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.users = {}      # name -> (ip, port) or None
        self.content = {}    # name -> [paths] in publication order
        self.ops = []
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        self.sock.close()

    def _serve(self):
        while True:
            try:
                conn, (ip, _) = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\0" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                op = data.split(b"\0")[0]
                self.ops.append(op)
                if op not in self.FIELDS:
                    continue
                while data.count(b"\0") < 1 + self.FIELDS[op]:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                f = [x.decode() for x in data.split(b"\0")[1:1 + self.FIELDS[op]]]
                conn.sendall(self._answer(op, f, ip))

    def _answer(self, op, f, ip):
        u = f[0]
        if op == b"REGISTER":
            if u in self.users:
                return b"\x01"
            self.users[u], self.content[u] = None, []
            return b"\x00"
        if u not in self.users:
            return b"\x01"
        if op == b"CONNECT":
            self.users[u] = (ip, int(f[1]))
            return b"\x00"
        if op == b"DISCONNECT":
            self.users[u] = None
            return b"\x00"
        if op == b"PUBLISH":
            self.content[u].append(f[1])
            return b"\x00"
        if op == b"LIST_USERS":
            on = [(n, e) for n, e in self.users.items() if e]
            return b"\x00" + enc(len(on)) + b"".join(enc(n, e[0], e[1]) for n, e in on)
        if op == b"LIST_CONTENT":
            if f[1] not in self.users:
                return b"\x03"
            return b"\x00" + enc(len(self.content[f[1]])) + b"".join(enc(p) for p in self.content[f[1]])
        return b"\x04"


class AgainstACourseTracker(unittest.TestCase):
    def test_the_client_searches_by_itself(self):
        course = CourseTracker()
        d = tempfile.mkdtemp(prefix="peerdex-course-")
        try:
            with open(os.path.join(d, "Song_2.ogg"), "w") as f:
                f.write("second song")
            with open(os.path.join(d, "other.txt"), "w") as f:
                f.write("x")
            with Client(course.port, cwd=d) as bob, Client(course.port, "--search-walk", "2", cwd=d) as alice:
                for c, name in ((bob, "bob"), (alice, "alice")):
                    self.assertEqual(c.run("REGISTER " + name), ["c> REGISTER OK"])
                    self.assertEqual(c.run("CONNECT " + name), ["c> CONNECT OK"])
                self.assertEqual(bob.run("PUBLISH Song_2.ogg live"), ["c> PUBLISH OK"])
                self.assertEqual(bob.run("PUBLISH other.txt song list"), ["c> PUBLISH OK"])
                song = os.path.join(d, "Song_2.ogg")
                self.assertEqual(alice.run("SEARCH song"), ["c> SEARCH OK", "\tbob %s " % song])
                said(alice, "has no SEARCH")
                self.assertEqual(alice.run("SEARCH ogg -2"), ["c> SEARCH OK"])
                self.assertEqual(alice.run("SEARCH song_2"), ["c> SEARCH OK", "\tbob %s " % song])
                self.assertEqual(sum("has no SEARCH" in e for e in alice.errors), 1)  # said once
                self.assertEqual(alice.run("GET 1 got.ogg"), ["c> GET_FILE OK"])
                with open(os.path.join(d, "got.ogg")) as f:
                    self.assertEqual(f.read(), "second song")
                # --search-walk 2: a third connected user is beyond the walk, and it is said.
                course.users["carol"], course.content["carol"] = ("127.0.0.1", 9), ["/carol/song.mp3"]
                out = alice.run("SEARCH song")
                self.assertEqual(out[0], "c> SEARCH OK")
                said(alice, "searched the first 2 of 3 connected users")
                # Every SEARCH walked, and the note came once (stderr keeps its order).
                self.assertEqual(sum("has no SEARCH" in e for e in alice.errors), 1)
            self.assertNotIn(b"SEARCH", course.ops)  # never sent to a tracker without it
            self.assertIn(b"LIST_CONTENT", course.ops)
        finally:
            course.close()
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main(verbosity=2)
