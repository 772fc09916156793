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
"""

import argparse
import os
import re
import statistics
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def one(tracker, bench, mode, seconds, pin, extra=(), clients=64, pipeline=1):
    taskset = (lambda core: ["taskset", "-c", str(core)]) if pin else (lambda core: [])
    proc = subprocess.Popen(taskset(0) + [tracker, "-q", "-p", "0", "-l", "127.0.0.1"] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        port = int(re.search(rb":(\d+)$", proc.stdout.readline().strip()).group(1))
        before = cpu_seconds(proc.pid)
        out = subprocess.run(taskset(1) + [bench, "-p", str(port), "-c", str(clients), "-d", str(seconds)] +
                             (["--hello", "--pipeline", str(pipeline)] if mode == "hello" else []), capture_output=True, text=True,
                             check=True).stdout
        used = cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait()
    ops = int(re.search(r"\bops=(\d+)", out).group(1))
    return used / ops * 1e6, ops / seconds


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
                results.setdefault((mode, name), []).append(one(binary, args.bench, mode, args.seconds,
                                                                not args.no_pin, extra, args.clients, args.pipeline))
                for suffix in ("", "-wal", "-shm"):
                    if state_dir and os.path.exists(extra[1] + suffix):
                        os.unlink(extra[1] + suffix)
    for mode in args.modes.split(","):
        a = statistics.median(x[0] for x in results[(mode, "A")])
        b = statistics.median(x[0] for x in results[(mode, "B")])
        ta = statistics.median(x[1] for x in results[(mode, "A")])
        tb = statistics.median(x[1] for x in results[(mode, "B")])
        print("%-9s tracker CPU per op: A %.2f us, B %.2f us, B/A %.3f; ops/s A %.0f, B %.0f, B/A %.3f "
              "(medians of %d)" % (mode, a, b, b / a, ta, tb, tb / ta, args.rounds))


if __name__ == "__main__":
    main()
