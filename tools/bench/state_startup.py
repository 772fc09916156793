#!/usr/bin/env python3
"""Start-up time of a tracker with a large --state file: writes a state database of
USERS users (every other one connected) and PUBS publications in schema version 1, as
peerdex-tracker(8), FILES describes it, then times peerdex-tracker from exec to its init
line (loading included), median of --runs.

    tools/bench/state_startup.py build/src/tracker/peerdex-tracker [--users 1000000] [--pubs 2000000]
"""

import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import tempfile
import time


def build(path, users, pubs):
    db = sqlite3.connect(path)
    db.executescript(
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, ip TEXT, port INTEGER, connected INTEGER) WITHOUT ROWID;"
        "CREATE TABLE publications (seq INTEGER PRIMARY KEY, user TEXT NOT NULL, path TEXT NOT NULL,"
        " description TEXT NOT NULL, UNIQUE (user, path));"
        "PRAGMA application_id=1346656305; PRAGMA user_version=1;")
    db.executemany("INSERT INTO users VALUES(?, ?, ?, ?)",
                   (("user%07d" % i, "127.0.0.1" if i % 2 == 0 else None, 1024 + i % 60000 if i % 2 == 0 else None,
                     i if i % 2 == 0 else None) for i in range(users)))
    db.executemany("INSERT INTO publications(user, path, description) VALUES(?, ?, ?)",
                   (("user%07d" % (i % users), "/shared/file%07d.dat" % i, "a file") for i in range(pubs)))
    db.commit()
    db.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tracker")
    ap.add_argument("--users", type=int, default=1000000)
    ap.add_argument("--pubs", type=int, default=2000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the database is written (default: a temporary directory)")
    ap.add_argument("--db", default=None,
                    help="use this database, written first if it does not exist, and keep it (to compare two builds)")
    args = ap.parse_args()
    if args.db:
        d, path = None, args.db
    else:
        d = tempfile.mkdtemp(dir=args.dir)
        path = os.path.join(d, "tracker.db")
    if not os.path.exists(path):
        t0 = time.monotonic()
        build(path, args.users, args.pubs)
        print("database: %d users, %d publications, %.0f MB, written in %.1f s" % (
            args.users, args.pubs, os.path.getsize(path) / 1e6, time.monotonic() - t0))
    times = []
    for _ in range(args.runs):
        start = time.monotonic()
        p = subprocess.Popen([args.tracker, "-q", "-p", "0", "-l", "127.0.0.1", "--state", path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stdout.readline()
        took = time.monotonic() - start
        assert re.search(rb"init server", line), (line, p.stderr.read())
        rss = 0
        with open("/proc/%d/status" % p.pid) as f:
            for status in f:
                if status.startswith("VmRSS:"):
                    rss = int(status.split()[1]) // 1024
        p.terminate()
        p.wait()
        times.append(took)
        print("start-up %.2f s, RSS %d MiB" % (took, rss))
    print("median start-up %.2f s over %d runs" % (statistics.median(times), args.runs))
    if d is None:
        return
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    os.rmdir(d)


if __name__ == "__main__":
    main()
