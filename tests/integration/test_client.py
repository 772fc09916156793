"""The peerdex shell and peer, driven through pipes against the real tracker: every
command and result line of peerdex-protocol(7), CONSOLE LINES, transfers between peers, and every way a
download can go wrong."""

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (CONTENT_IDS, FD_NOISE, quiet_fd_count, Client, FakePeer, Tracker, enc, fd_count, free_port, parse_list, random_file, read_all, scaled,
                     settled_stats, sha, wait_for_fds)


def peer_endpoint(t, requester, user):
    reply = t.op("GET_USER_INFO", requester, user)
    assert reply[0] == 0, reply
    ip, port = reply[1:].split(b"\0")[:2]
    return ip.decode(), int(port)


def get_file_raw_request(ip, port, data):
    with socket.create_connection((ip, port), timeout=scaled(30)) as s:
        s.sendall(data)
        try:
            return read_all(s)
        except ConnectionResetError:
            return b"<reset>"


def get_file_raw(ip, port, path):
    return get_file_raw_request(ip, port, enc("GET_FILE", path))


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peerdex-client-")
        self.t = Tracker("-q")

    def tearDown(self):
        self.t.stop()
        shutil.rmtree(self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)


class Commands(ClientTest):
    def test_every_command_and_result_line(self):
        with open(self.path("notes.txt"), "w") as f:
            f.write("hello")
        os.mkdir(self.path("folder"))
        with Client(self.t.port, cwd=self.dir) as a, Client(self.t.port) as b:
            self.assertEqual(a.run("REGISTER alice"), ["c> REGISTER OK"])
            self.assertEqual(a.run("register alice"), ["c> USERNAME IN USE"])
            self.assertEqual(a.run("CONNECT ghost"), ["c> CONNECT FAIL, USER DOES NOT EXIST"])
            self.assertEqual(a.run("PUBLISH notes.txt my notes"), ["c> PUBLISH FAIL, USER NOT CONNECTED"])
            self.assertEqual(a.run("CONNECT alice"), ["c> CONNECT OK"])
            self.assertEqual(b.run("CONNECT alice"), ["c> USER ALREADY CONNECTED"])
            self.assertEqual(a.run("PUBLISH notes.txt my notes, version 2"), ["c> PUBLISH OK"])
            self.assertEqual(a.run("PUBLISH %s again" % self.path("notes.txt")),
                             ["c> PUBLISH FAIL, CONTENT ALREADY PUBLISHED"])
            self.assertEqual(a.run("PUBLISH missing.txt d"), ["c> PUBLISH FAIL"])
            self.assertEqual(a.run("PUBLISH folder d"), ["c> PUBLISH FAIL"])
            self.assertEqual(a.run("LIST_USERS"), ["c> LIST_USERS OK", "\talice 127.0.0.1 %d" %
                                                   peer_endpoint(self.t, "alice", "alice")[1]])
            # Relative paths are published absolute.
            self.assertEqual(a.run("LIST_CONTENT alice"), ["c> LIST_CONTENT OK", "\t" + self.path("notes.txt")])
            self.assertEqual(a.run("LIST_CONTENT ghost"), ["c> LIST_CONTENT FAIL, REMOTE USER DOES NOT EXIST"])
            self.assertEqual(a.run("DELETE notes.txt"), ["c> DELETE OK"])
            self.assertEqual(a.run("DELETE notes.txt"), ["c> DELETE FAIL, CONTENT NOT PUBLISHED"])
            self.assertEqual(a.run("GET_FILE alice /etc/passwd %s" % self.path("x")),
                             ["c> GET_FILE FAIL, FILE NOT EXIST"])
            self.assertEqual(a.run("DISCONNECT ghost"), ["c> DISCONNECT FAIL, USER DOES NOT EXIST"])
            self.assertEqual(a.run("DISCONNECT alice"), ["c> DISCONNECT OK"])
            self.assertEqual(a.run("DISCONNECT alice"), ["c> DISCONNECT FAIL, USER NOT CONNECTED"])
            self.assertEqual(a.run("LIST_USERS"), ["c> LIST_USERS FAIL, USER NOT CONNECTED"])
            self.assertEqual(a.run("CONNECT alice"), ["c> CONNECT OK"])
            self.assertEqual(b.run("UNREGISTER alice"), ["c> UNREGISTER OK"])  # behind a's back
            self.assertEqual(a.run("PUBLISH notes.txt d"), ["c> PUBLISH FAIL, USER DOES NOT EXIST"])
            self.assertEqual(a.run("DELETE notes.txt"), ["c> DELETE FAIL, USER DOES NOT EXIST"])
            self.assertEqual(a.run("LIST_USERS"), ["c> LIST_USERS FAIL, USER DOES NOT EXIST"])
            self.assertEqual(a.run("LIST_CONTENT alice"), ["c> LIST_CONTENT FAIL, USER DOES NOT EXIST"])
            self.assertEqual(b.run("UNREGISTER alice"), ["c> USER DOES NOT EXIST"])
            self.assertEqual(a.run("REGISTER"), ["c> Syntax error. Usage: REGISTER <user>"])
            self.assertEqual(a.run("GET_FILE a b"), ["c> Syntax error. Usage: GET_FILE <user> <remote path> <local path>"])
            self.assertEqual(a.run("FETCH x"), ["c> Error: command FETCH not valid."])
            self.assertEqual(a.run(""), [])
            self.assertEqual(a.quit(), ["c> DISCONNECT FAIL, USER DOES NOT EXIST", "+++ FINISHED +++"])
            self.assertEqual(a.returncode, 1)  # some commands failed
            self.assertEqual(b.quit(None), ["+++ FINISHED +++"])  # end of input = QUIT
        self.assertTrue(any("does not exist" in e for e in a.errors), a.errors)  # reasons on stderr

    def test_help_and_the_peer_listeners_statistics(self):
        with open(self.path("f"), "wb") as f:
            f.write(b"x" * 1000)
        with Client(self.t.port, cwd=self.dir) as a, Client(self.t.port) as b:
            help_lines = a.run("HELP")
            self.assertEqual(help_lines[0], "c> Commands:")
            self.assertIn("\tGET_FILE <user> <remote path> <local path>", help_lines)
            self.assertIn("\tSTATS", help_lines)
            self.assertEqual(a.run("STATS")[:3], ["c> STATS OK", "\tuptime: 0 s", "\tconnections: 0 (open 0)"])
            for line in ["REGISTER alice", "CONNECT alice", "PUBLISH f data"]:
                self.assertTrue(a.run(line)[0].endswith("OK"), line)
            for line in ["REGISTER bob", "CONNECT bob"]:
                b.run(line)
            for i in range(2):
                self.assertEqual(b.run("GET_FILE alice %s %s" % (self.path("f"), self.path("copy%d" % i))),
                                 ["c> GET_FILE OK"])
            self.assertEqual(b.run("GET_FILE alice /etc/passwd %s" % self.path("no")),
                             ["c> GET_FILE FAIL, FILE NOT EXIST"])
            stats = settled_stats(lambda: dict(line[1:].split(": ", 1) for line in a.run("STATS")[1:]))
            self.assertEqual(stats["refused"], "1")
            self.assertEqual(stats["files uploaded"], "0")
            body = 2 * (1 + len(enc(1000)) + 1000)
            if CONTENT_IDS:
                # Each download: GET_TREE, then GET_RANGE of the whole file; the refused one
                # ends at its GET_TREE.
                self.assertEqual(stats["connections"], "5 (open 0)")
                self.assertEqual(stats["requests"], "GET_FILE 0, LIST_FILES 0, PUT_FILE 0, GET_RANGE 2, GET_TREE 3, "
                                                    "other 0")
                self.assertEqual(stats["ranges sent"], "2")
                self.assertEqual(stats["trees sent"], "2")
                tree = 1 + len(enc(1000)) + len(enc("sha256:" + 64 * "0")) + len(enc(1)) + 32
                self.assertEqual(stats["bytes sent"].split()[0], str(2 * tree + body + 1))
                self.assertEqual(stats["bytes received"].split()[0],
                                 str(2 * len(enc("GET_TREE", self.path("f"))) +
                                     2 * len(enc("GET_RANGE", self.path("f"), 0, 1000)) +
                                     len(enc("GET_TREE", "/etc/passwd"))))
            else:
                self.assertEqual(stats["connections"], "3 (open 0)")
                self.assertEqual(stats["requests"], "GET_FILE 3, LIST_FILES 0, PUT_FILE 0, GET_RANGE 0, GET_TREE 0, "
                                                    "other 0")
                self.assertEqual(stats["files downloaded"], "2")
                self.assertEqual(stats["bytes sent"].split()[0], str(body + 1))
                self.assertEqual(stats["bytes received"].split()[0],
                                 str(2 * len(enc("GET_FILE", self.path("f"))) + len(enc("GET_FILE", "/etc/passwd"))))

    def test_one_shot_commands_against_a_users_peer(self):
        with open(self.path("f"), "wb") as f:
            f.write(b"published")
        with Client(self.t.port, cwd=self.dir) as a:
            for line in ["REGISTER alice", "CONNECT alice", "PUBLISH f data"]:
                self.assertTrue(a.run(line)[0].endswith("OK"), line)
            ip, port = peer_endpoint(self.t, "alice", "alice")
            run = lambda *args: subprocess.run([os.environ["PEERDEX"], args[0], "-H", ip, "-p", str(port)] +
                                               list(args[1:]), capture_output=True, timeout=scaled(30))
            r = run("ls", "--bytes")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.decode().rstrip("\n").endswith("  9  " + self.path("f")), r.stdout)
            r = run("download", self.path("f"), "-d", self.path("copy"))
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(self.path("copy"), "rb") as f:
                self.assertEqual(f.read(), b"published")
            r = run("upload", self.path("f"), "-n", "x")
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"the server does not accept uploads", r.stderr)

    def test_an_unusable_listen_address_fails_connect_cleanly(self):
        with Client(self.t.port, "--listen-addr", "999.1.1.1") as a:
            self.assertEqual(a.run("REGISTER alice"), ["c> REGISTER OK"])
            self.assertEqual(a.run("CONNECT alice"), ["c> CONNECT FAIL"])
            self.assertEqual(a.quit(), ["+++ FINISHED +++"])
            self.assertEqual(a.returncode, 1)
        self.assertIn("peerdex: cannot start the peer listener on 999.1.1.1: invalid argument", a.errors)

    def test_quit_disconnects_the_connected_user_and_closes_the_listener(self):
        with Client(self.t.port) as a, Client(self.t.port) as b:
            self.assertEqual(a.run("REGISTER erin"), ["c> REGISTER OK"])
            self.assertEqual(a.run("REGISTER frank"), ["c> REGISTER OK"])
            self.assertEqual(a.run("CONNECT erin"), ["c> CONNECT OK"])
            ip, port = peer_endpoint(self.t, "erin", "erin")
            # One user per client: connecting frank disconnects erin first.
            self.assertEqual(a.run("CONNECT frank"), ["c> CONNECT OK"])
            self.assertEqual(b.run("REGISTER gina"), ["c> REGISTER OK"])
            self.assertEqual(b.run("CONNECT gina"), ["c> CONNECT OK"])
            users = b.run("LIST_USERS")
            self.assertEqual([u.split()[0] for u in users[1:]], ["frank", "gina"])
            self.assertEqual(a.quit(), ["c> DISCONNECT OK", "+++ FINISHED +++"])
            self.assertEqual([u.split()[0] for u in b.run("LIST_USERS")[1:]], ["gina"])
            with self.assertRaises(OSError):
                socket.create_connection((ip, port), timeout=scaled(5)).close()
            b.quit()

    def test_unregister_of_the_connected_user_stops_serving(self):
        with Client(self.t.port) as a:
            self.assertEqual(a.run("REGISTER hank"), ["c> REGISTER OK"])
            self.assertEqual(a.run("CONNECT hank"), ["c> CONNECT OK"])
            ip, port = peer_endpoint(self.t, "hank", "hank")
            socket.create_connection((ip, port), timeout=scaled(5)).close()
            self.assertEqual(a.run("UNREGISTER hank"), ["c> UNREGISTER OK"])
            with self.assertRaises(OSError):
                socket.create_connection((ip, port), timeout=scaled(5)).close()
            self.assertEqual(a.quit(), ["+++ FINISHED +++"])  # nobody left to disconnect

    def test_disconnect_closes_the_listener_even_without_tracker(self):
        with Client(self.t.port) as a:
            self.assertEqual(a.run("REGISTER carol"), ["c> REGISTER OK"])
            self.assertEqual(a.run("CONNECT carol"), ["c> CONNECT OK"])
            ip, port = peer_endpoint(self.t, "carol", "carol")
            socket.create_connection((ip, port), timeout=scaled(5)).close()  # listening
            self.t.stop()
            self.assertEqual(a.run("REGISTER dave"), ["c> REGISTER FAIL"])
            # DISCONNECT stops the listener although the tracker cannot be told.
            self.assertEqual(a.run("DISCONNECT carol"), ["c> DISCONNECT FAIL"])
            with self.assertRaises(OSError):
                socket.create_connection((ip, port), timeout=scaled(5)).close()
            self.assertEqual(a.quit(), ["+++ FINISHED +++"])  # nobody left to disconnect
        self.assertTrue(any("tracker" in e for e in a.errors), a.errors)
        self.t = Tracker("-q")  # for tearDown


class Transfers(ClientTest):
    SIZE = 64 << 20

    def test_three_peers_exchange_64_mib_while_a_fourth_lists(self):
        for name in ("a", "b"):
            random_file(self.path(name + ".bin"), self.SIZE)
        peers = [Client(self.t.port, "-q", cwd=self.dir) for _ in range(4)]
        try:
            for i, p in enumerate(peers):
                self.assertEqual(p.run("REGISTER p%d" % i), ["c> REGISTER OK"])
                self.assertEqual(p.run("CONNECT p%d" % i), ["c> CONNECT OK"])
            self.assertEqual(peers[0].run("PUBLISH a.bin from p0"), ["c> PUBLISH OK"])
            self.assertEqual(peers[1].run("PUBLISH b.bin from p1"), ["c> PUBLISH OK"])
            stop = threading.Event()
            listed = []

            def lister():
                while not stop.is_set():
                    out = peers[3].run("LIST_USERS")
                    listed.append(out[0] == "c> LIST_USERS OK" and len(out) == 5)
                    listed.append(peers[3].run("LIST_CONTENT p0") == ["c> LIST_CONTENT OK", "\t" + self.path("a.bin")])

            th = threading.Thread(target=lister)
            th.start()
            jobs = [(peers[0], "p1", "b.bin", "p0-b.bin"), (peers[1], "p0", "a.bin", "p1-a.bin"),
                    (peers[2], "p0", "a.bin", "p2-a.bin"), (peers[2], "p1", "b.bin", "p2-b.bin")]
            results = {}

            def fetch(peer, owner, name, dest):
                results[dest] = peer.run("GET_FILE %s %s %s" % (owner, self.path(name), self.path(dest)), timeout=scaled(120))

            # p0 and p1 download from each other at the same time (both directions).
            workers = [threading.Thread(target=fetch, args=j) for j in jobs[:2]]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            for j in jobs[2:]:
                fetch(*j)
            stop.set()
            th.join()
            for _, _, name, dest in jobs:
                self.assertEqual(results[dest], ["c> GET_FILE OK"], dest)
                self.assertEqual(sha(self.path(dest)), sha(self.path(name)), dest)
            self.assertTrue(listed and all(listed), listed[-5:])
            for p in peers:
                p.quit()
        finally:
            for p in peers:
                p.__exit__()
        leftovers = [f for f in os.listdir(self.dir) if "peerdex-" in f]
        self.assertEqual(leftovers, [])

    def test_one_peer_serves_fifty_concurrent_downloads(self):
        random_file(self.path("shared.bin"), 8 << 20)
        want = sha(self.path("shared.bin"))
        with Client(self.t.port, cwd=self.dir) as a:
            a.run("REGISTER server")
            a.run("CONNECT server")
            self.assertEqual(a.run("PUBLISH shared.bin data"), ["c> PUBLISH OK"])
            self.t.user("observer")
            ip, port = peer_endpoint(self.t, "observer", "server")
            got = []
            lock = threading.Lock()
            barrier = threading.Barrier(50)

            def download():
                barrier.wait()
                data = get_file_raw(ip, port, self.path("shared.bin"))
                with lock:
                    got.append(data)

            threads = [threading.Thread(target=download) for _ in range(50)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            header = b"\x00" + enc(8 << 20)
            self.assertEqual(len(got), 50)
            for data in got:
                self.assertEqual(data[:len(header)], header)
                self.assertEqual(hashlib.sha256(data[len(header):]).hexdigest(), want)
            a.quit()

    def test_connection_flood_is_bounded_and_the_peer_recovers(self):
        with open(self.path("f.txt"), "w") as f:
            f.write("still here")
        with Client(self.t.port, cwd=self.dir) as a:
            a.run("REGISTER flooded")
            a.run("CONNECT flooded")
            self.assertEqual(a.run("PUBLISH f.txt d"), ["c> PUBLISH OK"])
            self.t.user("someone")
            ip, port = peer_endpoint(self.t, "someone", "flooded")
            base = quiet_fd_count(a.proc.pid)
            flood = [socket.create_connection((ip, port), timeout=scaled(5)) for _ in range(350)]  # > 256, < 256 + backlog
            try:
                time.sleep(0.3)
                # 256 served at once, one more parked by libuv; the rest wait in the backlog.
                self.assertLessEqual(fd_count(a.proc.pid), base + 256 + 1 + FD_NOISE)
                self.assertEqual(a.run("LIST_USERS")[0], "c> LIST_USERS OK")  # the shell still answers
            finally:
                for s in flood:
                    s.close()
            self.assertLessEqual(wait_for_fds(a.proc.pid, base), base)
            self.assertEqual(get_file_raw(ip, port, self.path("f.txt")), b"\x00" + enc(10) + b"still here")
            a.quit()

    def test_nothing_but_published_regular_files_is_served(self):
        with open(self.path("pub.txt"), "w") as f:
            f.write("published")
        with open(self.path("secret.txt"), "w") as f:
            f.write("secret")
        with Client(self.t.port, cwd=self.dir) as a:
            a.run("REGISTER owner")
            a.run("CONNECT owner")
            self.assertEqual(a.run("PUBLISH pub.txt d"), ["c> PUBLISH OK"])
            self.t.user("asker")
            ip, port = peer_endpoint(self.t, "asker", "owner")
            self.assertEqual(get_file_raw(ip, port, self.path("pub.txt")), b"\x00" + enc(9) + b"published")
            for bad in (self.path("secret.txt"), self.path("x/../pub.txt"), self.dir + "/./pub.txt",
                        self.dir, "/etc/passwd", "pub.txt", "../" * 10 + "etc/passwd", ""):
                self.assertEqual(get_file_raw(ip, port, bad), b"\x01", bad)
            # FILE SERVER on the interactive listener: LIST_FILES lists the published files, PUT_FILE is refused.
            listing = get_file_raw_request(ip, port, enc("LIST_FILES"))
            mtime = int(os.stat(self.path("pub.txt")).st_mtime)
            self.assertEqual(listing, b"\x00" + enc(1, self.path("pub.txt"), 9, mtime))
            self.assertEqual(get_file_raw_request(ip, port, enc("PUT_FILE", "x", 3) + b"abc"), b"\x01")
            self.assertEqual(get_file_raw_request(ip, port, enc("DELETE_FILE", "x")), b"\x02")
            # Published, then replaced by a directory: not a regular file any more.
            os.remove(self.path("pub.txt"))
            os.mkdir(self.path("pub.txt"))
            self.assertEqual(get_file_raw(ip, port, self.path("pub.txt")), b"\x01")
            a.quit()


class BrokenDownloads(ClientTest):
    fetches = 0

    def fetch_from(self, script, *client_args):
        fake = FakePeer(script)
        BrokenDownloads.fetches += 1
        liar, getter = "liar%d" % self.fetches, "getter%d" % self.fetches
        try:
            self.t.user(liar, fake.port)  # the tracker points at the fake peer
            with Client(self.t.port, *client_args) as c:
                c.run("REGISTER " + getter)
                c.run("CONNECT " + getter)
                out = c.run("GET_FILE %s /some/file %s" % (liar, self.path("dest.bin")), timeout=scaled(30))
                c.quit()
                return out, c.errors
        finally:
            fake.close()

    def assert_nothing_left(self):
        self.assertEqual(os.listdir(self.dir), [])

    def test_peer_killed_mid_transfer(self):
        def script(conn):
            conn.sendall(b"\x00" + enc(10 << 20) + os.urandom(1 << 20))
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()  # a reset, as from a killed process
        out, errors = self.fetch_from(script)
        self.assertEqual(out, ["c> GET_FILE FAIL"])
        self.assert_nothing_left()

    def test_peer_sends_less_than_announced(self):
        out, errors = self.fetch_from(lambda c: c.sendall(b"\x00" + enc(5000) + b"x" * 4000))
        self.assertEqual(out, ["c> GET_FILE FAIL"])
        self.assertTrue(any("4000 of 5000" in e for e in errors), errors)
        self.assert_nothing_left()

    def test_peer_sends_more_than_announced(self):
        out, errors = self.fetch_from(lambda c: c.sendall(b"\x00" + enc(100) + b"y" * 200))
        self.assertEqual(out, ["c> GET_FILE FAIL"])
        self.assert_nothing_left()

    def test_peer_stalls(self):
        out, errors = self.fetch_from(lambda c: (c.sendall(b"\x00" + enc(1000) + b"z" * 10), time.sleep(5)),
                                      "--stall-timeout", "1")
        self.assertEqual(out, ["c> GET_FILE FAIL"])
        self.assertTrue(any("stalled" in e for e in errors), errors)
        self.assert_nothing_left()

    def test_decimal_codes_and_empty_file(self):
        out, _ = self.fetch_from(lambda c: c.sendall(b"1\x00"))
        self.assertEqual(out, ["c> GET_FILE FAIL, FILE NOT EXIST"])
        out, _ = self.fetch_from(lambda c: c.sendall(b"0\x00" + enc(0)))
        self.assertEqual(out, ["c> GET_FILE OK"])
        self.assertEqual(os.path.getsize(self.path("dest.bin")), 0)


class CanonicalTracker(unittest.TestCase):
    """A course tracker: no HELLO (it closes), codes as decimal strings, no GET_USER_INFO."""

    def test_fallbacks(self):
        served = tempfile.mkdtemp(prefix="peerdex-canon-")
        try:
            with open(os.path.join(served, "f.txt"), "w") as f:
                f.write("from a canonical world")
            fake_peer = FakePeer(lambda c: c.sendall(b"0\x00" + enc(22) + b"from a canonical world"))
            sock = socket.create_server(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            seen = []

            def serve():
                while True:
                    try:
                        conn, _ = sock.accept()
                    except OSError:
                        return
                    with conn:
                        data = b""
                        while data.count(b"\0") < 2:
                            chunk = conn.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                        op = data.split(b"\0")[0]
                        seen.append(op)
                        if op == b"HELLO":
                            continue  # unknown to a course tracker: close without reply
                        if op == b"LIST_USERS":
                            conn.sendall(b"0\x00" + enc(1, "owner", "127.0.0.1", fake_peer.port))
                        else:
                            conn.sendall(b"0\x00trailing junk")

            threading.Thread(target=serve, daemon=True).start()
            with Client(port) as c:
                self.assertEqual(c.run("REGISTER me"), ["c> REGISTER OK"])
                self.assertEqual(c.run("CONNECT me"), ["c> CONNECT OK"])
                self.assertEqual(c.run("LIST_USERS"), ["c> LIST_USERS OK", "\towner 127.0.0.1 %d" % fake_peer.port])
                self.assertEqual(c.run("GET_FILE owner /f.txt %s" % os.path.join(served, "got.txt")),
                                 ["c> GET_FILE OK"])
                self.assertEqual(c.quit(), ["c> DISCONNECT OK", "+++ FINISHED +++"])
            with open(os.path.join(served, "got.txt")) as f:
                self.assertEqual(f.read(), "from a canonical world")
            # peerdex/2, then peerdex/1 (an older peerdex tracker may close on 2), then one
            # connection per operation for the rest of the process.
            self.assertEqual(seen.count(b"HELLO"), 2)
            self.assertNotIn(b"GET_USER_INFO", seen)
            sock.close()
            fake_peer.close()
        finally:
            shutil.rmtree(served)


if __name__ == "__main__":
    unittest.main(verbosity=2)
