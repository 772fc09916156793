"""Shared helpers of the integration tests: start the real binaries on ephemeral
loopback ports and speak the raw wire protocol (peerdex-protocol(7)) to them."""

import atexit
import hashlib
import os
import queue
import pty
import re
import select
import signal
import socket
import shutil
import subprocess
import tempfile
import threading
import time

TS = "22/11/2026 22:38:16"
HOST = "127.0.0.1"
# Sanitizer builds run several times slower, and CI's two cores may be busy: every wait
# for something that must happen is multiplied by this (set by the build, or by hand).
SLOW = float(os.environ.get("PEERDEX_TIMEOUT_FACTOR") or 1)


def scaled(seconds):
    """An upper bound on a wait, in seconds, for this build on this machine."""
    return seconds * SLOW


def hold_fsync_env(gate, **extra):
    """The environment of a daemon whose flushes wait while the file `gate` exists: a slow
    disk (hold_fsync.c, preloaded). A cross build's programs run under an emulator, whose
    wrapper (tests/emulated.sh.in) hands PEERDEX_PRELOAD to the guest's loader instead."""
    asan = (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    preload = "PEERDEX_PRELOAD" if os.environ.get("PEERDEX_EMULATED") else "LD_PRELOAD"
    return dict(os.environ, **{preload: os.environ["PEERDEX_HOLD_FSYNC_LIB"]}, PEERDEX_HOLD_FSYNC=gate,
                ASAN_OPTIONS=asan, **extra)


def slow_rate(bytes_per_s):
    """An upload rate that keeps a transfer going for as long on a slow build as a fixed
    rate does on a fast one: the steps that must happen during it take longer there too."""
    return "%dK" % max(1, int(bytes_per_s / 1024 / scaled(1)))


TIMEOUT = scaled(15.0)

# The client keeps its users' keys under XDG_CONFIG_HOME (peerdex-protocol(7), OWNERSHIP):
# a directory of the test run's own, never the home directory of whoever runs the tests.
CONFIG_HOME = tempfile.mkdtemp(prefix="peerdex-config-")
os.environ["XDG_CONFIG_HOME"] = CONFIG_HOME
atexit.register(shutil.rmtree, CONFIG_HOME, True)
# ... and its tree cache under XDG_CACHE_HOME (peerdex-protocol(7), CONTENT IDS).
CACHE_HOME = tempfile.mkdtemp(prefix="peerdex-cache-")
os.environ["XDG_CACHE_HOME"] = CACHE_HOME
atexit.register(shutil.rmtree, CACHE_HOME, True)

# Whether this build has content ids (`peerdex hash` exists only then): its peers then
# download through GET_TREE and GET_RANGE (peerdex-protocol(7), FILE RANGES).
CONTENT_IDS = "PEERDEX" in os.environ and subprocess.run(
    [os.environ["PEERDEX"], "hash", "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def enc(*fields):
    """NUL-terminated fields; str or bytes."""
    return b"".join((f if isinstance(f, bytes) else str(f).encode()) + b"\0" for f in fields)


def read_all(sock, timeout=TIMEOUT):
    """Reads until the peer closes; fails the test on a timeout."""
    sock.settimeout(timeout)
    data = bytearray()
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return bytes(data)
        data += chunk


class Reader:
    """Incremental reader of replies on a persistent (HELLO) connection."""

    def __init__(self, sock, timeout=TIMEOUT):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0
        if sock is not None:
            sock.settimeout(timeout)

    def _fill(self):
        if self.sock is None:
            raise AssertionError("truncated reply: %r" % bytes(self.buf[:200]))
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("connection closed by the tracker")
        del self.buf[: self.pos]
        self.pos = 0
        self.buf += chunk

    def byte(self):
        while self.pos >= len(self.buf):
            self._fill()
        self.pos += 1
        return self.buf[self.pos - 1]

    def field(self):
        while True:
            i = self.buf.find(b"\0", self.pos)
            if i >= 0:
                break
            self._fill()
        f = bytes(self.buf[self.pos:i])
        self.pos = i + 1
        return f.decode()

    def rest(self):
        return bytes(self.buf[self.pos:])

    def list_reply(self, per_entry):
        code = self.byte()
        if code != 0:
            return code, None
        n = int(self.field())
        return 0, [tuple(self.field() for _ in range(per_entry)) for _ in range(n)]


def parse_list(reply, per_entry):
    """(code, entries) of a complete canonical list reply."""
    r = Reader(None)
    r.buf = bytearray(reply)
    code, entries = r.list_reply(per_entry)
    assert not r.rest(), "trailing bytes after list reply: %r" % r.rest()[:50]
    return code, entries


_spawned = []


@atexit.register
def _kill_leftovers():
    """A failed test must not leave daemons running."""
    for proc in _spawned:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Daemon:
    """A running binary whose first stdout line is its readiness signal."""

    def __init__(self, argv, ready_pattern, env=None, ready_stream="stdout"):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        _spawned.append(self.proc)
        self.lines = []
        self.errors = []
        self._cond = threading.Condition()
        stream = self.proc.stdout if ready_stream == "stdout" else self.proc.stderr
        first = self._readline_with_timeout(stream, TIMEOUT)
        m = re.search(ready_pattern, first)
        if not m:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("%s did not start: %r %r" % (argv[0], first, stream.read()))
        self.match = m
        (self.lines if ready_stream == "stdout" else self.errors).append(first)
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self.errors), daemon=True)]
        for th in self._threads:
            th.start()

    @staticmethod
    def _readline_with_timeout(stream, timeout):
        ready, _, _ = select.select([stream], [], [], timeout)
        if not ready:
            raise RuntimeError("no readiness line within %ss" % timeout)
        return stream.readline().decode(errors="replace").rstrip("\n")

    def _drain(self, stream, into):
        for raw in stream:
            with self._cond:
                into.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, pattern, timeout=TIMEOUT, stream="stdout"):
        """Waits until a console line matches; returns it."""
        into = self.lines if stream == "stdout" else self.errors
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in into:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s line matching %r in %r" % (stream, pattern, into[-20:]))
                self._cond.wait(left)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def report(self, prefix, timeout=TIMEOUT):
        """Sends SIGUSR1 and returns the first standard error line starting with `prefix`
        that it prints (not an older one)."""
        before = len(self.errors)
        self.send_signal(signal.SIGUSR1)
        found = []

        def printed():
            with self._cond:
                found[:] = [l for l in self.errors[before:] if l.startswith(prefix)]
            return bool(found)

        wait_until(printed, timeout=timeout, what="a %r report line" % prefix)
        return found[0]

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._close_pipes()

    def _close_pipes(self):
        for th in self._threads:
            th.join(TIMEOUT)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def alive(self):
        return self.proc.poll() is None


def free_port():
    """A loopback port nobody listens on right now (for a server started later)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Redis:
    """A real redis-server of the test's own, in a temporary directory, listening on a unix
    socket there (and on a loopback port with tcp=True); gone at the end of the test."""

    def __init__(self, tcp=False, appendonly=False):
        self.dir = tempfile.mkdtemp(prefix="peerdex-redis-")
        atexit.register(shutil.rmtree, self.dir, True)
        self.sock = os.path.join(self.dir, "redis.sock")
        self.port = free_port() if tcp else 0
        self.appendonly = appendonly
        self.start()

    def start(self):
        argv = ["redis-server", "--port", str(self.port), "--bind", HOST, "--unixsocket", self.sock,
                "--dir", self.dir, "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "always", "--logfile", ""]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        _spawned.append(self.proc)
        lines = queue.Queue()  # read by a thread: a buffered readline defeats select()
        out = self.proc.stdout
        threading.Thread(target=lambda: [lines.put(l) for l in out] + [lines.put(b"")], daemon=True).start()
        seen = []
        deadline = time.monotonic() + TIMEOUT
        while True:  # its readiness line
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0)).decode(errors="replace")
            except queue.Empty:
                line = ""
            if not line:
                self.proc.kill()
                raise RuntimeError("redis-server did not start: %r" % seen[-10:])
            seen.append(line)
            if "ready to accept connections" in line.lower():  # tcp and unix words differ
                break

    @property
    def target(self):
        """What --store names it by."""
        return "redis://%s:%d" % (HOST, self.port) if self.port else "unix:" + self.sock

    def cli(self, *args):
        """One redis-cli command; its output."""
        r = subprocess.run(["redis-cli", "-s", self.sock] + [str(a) for a in args], capture_output=True,
                           timeout=TIMEOUT)
        return r.stdout.decode(errors="replace").strip()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(TIMEOUT)


class Logd(Daemon):
    """peerdex-logd on loopback; its readiness line is on stderr (stdout may be the log)."""

    def __init__(self, *args, port=0, env=None):
        argv = [os.environ["PEERDEX_LOGD"], "-l", HOST, "-p", str(port)] + list(args)
        super().__init__(argv, r"listening on 127\.0\.0\.1:(\d+)", env=env, ready_stream="stderr")
        self.port = int(self.match.group(1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.alive():
            self.stop(signal.SIGKILL)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def random_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# Sanitizer runtimes open a pipe pair of their own for a moment (to probe memory), so one
# sample of a process's descriptors may count two that are not the program's.
FD_NOISE = 2


def quiet_fd_count(pid, samples=5):
    """The process's descriptors without the sanitizer's passing pair: the least of a few
    samples."""
    return min(fd_count(pid) for _ in range(samples))


def wait_for_fds(pid, count, timeout=scaled(20)):
    """Waits (bounded) until the process has closed all but `count` descriptors."""
    deadline = time.monotonic() + timeout
    while fd_count(pid) > count and time.monotonic() < deadline:
        time.sleep(0.1)
    return fd_count(pid)


def files_open_in(pid, directory):
    """Descriptors of the process that name something in `directory` (an unnamed
    O_TMPFILE shows as '#inode (deleted)' there)."""
    found = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith(directory + "/"):
            found.append(target)
    return found


def wait_until(predicate, timeout=TIMEOUT, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def wait_for_log_lines(path, n, timeout=TIMEOUT):
    """Waits until the log server's file holds n lines: delivered, not merely sent. A
    tracker stopped before that has only a bounded time left to flush its queue."""
    def written():
        try:
            with open(path) as f:
                return sum(1 for _ in f) >= n
        except FileNotFoundError:
            return False
    wait_until(written, timeout=timeout, what="%d lines in %s" % (n, path))


def settled_stats(read_stats):
    """A file server's statistics (`read_stats()` gives them as a dict) once it has closed
    every finished connection: a client holds its whole reply before the server has seen
    its close, so the "open" count lags on a busy machine."""
    stats = {}

    def closed():
        stats.clear()
        stats.update(read_stats())
        return stats["connections"].endswith("(open 0)")

    wait_until(closed, what="the finished connections to be closed")
    return stats


class Tracker(Daemon):
    def __init__(self, *args, listen=HOST, env=None):
        argv = [os.environ["PEERDEX_TRACKER"], "-p", "0"] + (["-l", listen] if listen else []) + list(args)
        # The tracker suites also run against the delayed and the durable store (tests/meson.build).
        store = os.environ.get("PEERDEX_TEST_STORE")
        if store == "sqlite" and "--state" not in args:
            self.state_dir = tempfile.mkdtemp(prefix="peerdex-state-")
            atexit.register(shutil.rmtree, self.state_dir, True)
            argv += ["--state", os.path.join(self.state_dir, "tracker.db")]
        elif store == "redis" and "--state" not in args and "--store" not in args:
            self.redis = Redis()  # each tracker a registry of its own, as the other stores
            argv += ["--store", self.redis.target]
        elif store and "--state" not in args:
            argv += ["--store", store]
        super().__init__(argv, r"^s> init server (\S+):(\d+)$", env=env)
        self.port = int(self.match.group(2))
        self.host = listen if listen and listen not in ("::", "0.0.0.0") else HOST

    def connect(self, host=None):
        return socket.create_connection((host or self.host, self.port), timeout=TIMEOUT)

    def raw(self, data, host=None):
        """One canonical exchange: send bytes, read until the tracker closes."""
        with self.connect(host) as s:
            s.sendall(data)
            return read_all(s)

    def op(self, *fields, ts=True):
        """One canonical operation; returns the whole reply."""
        first, rest = fields[0], fields[1:]
        return self.raw(enc(first, *((TS,) if ts else ()), *rest))

    def code(self, *fields, ts=True):
        reply = self.op(*fields, ts=ts)
        assert len(reply) >= 1, "no reply to %r" % (fields,)
        return reply[0]

    def hello(self):
        s = self.connect()
        s.sendall(enc("HELLO", "peerdex/1"))
        r = Reader(s)
        assert r.byte() == 0 and r.field() == "peerdex/1"
        return s, r

    def user(self, name, port=4000):
        """Registers and connects a user; returns nothing, fails on error."""
        assert self.code("REGISTER", name) == 0
        assert self.code("CONNECT", name, port) == 0

    def state(self, observer):
        """Everything the registry shows to a connected observer: users and contents."""
        code, users = parse_list(self.op("LIST_USERS", observer), 3)
        assert code == 0, code
        contents = {}
        for name, _, _ in users:
            code, paths = parse_list(self.op("LIST_CONTENT", observer, name), 1)
            assert code == 0, code
            contents[name] = paths
        return users, contents

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.alive():
            self.stop(signal.SIGKILL)


SYNC = "c> Error: command SYNC not valid."


class Client:
    """A peerdex shell driven through its standard input, as a script would."""

    def __init__(self, tracker_port, *args, cwd=None, env=None):
        # No clock unless the test names one: what is on port 5000 here is not ours.
        clock = [] if any(a.startswith("--clock") for a in args) else ["--clock", "none"]
        argv = [os.environ["PEERDEX"], "-s", HOST, "-p", str(tracker_port)] + clock + list(args)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=cwd, env=env)
        _spawned.append(self.proc)
        self.lines, self.errors, self.seen = [], [], 0
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self.errors), daemon=True)]
        for th in self._threads:
            th.start()

    def _drain(self, stream, into):
        for raw in stream:
            with self._cond:
                into.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def run(self, line, timeout=scaled(60)):
        """Runs one command; returns its output lines (the commands run in order, so
        an unknown word after it marks where its output ends)."""
        self.proc.stdin.write((line + "\nSYNC\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with self._cond:
            while SYNC not in self.lines[self.seen:]:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and SYNC not in self.lines[self.seen:]):
                    raise AssertionError("no output for %r: %r %r" % (line, self.lines[self.seen:], self.errors[-5:]))
                self._cond.wait(min(left, 0.2))
            end = self.lines.index(SYNC, self.seen)
            out = self.lines[self.seen:end]
            self.seen = end + 1
            return out

    def quit(self, line="QUIT", timeout=scaled(30)):
        """Ends the session (QUIT, or None for end of input); returns the last lines."""
        if line:
            self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.close()
        rc = self.proc.wait(timeout)
        for th in self._threads:
            th.join(timeout)
        self.returncode = rc
        return self.lines[self.seen:]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Terminal:
    """A program on a pseudo-terminal of its own (its controlling terminal, in the
    foreground), as a person at a keyboard runs it."""

    def __init__(self, argv, env=None):
        self.pid, self.master = pty.fork()
        if self.pid == 0:
            os.execve(argv[0], argv, dict(env if env is not None else os.environ, TERM="xterm"))
        self.out = b""
        self.seen = 0

    def type(self, keys):
        os.write(self.master, keys.encode() if isinstance(keys, str) else keys)

    def until(self, pattern, timeout=TIMEOUT):
        """Reads until the screen output after the last match contains `pattern`."""
        deadline = time.monotonic() + timeout
        pattern = pattern.encode() if isinstance(pattern, str) else pattern
        while True:
            m = re.search(pattern, self.out[self.seen:])
            if m:
                self.seen += m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal; it shows %r" % (pattern, self.out[-400:]))
            if not select.select([self.master], [], [], left)[0]:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the program closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError("terminal closed before %r; it showed %r" % (pattern, self.out[-400:]))
            self.out += chunk

    def wait(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
            try:  # keep the terminal drained so the program never blocks writing
                if select.select([self.master], [], [], 0.05)[0]:
                    self.out += os.read(self.master, 4096)
            except OSError:
                time.sleep(0.05)
        raise AssertionError("still running after %ss" % timeout)

    def close(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = 0
        os.close(self.master)


class FakePeer:
    """A peer that misbehaves on purpose: reads the request of each connection, then
    runs `script(conn)` on it. Without a script it accepts each connection and closes
    it: alive to the tracker's probes (peerdex-protocol(7), EXPIRY), serving nothing."""

    def __init__(self, script=None):
        self.sock = socket.create_server((HOST, 0), backlog=1024)
        self.port = self.sock.getsockname()[1]
        self.script = script
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                if self.script is None:
                    continue
                try:
                    conn.recv(4096)
                    self.script(conn)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
