"""Verified, resumable downloads and the uploader's limits (peerdex-protocol(7), FILE RANGES;
peerdex(1), RESUMING DOWNLOADS): GET_TREE and GET_RANGE on the wire, every byte of `peerdex
download` checked against the file's content id, a lying server named and its bad leaf cut
off, kill -9 and the same command resuming from what was verified, a file changed behind
the server's back refused by its id, --upload-slots served in order."""

import os
import re
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import unittest

from harness import HOST, Client, Reader, Tracker, enc, files_open_in, random_file, read_all, scaled, sha, slow_rate, wait_until
from test_serve import Serve

PEERDEX = os.environ["PEERDEX"]
MIB = 1 << 20


def peerdex_hash(path):
    out = subprocess.run([PEERDEX, "hash", "--no-cache", path], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def download(port, name, cwd, *args, env=None):
    return subprocess.run([PEERDEX, "download", "-H", HOST, "-p", str(port), name] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=scaled(120), env=env)


def tree_reply(raw):
    """GET_TREE's reply: code, size, id, count, leaves."""
    code = raw[0]
    if code != 0:
        return code, None, None, []
    size, ident, count, rest = raw[1:].split(b"\0", 3)
    leaves = [rest[i:i + 32] for i in range(0, len(rest), 32)]
    assert int(count) == len(leaves) and len(rest) == 32 * len(leaves), raw[:80]
    return code, int(size), ident.decode(), leaves


class LyingServer(socketserver.ThreadingTCPServer):
    """Gives the true tree of `path` and its bytes, with one byte flipped at `flip`."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tree, path, flip):
        self.tree, self.path, self.flip = tree, path, flip
        super().__init__((HOST, 0), LyingHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class LyingHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data = b""
        while data.count(b"\0") < 2 or (data.startswith(b"GET_RANGE") and data.count(b"\0") < 4):
            more = self.request.recv(4096)
            if not more:
                return
            data += more
        fields = data.split(b"\0")
        if fields[0] == b"GET_TREE":
            self.request.sendall(self.server.tree)
            return
        offset, length = int(fields[2]), int(fields[3])
        with open(self.server.path, "rb") as f:
            f.seek(offset)
            body = bytearray(f.read(length))
        if offset <= self.server.flip < offset + length:
            body[self.server.flip - offset] ^= 0x40
        try:
            self.request.sendall(b"\0" + str(os.path.getsize(self.server.path)).encode() + b"\0" + bytes(body))
        except OSError:
            pass  # the downloader stops reading at the bad leaf


class VerifiedDownloads(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.shared = os.path.join(self.tmp.name, "shared")
        self.dest = os.path.join(self.tmp.name, "dest")
        os.mkdir(self.shared)
        os.mkdir(self.dest)
        # The server's tree cache and the client's, apart from the user's.
        self.env = dict(os.environ, XDG_CACHE_HOME=os.path.join(self.tmp.name, "cache"))

    def tearDown(self):
        self.tmp.cleanup()

    def partial_from_liar(self, srv, path, flip):
        """Downloads f.bin from a server that gives srv's tree and flips the byte at `flip`:
        the verified leaves before it stay in the partial."""
        liar = LyingServer(srv.request(enc("GET_TREE", "f.bin")), path, flip=flip)
        try:
            return download(liar.port, "f.bin", self.dest, env=self.env), liar.port
        finally:
            liar.shutdown()
            liar.server_close()

    def leftovers(self):
        return sorted(os.listdir(self.dest))

    def test_tree_and_range_on_the_wire(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 3 * MIB + 5)
        with Serve(self.shared) as srv:
            code, size, ident, leaves = tree_reply(srv.request(enc("GET_TREE", "f.bin")))
            self.assertEqual((code, size, len(leaves)), (0, 3 * MIB + 5, 4))
            self.assertEqual(ident, peerdex_hash(path))
            with open(path, "rb") as f:
                f.seek(MIB - 2)
                want = f.read(7)
            self.assertEqual(srv.request(enc("GET_RANGE", "f.bin", str(MIB - 2), "7")),
                             b"\0" + str(3 * MIB + 5).encode() + b"\0" + want)
            # Outside the file, not shared, not numbers.
            self.assertEqual(srv.request(enc("GET_RANGE", "f.bin", str(3 * MIB), str(6))), b"\x02")
            self.assertEqual(srv.request(enc("GET_RANGE", "nope.bin", "0", "1")), b"\x01")
            self.assertEqual(srv.request(enc("GET_TREE", "nope.bin")), b"\x01")
            self.assertEqual(srv.request(enc("GET_RANGE", "f.bin", "x", "1")), b"\x02")
            self.assertEqual(srv.request(enc("GET_TREE", "../f.bin")), b"\x01")
            st = srv.stats()
            self.assertTrue(st["requests"].startswith("GET_FILE 0, LIST_FILES 0, PUT_FILE 0, GET_RANGE 4, GET_TREE 3"),
                            st["requests"])
            self.assertEqual(st["trees sent"], "1")

    def test_download_is_verified_and_leaves_nothing_else(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 5 * MIB + 123)
        with Serve(self.shared) as srv:
            r = download(srv.port, "f.bin", self.dest, "-v", "--id", peerdex_hash(path), env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("every byte of f.bin matches " + peerdex_hash(path), r.stderr)
            self.assertEqual(sha(os.path.join(self.dest, "f.bin")), sha(path))
            self.assertEqual(self.leftovers(), ["f.bin"])
            st = srv.stats()
            self.assertEqual(st["ranges sent"], "1")
            self.assertEqual(st["files downloaded"], "0")

    def test_lying_server_is_named_and_its_bad_leaf_cut_off(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 6 * MIB)
        with Serve(self.shared) as srv:
            r, liar_port = self.partial_from_liar(srv, path, flip=2 * MIB + 777)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("the server at 127.0.0.1:%d sent bad data: bytes %d to %d do not match" %
                          (liar_port, 2 * MIB, 3 * MIB), r.stderr)
            # Nothing at the target name; the two good leaves before the bad one are kept.
            self.assertEqual(self.leftovers(), [".f.bin.peerdex-part", ".f.bin.peerdex-part.rec"])
            self.assertEqual(os.path.getsize(os.path.join(self.dest, ".f.bin.peerdex-part")), 2 * MIB)
            # An honest server finishes it from there.
            r = download(srv.port, "f.bin", self.dest, env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("resumed f.bin: 2.0 MiB of 6.0 MiB were already here", r.stderr)
            self.assertEqual(sha(os.path.join(self.dest, "f.bin")), sha(path))
            self.assertEqual(self.leftovers(), ["f.bin"])

    def test_file_changed_behind_the_server_is_refused_by_its_id(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 3 * MIB)
        published = peerdex_hash(path)
        with Serve(self.shared) as srv:
            self.assertEqual(tree_reply(srv.request(enc("GET_TREE", "f.bin")))[2], published)  # now cached
            # A few bytes flipped in the middle; size and modification time put back.
            stamp = os.path.join(self.tmp.name, "stamp")
            subprocess.run(["touch", "-r", path, stamp], check=True)
            with open(path, "r+b") as f:
                f.seek(MIB + 100)
                f.write(b"\xff\x00\xff")
            subprocess.run(["touch", "-r", stamp, path], check=True)
            r = download(srv.port, "f.bin", self.dest, "--id", published, env=self.env)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("the server at 127.0.0.1:%d serves a different file than the one published" % srv.port,
                          r.stderr)
            self.assertEqual(self.leftovers(), [])

    def test_kill_9_then_the_same_command_resumes(self):
        size = 40 * MIB
        path = os.path.join(self.shared, "f.bin")
        random_file(path, size)
        with Serve(self.shared, "--upload-rate", "16M") as srv:
            part = os.path.join(self.dest, ".f.bin.peerdex-part")
            argv = [PEERDEX, "download", "-q", "-H", HOST, "-p", str(srv.port), "f.bin"]
            victim = subprocess.Popen(argv, cwd=self.dest, env=self.env)
            # Cut somewhere past the first leaves, before the end.
            cut = 3 * MIB + int.from_bytes(os.urandom(4), "big") % (20 * MIB)
            wait_until(lambda: os.path.exists(part) and os.path.getsize(part) >= cut, timeout=scaled(60),
                       what="%d bytes in the partial" % cut)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            self.assertFalse(os.path.exists(os.path.join(self.dest, "f.bin")))
            had = os.path.getsize(part)
            # The server may still be writing to the dead socket (slowly, under emulation): count from
            # the moment it has closed that connection, or its last writes land in the resume's share.
            wait_until(lambda: srv.stats()["connections"].endswith("(open 0)"), timeout=scaled(30),
                       what="the server closing the killed download's connection")
            sent_before = int(srv.stats()["bytes sent"].split()[0])
            r = subprocess.run(argv[:2] + argv[3:], cwd=self.dest, env=self.env, capture_output=True, text=True,
                               timeout=scaled(120))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("resumed f.bin:", r.stderr)
            self.assertEqual(sha(os.path.join(self.dest, "f.bin")), sha(path))
            self.assertEqual(self.leftovers(), ["f.bin"])
            sent_again = int(srv.stats()["bytes sent"].split()[0]) - sent_before
            tree_bytes = 100 + 32 * 40
            # The missing part, plus at most the leaf cut halfway, plus the tree and headers.
            self.assertLessEqual(sent_again, size - had + MIB + tree_bytes)
            self.assertGreaterEqual(sent_again, size - had)

    def test_no_resume_starts_over(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 4 * MIB)
        with Serve(self.shared) as srv:
            self.partial_from_liar(srv, path, flip=3 * MIB + 1)
            self.assertEqual(os.path.getsize(os.path.join(self.dest, ".f.bin.peerdex-part")), 3 * MIB)
            sent_before = int(srv.stats()["bytes sent"].split()[0])
            r = download(srv.port, "f.bin", self.dest, "--no-resume", env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("resumed", r.stderr)
            self.assertGreaterEqual(int(srv.stats()["bytes sent"].split()[0]) - sent_before, 4 * MIB)
            self.assertEqual(sha(os.path.join(self.dest, "f.bin")), sha(path))
            self.assertEqual(self.leftovers(), ["f.bin"])

    def test_partial_of_another_file_is_dropped(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 4 * MIB)
        with Serve(self.shared) as srv:
            self.partial_from_liar(srv, path, flip=3 * MIB + 1)
            random_file(path, 4 * MIB)  # the server's file is now another one
            r = download(srv.port, "f.bin", self.dest, env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("resumed", r.stderr)
            self.assertEqual(sha(os.path.join(self.dest, "f.bin")), sha(path))

    def test_no_verify_is_a_plain_get_file(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 2 * MIB + 1)
        with Serve(self.shared) as srv:
            r = download(srv.port, "f.bin", self.dest, "--no-verify", "-v", env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("matches", r.stderr)
            self.assertEqual(sha(os.path.join(self.dest, "f.bin")), sha(path))
            st = srv.stats()
            self.assertTrue(st["requests"].startswith("GET_FILE 1, LIST_FILES 0, PUT_FILE 0, GET_RANGE 0, GET_TREE 0"),
                            st["requests"])
            r = download(srv.port, "f.bin", self.dest, "--no-verify", "--id", peerdex_hash(path), env=self.env)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--id asks for the verification --no-verify turns off", r.stderr)

    def test_an_empty_file_is_checked_by_its_tree(self):
        empty = os.path.join(self.shared, "empty")
        open(empty, "wb").close()
        hello = os.path.join(self.tmp.name, "hello")
        with open(hello, "wb") as f:
            f.write(b"hello")
        with Serve(self.shared) as srv:
            r = download(srv.port, "empty", self.dest, "--id", peerdex_hash(empty), env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(os.path.getsize(os.path.join(self.dest, "empty")), 0)
            # A peer claiming 0 bytes with the tree of "hello" would pass no byte through the
            # leaf check: the tree itself is refused.
            tree = srv.request(enc("GET_TREE", "empty"))
        with Serve(os.path.dirname(hello)) as srv2:
            hello_tree = srv2.request(enc("GET_TREE", "hello"))
        _, _, hello_id, leaves = tree_reply(hello_tree)
        lie = b"\0" + enc(0, hello_id, 1) + leaves[0]
        liar = LyingServer(lie, empty, flip=-1)
        try:
            r = download(liar.port, "empty", self.dest, "-d", "fake", "--id", hello_id, env=self.env)
        finally:
            liar.shutdown()
            liar.server_close()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("sent the hash tree of a non-empty file for an empty one", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dest, "fake")))
        self.assertTrue(tree.startswith(b"\0"))

    def test_a_queued_download_waits_past_its_stall_timeout(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 3 * MIB)
        with Serve(self.shared, "--upload-slots", "1", "--upload-rate", "1M") as srv:
            argv = [PEERDEX, "download", "-q", "-H", HOST, "-p", str(srv.port), "--timeout", "1", "f.bin"]
            first_dir, second_dir = os.path.join(self.dest, "1"), os.path.join(self.dest, "2")
            os.mkdir(first_dir)
            os.mkdir(second_dir)
            first = subprocess.Popen(argv, cwd=first_dir, env=self.env)
            wait_until(lambda: srv.stats()["upload slots"].startswith("1 in use"), what="the first transfer")
            # The second waits about 3 s for the slot, three times its --timeout: no byte of
            # its reply moves meanwhile, and that is not a stall.
            second = subprocess.run(argv, cwd=second_dir, env=self.env, capture_output=True, text=True,
                                    timeout=scaled(60))
            self.assertEqual(first.wait(timeout=scaled(60)), 0)
            self.assertEqual(second.returncode, 0, second.stderr)
            self.assertEqual(sha(os.path.join(second_dir, "f.bin")), sha(path))

    def test_a_silent_course_peer_gets_a_plain_get_file(self):
        body = b"from a course peer that says nothing to what it does not know"

        class Silent(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        class Handler(socketserver.BaseRequestHandler):
            """Answers GET_FILE; stays silent on GET_TREE, an operation it does not know."""

            def handle(self):
                data = self.request.recv(4096)
                if data.startswith(b"GET_TREE"):
                    self.request.recv(4096)  # silent until the client gives up and closes
                    return
                self.request.sendall(b"\0" + enc(len(body)) + body)

        srv = Silent((HOST, 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            r = download(srv.server_address[1], "/f.txt", self.dest, "--timeout", "1", env=self.env)
        finally:
            srv.shutdown()
            srv.server_close()
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.dest, "f.txt"), "rb") as f:
            self.assertEqual(f.read(), body)

    def test_upload_slots_serve_one_at_a_time_in_order(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 6 * MIB)
        with Serve(self.shared, "--upload-slots", "1", "--upload-rate", slow_rate(6 * MIB)) as srv:
            procs = []
            for i in range(3):
                d = os.path.join(self.dest, str(i))
                os.mkdir(d)
                procs.append(subprocess.Popen([PEERDEX, "download", "-q", "-H", HOST, "-p", str(srv.port), "f.bin"],
                                              cwd=d, env=self.env))
                # Each in the queue before the next starts: the order of arrival is known.
                wait_until(lambda: re.match(r"1 in use of 1, %d waiting" % i, srv.stats()["upload slots"]),
                           what="%d downloads waiting" % i)
            ends = []
            for i, p in enumerate(procs):
                self.assertEqual(p.wait(timeout=scaled(120)), 0)
                ends.append(os.stat(os.path.join(self.dest, str(i), "f.bin")).st_mtime_ns)
                self.assertEqual(sha(os.path.join(self.dest, str(i), "f.bin")), sha(path))
            self.assertEqual(ends, sorted(ends), "served in the order they came")
            self.assertEqual(srv.stats()["upload slots"], "0 in use of 1, 0 waiting")



class ShellDownloads(unittest.TestCase):
    """The shell's GET_FILE learns the id its owner published from the tracker (peerdex/2)
    and holds the owner's peer to it."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.t = Tracker("-q")

    def tearDown(self):
        self.t.stop()
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def owner(self, *args):
        c = Client(self.t.port, *args, cwd=self.dir)
        self.assertEqual(c.run("REGISTER alice"), ["c> REGISTER OK"])
        self.assertEqual(c.run("CONNECT alice"), ["c> CONNECT OK"])
        return c

    def downloader(self, user, *args):
        c = Client(self.t.port, *args, cwd=self.dir)
        c.run("REGISTER " + user)
        self.assertEqual(c.run("CONNECT " + user), ["c> CONNECT OK"])
        return c

    def test_published_id_travels_and_a_changed_file_is_refused(self):
        random_file(self.path("f.bin"), 3 * MIB + 7)
        with self.owner() as a, self.downloader("bob") as b:
            self.assertEqual(a.run("PUBLISH f.bin some data"), ["c> PUBLISH OK"])
            # The tracker holds the size and id the shell hashed (peerdex/2's LIST_CONTENT).
            with self.t.connect() as s:
                s.sendall(enc("HELLO", "peerdex/2", "LIST_CONTENT", "bob", "alice"))
                r = Reader(s)
                self.assertEqual((r.byte(), r.field()), (0, "peerdex/2"))
                self.assertEqual((r.byte(), r.field()), (0, "1"))
                self.assertEqual([r.field() for _ in range(4)],
                                 [self.path("f.bin"), "some data", str(3 * MIB + 7), peerdex_hash(self.path("f.bin"))])
            self.assertEqual(b.run("GET_FILE alice %s %s" % (self.path("f.bin"), self.path("copy1"))),
                             ["c> GET_FILE OK"])
            self.assertEqual(sha(self.path("copy1")), sha(self.path("f.bin")))
            # Bytes flipped behind the owner's back, size and modification time put back.
            stamp = self.path("stamp")
            subprocess.run(["touch", "-r", self.path("f.bin"), stamp], check=True)
            with open(self.path("f.bin"), "r+b") as f:
                f.seek(MIB + 9)
                f.write(b"\x00\xff\x00")
            subprocess.run(["touch", "-r", stamp, self.path("f.bin")], check=True)
            self.assertEqual(b.run("GET_FILE alice %s %s" % (self.path("f.bin"), self.path("copy2"))),
                             ["c> GET_FILE FAIL"])
            wait_until(lambda: any("alice's peer at 127.0.0.1:" in e and "serves a different file than the one "
                                   "published" in e for e in b.errors), what="the refusal naming alice's peer")
            self.assertFalse(os.path.exists(self.path("copy2")))
            self.assertFalse([n for n in os.listdir(self.dir) if n.startswith(".copy2")])

    def test_list_content_and_a_new_session_see_every_publication(self):
        for name in ("a.txt", "b.txt"):
            with open(self.path(name), "w") as f:
                f.write("file " + name)
        a = self.owner()
        self.assertEqual(a.run("PUBLISH a.txt first file"), ["c> PUBLISH OK"])
        self.assertEqual(a.run("PUBLISH b.txt second"), ["c> PUBLISH OK"])
        self.assertEqual(a.run("LIST_CONTENT alice"),
                         ["c> LIST_CONTENT OK", "\t" + self.path("a.txt"), "\t" + self.path("b.txt")])
        self.assertEqual(a.quit()[-1], "+++ FINISHED +++")
        # A new shell of the same user serves what the tracker says it published.
        with Client(self.t.port, cwd=self.dir) as again, self.downloader("bob") as b:
            self.assertEqual(again.run("CONNECT alice"), ["c> CONNECT OK"])
            self.assertEqual(b.run("GET_FILE alice %s %s" % (self.path("b.txt"), self.path("got"))),
                             ["c> GET_FILE OK"])
            with open(self.path("got")) as f:
                self.assertEqual(f.read(), "file b.txt")

    def test_a_queued_request_for_a_file_deleted_meanwhile_is_refused(self):
        random_file(self.path("big.bin"), 4 * MIB)
        with open(self.path("small.txt"), "w") as f:
            f.write("small")
        with self.owner("--upload-slots", "1", "--upload-rate", slow_rate(MIB)) as a, self.downloader("bob") as b, \
                self.downloader("carol") as c:
            self.assertEqual(a.run("PUBLISH big.bin big"), ["c> PUBLISH OK"])
            self.assertEqual(a.run("PUBLISH small.txt small"), ["c> PUBLISH OK"])
            b.proc.stdin.write(("GET_FILE alice %s %s\n" % (self.path("big.bin"), self.path("b.bin"))).encode())
            b.proc.stdin.flush()
            wait_until(lambda: "1 in use of 1, 0 waiting" in "".join(a.run("STATS")), what="bob's transfer")
            c.proc.stdin.write(("GET_FILE alice %s %s\n" % (self.path("small.txt"), self.path("c.txt"))).encode())
            c.proc.stdin.flush()
            wait_until(lambda: "1 in use of 1, 1 waiting" in "".join(a.run("STATS")), what="carol queued")
            self.assertEqual(a.run("DELETE small.txt"), ["c> DELETE OK"])
            self.assertEqual(b.run("LIST_USERS")[0], "c> GET_FILE OK")
            self.assertEqual(c.run("LIST_USERS")[0], "c> GET_FILE FAIL, FILE NOT EXIST")
            self.assertFalse(os.path.exists(self.path("c.txt")))

    def test_ctrl_c_while_publish_hashes_publishes_nothing(self):
        with open(self.path("huge.bin"), "wb") as f:
            f.truncate(64 << 30)  # sparse: tens of seconds of hashing, no disk
        with self.owner() as a:
            a.proc.stdin.write(b"PUBLISH huge.bin too big to wait for\n")
            a.proc.stdin.flush()
            wait_until(lambda: files_open_in(a.proc.pid, self.dir), what="the file open for hashing")
            a.proc.send_signal(signal.SIGINT)
            self.assertEqual(a.run("LIST_CONTENT alice"), ["c> PUBLISH FAIL", "c> LIST_CONTENT OK"])
            wait_until(lambda: any("interrupted while hashing" in e for e in a.errors), what="the reason")
            self.assertEqual(a.quit(), ["c> DISCONNECT OK", "+++ FINISHED +++"])

    def test_kill_9_of_the_shell_then_the_same_get_file_resumes(self):
        size = 40 * MIB
        random_file(self.path("f.bin"), size)
        with self.owner("--upload-rate", "16M") as a:
            self.assertEqual(a.run("PUBLISH f.bin big"), ["c> PUBLISH OK"])
            target = self.path("copy.bin")
            part = self.path(".copy.bin.peerdex-part")
            b = self.downloader("bob")
            b.proc.stdin.write(("GET_FILE alice %s %s\n" % (self.path("f.bin"), target)).encode())
            b.proc.stdin.flush()
            cut = 3 * MIB + int.from_bytes(os.urandom(4), "big") % (20 * MIB)
            wait_until(lambda: os.path.exists(part) and os.path.getsize(part) >= cut, timeout=scaled(60),
                       what="%d bytes in the partial" % cut)
            b.proc.kill()
            b.proc.wait()
            self.assertFalse(os.path.exists(target))
            had = os.path.getsize(part)

            def stats():
                return dict(line[1:].split(": ", 1) for line in a.run("STATS")[1:])

            def sent():
                return int(stats()["bytes sent"].split()[0])

            # As above: count from the moment the owner has closed the killed download's connection,
            # or its last writes to the dead socket (slow under emulation) land in the resume's share.
            wait_until(lambda: stats()["connections"].endswith("(open 0)"), timeout=scaled(30),
                       what="the owner closing the killed download's connection")
            before = sent()
            with self.downloader("carol") as c:
                self.assertEqual(c.run("GET_FILE alice %s %s" % (self.path("f.bin"), target)), ["c> GET_FILE OK"])
                wait_until(lambda: any("GET_FILE: resumed %s" % target in e for e in c.errors),
                           what="the resume noted")
            self.assertEqual(sha(target), sha(self.path("f.bin")))
            self.assertFalse(os.path.exists(part))
            # The missing part, plus at most the leaf cut halfway, the tree and headers.
            again = sent() - before
            self.assertLessEqual(again, size - had + MIB + 100 + 32 * 40)
            self.assertGreaterEqual(again, size - had)

if __name__ == "__main__":
    unittest.main()
