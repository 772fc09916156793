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

from harness import HOST, enc, random_file, read_all, scaled, sha, wait_until
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
            tree = srv.request(enc("GET_TREE", "f.bin"))
            honest = srv.port
            liar = LyingServer(tree, path, flip=2 * MIB + 777)
            try:
                r = download(liar.port, "f.bin", self.dest, env=self.env)
            finally:
                liar.shutdown()
                liar.server_close()
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("the server at 127.0.0.1:%d sent bad data: bytes %d to %d do not match" %
                          (liar.port, 2 * MIB, 3 * MIB), r.stderr)
            # Nothing at the target name; the two good leaves before the bad one are kept.
            self.assertEqual(self.leftovers(), [".f.bin.peerdex-part", ".f.bin.peerdex-part.rec"])
            self.assertEqual(os.path.getsize(os.path.join(self.dest, ".f.bin.peerdex-part")), 2 * MIB)
            # An honest server finishes it from there.
            r = download(honest, "f.bin", self.dest, env=self.env)
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
            tree = srv.request(enc("GET_TREE", "f.bin"))
            liar = LyingServer(tree, path, flip=3 * MIB + 1)
            try:
                download(liar.port, "f.bin", self.dest, env=self.env)
            finally:
                liar.shutdown()
                liar.server_close()
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
            tree = srv.request(enc("GET_TREE", "f.bin"))
            liar = LyingServer(tree, path, flip=3 * MIB + 1)
            try:
                download(liar.port, "f.bin", self.dest, env=self.env)
            finally:
                liar.shutdown()
                liar.server_close()
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

    def test_upload_slots_serve_one_at_a_time_in_order(self):
        path = os.path.join(self.shared, "f.bin")
        random_file(path, 6 * MIB)
        with Serve(self.shared, "--upload-slots", "1", "--upload-rate", "6M") as srv:
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


if __name__ == "__main__":
    unittest.main()
