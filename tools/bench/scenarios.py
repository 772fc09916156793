#!/usr/bin/env python3
"""Benchmark scenarios of peerdex, each beside its reference measured in the same run.

    scenarios.py [--build DIR] [--seconds S] [--quick] SCENARIO...

Scenarios: canonical, hello, latency, expiry, oplog, memory, scaling, getfile, transfer,
clock, hash, verify, rate, multi, serving, curves, all. Every daemon runs on
an ephemeral loopback port and is stopped at the end. References (nginx, wrk)
are used when installed; a missing one is reported, never faked.
"""

import argparse
import filecmp
import os
import re
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Proc:
    def __init__(self, argv, ready, stream="stdout", env=None):
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        src = self.p.stdout if stream == "stdout" else self.p.stderr
        line = src.readline()
        m = re.search(ready, line)
        if not m:
            self.p.kill()
            raise SystemExit("%s did not start: %r" % (argv[0], line + src.read()))
        self.match = m
        self.pid = self.p.pid

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        out, err = self.p.communicate(timeout=30)
        return err


def tracker(build, *args):
    return Proc([os.path.join(build, "src/tracker/peerdex-tracker"), "-q", "-l", "127.0.0.1", "-p", "0"] + list(args),
                r"s> init server 127\.0\.0\.1:(\d+)")


def logd(build, out, cpu=None):
    pin = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
    return Proc(pin + [os.path.join(build, "src/logd/peerdex-logd"), "-q", "-l", "127.0.0.1", "-p", "0",
                       "--rpcbind", "no", "-o", out], r"listening on 127\.0\.0\.1:(\d+)", stream="stderr")


PROCS = 2  # load-generator processes, like wrk -t2: one thread cannot saturate the server


def bench(build, port, *args, procs=1):
    """Runs peerdex-bench; with procs > 1, that many processes share the clients and
    their ops/s add up (p99 is then the worst of theirs)."""
    args = [str(a) for a in args]
    clients = int(args[args.index("-c") + 1]) if "-c" in args else 64
    procs = max(1, min(procs, clients))
    runs = []
    for i in range(procs):
        mine = list(args)
        if "-c" in mine:
            mine[mine.index("-c") + 1] = str(clients // procs + (1 if i < clients % procs else 0))
        argv = [os.path.join(build, "tools/bench/peerdex-bench"), "-p", str(port)] + mine
        runs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    total = None
    for p in runs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit("peerdex-bench failed (%d): %s %s" % (p.returncode, out, err))
        fields = dict(kv.split("=", 1) for line in out.splitlines() for kv in line.split() if "=" in kv)
        if total is None:
            total = fields
        else:
            total["ops_per_s"] = str(float(total["ops_per_s"]) + float(fields["ops_per_s"]))
            for k in ("p50_us", "p99_us", "p999_us"):
                total[k] = str(max(int(total[k]), int(fields[k])))
    return total


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx on loopback serving `return 200 "..."` and a static directory with sendfile."""

    def __init__(self, root):
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(exe):
            raise FileNotFoundError("nginx")
        self.dir = tempfile.mkdtemp(prefix="peerdex-nginx-")
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
worker_processes 1;
master_process off;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  server {
    listen 127.0.0.1:%(port)d;
    location = /ok { return 200 "22/11/2026 22:38:16"; }
    location /files/ { alias %(root)s/; }
  }
}
""" % {"d": self.dir, "port": self.port, "root": root})
        self.p = subprocess.Popen([exe, "-c", conf, "-p", self.dir], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or self.p.poll() is not None:
                    raise SystemExit("nginx did not start: %s" % self.p.stderr.read())
                time.sleep(0.05)

    def stop(self):
        self.p.send_signal(signal.SIGQUIT)
        self.p.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def wrk(port, seconds, connections, close):
    exe = shutil.which("wrk")
    if not exe:
        return None
    argv = [exe, "-t%d" % min(PROCS, connections), "-c%d" % connections, "-d%ds" % seconds, "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    r = subprocess.run(argv + ["http://127.0.0.1:%d/ok" % port], capture_output=True, text=True)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    total = re.search(r"(\d+) requests in", r.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", r.stdout)
    scale = {"us": 1, "ms": 1000, "s": 1000000}
    return {"ops_per_s": float(m.group(1)) if m else 0.0, "ops": int(total.group(1)) if total else 0,
            "p99_us": float(p99.group(1)) * scale[p99.group(2)] if p99 else None}


def line(name, value, ref_name=None, ref=None, unit="ops/s"):
    if ref:
        print("  %-46s %12.0f %s   %-28s %12.0f   ratio %.2f" % (name, value, unit, ref_name, ref, value / ref))
    else:
        print("  %-46s %12.0f %s" % (name, value, unit))


def with_nginx(fn, root=None):
    try:
        n = Nginx(root or tempfile.gettempdir())
    except FileNotFoundError:
        print("  (nginx not installed: reference not measured)")
        return None
    try:
        return fn(n)
    finally:
        n.stop()


def measured(pid, fn):
    """Runs fn(); returns its result and the CPU seconds pid spent meanwhile."""
    before = cpu_seconds(pid)
    r = fn()
    return r, cpu_seconds(pid) - before


def nginx_run(seconds, clients, close):
    def run(n):
        r, cpu = measured(n.p.pid, lambda: wrk(n.port, seconds, clients, close))
        if r:
            r["cpu_us_per_op"] = cpu * 1e6 / max(r["ops"], 1)
        return r
    return with_nginx(run)


def scenario_canonical(a):
    print("== canonical: one TCP connection per operation, %d clients, %ds" % (a.clients, a.seconds))
    t = tracker(a.build)
    port = t.match.group(1)
    try:
        r, cpu = measured(t.pid, lambda: bench(a.build, port, "-c", a.clients, "-d", a.seconds, procs=PROCS))
        rl, cpul = measured(t.pid, lambda: bench(a.build, port, "-c", a.clients, "-d", a.seconds, "--light",
                                                   procs=PROCS))
    finally:
        t.stop()
    ref = nginx_run(a.seconds, a.clients, close=True)
    line("tracker, full user lives", float(r["ops_per_s"]), "nginx Connection: close", ref and ref["ops_per_s"])
    line("tracker, REGISTER/UNREGISTER only", float(rl["ops_per_s"]), "nginx Connection: close",
         ref and ref["ops_per_s"])
    ops = float(r["ops_per_s"]) * a.seconds
    opsl = float(rl["ops_per_s"]) * a.seconds
    print("  server CPU per operation: tracker %.1f us (full), %.1f us (light); nginx %s us per request" % (
        cpu * 1e6 / ops, cpul * 1e6 / opsl, "%.1f" % ref["cpu_us_per_op"] if ref else "n/a"))
    print("  tracker latency p50 %s us, p99 %s us, p99.9 %s us%s" % (
        r["p50_us"], r["p99_us"], r["p999_us"],
        "; nginx p99 %.0f us" % ref["p99_us"] if ref and ref["p99_us"] else ""))


def scenario_hello(a):
    print("== hello: persistent sessions, %d clients, %ds" % (a.clients, a.seconds))
    t = tracker(a.build)
    port = t.match.group(1)
    try:
        r1, cpu = measured(t.pid, lambda: bench(a.build, port, "-c", a.clients, "-d", a.seconds, "--hello",
                                                  procs=PROCS))
        r32 = bench(a.build, port, "-c", a.clients, "-d", a.seconds, "--hello", "--pipeline", 32, procs=PROCS)
    finally:
        t.stop()
    ref = nginx_run(a.seconds, a.clients, close=False)
    line("tracker, one request in flight per session", float(r1["ops_per_s"]), "nginx keep-alive",
         ref and ref["ops_per_s"])
    line("tracker, 32 pipelined per session", float(r32["ops_per_s"]))
    print("  server CPU per operation: tracker %.1f us; nginx %s us per request" % (
        cpu * 1e6 / (float(r1["ops_per_s"]) * a.seconds), "%.1f" % ref["cpu_us_per_op"] if ref else "n/a"))
    print("  tracker latency (unpipelined) p50 %s us, p99 %s us, p99.9 %s us" % (
        r1["p50_us"], r1["p99_us"], r1["p999_us"]))


def oplog_every_operation(a, tmp):
    """HELLO sessions, each client alternating REGISTER and UNREGISTER of its own user: every
    operation is a mutation and is logged. Logging on and off take turns; medians."""
    runs = {"on": [], "off": []}
    out = os.path.join(tmp, "ops.log")
    load = ("-c", a.clients, "-d", a.seconds, "--hello", "--light")
    for r in range(a.repeat):
        for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
            if mode == "off":
                t = tracker(a.build)
                try:
                    res, _ = measured(t.pid, lambda: bench(a.build, t.match.group(1), *load, procs=PROCS))
                finally:
                    t.stop()
                runs["off"].append((float(res["ops_per_s"]), 0.0, 0.0))
                continue
            for f in (out, out + ".state"):
                if os.path.exists(f):
                    os.remove(f)
            d = logd(a.build, out)
            t = tracker(a.build, "--log", "127.0.0.1:" + d.match.group(1))
            logd_before = cpu_seconds(d.pid)
            try:
                res, _ = measured(t.pid, lambda: bench(a.build, t.match.group(1), *load, procs=PROCS))
            finally:
                t.stop()  # delivers what is queued, then the log server's CPU is read
                logd_cpu = cpu_seconds(d.pid) - logd_before
                d.p.send_signal(signal.SIGUSR1)  # its counters, printed even with -q
                time.sleep(0.2)
                err = d.stop()
            m = re.search(r"(\d+) calls, (\d+) entries written", err or "")
            calls, written = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
            runs["on"].append((float(res["ops_per_s"]), logd_cpu * 1e6 / max(written, 1), written / max(calls, 1)))
    on = statistics.median(x[0] for x in runs["on"])
    off = statistics.median(x[0] for x in runs["off"])
    line("every operation logged, logging on (median)", on, "logging off", off)
    print("  log server CPU per entry: median %.2f us %s; entries per call: median %.0f" % (
        statistics.median(x[1] for x in runs["on"]), [round(x[1], 2) for x in runs["on"]],
        statistics.median(x[2] for x in runs["on"])))
    print("  ops/s on %s, off %s" % ([int(x[0]) for x in runs["on"]], [int(x[0]) for x in runs["off"]]))


def scenario_oplog(a):
    print("== oplog: tracker throughput with the operation log on vs off, %ds each" % a.seconds)
    tmp = tempfile.mkdtemp(prefix="peerdex-bench-oplog-")
    try:
        oplog_every_operation(a, tmp)
        # The third load offers far more than a log server can take: it measures the
        # log server's own ceiling (and shows the queue dropping the oldest entries).
        for mode, extra in (("canonical", []), ("hello", ["--hello"]),
                            ("hello, 32 pipelined", ["--hello", "--pipeline", 32])):
            t = tracker(a.build)
            try:
                off, cpu_off = measured(t.pid, lambda: bench(a.build, t.match.group(1), "-c", a.clients, "-d",
                                                             a.seconds, *extra, procs=PROCS))
            finally:
                t.stop()
            out = os.path.join(tmp, "ops.log")
            d = logd(a.build, out)
            t = tracker(a.build, "--log", "127.0.0.1:" + d.match.group(1))
            try:
                started = time.time()
                on, cpu_on = measured(t.pid, lambda: bench(a.build, t.match.group(1), "-c", a.clients, "-d",
                                                           a.seconds, *extra, procs=PROCS))
            finally:
                err = t.stop()
                elapsed = time.time() - started
                d.stop()
            m = re.search(r"(\d+) delivered, (\d+) dropped", err or "")
            delivered, dropped = (int(m.group(1)), int(m.group(2))) if m else (0, -1)
            line("%s, logging on" % mode, float(on["ops_per_s"]), "logging off", float(off["ops_per_s"]))
            us_on = cpu_on * 1e6 / (float(on["ops_per_s"]) * a.seconds)
            us_off = cpu_off * 1e6 / (float(off["ops_per_s"]) * a.seconds)
            print("  tracker CPU per operation: %.2f us logging on, %.2f us off: capacity ratio %.2f" % (
                us_on, us_off, us_off / us_on))
            print("  log server: %d entries written in %.1fs (%.0f entries/s, fsync batch), %d dropped" % (
                delivered, elapsed, delivered / elapsed, dropped))
            os.remove(out)
            if os.path.exists(out + ".state"):
                os.remove(out + ".state")
        # The log server's ceiling: it gets a core of its own (CPU 1), the tracker and
        # the load generator share the other, and the tracker offers all it can.
        if shutil.which("taskset") and os.cpu_count() >= 2:
            out = os.path.join(tmp, "ops.log")
            d = logd(a.build, out, cpu=1)
            t = Proc(["taskset", "-c", "0", os.path.join(a.build, "src/tracker/peerdex-tracker"), "-q", "-l",
                      "127.0.0.1", "-p", "0", "--log", "127.0.0.1:" + d.match.group(1)],
                     r"s> init server 127\.0\.0\.1:(\d+)")
            try:
                started = time.time()
                subprocess.run(["taskset", "-c", "0", os.path.join(a.build, "tools/bench/peerdex-bench"), "-p",
                                t.match.group(1), "-c", "64", "-d", str(a.seconds), "--hello", "--pipeline", "32"],
                               capture_output=True, check=True)
            finally:
                err = t.stop()
                elapsed = time.time() - started
                d.stop()
            m = re.search(r"(\d+) delivered, (\d+) dropped", err or "")
            written = sum(1 for _ in open(out))
            print("  log server on its own core: %d entries written in %.1fs = %.0f entries/s (fsync batch);"
                  " tracker dropped %s" % (written, elapsed, written / elapsed, m.group(2) if m else "?"))
    finally:
        shutil.rmtree(tmp)


class Shell:
    """A peerdex client driven through its standard input."""

    def __init__(self, build, port, cwd, *args, env=None):
        self.p = subprocess.Popen([os.path.join(build, "src/peer/peerdex"), "-q", "-s", "127.0.0.1", "-p", str(port)] +
                                  list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=cwd,
                                  env=env)

    def run(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().rstrip("\n")

    def quit(self):
        self.p.stdin.write("QUIT\n")
        self.p.stdin.close()
        self.p.wait(timeout=30)


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1]) * 1024
    return 0


def raw_fetch(port, request, size):
    """Seconds to read a whole reply of at least `size` bytes, discarding it: the same
    reader for both servers, so that only the servers differ."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    got = 0
    started = time.time()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)
        while True:
            n = s.recv_into(view)
            if n == 0:
                break
            got += n
    if got < size:
        raise SystemExit("short read: %d of %d bytes" % (got, size))
    return time.time() - started


def scenario_getfile(a):
    size = a.file_mib << 20
    print("== getfile: one %d MiB file, peer to peer vs curl from nginx (sendfile), to the same disk" % a.file_mib)
    tmp = tempfile.mkdtemp(prefix="peerdex-bench-getfile-")
    try:
        src = os.path.join(tmp, "big.bin")
        with open(src, "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        with open(src, "rb") as f:  # warm the page cache for both
            while f.read(1 << 24):
                pass
        best = {}

        def timed(what, fetch):
            """Seconds fetch(dest) took to write the whole file at dest, which then goes."""
            dest = os.path.join(tmp, "fetched.bin")
            started = time.time()
            fetch(dest)
            took = time.time() - started
            if os.path.getsize(dest) != size:
                raise SystemExit("%s wrote %d bytes" % (what, os.path.getsize(dest)))
            os.remove(dest)
            return took

        nginx = None
        t = tracker(a.build)
        owner = Shell(a.build, t.match.group(1), tmp)
        getter = Shell(a.build, t.match.group(1), tmp)
        try:
            try:
                nginx = Nginx(tmp) if shutil.which("curl") else None
            except FileNotFoundError:
                pass
            if nginx is None:
                print("  (nginx or curl not installed: reference not measured)")
            for sh, name in ((owner, "owner"), (getter, "getter")):
                assert sh.run("REGISTER " + name).endswith("OK")
                assert sh.run("CONNECT " + name).endswith("OK")
            assert owner.run("PUBLISH big.bin bench") == "c> PUBLISH OK"
            base = rss_bytes(owner.p.pid)
            peak = [base]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], rss_bytes(owner.p.pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            # The owner's peer, for the plain download and the raw reader.
            with socket.create_connection(("127.0.0.1", int(t.match.group(1)))) as s:
                s.sendall(b"GET_USER_INFO\0getter\0owner\0")
                reply = s.recv(100)
            peer_port = int(reply[1:].split(b"\0")[1])
            exe = os.path.join(a.build, "src/peer/peerdex")

            def get_file(dest):
                result = getter.run("GET_FILE owner %s %s" % (src, dest))
                if result != "c> GET_FILE OK":
                    raise SystemExit("GET_FILE failed: " + result)

            # The shell's GET_FILE (verified: the owner serves its tree), `peerdex download
            # --no-verify` from the same peer (a plain GET_FILE, as a course client makes) and
            # curl from nginx take turns; medians.
            times, plain_times, curl_times = [], [], []
            for i in range(a.repeat):
                times.append(timed("GET_FILE", get_file))
                plain_times.append(timed("download --no-verify", lambda dest: subprocess.run(
                    [exe, "download", "-q", "-p", str(peer_port), "--no-verify", src, "-d", dest], check=True)))
                if nginx:
                    curl_times.append(timed("curl", lambda dest: subprocess.run(
                        [shutil.which("curl"), "-sf", "-o", dest, "http://127.0.0.1:%d/files/big.bin" % nginx.port],
                        check=True)))
            done.set()
            sampler.join()
            best["peer"] = statistics.median(times)
            # Serving only: the same raw reader as for nginx.
            best["peer_raw"] = min(raw_fetch(peer_port, b"GET_FILE\0" + src.encode() + b"\0", size)
                                   for _ in range(a.repeat))
            # Many downloaders at once: peerdex-bench's GET_FILE mode, an 8 MiB file.
            small = os.path.join(tmp, "small.bin")
            with open(small, "wb") as f:
                f.write(os.urandom(8 << 20))
            assert owner.run("PUBLISH small.bin bench") == "c> PUBLISH OK"
            concurrency = []
            for c in (1, 16, 64):
                r = bench(a.build, peer_port, "--get-file", small, "-c", c, "-d", a.seconds)
                concurrency.append((c, r))
            owner.quit()
            getter.quit()
        finally:
            t.stop()
            if nginx:
                nginx.stop()
        ref = statistics.median(curl_times) if curl_times else None
        ref_raw = with_nginx(lambda n: min(raw_fetch(n.port, b"GET /files/big.bin HTTP/1.0\r\n\r\n", size)
                                           for _ in range(a.repeat)), root=tmp)
        mib = size / 2**20
        line("peerdex GET_FILE (verified), into a file, median", mib / best["peer"], "curl from nginx, median",
             ref and mib / ref, unit="MiB/s")
        line("peerdex download --no-verify, into a file, median", mib / statistics.median(plain_times),
             "curl from nginx, median", ref and mib / ref, unit="MiB/s")
        print("  runs, alternated: GET_FILE %s s; --no-verify %s s; curl %s s" % (
            ", ".join("%.2f" % x for x in times), ", ".join("%.2f" % x for x in plain_times),
            ", ".join("%.2f" % x for x in curl_times)))
        line("serving only: one raw reader, discarding", mib / best["peer_raw"], "same reader from nginx",
             ref_raw and mib / ref_raw, unit="MiB/s")
        print("  serving peer RSS: %.1f MiB before, peak %.1f MiB during: growth %.1f MiB" % (
            base / 2**20, peak[0] / 2**20, (peak[0] - base) / 2**20))
        print("  %-12s %14s %10s %10s   (8 MiB file, peerdex-bench --get-file)" % (
            "downloaders", "downloads/s", "MiB/s", "p99 ms"))
        for c, r in concurrency:
            print("  %-12d %14s %10s %10.1f" % (c, r["downloads_per_s"], r["mib_per_s"], int(r["p99_us"]) / 1000))
    finally:
        shutil.rmtree(tmp)


def scenario_transfer(a):
    """peerdex serve with peerdex upload/download, beside curl from nginx (sendfile)."""
    size = a.file_mib << 20
    print("== transfer: one %d MiB file, peerdex upload/download to/from peerdex serve vs curl from nginx "
          "(sendfile), same disk" % a.file_mib)
    tmp = tempfile.mkdtemp(prefix="peerdex-bench-transfer-")
    exe = os.path.join(a.build, "src/peer/peerdex")
    try:
        share = os.path.join(tmp, "share")
        os.mkdir(share)
        src = os.path.join(tmp, "big.bin")
        with open(src, "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        with open(src, "rb") as f:  # warm the page cache for every reader
            while f.read(1 << 24):
                pass
        srv = Proc([exe, "serve", "-q", "-H", "127.0.0.1", "-p", "0", "-s", share],
                   r"serving .* on 127\.0\.0\.1:(\d+) ")
        port = srv.match.group(1)
        base = rss_bytes(srv.pid)
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_bytes(srv.pid))
                time.sleep(0.02)

        def timed(argv, check):
            started = time.time()
            subprocess.run(argv, check=True)
            took = time.time() - started
            if os.path.getsize(check) != size:
                raise SystemExit("%s wrote %d bytes" % (argv[1], os.path.getsize(check)))
            return took

        nginx = None
        try:
            nginx = Nginx(tmp)
        except FileNotFoundError:
            print("  (nginx not installed: reference not measured)")
        curl = shutil.which("curl")
        sampler = threading.Thread(target=sample)
        sampler.start()
        up, down, ref = [], [], []
        try:
            # Interleaved, so that a noisy neighbour hurts both sides alike.
            for _ in range(a.repeat):
                # Stored means synced (fsync) and renamed, as PUT_FILE's 00 promises.
                up.append(timed([exe, "upload", "-q", "-p", port, src], os.path.join(share, "big.bin")))
                dest = os.path.join(tmp, "down.bin")
                down.append(timed([exe, "download", "-q", "-p", port, "big.bin", "-d", dest], dest))
                os.remove(dest)
                if nginx and curl:
                    ref.append(timed([curl, "-sf", "-o", dest, "http://127.0.0.1:%d/files/big.bin" % nginx.port],
                                     dest))
                    os.remove(dest)
            raw = min(raw_fetch(int(port), b"GET_FILE\0big.bin\0", size) for _ in range(a.repeat))
            ref_raw = nginx and min(raw_fetch(nginx.port, b"GET /files/big.bin HTTP/1.0\r\n\r\n", size)
                                    for _ in range(a.repeat))
        finally:
            done.set()
            sampler.join()
            srv.stop()
            if nginx:
                nginx.stop()
        ref = ref and min(ref)
        mib = size / 2**20
        line("peerdex upload, into a file (fsync'd)", mib / min(up), "curl from nginx, into a file",
             ref and mib / ref, unit="MiB/s")
        line("peerdex download, into a file", mib / min(down), "curl from nginx, into a file",
             ref and mib / ref, unit="MiB/s")
        line("serving only: one raw reader, discarding", mib / raw, "same reader from nginx",
             ref_raw and mib / ref_raw, unit="MiB/s")
        print("  server RSS: %.1f MiB before, peak %.1f MiB during: growth %.1f MiB" % (
            base / 2**20, peak[0] / 2**20, (peak[0] - base) / 2**20))
    finally:
        shutil.rmtree(tmp)


def wrk_url(url, seconds, connections):
    exe = shutil.which("wrk")
    if not exe:
        return None
    r = subprocess.run([exe, "-t%d" % PROCS, "-c%d" % connections, "-d%ds" % seconds, url], capture_output=True,
                       text=True)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    if errors:
        raise SystemExit("wrk saw errors from %s: %s" % (url, r.stdout))
    return float(m.group(1)) if m else None


def wait_http(port, proc):
    deadline = time.time() + 20
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def scenario_clock(a):
    print("== clock: GET /datetime, wrk -t%d -c64 -d%ds against each server" % (PROCS, a.seconds))
    c = Proc([os.path.join(a.build, "src/clock/peerdex-clock"), "-l", "127.0.0.1", "-p", "0"],
             r"listening on 127\.0\.0\.1:(\d+)", stream="stderr")
    try:
        time.sleep(0.5)
        idle = rss_bytes(c.pid)
        ours = wrk_url("http://127.0.0.1:%s/datetime" % c.match.group(1), a.seconds, 64)
    finally:
        c.stop()
    c2 = Proc([os.path.join(a.build, "src/clock/peerdex-clock"), "-l", "127.0.0.1", "-p", "0", "--threads", "2"],
              r"listening on 127\.0\.0\.1:(\d+)", stream="stderr")
    try:
        ours2 = wrk_url("http://127.0.0.1:%s/datetime" % c2.match.group(1), a.seconds, 64)
    finally:
        c2.stop()
    flask_rps = None
    python = "/usr/bin/python3"
    if subprocess.run([python, "-c", "import flask"], capture_output=True).returncode == 0:
        port = free_port()
        f = subprocess.Popen([python, os.path.join(HERE, "flask_clock.py"), str(port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            if wait_http(port, f):
                flask_rps = wrk_url("http://127.0.0.1:%d/datetime" % port, a.seconds, 64)
        finally:
            f.terminate()
            f.wait()
    else:
        print("  (python3-flask not installed: reference not measured)")
    nginx_rps = with_nginx(lambda n: wrk_url("http://127.0.0.1:%d/ok" % n.port, a.seconds, 64))
    line("peerdex-clock, 1 thread", ours, "nginx return 200, 1 worker", nginx_rps, unit="req/s")
    line("peerdex-clock, 1 thread", ours, "Flask (werkzeug, threaded)", flask_rps, unit="req/s")
    line("peerdex-clock, --threads 2", ours2, "Flask (werkzeug, threaded)", flask_rps, unit="req/s")
    print("  peerdex-clock idle RSS: %.1f MiB" % (idle / 2**20))


def scenario_memory(a):
    users = a.users
    print("== memory: %d users, each connected with 2 publications" % users)
    t = tracker(a.build)
    try:
        r = bench(a.build, t.match.group(1), "--fill", users, "-k", 2, "-c", 16, "--pid", t.pid)
    finally:
        t.stop()
    grown = (int(r["tracker_rss_kib_after"]) - int(r["tracker_rss_kib_before"])) * 1024
    print("  tracker RSS grew %.1f MiB: %.0f bytes per user with its connection and 2 publications" % (
        grown / 2**20, grown / users))
    print("  (names of 10-15 bytes and paths of 7: every string fits inside its std::string, so")
    print("   this is all overhead; the target is 256 per user + 2 x 256 per publication = 768)")


def scenario_latency(a):
    print("== latency at a fixed offered load (open loop), %d clients, %ds" % (a.clients, a.seconds))
    print("  %-10s %12s %12s %10s %10s %10s" % ("mode", "offered/s", "achieved/s", "p50 us", "p99 us", "p99.9 us"))
    t = tracker(a.build)
    try:
        for mode, rate, extra in (("canonical", 10000, []), ("canonical", 20000, []),
                                  ("hello", 50000, ["--hello"]), ("hello", 100000, ["--hello"])):
            # Each of the PROCS processes offers its share of the rate.
            r = bench(a.build, t.match.group(1), "-c", a.clients, "-d", a.seconds, "--rate", rate // PROCS, *extra,
                      procs=PROCS)
            print("  %-10s %12d %12.0f %10s %10s %10s" % (mode, rate, float(r["ops_per_s"]), r["p50_us"],
                                                           r["p99_us"], r["p999_us"]))
    finally:
        t.stop()


class Accepting:
    """A fake peer listener that accepts and closes every connection (an alive peer)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                self.sock.accept()[0].close()
            except OSError:
                return


def fill_connected(port, ports, n):
    """Registers and connects n users over one HELLO session, user i at ports[i % len]."""
    with socket.create_connection(("127.0.0.1", int(port))) as s:
        s.sendall(b"HELLO\0peerdex/1\0")
        expect = len(b"\0peerdex/1\0")
        got = b""
        for i in range(n):
            name = ("x%05d" % i).encode()
            s.sendall(b"REGISTER\0" + name + b"\0CONNECT\0" + name + b"\0" + str(ports[i % len(ports)]).encode() + b"\0")
        expect += 2 * n
        while len(got) < expect:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise SystemExit("the tracker closed the fill session")
            got += chunk
        if got[len(b"\0peerdex/1\0"):].count(0) != 2 * n:
            raise SystemExit("the fill was refused")


def scenario_expiry(a):
    n = 10000
    print("== latency while %d users are probed (interval 1 s, the default rate cap: 10 s rounds) and half "
          "of them expire "
          "(canonical REGISTER/UNREGISTER, %d clients, 10,000 ops/s offered, %ds)" % (n, a.clients, a.seconds))
    print("  %-8s %12s %10s %10s %10s %14s" % ("probing", "achieved/s", "p50 us", "p99 us", "p99.9 us", "expired"))
    # On two cores: the tracker on one, the load generator and the fake peers on the other.
    pin_tracker = []
    if shutil.which("taskset") and os.cpu_count() >= 2:
        pin_tracker = ["taskset", "-c", "0"]
        os.sched_setaffinity(0, {1})
    alive = [Accepting() for _ in range(20)]
    dead = [free_port() for _ in range(20)]
    ports = [p for pair in zip([x.port for x in alive], dead) for p in pair]  # even: alive, odd: dead
    for _ in range(2):
        for probing in (False, True):
            t = Proc(pin_tracker + [os.path.join(a.build, "src/tracker/peerdex-tracker"), "-q", "-l", "127.0.0.1",
                                    "-p", "0", "--probe-interval", "1" if probing else "0", "--probe-failures", "2",
                                    "--probe-timeout", "2"],
                     r"s> init server 127\.0\.0\.1:(\d+)")
            try:
                fill_connected(t.match.group(1), ports, n)
                # Light mix: a LIST_USERS of 10,000 users costs the same with probing or
                # without, and at this rate it alone would saturate the loop.
                r = bench(a.build, t.match.group(1), "-c", a.clients, "-d", a.seconds, "--rate", 10000, "--light")
                t.p.send_signal(signal.SIGUSR1)
                time.sleep(0.2)
            finally:
                err = t.stop()
            m = re.search(r"(\d+) users expired", err or "")
            print("  %-8s %12.0f %10s %10s %10s %14s" % ("on" if probing else "off", float(r["ops_per_s"]), r["p50_us"],
                                                          r["p99_us"], r["p999_us"], m.group(1) if m else "-"))
    for x in alive:
        x.sock.close()
    if pin_tracker:
        os.sched_setaffinity(0, range(os.cpu_count()))


def load_session(port, path):
    """Sends a file of HELLO-session requests (HELLO first) and checks every reply is 0."""
    with open(path, "rb") as f:
        data = f.read()
    requests = data.count(b"REGISTER\0") + data.count(b"CONNECT\0") + data.count(b"PUBLISH\0")
    want = len(b"\0peerdex/1\0") + requests
    with socket.create_connection(("127.0.0.1", int(port))) as s:
        got = bytearray()
        sender = threading.Thread(target=s.sendall, args=(data,))
        sender.start()
        while len(got) < want:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise SystemExit("the tracker closed the load session")
            got += chunk
        sender.join()
    if got[11:].count(0) != requests:
        raise SystemExit("the load was refused in part")
    return requests


def row(name, res):
    print("  %-34s %12.0f %10s %10s %10s %10s" % (name, float(res["ops_per_s"]), res["p50_us"], res["p99_us"],
                                                  res["p999_us"], res["max_us"]))


def scenario_search(a):
    """SEARCH over the wire: the corpus of peerdex-search-bench loaded through one HELLO
    session, then 64 HELLO sessions offering searches open loop."""
    pubs, users = (200000, 2000) if a.quick else (2000000, 20000)
    rate = 5000
    d = tempfile.mkdtemp(prefix="peerdex-search-")
    try:
        subprocess.run([os.path.join(a.build, "tools/bench/peerdex-search-bench"), "--publications", str(pubs),
                        "--users", str(users), "--queries", "20000", "--dump", d], check=True, stdout=subprocess.DEVNULL)
        pin_tracker = []
        if shutil.which("taskset") and os.cpu_count() >= 2:
            pin_tracker = ["taskset", "-c", "0"]
            os.sched_setaffinity(0, {1})
        t = Proc(pin_tracker + [os.path.join(a.build, "src/tracker/peerdex-tracker"), "-q", "-l", "127.0.0.1", "-p",
                                "0", "--probe-interval", "0", "--auth", "none", "--search-rate", "0"],
                 r"s> init server 127\.0\.0\.1:(\d+)")
        try:
            port = t.match.group(1)
            started = time.monotonic()
            n = load_session(port, os.path.join(d, "load.bin"))
            print("== SEARCH over the wire: %d publications over %d users loaded (%d requests, %.1f s); tracker "
                  "RSS %.0f MiB" % (pubs, users, n, time.monotonic() - started, rss_bytes(t.p.pid) / 2**20))
            print("  %-34s %12s %10s %10s %10s %10s" % ("load", "achieved/s", "p50 us", "p99 us", "p99.9 us", "max us"))
            # The floor: what the machine and the generator give light requests alone.
            row("light requests alone, 1,000/s", bench(a.build, port, "--hello", "--light", "-c", 16, "-d", a.seconds,
                                                        "--rate", 1000))
            cpu0 = cpu_seconds(t.p.pid)
            res = bench(a.build, port, "--hello", "-c", 64, "-d", a.seconds, "--rate", rate, "--search",
                        os.path.join(d, "queries.txt"))
            cpu = cpu_seconds(t.p.pid) - cpu0
            row("random queries, %d/s offered" % rate, res)
            print("  tracker CPU per search: %.1f us (%.0f%% of its core)" % (
                cpu / max(1, int(res["ops"])) * 1e6, 100 * cpu / float(a.seconds)))
            # The worst case, and meanwhile other sessions' light requests (REGISTER and
            # UNREGISTER, 1,000/s): how long a query that walks its budget holds them up.
            others = {}
            side = threading.Thread(target=lambda: others.update(bench(
                a.build, port, "--hello", "--light", "-c", 16, "-d", a.seconds, "--rate", 1000)))
            side.start()
            res = bench(a.build, port, "--hello", "-c", 64, "-d", a.seconds, "--rate", 200, "--search",
                        os.path.join(d, "worst.txt"))
            side.join()
            row("the most frequent word, 200/s", res)
            row("  meanwhile others, 1,000/s", others)
        finally:
            t.stop()
            if pin_tracker:
                os.sched_setaffinity(0, range(os.cpu_count()))
    finally:
        shutil.rmtree(d)


def scenario_scaling(a):
    print("== scaling with concurrent clients (%ds each)" % a.seconds)
    print("  %8s %16s %12s %16s %12s" % ("clients", "canonical ops/s", "p99 us", "hello ops/s", "p99 us"))
    t = tracker(a.build)
    try:
        for c in (1, 16, 256, 1000):
            rc = bench(a.build, t.match.group(1), "-c", c, "-d", a.seconds, procs=PROCS)
            rh = bench(a.build, t.match.group(1), "-c", c, "-d", a.seconds, "--hello", procs=PROCS)
            print("  %8d %16.0f %12s %16.0f %12s" % (c, float(rc["ops_per_s"]), rc["p99_us"],
                                                      float(rh["ops_per_s"]), rh["p99_us"]))
    finally:
        t.stop()
    print("== scaling with registered users (64 clients, %ds each)" % a.seconds)
    print("  %10s %16s %12s %16s" % ("users", "hello ops/s", "p99 us", "canonical ops/s"))
    t = tracker(a.build)
    try:
        loaded = 0
        for users in (1000, 10000, 100000, 1000000):
            bench(a.build, t.match.group(1), "--fill", users - loaded, "-k", 2, "-c", 16)
            loaded = users
            # Light mix: LIST_USERS would grow with the population by definition; the
            # per-operation cost of everything else must not.
            rh = bench(a.build, t.match.group(1), "-c", 64, "-d", a.seconds, "--hello", "--light", procs=PROCS)
            rc = bench(a.build, t.match.group(1), "-c", 64, "-d", a.seconds, "--light", procs=PROCS)
            print("  %10d %16.0f %12s %16.0f" % (users, float(rh["ops_per_s"]), rh["p99_us"], float(rc["ops_per_s"])))
    finally:
        t.stop()


def scenario_hash(a):
    """Content ids: `peerdex hash --no-cache` of a file in memory (tmpfs when there is one),
    the CPU time of the process (user + system, from its own accounting) per byte."""
    size = a.file_mib << 20
    print("== hash: peerdex hash --no-cache of %d MiB, %d runs" % (a.file_mib, max(a.repeat, 5)))
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.NamedTemporaryFile(dir=where) as f:
        chunk = os.urandom(1 << 20)
        for _ in range(a.file_mib):
            f.write(chunk)
        f.flush()
        rates = []
        for _ in range(max(a.repeat, 5)):
            start = os.times()
            subprocess.run([os.path.join(a.build, "src/peer/peerdex"), "hash", "--no-cache", f.name], check=True,
                           stdout=subprocess.DEVNULL)
            end = os.times()
            cpu = (end.children_user - start.children_user) + (end.children_system - start.children_system)
            rates.append(size / max(cpu, 1e-3) / 1e9)
    rates.sort()
    print("  hashing: %.2f GB/s per core (median of %d; %s)" % (rates[len(rates) // 2], len(rates),
                                                                  ", ".join("%.2f" % r for r in rates)))


def scenario_verify(a):
    """Verified downloads (peerdex-protocol(7), FILE RANGES): `peerdex download` from `peerdex
    serve` with every leaf checked, against `--no-verify` (plain GET_FILE), alternated in one
    run, both from and to tmpfs so that the disk does not hide the hashing; then a resume of
    the same file from a partial holding its first 90 %, against the full download."""
    size = a.file_mib << 20
    runs = max(a.repeat, 5)
    print("== verify: one %d MiB file, peerdex download verified vs --no-verify, %d runs each, alternated"
          % (a.file_mib, runs))
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmp = tempfile.mkdtemp(prefix="peerdex-bench-verify-", dir=where)
    exe = os.path.join(a.build, "src/peer/peerdex")
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"))
    try:
        share = os.path.join(tmp, "share")
        os.mkdir(share)
        src = os.path.join(share, "big.bin")
        with open(src, "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        srv = Proc([exe, "serve", "-q", "-H", "127.0.0.1", "-p", "0", "-s", share],
                   r"serving .* on 127\.0\.0\.1:(\d+) ", env=env)
        port = srv.match.group(1)
        dest = os.path.join(tmp, "down.bin")

        def timed(*extra):
            start, t0 = os.times(), time.time()
            subprocess.run([exe, "download", "-q", "-p", port, "big.bin", "-d", dest] + list(extra), check=True,
                           env=env)
            took = time.time() - t0
            end = os.times()
            if os.path.getsize(dest) != size:
                raise SystemExit("the download wrote %d bytes" % os.path.getsize(dest))
            cpu = (end.children_user - start.children_user) + (end.children_system - start.children_system)
            return took, cpu

        try:
            timed()  # the server hashes the file once (then its cache answers) and the page cache is warm
            os.remove(dest)
            ver, plain = [], []
            for _ in range(runs):
                ver.append(timed())
                os.remove(dest)
                plain.append(timed("--no-verify"))
                os.remove(dest)
            # A partial holding the first 90 % (whole leaves), as a checkpoint leaves it.
            leaf = 1 << 20
            while size // leaf > 65536:
                leaf *= 2
            kept = (size * 9 // 10) // leaf * leaf
            ident = subprocess.run([exe, "hash", src], capture_output=True, text=True, env=env,
                                   check=True).stdout.split()[0]
            resumed = []
            for _ in range(runs):
                with open(src, "rb") as f, open(os.path.join(tmp, ".down.bin.peerdex-part"), "wb") as out:
                    out.write(f.read(kept))
                with open(os.path.join(tmp, ".down.bin.peerdex-part.rec"), "w") as rec:
                    rec.write("peerdex-part 1\n%s\n%d\n%d\n" % (ident, size, kept))
                resumed.append(timed())
                os.remove(dest)
        finally:
            srv.stop()
        med = lambda xs: sorted(xs)[len(xs) // 2]
        mib = size / 2**20
        tv, tp = med([t for t, _ in ver]), med([t for t, _ in plain])
        line("peerdex download, verified", mib / tv, "--no-verify (GET_FILE)", mib / tp, unit="MiB/s")
        print("  downloader CPU per GiB: verified %.2f s, --no-verify %.2f s (medians)" % (
            med([c for _, c in ver]) * 2**30 / size, med([c for _, c in plain]) * 2**30 / size))
        tr = med([t for t, _ in resumed])
        print("  resume from 90 %%: %.3f s, %.1f %% of a full verified download (%.3f s); runs: %s" % (
            tr, 100 * tr / tv, tv, ", ".join("%.3f" % t for t, _ in resumed)))
    finally:
        shutil.rmtree(tmp)


def scenario_rate(a):
    """--upload-rate: one `peerdex download` from `peerdex serve --upload-rate 20M`, the bytes
    that arrived over 5 s against the cap."""
    cap = 20 << 20
    seconds = 5
    print("== rate: peerdex serve --upload-rate 20M, one downloader, %d s" % seconds)
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmp = tempfile.mkdtemp(prefix="peerdex-bench-rate-", dir=where)
    exe = os.path.join(a.build, "src/peer/peerdex")
    try:
        share = os.path.join(tmp, "share")
        os.mkdir(share)
        with open(os.path.join(share, "big.bin"), "wb") as f:
            f.truncate(cap * (seconds + 3))
        srv = Proc([exe, "serve", "-q", "-H", "127.0.0.1", "-p", "0", "-s", share, "--upload-rate", "20M"],
                   r"serving .* on 127\.0\.0\.1:(\d+) ")
        try:
            rates = []
            for _ in range(max(a.repeat, 3)):
                with socket.create_connection(("127.0.0.1", int(srv.match.group(1)))) as s:
                    s.sendall(b"GET_FILE\0big.bin\0")
                    got, start = 0, None
                    while True:
                        d = s.recv(1 << 20)
                        if not d:
                            break
                        if start is None:
                            start = time.time()  # from the first byte: the burst is in the count
                        else:
                            got += len(d)
                        if time.time() - start >= seconds:
                            break
                    rates.append(got / (time.time() - start))
        finally:
            srv.stop()
        rates.sort()
        print("  measured %.2f MiB/s against a cap of 20 MiB/s: %.1f %% (median of %d: %s)" % (
            rates[len(rates) // 2] / 2**20, 100 * rates[len(rates) // 2] / cap, len(rates),
            ", ".join("%.2f" % (r / 2**20) for r in rates)))
    finally:
        shutil.rmtree(tmp)


def scenario_serving(a):
    """Serving one file: peerdex serve's GET_FILE against nginx (sendfile), the same raw
    reader discarding the bytes, alternated; the servers' own CPU per GiB and the
    throughput, medians. The file is in /dev/shm: the page cache is hot for both. With
    --ref-build, another build's peerdex serve takes its turn too (an A/B of two commits)."""
    size = a.file_mib << 20
    runs = max(a.repeat, 5)
    print("== serving: one %d MiB file to one raw reader, peerdex serve vs nginx, %d runs each, alternated" % (
        a.file_mib, runs))
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmp = tempfile.mkdtemp(prefix="peerdex-bench-serving-", dir=where)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    servers = []
    try:
        share = os.path.join(tmp, "share")
        os.mkdir(share)
        with open(os.path.join(share, "big.bin"), "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        builds = [("peerdex serve", a.build)] + ([("peerdex serve (ref build)", a.ref_build)] if a.ref_build else [])
        for name, build in builds:
            srv = Proc([os.path.join(build, "src/peer/peerdex"), "serve", "-q", "-H", "127.0.0.1", "-p", "0", "-s",
                        share], r"serving .* on 127\.0\.0\.1:(\d+) ")
            servers.append((name, srv, int(srv.match.group(1)), []))
        try:
            n = Nginx(share)
        except FileNotFoundError:
            print("  (nginx not installed: reference not measured)")
            return
        try:
            ref = []
            for _ in range(runs):
                for _, srv, port, out in servers:
                    out.append(measured(srv.pid, lambda: raw_fetch(port, b"GET_FILE\0big.bin\0", size)))
                ref.append(measured(n.p.pid, lambda: raw_fetch(n.port, b"GET /files/big.bin HTTP/1.0\r\n\r\n", size)))
        finally:
            n.stop()
        gib = size / 2**30
        for name, _, _, out in servers:
            line(name + " GET_FILE, raw reader", size / 2**20 / med([t for t, _ in out]), "nginx, same reader",
                 size / 2**20 / med([t for t, _ in ref]), unit="MiB/s")
        for name, _, _, out in servers:
            print("  serving CPU per GiB, %s: %.3f s (runs %s)" % (
                name, med([c for _, c in out]) / gib, ", ".join("%.3f" % (c / gib) for _, c in out)))
        print("  serving CPU per GiB, nginx: %.3f s (runs %s)" % (
            med([c for _, c in ref]) / gib, ", ".join("%.3f" % (c / gib) for _, c in ref)))
    finally:
        for _, srv, _, _ in servers:
            srv.stop()
        shutil.rmtree(tmp)


def matplotlib_python():
    """A Python that has matplotlib (Debian's python3-matplotlib is for /usr/bin/python3,
    which may not be the python3 running this), or None."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and subprocess.run([exe, "-c", "import matplotlib"], capture_output=True).returncode == 0:
            return exe
    return None


def scenario_curves(a):
    """Pictures (SVG, with python3-matplotlib): latency against offered load, open loop, p50
    and p99, for the tracker (canonical, HELLO) beside nginx `return 200` driven the same
    way (peerdex-bench --http: one keep-alive connection per client); and throughput
    against clients, closed loop, for the same three. Written to --svg-dir (docs/), with
    the figures in curves.json beside them."""
    draw = matplotlib_python()
    if not draw:
        print("  (python3-matplotlib not installed: no pictures drawn)")
        return
    out_dir = os.path.abspath(a.svg_dir)
    print("== curves: %ds per point, into %s" % (a.seconds, out_dir))
    rates = [5000, 10000, 20000, 40000, 60000, 80000, 100000, 120000]
    clients = [1, 4, 16, 64, 256, 1000]
    lat = {}   # name -> [(offered, achieved, p50, p99)]
    thr = {}   # name -> [(clients, ops/s)]

    def run(name, port, extra):
        lat[name] = []
        for r in rates:
            res = bench(a.build, port, "-c", 64, "-d", a.seconds, "--rate", r // PROCS, *extra, procs=PROCS)
            lat[name].append((r, float(res["ops_per_s"]), int(res["p50_us"]), int(res["p99_us"])))
            print("  %-18s offered %7d achieved %9.0f p50 %7s us p99 %7s us" % (
                name, r, float(res["ops_per_s"]), res["p50_us"], res["p99_us"]))
        thr[name] = []
        for c in clients:
            res = bench(a.build, port, "-c", c, "-d", a.seconds, *extra, procs=PROCS)
            thr[name].append((c, float(res["ops_per_s"])))
            print("  %-18s clients %5d %9.0f ops/s" % (name, c, float(res["ops_per_s"])))

    t = tracker(a.build)
    try:
        run("peerdex canonical", t.match.group(1), ["--light"])
        run("peerdex HELLO", t.match.group(1), ["--light", "--hello"])
    finally:
        t.stop()
    with_nginx(lambda n: run("nginx return 200", n.port, ["--http", "/ok"]))
    import json
    data = os.path.join(out_dir, "curves.json")
    with open(data, "w") as f:
        json.dump({"seconds": a.seconds, "latency": lat, "throughput": thr}, f, indent=1)
    subprocess.run([draw, os.path.join(HERE, "draw_curves.py"), data, out_dir], check=True)
    print("  wrote latency.svg, throughput.svg and curves.json")


def scenario_multi(a):
    """Multi-source GET_FILE: real peerdex shells publishing one file, one shell downloading
    it with --sources 1, 2 and 4. Capped: each source --upload-rate 20M, the time against
    one source's. Uncapped: the throughput and the downloader's CPU per GiB, 1 source
    against 4, alternated."""
    size = a.file_mib << 20
    print("== multi: one %d MiB file from 1, 2 and 4 peerdex sources on loopback" % a.file_mib)
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmp = tempfile.mkdtemp(prefix="peerdex-bench-multi-", dir=where)
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"))
    med = lambda xs: sorted(xs)[len(xs) // 2]
    try:
        src = os.path.join(tmp, "big.bin")
        with open(src, "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        dest = os.path.join(tmp, "copy.bin")

        def run(sources, rate):
            """Seconds and downloader CPU seconds of one GET_FILE from `sources` sources."""
            t = tracker(a.build)
            shells = []
            try:
                port = t.match.group(1)
                for i in range(4):
                    sh = Shell(a.build, port, tmp, *(["--upload-rate", rate] if rate else []), env=env)
                    shells.append(sh)
                    assert sh.run("REGISTER s%d" % i).endswith("OK")
                    assert sh.run("CONNECT s%d" % i).endswith("OK")
                    assert sh.run("PUBLISH big.bin bench") == "c> PUBLISH OK"
                getter = Shell(a.build, port, tmp, "--sources", str(sources), env=env)
                shells.append(getter)
                assert getter.run("REGISTER getter").endswith("OK")
                assert getter.run("CONNECT getter").endswith("OK")
                before, t0 = cpu_seconds(getter.p.pid), time.time()
                result = getter.run("GET_FILE s0 %s %s" % (src, dest))
                took = time.time() - t0
                cpu = cpu_seconds(getter.p.pid) - before
                if result != "c> GET_FILE OK" or not filecmp.cmp(src, dest, shallow=False):
                    raise SystemExit("GET_FILE from %d sources: %s, or not the source's bytes" % (sources, result))
                os.remove(dest)
                return took, cpu
            finally:
                for sh in shells:
                    sh.quit()
                t.stop()

        run(1, None)  # hashes the file once into the shared cache; warms the page cache
        if not a.quick:
            capped = {n: run(n, "20M")[0] for n in (1, 2, 4)}
            print("  capped at 20 MiB/s per source: 1 source %.1f s, 2 sources %.1f s (%.2fx), 4 sources %.1f s"
                  " (%.2fx)" % (capped[1], capped[2], capped[2] / capped[1], capped[4], capped[4] / capped[1]))
        one, four = [], []
        for _ in range(a.repeat):
            one.append(run(1, None))
            four.append(run(4, None))
        mib = size / 2**20
        line("GET_FILE from 4 sources, uncapped", mib / med([t for t, _ in four]),
             "from 1 source", mib / med([t for t, _ in one]), unit="MiB/s")
        print("  downloader CPU per GiB: 4 sources %.2f s, 1 source %.2f s (medians of %d, alternated);"
              " times 4: %s; 1: %s" % (med([c for _, c in four]) * 2**30 / size, med([c for _, c in one]) * 2**30 / size,
                                      a.repeat, ", ".join("%.2f" % t for t, _ in four),
                                      ", ".join("%.2f" % t for t, _ in one)))
    finally:
        shutil.rmtree(tmp)


class HttpAbuse:
    """What the HTTP side of issue 26 must shrug off, kept up while the protocol load runs:
    idle connections from 64 loopback addresses (as many as the tracker will hold), garbage
    requests, a reader that never reads, and a scraper at ten /metrics a second."""

    def __init__(self, port, idle=1000):
        self.port, self.stop_flag, self.held = port, threading.Event(), []
        for i in range(idle):
            try:
                s = socket.socket()
                s.bind(("127.0.0.%d" % (2 + i % 64), 0))
                s.connect(("127.0.0.1", port))
                self.held.append(s)
            except OSError:
                s.close()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._garbage, self._scrape, self._slow)]
        for t in self.threads:
            t.start()

    def _garbage(self):
        while not self.stop_flag.wait(0.01):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(os.urandom(512) + b"\r\n\r\n")
            except OSError:
                pass

    def _scrape(self):
        while not self.stop_flag.wait(0.1):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                    while s.recv(65536):
                        pass
            except OSError:
                pass

    def _slow(self):
        while not self.stop_flag.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.sendall(b"GET /?from=0 HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
                    self.stop_flag.wait(5)
            except OSError:
                self.stop_flag.wait(0.1)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join()
        for s in self.held:
            s.close()


def scenario_http(a):
    """HELLO sessions against a tracker without --http, then with --http under HttpAbuse;
    the two take turns, and the medians of each are compared (throughput, and the
    tracker's own CPU per operation)."""
    print("== http: hello load, %d clients, %ds, without --http / with --http and 1000 idle, garbage, slow "
          "and scraping HTTP clients; %d turns each" % (a.clients, a.seconds, a.repeat))
    # "quiet": --http with nobody on it, which separates what the HTTP side costs by being
    # there (histograms, the loop's turn clock) from what the abuse costs.
    runs = {"off": [], "quiet": [], "on": []}
    for _ in range(a.repeat):
        for side in runs:
            t = tracker(a.build, *(["--http", "127.0.0.1:0"] if side != "off" else []))
            abuse = None
            try:
                port = t.match.group(1)
                if side != "off":
                    http_port = int(t.p.stdout.readline().rsplit(":", 1)[1])
                if side == "on":
                    abuse = HttpAbuse(http_port)
                r, cpu = measured(t.pid, lambda: bench(a.build, port, "-c", a.clients, "-d", a.seconds, "--hello",
                                                         procs=PROCS))
                ops = float(r["ops_per_s"])
                runs[side].append((ops, cpu * 1e6 / (ops * a.seconds)))
            finally:
                if abuse:
                    abuse.stop()
                t.stop()
    on = statistics.median(x[0] for x in runs["on"])
    off = statistics.median(x[0] for x in runs["off"])
    line("with --http under HTTP abuse (median)", on, "without --http", off)
    quiet = statistics.median(x[0] for x in runs["quiet"])
    line("with --http, nobody on it (median)", quiet, "without --http", off)
    print("  tracker CPU per operation: median %.2f us under abuse, %.2f us quiet, %.2f us without; every turn: %s" % (
        statistics.median(x[1] for x in runs["on"]), statistics.median(x[1] for x in runs["quiet"]),
        statistics.median(x[1] for x in runs["off"]),
        " ".join("%s %.0f" % (k, x[0]) for k in runs for x in runs[k])))


SCENARIOS = {"search": scenario_search, "canonical": scenario_canonical, "hello": scenario_hello, "latency": scenario_latency,
             "expiry": scenario_expiry,
             "oplog": scenario_oplog, "memory": scenario_memory, "scaling": scenario_scaling,
             "getfile": scenario_getfile, "transfer": scenario_transfer, "clock": scenario_clock,
             "hash": scenario_hash, "verify": scenario_verify, "rate": scenario_rate,
             "multi": scenario_multi, "serving": scenario_serving, "curves": scenario_curves,
             "http": scenario_http}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=256)
    ap.add_argument("--users", type=int, default=1000000)
    ap.add_argument("--file-mib", type=int, default=1024, help="size of the transferred file")
    ap.add_argument("--repeat", type=int, default=3, help="transfer runs (the best one counts)")
    ap.add_argument("--svg-dir", default=os.path.join(HERE, "..", "..", "docs"), help="curves: where the SVGs go")
    ap.add_argument("--ref-build", help="serving: another build whose peerdex serve takes turns too")
    ap.add_argument("--quick", action="store_true", help="short runs, for meson test --benchmark")
    ap.add_argument("scenario", nargs="+", choices=list(SCENARIOS) + ["all"])
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    if a.quick:
        a.seconds, a.users, a.file_mib, a.repeat = 2, 100000, 64, 1
    names = list(SCENARIOS) if "all" in a.scenario else a.scenario
    for n in names:
        SCENARIOS[n](a)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
