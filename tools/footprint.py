#!/usr/bin/env python3
"""The footprint of peerdex as a small box runs it (docs/PERFORMANCE.md, Footprint): for each
architecture, a size-optimised build (-Dbuildtype=minsize -Db_lto=true, installed with
`meson install --strip`), and for each program its file size, its text segment, the shared
libraries it loads, and on the machine's own architecture its resident memory idle and, for
the tracker, holding 10,000 connected users with 20,000 publications. The same for the
tracker-only build of a box that runs nothing else (README, "Building only what a box runs").

Usage: tools/footprint.py [x86-64] [armhf] [arm64]   (builds in build-min-*; tools/cross.sh
installs what an ARM build needs). Resident memory is measured natively only: under
qemu-user it would be the emulator's."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHS = {
    # name: (cross file, binutils prefix, emulator, dynamic loader)
    "x86-64": (None, "", None, "/lib64/ld-linux-x86-64.so.2"),
    "armhf": ("cross/arm-linux-gnueabihf.ini", "arm-linux-gnueabihf-", "qemu-arm", "/lib/ld-linux-armhf.so.3"),
    "arm64": ("cross/aarch64-linux-gnu.ini", "aarch64-linux-gnu-", "qemu-aarch64", "/lib/ld-linux-aarch64.so.1"),
}
PROGRAMS = [("peerdex-tracker", "sbin"), ("peerdex-logd", "sbin"), ("peerdex-clock", "sbin"), ("peerdex", "bin")]
# The tracker-only build as README ("Building only what a box runs") gives it.
TRACKER_ONLY = ["-Dclient=disabled", "-Dclock=disabled", "-Dlogd=disabled", "-Doplog=disabled", "-Dhttp=disabled"]
# The smallest tracker: none of the optional stores or keys either; then with the C++ runtime
# linked in.
TRACKER_BARE = TRACKER_ONLY + ["-Dstate=disabled", "-Dkeys=disabled", "-Dshared_store=disabled"]
TRACKER_STATIC = TRACKER_BARE + ["-Dstatic_cxx_runtime=true"]


def run(*argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit("footprint: %s failed:\n%s%s" % (" ".join(argv), p.stdout[-2000:], p.stderr[-2000:]))
    return p.stdout


def build(name, arch, extra):
    cross, _, _, _ = ARCHS[arch]
    d = os.path.join(ROOT, "build-min-" + name)
    options = ["-Dbuildtype=minsize", "-Db_lto=true", "-Dtests=false", "--prefix=/usr",
               *(["--cross-file", os.path.join(ROOT, cross)] if cross else []), *extra]
    # A directory left by a run with other options is set up again from nothing, so the table
    # always describes the variant it names (a reconfigure would keep options not given).
    stamp = os.path.join(d, "footprint-options")
    if not os.path.exists(stamp) or open(stamp).read() != " ".join(options):
        shutil.rmtree(d, ignore_errors=True)
        run("meson", "setup", d, *options, cwd=ROOT)
        with open(stamp, "w") as f:
            f.write(" ".join(options))
    run("meson", "compile", "-C", d)
    dest = os.path.join(d, "root")
    shutil.rmtree(dest, ignore_errors=True)
    run("meson", "install", "-C", d, "--strip", "--destdir", dest, "--no-rebuild")
    return d, dest


def text_bytes(prefix, path):
    out = run(prefix + "size", "-A", path)
    return sum(int(m.group(1)) for m in re.finditer(r"^\.text\s+(\d+)", out, re.M))


def shared_libs(arch, path):
    _, _, emulator, loader = ARCHS[arch]
    argv = ([emulator] if emulator else []) + [loader, "--list", path]
    out = run(*argv)
    return sorted(line.split()[0] for line in out.splitlines()
                  if "=>" in line and "vdso" not in line and "ld-linux" not in line)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def start(argv, pattern, stream="stdout"):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in getattr(p, stream):
        m = re.search(pattern, line)
        if m:
            return p, m
    raise SystemExit("%s did not start: %s" % (argv[0], p.stderr.read()))


def stop(p):
    p.terminate()
    p.wait(timeout=30)


def idle_rss(dest, program, tmp):
    sbin, bindir = os.path.join(dest, "usr/sbin"), os.path.join(dest, "usr/bin")
    if program == "peerdex-tracker":
        p, _ = start([os.path.join(sbin, program), "-q", "-l", "127.0.0.1", "-p", "0"], r"s> init server")
    elif program == "peerdex-logd":
        p, _ = start([os.path.join(sbin, program), "-q", "-l", "127.0.0.1", "-p", "0", "--rpcbind", "no", "-o",
                      os.path.join(tmp, "log")], r"listening on", "stderr")
    elif program == "peerdex-clock":
        p, _ = start([os.path.join(sbin, program), "-l", "127.0.0.1", "-p", "0"], r"listening on", "stderr")
    else:  # the client as a file server: what stays running on a box
        os.makedirs(os.path.join(tmp, "share"), exist_ok=True)
        p, _ = start([os.path.join(bindir, program), "serve", "-H", "127.0.0.1", "-p", "0", "-s",
                      os.path.join(tmp, "share")], r"serving .* on")
    try:
        return rss_kib(p.pid)
    finally:
        stop(p)


def loaded_rss(build_dir, dest):
    """The tracker's RSS holding 10,000 connected users with 2 publications each."""
    p, m = start([os.path.join(dest, "usr/sbin/peerdex-tracker"), "-q", "-l", "127.0.0.1", "-p", "0"],
                 r"s> init server 127\.0\.0\.1:(\d+)")
    try:
        out = run(os.path.join(build_dir, "tools/bench/peerdex-bench"), "-p", m.group(1), "--fill", "10000", "-k", "2",
                  "-c", "16", "--pid", str(p.pid))
        return int(re.search(r"tracker_rss_kib_after=(\d+)", out).group(1))
    finally:
        stop(p)


def mib(kib):
    return "%.1f MiB" % (kib / 1024) if kib is not None else "—"


def main():
    archs = sys.argv[1:] or ["x86-64"]
    native = os.uname().machine.replace("_", "-")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            prefix = ARCHS[arch][1]
            for variant, extra, programs, suffix in (
                    ("full", [], PROGRAMS, ""), ("tracker only", TRACKER_ONLY, PROGRAMS[:1], "-tracker"),
                    ("tracker, no options", TRACKER_BARE, PROGRAMS[:1], "-bare"),
                    ("tracker, no options, static C++ runtime", TRACKER_STATIC, PROGRAMS[:1], "-static")):
                name = arch + suffix
                d, dest = build(name, arch, extra)
                for program, where in programs:
                    path = os.path.join(dest, "usr", where, program)
                    libs = shared_libs(arch, path)
                    idle = loaded = None
                    if arch == native:
                        idle = idle_rss(dest, program, tmp)
                        if program == "peerdex-tracker" and variant == "full":
                            loaded = loaded_rss(d, dest)
                    rows.append((arch, variant, program, os.path.getsize(path), text_bytes(prefix, path), libs,
                                 idle, loaded))
    print("| arch | build | program | file | .text | shared libraries | idle RSS | 10k users, 20k pubs |")
    print("|---|---|---|---:|---:|---|---:|---:|")
    for arch, variant, program, size, text, libs, idle, loaded in rows:
        print("| %s | %s | %s | %.0f KiB | %.0f KiB | %d: %s | %s | %s |" % (
            arch, variant, program, size / 1024, text / 1024, len(libs), " ".join(l.split(".so")[0] for l in libs),
            mib(idle), mib(loaded)))


if __name__ == "__main__":
    main()
