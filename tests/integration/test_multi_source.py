"""Downloads from every source at once (peerdex(1), GET_FILE and --sources;
peerdex-protocol(7), SOURCES and FILE RANGES): real peerdex clients publish the same file,
and one GET_FILE takes verified segments from all of them. Each source's own statistics
say what it sent; the downloaded file must be the published one byte for byte."""

import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import Client, Tracker, random_file, scaled, settled_stats, sha, slow_rate, wait_until

MIB = 1 << 20
USERS = ["alice", "bob", "carol", "dave"]


def bytes_sent(client):
    stats = settled_stats(lambda: dict(line[1:].split(": ", 1) for line in client.run("STATS")[1:]))
    return int(stats["bytes sent"].split()[0])


def copy_keeping_time(src, dst):
    shutil.copyfile(src, dst)
    shutil.copystat(src, dst)


def alter_keeping_time(path):
    """Flips one byte in every MiB of the file, then puts its size and modification time
    back: what a disk error or a careless program does behind the peer's back."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        for at in range(MIB // 2, st.st_size, MIB):
            f.seek(at)
            b = f.read(1)
            f.seek(at)
            f.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


class MultiSource(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.t = Tracker("-q")
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.__exit__(None, None, None)
        self.t.stop()
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def client(self, user, *args):
        c = Client(self.t.port, *args, cwd=self.dir)
        self.clients.append(c)
        self.assertEqual(c.run("REGISTER " + user), ["c> REGISTER OK"])
        self.assertEqual(c.run("CONNECT " + user), ["c> CONNECT OK"])
        return c

    def sources(self, n, size, rate):
        """n clients, each publishing its own copy of one file (the same content id)."""
        random_file(self.path("f.bin"), size)
        out = []
        for user in USERS[:n]:
            copy_keeping_time(self.path("f.bin"), self.path(user + ".bin"))
            c = self.client(user, "--upload-rate", rate)
            self.assertEqual(c.run("PUBLISH %s.bin the file" % user), ["c> PUBLISH OK"])
            out.append(c)
        return out

    def start_get(self, client, target, owner="alice"):
        client.proc.stdin.write(("GET_FILE %s %s %s\n" % (owner, self.path(owner + ".bin"), target)).encode())
        client.proc.stdin.flush()

    def test_every_source_sends_its_share_and_no_byte_twice(self):
        size = 48 * MIB
        srcs = self.sources(4, size, slow_rate(8 * MIB))
        eve = self.client("eve")
        self.assertEqual(eve.run("GET_FILE alice %s %s" % (self.path("alice.bin"), self.path("copy"))),
                         ["c> GET_FILE OK"])
        self.assertEqual(sha(self.path("copy")), sha(self.path("f.bin")))
        sent = [bytes_sent(c) for c in srcs]
        for user, n in zip(USERS, sent):
            self.assertGreaterEqual(n, size // 8, "%s sent too little of the file: %s" % (user, sent))
        # The GET_TREE reply (32 bytes a leaf) and headers aside, each byte was sent once.
        self.assertLess(sum(sent), size + 64 * 1024, sent)
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(["f.bin", "copy"] + [u + ".bin" for u in USERS]))

    def test_sources_1_takes_the_named_user_only(self):
        size = 8 * MIB
        srcs = self.sources(3, size, "0")
        eve = self.client("eve", "--sources", "1")
        self.assertEqual(eve.run("GET_FILE bob %s %s" % (self.path("bob.bin"), self.path("copy"))),
                         ["c> GET_FILE OK"])
        self.assertEqual(sha(self.path("copy")), sha(self.path("f.bin")))
        sent = [bytes_sent(c) for c in srcs]
        self.assertEqual(sent[0], 0, sent)
        self.assertGreaterEqual(sent[1], size, sent)
        self.assertEqual(sent[2], 0, sent)

    def test_a_source_with_an_altered_file_is_named_and_costs_one_segment(self):
        size = 48 * MIB
        srcs = self.sources(3, size, "8M")
        alter_keeping_time(self.path("carol.bin"))
        eve = self.client("eve")
        self.assertEqual(eve.run("GET_FILE alice %s %s" % (self.path("alice.bin"), self.path("copy"))),
                         ["c> GET_FILE OK"])
        self.assertEqual(sha(self.path("copy")), sha(self.path("f.bin")))
        wait_until(lambda: any("carol's peer at 127.0.0.1:" in e and "sent bad data" in e and "dropped it" in e
                               for e in eve.errors), what="carol named as a bad source")
        sent = [bytes_sent(c) for c in srcs]
        # The honest sources sent the file once; carol's bad bytes are at most the one
        # segment she was given (a third of half the file: 8 MiB), not the file.
        self.assertLess(sent[0] + sent[1], size + 64 * 1024, sent)
        self.assertGreater(sent[2], 0, sent)
        self.assertLessEqual(sent[2], 8 * MIB + 64 * 1024, sent)

    def test_a_source_killed_and_one_joining_midway(self):
        size = 96 * MIB
        srcs = self.sources(3, size, "2M")
        copy_keeping_time(self.path("f.bin"), self.path("dave.bin"))
        eve = self.client("eve")
        self.start_get(eve, self.path("copy"))
        wait_until(lambda: os.path.exists(self.path(".copy.peerdex-part")) and
                   os.path.getsize(self.path(".copy.peerdex-part")) > 4 * MIB, timeout=scaled(60),
                   what="the download under way")
        srcs[1].proc.kill()  # bob's peer vanishes mid-segment
        srcs[1].proc.wait()
        dave = self.client("dave", "--upload-rate", "8M")
        self.assertEqual(dave.run("PUBLISH dave.bin the file"), ["c> PUBLISH OK"])
        self.assertEqual(eve.run("STATS", timeout=scaled(180))[0], "c> GET_FILE OK")
        self.assertEqual(sha(self.path("copy")), sha(self.path("f.bin")))
        self.assertTrue(any("bob's peer at 127.0.0.1:" in e and "dropped it" in e for e in eve.errors), eve.errors)
        self.assertTrue(any("dave's peer at 127.0.0.1:" in e and "a new source" in e for e in eve.errors),
                        eve.errors)
        self.assertGreater(bytes_sent(dave), 0)

    def test_a_killed_downloader_resumes_from_every_source(self):
        size = 48 * MIB
        srcs = self.sources(3, size, slow_rate(4 * MIB))
        eve = self.client("eve")
        self.start_get(eve, self.path("copy"))
        wait_until(lambda: os.path.exists(self.path(".copy.peerdex-part")) and
                   os.path.getsize(self.path(".copy.peerdex-part")) > 24 * MIB, timeout=scaled(60),
                   what="the download under way")
        eve.proc.kill()
        eve.proc.wait()
        self.assertFalse(os.path.exists(self.path("copy")))
        before = [bytes_sent(c) for c in srcs]
        again = Client(self.t.port, cwd=self.dir)
        self.clients.append(again)
        # The killed shell left eve connected: its user takes her back.
        self.assertEqual(again.run("DISCONNECT eve"), ["c> DISCONNECT OK"])
        self.assertEqual(again.run("CONNECT eve"), ["c> CONNECT OK"])
        self.assertEqual(again.run("GET_FILE alice %s %s" % (self.path("alice.bin"), self.path("copy")),
                                   timeout=scaled(120)), ["c> GET_FILE OK"])
        self.assertEqual(sha(self.path("copy")), sha(self.path("f.bin")))
        self.assertTrue(any("resumed " in e and "were already here, verified" in e for e in again.errors),
                        again.errors)
        after = [bytes_sent(c) for c in srcs]
        second = [b - a for a, b in zip(before, after)]
        # The second run fetched only what the first had not written whole, from every source.
        self.assertLess(sum(second), size - 8 * MIB, second)
        self.assertTrue(all(n > 0 for n in second), second)
        self.assertEqual(sorted(n for n in os.listdir(self.dir) if n.startswith(".copy")), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
