"""Sizes and offsets past 2^31 and 2^32 on the peer protocol (peerdex-protocol(7), PEER REQUESTS
and FILE RANGES), and dates past 2038: a 32-bit build (tools/cross.sh armhf) must get them
right as a 64-bit one does. The file is sparse, so 6 GiB cost no disk; only the bytes asked for cross the wire."""

import os
import shutil
import socket
import tempfile
import unittest

from harness import HOST, Client, Reader, Tracker, enc, read_all
from test_serve import Serve, cli, list_files

GIB = 1 << 30
SIZE = 6 * GIB + 3
# (offset, bytes) written into the hole: across 2^31, across 2^32, past 5 GiB, the last bytes.
MARKS = [((1 << 31) - 2, b"2^31"), ((1 << 32) - 4, b"four GiB"), (5 * GIB + 7, b"five"), (SIZE - 8, b"the end!")]


class LargeFiles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="peerdex-large-")
        cls.dir = os.path.join(cls.tmp, "share")
        os.mkdir(cls.dir)
        with open(os.path.join(cls.dir, "big.bin"), "wb") as f:
            f.truncate(SIZE)
            for at, data in MARKS:
                f.seek(at)
                f.write(data)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def range_of(self, srv, offset, length):
        """GET_RANGE: (code, size field, the bytes)."""
        with srv.connect() as s:
            s.sendall(enc("GET_RANGE", "big.bin", str(offset), str(length)))
            r = Reader(s)
            code = r.byte()
            if code != 0:
                return code, None, None
            size = int(r.field())
            data = r.rest()
            while len(data) < length:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
            return code, size, data

    def test_ranges_across_2_31_and_2_32_and_at_the_end(self):
        with Serve(self.dir) as srv:
            for at, data in MARKS:
                self.assertEqual(self.range_of(srv, at, len(data)), (0, SIZE, data), at)
            # Around a mark: the hole reads as zeros on both sides.
            at, data = MARKS[1]
            self.assertEqual(self.range_of(srv, at - 3, len(data) + 6), (0, SIZE, b"\0" * 3 + data + b"\0" * 3))
            self.assertEqual(self.range_of(srv, SIZE, 0), (0, SIZE, b""))

    def test_ranges_outside_the_file_are_refused_without_wrapping(self):
        with Serve(self.dir) as srv:
            for offset, length in [(SIZE, 1), (SIZE - 1, 2), (1 << 32, SIZE), ((1 << 64) - 1, 2),
                                   (2, (1 << 64) - 1), (SIZE + (1 << 32), 0)]:
                self.assertEqual(self.range_of(srv, offset, length)[0], 2, (offset, length))

    def test_list_files_and_get_file_give_the_whole_size(self):
        with Serve(self.dir) as srv:
            self.assertEqual([(n, size) for n, size, _ in list_files(srv)], [("big.bin", SIZE)])
            with srv.connect() as s:
                s.sendall(enc("GET_FILE", "big.bin"))
                r = Reader(s)
                self.assertEqual(r.byte(), 0)
                self.assertEqual(int(r.field()), SIZE)
                while len(r.rest()) < 16:
                    r._fill()
                self.assertEqual(r.rest()[:16], b"\0" * 16)
                # The reader goes away after 16 bytes of 6 GiB: the server must simply stop.
                s.shutdown(socket.SHUT_RDWR)
            self.assertEqual(self.range_of(srv, MARKS[-1][0], 8)[2], MARKS[-1][1])  # still serving

    def test_an_upload_past_4_gib_is_measured_in_64_bits(self):
        # 2^32 + 1 KiB wraps to 1 KiB in 32 bits, under the cap: refused only if measured whole.
        with Serve(self.dir, "--max-upload", "2M") as srv:
            with srv.connect() as s:
                s.sendall(enc("PUT_FILE", "wraps", (1 << 32) + 1024))
                self.assertEqual(read_all(s), b"\x02")
            self.assertEqual(srv.request(enc("PUT_FILE", "fits", 1024) + b"z" * 1024), b"\x00")
        self.assertEqual(sorted(os.listdir(self.dir)), ["big.bin", "fits"])
        os.unlink(os.path.join(self.dir, "fits"))


class LargeLists(unittest.TestCase):
    """Replies longer than 64 KiB, read by the client's decoders: a 16-bit length or a 64 KiB
    buffer taken for the whole reply would cut them short."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="peerdex-lists-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_list_content_of_3000_paths_through_the_shell(self):
        paths = ["/a/path/long/enough/that/three/thousand/make/a/big/list/%05d" % i for i in range(3000)]
        t = Tracker("-q")
        try:
            s, r = t.hello()
            with s:
                s.sendall(enc("REGISTER", "many") + enc("CONNECT", "many", 777) +
                          b"".join(enc("PUBLISH", "many", p, "") for p in paths))
                self.assertEqual([r.byte() for _ in range(3002)], [0] * 3002)
                s.sendall(enc("LIST_CONTENT", "many", "many"))
                code, listed = r.list_reply(1)
                self.assertGreater(sum(len(p) + 1 for p in paths), 2 * 65536)
                self.assertEqual((code, listed), (0, [(p,) for p in paths]))
                with Client(t.port) as c:
                    self.assertEqual(c.run("REGISTER reader"), ["c> REGISTER OK"])
                    self.assertEqual(c.run("CONNECT reader")[0], "c> CONNECT OK")
                    self.assertEqual(c.run("LIST_CONTENT many"), ["c> LIST_CONTENT OK"] + ["\t" + p for p in paths])
        finally:
            t.stop()

    def test_list_files_of_2000_names_on_the_wire_and_through_ls(self):
        share = os.path.join(self.tmp, "share")
        os.mkdir(share)
        names = sorted("a-name-long-enough-that-two-thousand-make-a-list-past-64-KiB-%04d" % i for i in range(2000))
        for name in names:
            open(os.path.join(share, name), "wb").close()
        with Serve(share) as srv:
            self.assertEqual([n for n, _, _ in list_files(srv)], names)
            r = cli(srv, "ls", "--bytes")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([line.split()[3] for line in r.stdout.decode().splitlines()], names)


class Past2038(unittest.TestCase):
    """A file dated after 2038 (where a 32-bit time_t ends): served, listed with its date on
    the wire, and shown with it by `peerdex ls`. With a 32-bit time_t, stat() of it fails
    (EOVERFLOW) and the file would vanish from the listing."""

    def test_a_file_dated_2100_is_listed_with_its_date(self):
        tmp = tempfile.mkdtemp(prefix="peerdex-2038-")
        self.addCleanup(shutil.rmtree, tmp)
        tz = os.environ.get("TZ")
        os.environ["TZ"] = "UTC"  # for `peerdex ls`, run below
        self.addCleanup(lambda: os.environ.__setitem__("TZ", tz) if tz is not None else os.environ.pop("TZ"))
        later = 4102444800  # 2100-01-01 00:00:00 UTC
        with open(os.path.join(tmp, "later.txt"), "w") as f:
            f.write("from the future")
        os.utime(os.path.join(tmp, "later.txt"), (later, later))
        with Serve(tmp) as srv:
            self.assertEqual(list_files(srv), [("later.txt", 15, later)])
            r = cli(srv, "ls", "--bytes")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.decode().split(), ["2100-01-01", "00:00", "15", "later.txt"])
            with srv.connect() as s:
                s.sendall(enc("GET_FILE", "later.txt"))
                self.assertEqual(read_all(s), b"\x0015\x00from the future")


if __name__ == "__main__":
    unittest.main(verbosity=2)
