"""Content ids (peerdex-protocol(7), CONTENT IDS): `peerdex hash` names each file by the root
of its SHA-256 tree, computed here apart from the rules of that page, and keeps the trees
in the user's cache directory."""

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import TIMEOUT

PEERDEX = os.environ["PEERDEX"]
MIB = 1 << 20


def expected_id(data):
    """The rules of peerdex-protocol(7), CONTENT IDS, written again with hashlib."""
    leaf_size = MIB
    while -(-len(data) // leaf_size) > 65536:
        leaf_size *= 2
    level = [hashlib.sha256(b"\0" + data[i:i + leaf_size]).digest() for i in range(0, len(data), leaf_size)]
    level = level or [hashlib.sha256(b"\0").digest()]
    while len(level) > 1:
        level = [hashlib.sha256(b"\1" + level[i] + level[i + 1]).digest() if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return "sha256:" + level[0].hex()


class Hash(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-ids-")
        self.cache = os.path.join(self.dir, "cache")
        self.env = dict(os.environ, XDG_CACHE_HOME=self.cache)

    def tearDown(self):
        shutil.rmtree(self.dir, True)

    def hash(self, *args):
        return subprocess.run([PEERDEX, "hash"] + list(args), capture_output=True, text=True, env=self.env,
                              timeout=TIMEOUT)

    def test_ids_follow_the_protocol_page(self):
        files = []
        for size in (0, 1, MIB - 1, MIB, MIB + 1, 5 * MIB // 2 + 7):
            path = os.path.join(self.dir, "f%d" % size)
            data = os.urandom(size)
            with open(path, "wb") as f:
                f.write(data)
            files.append((path, data))
        r = self.hash(*[p for p, _ in files])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["%s %d %s" % (expected_id(d), len(d), p) for p, d in files])
        again = self.hash(*[p for p, _ in files])  # from the cache now: the same answers
        self.assertEqual(again.stdout, r.stdout)

    def test_trees_are_cached_privately_and_only_when_asked(self):
        path = os.path.join(self.dir, "shared.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(3 * MIB))
        self.assertEqual(self.hash("--no-cache", path).returncode, 0)
        self.assertFalse(os.path.exists(self.cache))
        self.assertEqual(self.hash(path).returncode, 0)
        trees = os.path.join(self.cache, "peerdex", "trees")
        self.assertEqual(stat.S_IMODE(os.stat(trees).st_mode), 0o700)
        st = os.stat(path)
        entry = os.path.join(trees, "%x-%x" % (st.st_dev, st.st_ino))
        self.assertEqual(stat.S_IMODE(os.stat(entry).st_mode), 0o600)
        self.assertEqual(os.path.getsize(entry), len("peerdex-tree 1 %d %d %d 3\n" % (
            st.st_size, st.st_mtime_ns, st.st_ctime_ns)) + 4 * 32)  # 3 leaves and the root

    def test_errors_name_the_file_and_the_rest_are_hashed(self):
        good = os.path.join(self.dir, "good")
        with open(good, "wb") as f:
            f.write(b"hello")
        r = self.hash(os.path.join(self.dir, "missing"), self.dir, good)
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing: No such file or directory", r.stderr)
        self.assertIn("%s: not a regular file" % self.dir, r.stderr)
        self.assertEqual(r.stdout, "%s 5 %s\n" % (expected_id(b"hello"), good))
        r = self.hash()
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: peerdex hash", r.stderr)
        r = self.hash("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: peerdex hash", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
