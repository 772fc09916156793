"""`peerdex serve` and its one-shot clients (peerdex-protocol(7), FILE SERVER): round trips through the
real binaries, the name rule, symlinks, --read-only, --max-upload, uploads cut short,
many clients at once, statistics and a clean stop."""

import os
import random
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (FD_NOISE, quiet_fd_count, Daemon, HOST, Reader, Terminal, enc, fd_count, random_file, read_all, rss, scaled, sha,
                     settled_stats, wait_for_fds, wait_until)

PEERDEX = os.environ["PEERDEX"]


def content(path):
    with open(path, "rb") as f:
        return f.read()


class Serve(Daemon):
    def __init__(self, directory, *args):
        argv = [PEERDEX, "serve", "-H", HOST, "-p", "0", "-s", directory] + list(args)
        super().__init__(argv, r"serving .* on 127\.0\.0\.1:(\d+) ")
        self.port = int(self.match.group(1))

    def connect(self):
        return socket.create_connection((HOST, self.port), timeout=scaled(15))

    def request(self, data):
        """Sends raw bytes, returns everything until the server closes."""
        with self.connect() as s:
            s.sendall(data)
            return read_all(s)

    def stats(self):
        """SIGUSR1, then the block it prints, as a dict of raw values."""
        before = sum(1 for line in self.lines if line.startswith("uptime:"))
        self.send_signal(signal.SIGUSR1)
        wait_until(lambda: sum(1 for line in self.lines if line.startswith("files uploaded:")) > before,
                   what="a statistics block")
        start = [i for i, line in enumerate(self.lines) if line.startswith("uptime:")][-1]
        end = next(i for i in range(start, len(self.lines)) if self.lines[i].startswith("files uploaded:"))
        return dict(line.split(": ", 1) for line in self.lines[start:end + 1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def cli(server, *args, timeout=scaled(120)):
    return subprocess.run([PEERDEX, args[0], "-H", HOST, "-p", str(server.port)] + list(args[1:]),
                          capture_output=True, timeout=timeout)


def list_files(server):
    """LIST_FILES over the wire: [(name, size, mtime)]."""
    with server.connect() as s:
        s.sendall(enc("LIST_FILES"))
        r = Reader(s)
        assert r.byte() == 0
        n = int(r.field())
        return [(r.field(), int(r.field()), int(r.field())) for _ in range(n)]


class ServeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="peerdex-serve-")
        self.dir = os.path.join(self.tmp, "share")
        self.out = os.path.join(self.tmp, "out")
        os.mkdir(self.dir)
        os.mkdir(self.out)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def shared(self):
        return sorted(os.listdir(self.dir))

    def test_round_trips_of_empty_small_and_256_mib_files(self):
        sizes = {"empty": 0, "small.txt": 1000, "big.bin": 256 << 20}
        for name, size in sizes.items():
            random_file(os.path.join(self.tmp, name), size)
        with Serve(self.dir) as srv:
            for name in sizes:
                r = cli(srv, "upload", os.path.join(self.tmp, name))
                self.assertEqual((r.returncode, r.stderr), (0, b""))
            self.assertEqual(self.shared(), sorted(sizes))
            for name in sizes:
                self.assertEqual(sha(os.path.join(self.dir, name)), sha(os.path.join(self.tmp, name)))
                r = cli(srv, "download", name, "-d", self.out)
                self.assertEqual((r.returncode, r.stderr), (0, b""))
                self.assertEqual(sha(os.path.join(self.out, name)), sha(os.path.join(self.tmp, name)))
            listed = list_files(srv)
            self.assertEqual([e[0] for e in listed], sorted(sizes))  # sorted by name
            for name, size, mtime in listed:
                st = os.stat(os.path.join(self.dir, name))
                self.assertEqual((size, mtime), (sizes[name], int(st.st_mtime)))
            r = cli(srv, "ls", "--bytes")
            self.assertEqual(r.returncode, 0)
            rows = [line.split() for line in r.stdout.decode().splitlines()]
            self.assertEqual([(row[3], int(row[2])) for row in rows], sorted(sizes.items()))
            for row in rows:
                self.assertRegex(row[0] + " " + row[1], r"^\d{4}-\d\d-\d\d \d\d:\d\d$")
            human = cli(srv, "ls").stdout.decode()
            self.assertIn("256.0 MiB  big.bin", human)
            self.assertIn("1000 B  small.txt", human)
        self.assertEqual(sorted(os.listdir(self.out)), sorted(sizes))  # no temporary left

    def test_upload_replaces_the_file_of_the_same_name(self):
        old, new = os.path.join(self.tmp, "old"), os.path.join(self.tmp, "new")
        random_file(old, 3 << 20)
        random_file(new, 1 << 20)
        with Serve(self.dir) as srv:
            self.assertEqual(cli(srv, "upload", old, "-n", "f").returncode, 0)
            self.assertEqual(sha(os.path.join(self.dir, "f")), sha(old))
            self.assertEqual(cli(srv, "upload", new, "-n", "f").returncode, 0)
            self.assertEqual(sha(os.path.join(self.dir, "f")), sha(new))
            self.assertEqual(self.shared(), ["f"])

    def test_concurrent_uploads_of_one_name_end_with_one_whole_file(self):
        sources = []
        for i in range(8):
            p = os.path.join(self.tmp, "v%d" % i)
            with open(p, "wb") as f:
                f.write(bytes([i]) * (4 << 20))
            sources.append(p)
        with Serve(self.dir) as srv:
            procs = [subprocess.Popen([PEERDEX, "upload", "-H", HOST, "-p", str(srv.port), p, "-n", "same"],
                                      stderr=subprocess.PIPE) for p in sources]
            for p in procs:
                self.assertEqual(p.wait(60), 0, p.stderr.read())
                p.stderr.close()
            data = content(os.path.join(self.dir, "same"))
            self.assertEqual(len(data), 4 << 20)
            self.assertEqual(data, bytes([data[0]]) * len(data))  # one upload's bytes, no mix
            self.assertEqual(self.shared(), ["same"])

    def test_every_name_outside_the_rule_is_refused(self):
        with open(os.path.join(self.dir, "kept"), "w") as f:
            f.write("kept")
        bad = [b"../x", b"a/b", b".", b"..", b"", b"/etc/passwd", b"a\x01b", b"a\nb", b"a\x7f", b"x" * 300,
               b".peerdex-upload-0123456789abcdef"]
        with Serve(self.dir) as srv:
            for name in bad:
                self.assertEqual(srv.request(enc("GET_FILE", name)), b"\x01", name)
                self.assertEqual(srv.request(enc("PUT_FILE", name, 4) + b"data"), b"\x01", name)
            self.assertEqual(self.shared(), ["kept"])
            self.assertEqual(sorted(os.listdir(self.tmp)), ["out", "share"])  # no ../x
            # The client checks the name before it connects.
            src = os.path.join(self.tmp, "src")
            open(src, "w").close()
            r = cli(srv, "upload", src, "-n", "../x")
            self.assertEqual(r.returncode, 2)
            self.assertIn(b"not a file name", r.stderr)
            # A 255-byte name is the longest allowed.
            self.assertEqual(srv.request(enc("PUT_FILE", b"y" * 255, 2) + b"ok"), b"\x00")
            self.assertEqual(srv.request(enc("GET_FILE", b"y" * 255)), b"\x00" + enc(2) + b"ok")

    def test_symlinks_directories_and_fifos_are_not_served(self):
        secret = os.path.join(self.tmp, "secret")
        with open(secret, "w") as f:
            f.write("outside")
        os.symlink(secret, os.path.join(self.dir, "link"))
        os.symlink("../secret", os.path.join(self.dir, "rel"))
        os.mkdir(os.path.join(self.dir, "sub"))
        os.mkfifo(os.path.join(self.dir, "fifo"))
        with open(os.path.join(self.dir, "plain"), "w") as f:
            f.write("in")
        with Serve(self.dir) as srv:
            for name in ["link", "rel", "sub", "fifo"]:
                self.assertEqual(srv.request(enc("GET_FILE", name)), b"\x01", name)
            self.assertEqual([e[0] for e in list_files(srv)], ["plain"])
            self.assertEqual(srv.request(enc("GET_FILE", "plain")), b"\x00" + enc(2) + b"in")
            # An upload over a symlink replaces the link, never the file it points to.
            self.assertEqual(srv.request(enc("PUT_FILE", "link", 3) + b"new"), b"\x00")
            self.assertEqual(content(secret).decode(), "outside")
            self.assertFalse(os.path.islink(os.path.join(self.dir, "link")))
            self.assertEqual(content(os.path.join(self.dir, "link")).decode(), "new")
            # ... and not a directory of that name.
            self.assertEqual(srv.request(enc("PUT_FILE", "sub", 1) + b"x"), b"\x02")
            self.assertTrue(os.path.isdir(os.path.join(self.dir, "sub")))

    def test_read_only_refuses_uploads(self):
        with open(os.path.join(self.dir, "a"), "w") as f:
            f.write("abc")
        src = os.path.join(self.tmp, "src")
        random_file(src, 1 << 20)
        with Serve(self.dir, "--read-only") as srv:
            self.assertEqual(srv.request(enc("PUT_FILE", "b", 3) + b"xyz"), b"\x01")
            r = cli(srv, "upload", src)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"the server does not accept uploads", r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1)
            self.assertEqual(self.shared(), ["a"])
            self.assertEqual(cli(srv, "download", "a", "-d", self.out).returncode, 0)

    def test_max_upload_and_free_disk_refuse_before_storing(self):
        with Serve(self.dir, "--max-upload", "1K") as srv:
            self.assertEqual(srv.request(enc("PUT_FILE", "ok", 1024) + b"z" * 1024), b"\x00")
            # The header alone gets the refusal: no byte of the body was needed.
            with srv.connect() as s:
                s.sendall(enc("PUT_FILE", "big", 1025))
                self.assertEqual(read_all(s), b"\x02")
            src = os.path.join(self.tmp, "big")
            random_file(src, 4 << 20)  # more than the socket buffers: the refusal must stop it
            r = cli(srv, "upload", src)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"the server refused the file's size (above its --max-upload", r.stderr)
            for size in [b"12x", b"-1", b"1" * 21]:
                self.assertEqual(srv.request(enc("PUT_FILE", "n", size)), b"\x02", size)
        with Serve(self.dir) as srv:
            with srv.connect() as s:
                s.sendall(enc("PUT_FILE", "huge", 1 << 62))  # more than any free disk
                self.assertEqual(read_all(s), b"\x02")
        self.assertEqual(self.shared(), ["ok"])

    def test_a_full_disk_refuses_and_leaves_nothing(self):
        small = os.path.join(self.tmp, "small")
        os.mkdir(small)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", small], capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a 5 MiB tmpfs here: %s" % r.stderr.decode().strip())
        try:
            src = os.path.join(self.tmp, "3m")
            random_file(src, 3 << 20)
            random_file(os.path.join(self.tmp, "8m"), 8 << 20)
            with Serve(small) as srv:
                # Declared above the free space: refused before storing.
                r = cli(srv, "upload", os.path.join(self.tmp, "8m"))
                self.assertEqual(r.returncode, 1)
                self.assertIn(b"the server refused the file's size", r.stderr)
                # Two that each fit alone but not together: the disk fills during the
                # transfer; at most one is stored, whole.
                procs = [subprocess.Popen([PEERDEX, "upload", "-H", HOST, "-p", str(srv.port), src, "-n", n],
                                          stderr=subprocess.DEVNULL) for n in ("a", "b")]
                codes = [p.wait(60) for p in procs]
                self.assertIn(1, codes)
                stored = sorted(os.listdir(small))
                self.assertEqual(stored, [n for n, c in zip(("a", "b"), codes) if c == 0])
                for name in stored:
                    self.assertEqual(sha(os.path.join(small, name)), sha(src))
        finally:
            subprocess.run(["umount", small], check=True)

    def test_an_upload_cut_short_leaves_nothing(self):
        with open(os.path.join(self.dir, "f"), "wb") as f:
            f.write(b"old")
        with Serve(self.dir, "-v") as srv:
            for name in ["new", "f"]:
                with srv.connect() as s:
                    s.sendall(enc("PUT_FILE", name, 10 << 20) + os.urandom(3 << 20))
                settled_stats(srv.stats)  # the cut upload is closed
            # Its temporary file goes once a write still running on the pool has finished.
            wait_until(lambda: self.shared() == ["f"], what="nothing but f left")
            self.assertEqual(content(os.path.join(self.dir, "f")), b"old")
            srv.wait_for(r"upload of f cut after \d+ of 10485760 bytes", stream="stderr")
        # Even a server killed in the middle of an upload leaves nothing behind.
        srv = Serve(self.dir)
        s = srv.connect()
        s.sendall(enc("PUT_FILE", "g", 10 << 20) + os.urandom(1 << 20))
        wait_until(lambda: srv.stats()["bytes received"].split()[0] == str(len(enc("PUT_FILE", "g", 10 << 20)) +
                                                                          (1 << 20)), what="bytes in")
        srv.stop(signal.SIGKILL)
        s.close()
        self.assertEqual(self.shared(), ["f"])

    def test_stale_temporary_uploads_are_removed_at_start(self):
        old = os.path.join(self.dir, ".peerdex-upload-00000000000000aa")
        fresh = os.path.join(self.dir, ".peerdex-upload-00000000000000bb")
        for p in (old, fresh):
            with open(p, "wb") as f:
                f.write(b"partial")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        with Serve(self.dir) as srv:
            srv.wait_for(r"^peerdex: removed 1 unfinished upload left by an earlier run$", stream="stderr")
            self.assertEqual(list_files(srv), [])  # never listed
            self.assertEqual(srv.request(enc("GET_FILE", os.path.basename(fresh))), b"\x01")
        self.assertEqual(self.shared(), [os.path.basename(fresh)])  # may be an upload in progress

    def many_long_names(self):
        # 20,000 files of 200-byte names: each LIST_FILES reply is about 4.3 MB.
        for i in range(20000):
            open(os.path.join(self.dir, "%0200d" % i), "w").close()

    def test_many_listings_at_once_stay_bounded_in_memory(self):
        self.many_long_names()
        with Serve(self.dir) as srv:
            base = rss(srv.proc.pid)
            readers = []

            def ask(n):  # ask, never read
                for _ in range(n):
                    s = srv.connect()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.sendall(enc("LIST_FILES"))
                    readers.append(s)
                wait_until(lambda: srv.stats()["requests"].startswith("GET_FILE 0, LIST_FILES %d," % len(readers)),
                           what="%d asks" % len(readers))
                # What must not happen has no signal: give the pool time to build every
                # listing, were they not bounded (one takes about 50 ms here).
                time.sleep(scaled(2))
                return rss(srv.proc.pid) - base

            few = ask(4)
            many = ask(124)
            # Unbounded, 128 such listings took 188 MB against 15-36 MB for four; four at a
            # time, 128 askers cost what four do (ASan's quarantine adds to both).
            self.assertLess(many, 2 * few + (16 << 20), (few, many))
            for s in readers:
                s.close()
            self.assertEqual(len(list_files(srv)), 20000)  # the slots came back

    def test_abandoned_listings_are_dropped_unbuilt(self):
        self.many_long_names()
        with Serve(self.dir) as srv:
            for n in (4, 128):
                before = srv.stats()
                asked = int(before["requests"].split(", ")[1].split()[1])
                askers = []
                for _ in range(n):  # ask, never read: the first four hold every slot
                    s = srv.connect()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.sendall(enc("LIST_FILES"))
                    askers.append(s)
                wait_until(lambda: srv.stats()["requests"].startswith("GET_FILE 0, LIST_FILES %d," % (asked + n)),
                           what="%d asks" % n)
                built = int(before["listings built"]) + 4
                wait_until(lambda: int(srv.stats()["listings built"]) == built, what="four listings built")
                for s in askers:
                    s.close()
                self.assertEqual(len(list_files(srv)), 20000)
                after = srv.stats()
                # Before the new asker's turn, at most the listings already under way when
                # the askers left were built: not one per abandoned request (124 here).
                self.assertLessEqual(int(after["listings built"]) - built, 4 + 1, (n, after))
                settled_stats(srv.stats)  # every asker is gone
                self.assertGreaterEqual(int(srv.stats()["abandoned"]) - int(before["abandoned"]), n - 4 - 4, n)

    def test_without_a_host_it_listens_on_loopback_only(self):
        d = Daemon([PEERDEX, "serve", "-p", "0", self.dir], r"serving .* on (\S+):(\d+) \(this machine only, ")
        try:
            self.assertEqual(d.match.group(1), "127.0.0.1")
        finally:
            d.stop()

    def test_twenty_concurrent_clients(self):
        errors = []

        def one(i):
            try:
                src = os.path.join(self.tmp, "src%d" % i)
                random_file(src, (2 << 20) + i)
                r = cli(srv, "upload", src, "-n", "file%d" % i)
                assert r.returncode == 0, r.stderr
                dst = os.path.join(self.out, "file%d" % i)
                r = cli(srv, "download", "file%d" % i, "-d", dst)
                assert r.returncode == 0, r.stderr
                assert sha(src) == sha(dst), i
                r = cli(srv, "ls")
                assert r.returncode == 0 and ("file%d" % i).encode() in r.stdout, r
            except Exception as e:  # reported by the main thread
                errors.append(e)

        with Serve(self.dir) as srv:
            threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(self.shared(), sorted("file%d" % i for i in range(20)))

    def test_statistics_count_what_was_done(self):
        sent = received = 0

        def exchange(data):
            nonlocal sent, received
            reply = srv.request(data)
            sent += len(data)
            received += len(reply)
            return reply

        with Serve(self.dir) as srv:
            body = os.urandom(100000)
            for i in range(3):
                self.assertEqual(exchange(enc("PUT_FILE", "u%d" % i, len(body)) + body), b"\x00")
            for i in range(5):
                self.assertEqual(len(exchange(enc("GET_FILE", "u%d" % (i % 3)))), 1 + len(enc(100000)) + 100000)
            exchange(enc("LIST_FILES"))
            exchange(enc("LIST_FILES"))
            self.assertEqual(exchange(enc("GET_FILE", "missing")), b"\x01")
            self.assertEqual(exchange(enc("PUT_FILE", "../x", 1) + b"x"), b"\x01")
            self.assertEqual(exchange(enc("HELLO", "peerdex/1")), b"\x02")
            st = settled_stats(srv.stats)
            self.assertEqual(st["connections"], "13 (open 0)")
            self.assertEqual(st["requests"], "GET_FILE 6, LIST_FILES 2, PUT_FILE 4, GET_RANGE 0, GET_TREE 0, other 1")
            self.assertEqual(st["refused"], "3")
            self.assertEqual(st["bytes sent"].split()[0], str(received))
            self.assertEqual(st["bytes received"].split()[0], str(sent))
            self.assertEqual(st["files downloaded"], "5")
            self.assertEqual(st["files uploaded"], "3")
            self.assertRegex(st["uptime"], r"^\d+ s$")

    def test_sigterm_lets_transfers_finish_and_cuts_stalled_uploads(self):
        random_file(os.path.join(self.dir, "big"), 8 << 20)
        srv = Serve(self.dir, "--grace", "3")
        down = srv.connect()
        down.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        down.sendall(enc("GET_FILE", "big"))
        first = down.recv(65536)
        up = srv.connect()
        up.sendall(enc("PUT_FILE", "partial", 1 << 20) + b"x" * 1000)  # then nothing more
        idle = srv.connect()  # has not even sent its request
        wait_until(lambda: srv.stats()["connections"].startswith("3 "), what="three connections")
        srv.send_signal(signal.SIGTERM)
        srv.wait_for("stopping", stream="stderr")
        self.assertEqual(read_all(idle), b"")  # closed at once
        rest = read_all(down)  # the download in progress completes
        self.assertEqual(len(first + rest), 1 + len(enc(8 << 20)) + (8 << 20))
        self.assertEqual(srv.proc.wait(15), 0)  # the stalled upload was cut after the grace period
        self.assertEqual(read_all(up), b"")
        for s in (down, up, idle):
            s.close()
        self.assertEqual(self.shared(), ["big"])
        self.assertTrue(any(line.startswith("files downloaded: 1") for line in srv.lines), srv.lines)
        srv.stop()

    def test_half_closed_peers_get_their_replies(self):
        body = os.urandom(3 << 20)
        with Serve(self.dir) as srv:
            def half_closed(data):
                with srv.connect() as s:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                    return read_all(s)
            self.assertEqual(half_closed(enc("PUT_FILE", "f", len(body)) + body), b"\x00")
            self.assertEqual(half_closed(enc("GET_FILE", "f")), b"\x00" + enc(len(body)) + body)
            self.assertEqual(half_closed(enc("LIST_FILES"))[:3], b"\x001\x00")
            self.assertEqual(half_closed(enc("PUT_FILE", "g", 10) + b"short"), b"")  # cut: nothing stored
            self.assertEqual(half_closed(b"GET_FILE\0f"), b"")  # a request without its last NUL
            wait_until(lambda: self.shared() == ["f"], what="the cut upload's temporary file removed")

    def test_a_paused_reader_gets_every_byte_and_others_are_served(self):
        size = 64 << 20
        path = os.path.join(self.dir, "big.bin")
        random_file(path, size)
        whole = b"\x00" + enc(size) + content(path)
        with Serve(self.dir) as srv:
            with srv.connect() as paused:
                paused.sendall(enc("GET_FILE", "big.bin"))
                first = paused.recv(4096)  # the transfer has begun; then nothing is read for a while
                self.assertTrue(first)
                # The server waits for room in that socket without holding up anyone else.
                self.assertEqual(srv.request(enc("GET_FILE", "big.bin")), whole)
                sent = int(srv.stats()["bytes sent"].split()[0])
                self.assertLess(sent, 2 * size, "the paused transfer went on: it cannot have")
                self.assertEqual(first + read_all(paused), whole)
            self.assertEqual(settled_stats(srv.stats)["files downloaded"], "2")

    def test_a_connection_flood_is_bounded_and_the_server_recovers(self):
        with Serve(self.dir) as srv:
            base = quiet_fd_count(srv.proc.pid)
            silent = [srv.connect() for _ in range(300)]
            wait_until(lambda: srv.stats()["connections"].startswith("256 "), what="256 accepted")
            self.assertLessEqual(fd_count(srv.proc.pid), base + 257 + FD_NOISE)  # libuv holds one more, unaccepted
            for s in silent:
                s.close()
            self.assertLessEqual(wait_for_fds(srv.proc.pid, base), base)
            self.assertEqual(srv.request(enc("LIST_FILES")), b"\x000\x00")

    def test_s_and_q_typed_at_the_terminal(self):
        term = Terminal([PEERDEX, "serve", "-H", HOST, "-p", "0", self.dir])
        try:
            port = int(term.until(rb"on 127\.0\.0\.1:(\d+) ").group(1))
            with socket.create_connection((HOST, port)) as s:
                s.sendall(enc("LIST_FILES"))
                self.assertEqual(read_all(s), b"\x000\x00")
            term.type("s\n")
            term.until(rb"requests: GET_FILE 0, LIST_FILES 1, PUT_FILE 0, GET_RANGE 0, GET_TREE 0, other 0")
            term.type("what\n")
            term.until(rb"s \+ Enter: statistics, q \+ Enter: stop")
            term.type("q\n")
            term.until(rb"stopping")
            self.assertEqual(term.wait(), 0)
        finally:
            term.close()

    def test_random_and_garbled_requests_leave_it_serving(self):
        with open(os.path.join(self.dir, "a"), "wb") as f:
            f.write(b"data")
        ops = [b"GET_FILE", b"PUT_FILE", b"LIST_FILES", b"HELLO", b"", b"X" * 20]

        def one(seed):
            rnd = random.Random(seed)

            def field():
                return rnd.choice([b"a", str(rnd.randrange(100000)).encode(), str(rnd.randrange(2 ** 64)).encode(),
                                   b"../" * rnd.randrange(5), b"",
                                   bytes(rnd.randrange(1, 256) for _ in range(rnd.randrange(300)))])

            for _ in range(40):
                data = rnd.choice(ops) + b"\0" + b"".join(field() + (b"\0" if rnd.random() < 0.9 else b"")
                                                          for _ in range(rnd.randrange(4)))
                if rnd.random() < 0.3:
                    data += bytes(rnd.randrange(256) for _ in range(rnd.randrange(70000)))
                try:
                    with srv.connect() as s:
                        if rnd.random() < 0.5:
                            s.sendall(data)
                        else:
                            for i in range(0, min(len(data), 700), 7):
                                s.send(data[i:i + 7])
                        if rnd.random() < 0.3:
                            s.shutdown(socket.SHUT_WR)
                        s.settimeout(0.2)
                        while s.recv(65536):
                            pass
                except OSError:  # resets and timeouts are fine: only the server's fate matters
                    pass

        with Serve(self.dir, "--max-upload", "64K") as srv:
            threads = [threading.Thread(target=one, args=(seed,)) for seed in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertIsNone(srv.proc.poll())
            self.assertEqual(srv.request(enc("GET_FILE", "a")), b"\x00" + enc(4) + b"data")
            self.assertFalse([n for n in os.listdir(self.dir) if n.startswith(".peerdex-upload-")])
        self.assertEqual(srv.proc.returncode, 0)

    def test_bad_requests_and_client_errors(self):
        with Serve(self.dir) as srv:
            self.assertEqual(srv.request(b"X" * 100), b"\x02")  # an op longer than any
            self.assertEqual(srv.request(enc("NOPE")), b"\x02")
            r = cli(srv, "download", "absent", "-d", self.out)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"no file absent", r.stderr)
            self.assertEqual(os.listdir(self.out), [])
            r = cli(srv, "upload", os.path.join(self.tmp, "does-not-exist"))
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"No such file", r.stderr)
            self.assertEqual(cli(srv, "ls", "extra").returncode, 2)
            self.assertEqual(cli(srv, "download").returncode, 2)
            port = srv.port
        r = subprocess.run([PEERDEX, "ls", "-H", HOST, "-p", str(port)], capture_output=True, timeout=scaled(30))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"cannot connect", r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1)
        r = subprocess.run([PEERDEX, "serve", "-H", "999.1.1.1", self.dir], capture_output=True, timeout=scaled(30))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"cannot use listen address '999.1.1.1'", r.stderr)
        r = subprocess.run([PEERDEX, "serve", os.path.join(self.tmp, "absent")], capture_output=True, timeout=scaled(30))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"cannot share", r.stderr)


if __name__ == "__main__":
    unittest.main()
