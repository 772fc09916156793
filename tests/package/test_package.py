"""The Debian packages, installed on this machine by tools/package.sh (apt-get install
./peerdex_*.deb): what they hold, their systemd units checked by systemd-analyze, and the
daemons started exactly as their units start them (options from /etc/default, the state and
log directories systemd would give them), then the log rotated as logrotate would.

No systemd runs here, so the units' commands are run by this test: it reads Environment=,
EnvironmentFile=, WorkingDirectory= and ExecStart= and expands them the way systemd.service(5)
says. The only change from a fresh install is the one an operator makes: other ports in a
copy of the /etc/default file, so that nothing here needs a fixed port."""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Daemon, enc, free_port, read_all, scaled, wait_until  # noqa: E402

TS = "04/12/2026 03:15:00"
UNITS = "/lib/systemd/system"
DAEMONS = ["peerdex-logd", "peerdex-clock", "peerdex-tracker"]
# What each package must hold, beside its directories and /usr/share/doc.
FILES = {
    "peerdex": [
        "/etc/default/peerdex-clock", "/etc/default/peerdex-logd", "/etc/default/peerdex-tracker",
        "/etc/logrotate.d/peerdex-logd",
        UNITS + "/peerdex-clock.service", UNITS + "/peerdex-logd.service", UNITS + "/peerdex-tracker.service",
        "/usr/sbin/peerdex-clock", "/usr/sbin/peerdex-logd", "/usr/sbin/peerdex-tracker",
        "/usr/share/man/man7/peerdex-protocol.7.gz", "/usr/share/man/man8/peerdex-clock.8.gz",
        "/usr/share/man/man8/peerdex-logd.8.gz", "/usr/share/man/man8/peerdex-tracker.8.gz",
    ],
    "peerdex-client": ["/usr/bin/peerdex", "/usr/share/man/man1/peerdex.1.gz"],
}
# The ports in each daemon's default options (-p, --log, --http).
DEFAULT_PORTS = {"peerdex-logd": [4001, 4081], "peerdex-clock": [5000], "peerdex-tracker": [4000, 4001, 4080]}


def text(path):
    with open(path) as f:
        return f.read()


def installed_files(package):
    out = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True, check=True).stdout
    return sorted(p for p in out.split("\n")
                  if p and not os.path.isdir(p) and not p.startswith("/usr/share/doc/"))


def unit_settings(name, section="Service"):
    """The settings of one section of an installed unit: name -> list of values, in order."""
    settings = {}
    current = None
    with open(os.path.join(UNITS, name + ".service")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                current = line.strip("[]")
                continue
            if current == section:
                key, _, value = line.partition("=")
                settings.setdefault(key, []).append(value)
    return settings


def environment_file(path):
    """KEY=VALUE lines, values unquoted as systemd.exec(5) reads them."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key] = shlex.split(value)[0] if value else ""
    return env


def expand(exec_start, env):
    """ExecStart= words: $VAR becomes the words of its value, ${VAR} its value in place."""
    argv = []
    for word in shlex.split(exec_start):
        m = re.fullmatch(r"\$(\w+)", word)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda v: env[v.group(1)], word))
    return argv


class Unit:
    """One daemon started as its unit starts it, in a scratch directory standing for /var."""

    def __init__(self, name, var, ports):
        self.name = name
        s = unit_settings(name)
        env = {}
        for e in s.get("Environment", []):
            key, _, value = shlex.split(e)[0].partition("=")
            env[key] = value
        self.defaults = dict(env)
        # The operator's copy of the /etc/default file, with other ports.
        (path,) = s["EnvironmentFile"]
        path = path.lstrip("-")
        with open(path) as f:
            text = f.read()
        for old, new in ports.items():
            text = re.sub(r"(?<=[ :])%d\b" % old, str(new), text)
        self.env_file = os.path.join(var, "default-" + name)
        with open(self.env_file, "w") as f:
            f.write(text)
        env.update(environment_file(self.env_file))
        # What StateDirectory= and LogsDirectory= give the service.
        if "StateDirectory" in s:
            env["STATE_DIRECTORY"] = os.path.join(var, "lib", s["StateDirectory"][0])
            os.makedirs(env["STATE_DIRECTORY"], exist_ok=True)
        if "LogsDirectory" in s:
            env["LOGS_DIRECTORY"] = os.path.join(var, "log", s["LogsDirectory"][0])
            os.makedirs(env["LOGS_DIRECTORY"], exist_ok=True)
        self.cwd = None
        if "WorkingDirectory" in s:
            (wd,) = s["WorkingDirectory"]
            if wd != "/var/lib/" + s["StateDirectory"][0]:
                raise AssertionError("WorkingDirectory=%s is not the StateDirectory" % wd)
            self.cwd = env["STATE_DIRECTORY"]
        self.env = env
        (exec_start,) = s["ExecStart"]
        self.argv = expand(exec_start, env)
        self.daemon = None

    def start(self):
        env = dict(os.environ, **self.env)
        if self.name == "peerdex-tracker":
            pattern, stream = r"^s> init server 127\.0\.0\.1:(\d+)$", "stdout"
        else:
            pattern, stream = r"listening on 127\.0\.0\.1:(\d+)", "stderr"
        here = os.getcwd()
        os.chdir(self.cwd or "/")  # where systemd starts it: WorkingDirectory=, else /
        try:
            self.daemon = Daemon(self.argv, pattern, env=env, ready_stream=stream)
        finally:
            os.chdir(here)
        return self.daemon

    def stop(self):
        if self.daemon and self.daemon.alive():
            self.daemon.stop(signal.SIGTERM)


class InstalledPackages(unittest.TestCase):
    def test_each_package_holds_its_files(self):
        for package, files in FILES.items():
            self.assertEqual(installed_files(package), sorted(files), package)

    def test_the_option_files_and_the_logrotate_snippet_are_conffiles(self):
        out = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", "peerdex"], capture_output=True,
                             text=True, check=True).stdout
        conffiles = sorted(line.split()[0] for line in out.strip().split("\n"))
        self.assertEqual(conffiles, sorted(p for p in FILES["peerdex"] if p.startswith("/etc/")))

    def test_systemd_analyze_verify_passes_on_every_unit(self):
        for d in DAEMONS:
            r = subprocess.run(["systemd-analyze", "verify", os.path.join(UNITS, d + ".service")],
                               capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), d)

    def test_every_unit_is_exposed_at_most_2_0(self):
        for d in DAEMONS:
            r = subprocess.run(["systemd-analyze", "security", "--offline=yes", os.path.join(UNITS, d + ".service")],
                               capture_output=True, text=True)
            m = re.search(r"Overall exposure level for %s\.service: (\d+\.\d+) (\w+)" % d, r.stdout)
            self.assertTrue(m, r.stdout[-500:] + r.stderr)
            print("%s.service: exposure %s %s" % (d, m.group(1), m.group(2)), file=sys.stderr)
            self.assertLessEqual(float(m.group(1)), 2.0, d)
            self.assertEqual(m.group(2), "OK", d)

    def test_the_units_start_in_order_log_server_clock_tracker(self):
        after = {d: " ".join(unit_settings(d, "Unit").get("After", [])).split() for d in DAEMONS}
        self.assertIn("peerdex-logd.service", after["peerdex-clock"])
        self.assertIn("peerdex-logd.service", after["peerdex-tracker"])
        self.assertIn("peerdex-clock.service", after["peerdex-tracker"])
        self.assertIn("peerdex-logd.service", unit_settings("peerdex-tracker", "Unit").get("Wants", []))


class RunAsTheUnitsRunThem(unittest.TestCase):
    def setUp(self):
        self.var = tempfile.mkdtemp(prefix="peerdex-var-")
        self.addCleanup(shutil.rmtree, self.var, True)
        self.ports = {p: free_port() for p in (4000, 4001, 4080, 4081, 5000)}
        self.units = {}
        for d in DAEMONS:
            self.units[d] = Unit(d, self.var, {p: self.ports[p] for p in DEFAULT_PORTS[d]})
            self.addCleanup(self.units[d].stop)

    def tracker(self, *fields):
        with socket.create_connection(("127.0.0.1", self.ports[4000]), timeout=scaled(15)) as s:
            s.sendall(enc(fields[0], TS, *fields[1:]))
            return read_all(s)

    def http(self, port, path):
        with socket.create_connection(("127.0.0.1", port), timeout=scaled(15)) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path).encode())
            head = read_all(s).split(b"\r\n", 1)[0].decode()
        return int(head.split()[1])

    def test_the_defaults_serve_loopback_keep_the_index_and_log_every_operation(self):
        for d in DAEMONS:
            opts = self.units[d].defaults["PEERDEX_%s_OPTS" % d.split("-")[1].upper()]
            self.assertIn("-l 127.0.0.1", opts, d)  # loopback only, out of the box
        logd = self.units["peerdex-logd"]
        log = os.path.join(logd.env["LOGS_DIRECTORY"], "ops.log")
        for d in DAEMONS:
            self.units[d].start()
        self.assertEqual(self.tracker("REGISTER", "alice")[:1], b"\0")
        wait_until(lambda: os.path.exists(log) and "alice" in text(log), what="REGISTER alice in " + log)
        self.assertTrue(os.path.exists(os.path.join(logd.env["STATE_DIRECTORY"], "ops.state")))
        self.assertEqual(self.http(self.ports[5000], "/datetime"), 200)
        self.assertEqual(self.http(self.ports[4080], "/healthz"), 200)
        self.assertEqual(self.http(self.ports[4081], "/healthz"), 200)

        # A restart (systemctl restart) finds alice where she was: the index is in the state directory.
        tracker = self.units["peerdex-tracker"]
        tracker.stop()
        self.assertTrue(os.path.exists(os.path.join(tracker.env["STATE_DIRECTORY"], "tracker.db")))
        tracker.start()
        self.assertEqual(self.tracker("REGISTER", "alice")[:1], b"\x01")

        # logrotate with the installed snippet, pointed at this log and signalling this log server
        # as the snippet's systemctl line would: the old lines move, the next ones go to a new file.
        with open("/etc/logrotate.d/peerdex-logd") as f:
            snippet = f.read()
        self.assertIn("/var/log/peerdex-logd/ops.log", snippet)
        snippet = snippet.replace("/var/log/peerdex-logd/ops.log", log)
        snippet, n = re.subn(r"(?m)^(\s*)if \[ -d /run/systemd/system \].*$",
                             lambda m: "%skill -HUP %d" % (m.group(1), logd.daemon.proc.pid), snippet)
        self.assertEqual(n, 1, snippet)
        conf = os.path.join(self.var, "logrotate.conf")
        with open(conf, "w") as f:
            f.write(snippet)
        r = subprocess.run(["logrotate", "--force", "--state", os.path.join(self.var, "logrotate.state"), conf],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertIn("alice", text(log + ".1"))
        self.assertEqual(self.tracker("REGISTER", "bob")[:1], b"\0")
        wait_until(lambda: os.path.exists(log) and "bob" in text(log), what="REGISTER bob in the new " + log)
        self.assertNotIn("bob", text(log + ".1"))
        self.assertNotIn("alice", text(log))


if __name__ == "__main__":
    unittest.main()
