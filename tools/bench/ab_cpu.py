#!/usr/bin/env python3
"""Two tracker binaries side by side: the tracker's CPU time per operation (from its
own /proc accounting), HELLO and canonical, 64 clients (--clients), closed loop, one
request in flight per HELLO session (--pipeline). Runs alternate
A and B; the tracker is pinned to one core and the load generator to the other, which
keeps a 2-core machine's run-to-run spread small enough to compare. Prints medians.

    tools/bench/ab_cpu.py OLD/peerdex-tracker NEW/peerdex-tracker [--rounds 7]
    tools/bench/ab_cpu.py T T --b-state DIR   # B with --state: a fresh file in DIR per run
    tools/bench/ab_cpu.py OLD NEW --a-state DIR --b-state DIR   # two durable stores
    tools/bench/ab_cpu.py T T --a-args "--max-results 0"        # A without the search index
    tools/bench/ab_cpu.py T T --b-redis [--b-trackers 2]  # B on a fresh redis-server per run
      (with --b-trackers N: N trackers on it, the clients split among N load generators;
      Redis's own CPU per operation is printed too, and Redis shares the trackers' core)
The load generator's CPU per operation is printed as well (its processes' own rusage), so
that what a load costs the whole machine is the sum of the three.
"""

import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def start_redis(pin):
    """A fresh redis-server on a loopback port, nothing kept; (process, port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    taskset = ["taskset", "-c", "0"] if pin else []
    proc = subprocess.Popen(taskset + ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                       "--appendonly", "no", "--logfile", ""], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    for line in proc.stdout:
        if b"ready to accept connections" in line.lower():
            break
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, port


def one(tracker, bench, mode, seconds, pin, extra=(), clients=64, pipeline=1, redis=False, trackers=1):
    """One run: (tracker CPU per op in us, ops/s, Redis CPU per op in us or None, load
    generator CPU per op in us)."""
    taskset = (lambda core: ["taskset", "-c", str(core)]) if pin else (lambda core: [])
    procs, benches = [], []
    store = None
    try:
        if redis:
            store, redis_port = start_redis(pin)
            extra = list(extra) + ["--store", "redis://127.0.0.1:%d" % redis_port]
        ports = []
        for _ in range(trackers):
            procs.append(subprocess.Popen(taskset(0) + [tracker, "-q", "-p", "0", "-l", "127.0.0.1"] + list(extra),
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
            ports.append(int(re.search(rb":(\d+)$", procs[-1].stdout.readline().strip()).group(1)))
        watched = procs + ([store] if store else [])
        before = [cpu_seconds(p.pid) for p in watched]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        for i, port in enumerate(ports):
            share = clients // trackers + (1 if i < clients % trackers else 0)
            benches.append(subprocess.Popen(
                taskset(1) + [bench, "-p", str(port), "-c", str(share), "-d", str(seconds)] +
                (["--hello", "--pipeline", str(pipeline)] if mode == "hello" else []),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [b.communicate() for b in benches]
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # the generators alone: nothing else ended yet
        generator = (reaped.ru_utime + reaped.ru_stime) - (children.ru_utime + children.ru_stime)
        used = [cpu_seconds(p.pid) - t for p, t in zip(watched, before)]
        for b, (_, err) in zip(benches, outs):
            if b.returncode != 0:
                raise RuntimeError("peerdex-bench failed: " + err)
    finally:
        for p in procs + ([store] if store else []):
            p.terminate()
            p.wait()
    ops = sum(int(re.search(r"\bops=(\d+)", out).group(1)) for out, _ in outs)
    tracker_us = sum(used[:len(procs)]) / ops * 1e6
    redis_us = used[-1] / ops * 1e6 if store else None
    return tracker_us, ops / seconds, redis_us, generator / ops * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--bench", default=os.path.join(HERE, "..", "..", "build", "tools", "bench", "peerdex-bench"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--no-pin", action="store_true", help="do not pin to cores (taskset)")
    ap.add_argument("--b-state", metavar="DIR", help="run B with --state, a new file in DIR each run")
    ap.add_argument("--a-state", metavar="DIR", help="run A with --state too (same --b-sync)")
    ap.add_argument("--b-sync", default="full", help="with --b-state: --sync full or normal")
    ap.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    ap.add_argument("--pipeline", type=int, default=1, help="HELLO requests in flight per client (default 1)")
    ap.add_argument("--modes", default="hello,canonical", help="which loads, comma-separated")
    ap.add_argument("--a-args", default="", help="more tracker options for A (one string, split on spaces)")
    ap.add_argument("--b-args", default="", help="more tracker options for B")
    ap.add_argument("--b-redis", action="store_true", help="run B on a fresh redis-server (--store) each run")
    ap.add_argument("--a-redis", action="store_true", help="run A on one too")
    ap.add_argument("--b-trackers", type=int, default=1, help="with --b-redis: trackers sharing it (default 1)")
    args = ap.parse_args()
    results = {}
    for r in range(args.rounds):
        for mode in args.modes.split(","):
            order = (("A", args.a), ("B", args.b)) if r % 2 == 0 else (("B", args.b), ("A", args.a))
            for name, binary in order:
                extra = []
                state_dir = args.b_state if name == "B" else args.a_state
                if state_dir:
                    fd, path = tempfile.mkstemp(dir=state_dir, suffix=".db")
                    os.close(fd)
                    os.unlink(path)
                    extra = ["--state", path, "--sync", args.b_sync]
                extra = extra + (args.b_args if name == "B" else args.a_args).split()
                on_redis = args.b_redis if name == "B" else args.a_redis
                results.setdefault((mode, name), []).append(one(binary, args.bench, mode, args.seconds,
                                                                not args.no_pin, extra, args.clients, args.pipeline,
                                                                on_redis, args.b_trackers if name == "B" and on_redis else 1))
                for suffix in ("", "-wal", "-shm"):
                    if state_dir and os.path.exists(extra[1] + suffix):
                        os.unlink(extra[1] + suffix)
    for mode in args.modes.split(","):
        a = statistics.median(x[0] for x in results[(mode, "A")])
        b = statistics.median(x[0] for x in results[(mode, "B")])
        ta = statistics.median(x[1] for x in results[(mode, "A")])
        tb = statistics.median(x[1] for x in results[(mode, "B")])
        redis = ""
        for name, on in (("A", args.a_redis), ("B", args.b_redis)):
            if on:
                redis += "; Redis CPU per op (%s) %.2f us" % (name, statistics.median(x[2] for x in results[(mode, name)]))
        ga = statistics.median(x[3] for x in results[(mode, "A")])
        gb = statistics.median(x[3] for x in results[(mode, "B")])
        print("%-9s tracker CPU per op: A %.2f us, B %.2f us, B/A %.3f; ops/s A %.0f, B %.0f, B/A %.3f%s; "
              "load generator CPU per op A %.2f us, B %.2f us (medians of %d)"
              % (mode, a, b, b / a, ta, tb, tb / ta, redis, ga, gb, args.rounds))


if __name__ == "__main__":
    main()
