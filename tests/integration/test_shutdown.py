"""SIGTERM/SIGINT: stop accepting, finish pending replies, exit 0."""

import signal
import socket
import threading
import time
import unittest

from harness import TIMEOUT, Reader, Tracker, enc, read_all, scaled


class Shutdown(unittest.TestCase):
    def test_sigterm_with_open_connections_exits_zero(self):
        t = Tracker()
        idle, _ = t.hello()
        half = t.connect()
        half.sendall(b"REGISTER\0half")  # an unfinished request
        with idle, half:
            t.user("x")
            started = time.monotonic()
            self.assertEqual(t.stop(signal.SIGTERM), 0)
            self.assertLess(time.monotonic() - started, scaled(10))
            self.assertEqual(read_all(idle), b"")
            self.assertEqual(read_all(half), b"")
        with self.assertRaises(OSError):  # no longer listening
            socket.create_connection(("127.0.0.1", t.port), timeout=scaled(2)).close()

    def test_sigint_exits_zero(self):
        t = Tracker()
        self.assertEqual(t.code("REGISTER", "x"), 0)
        self.assertEqual(t.stop(signal.SIGINT), 0)

    def test_pending_reply_is_finished_before_exit(self):
        t = Tracker("-q")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # before connect: a small window
        s.connect(("127.0.0.1", t.port))
        s.sendall(enc("HELLO", "peerdex/1"))
        r = Reader(s)
        self.assertEqual((r.byte(), r.field()), (0, "peerdex/1"))
        with s:
            # About 10 MB of reply: more than the kernel buffers on both sides hold.
            n = 40000
            path = "/" + "p" * 240 + "/%06d"
            requests = (enc("REGISTER", "owner") + enc("CONNECT", "owner", 1000) +
                        b"".join(enc("PUBLISH", "owner", path % i, "") for i in range(n)))
            # The replies are read while the requests go out. A client that sends megabytes
            # without reading its small window can deadlock in its own kernel: once it drops
            # a reply segment for want of receive memory, its window is shrunk to zero and
            # Linux (6.17 and later) discards every later segment of the tracker, the ACKs of
            # its own data included, so its sendall waits until it reads.
            failed = []

            def send():
                try:
                    s.sendall(requests)
                except OSError as e:
                    failed.append(e)

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            self.assertEqual([r.byte() for _ in range(n + 2)], [0] * (n + 2))
            sender.join(TIMEOUT)
            self.assertFalse(sender.is_alive(), "the requests were not all sent")
            self.assertEqual(failed, [])
            s.sendall(enc("LIST_CONTENT", "owner", "owner"))
            s.recv(1, socket.MSG_PEEK)  # the reply has begun: the request was read
            t.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertTrue(t.alive(), "exited before the pending reply was written")
            code, paths = r.list_reply(1)
            self.assertEqual(code, 0)
            self.assertEqual(paths, [(path % i,) for i in range(n)])
            self.assertRaises(EOFError, r.byte)
        self.assertEqual(t.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
