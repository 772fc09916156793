"""The options of every program are the same in its --help, in its man page's SYNOPSIS
and in the README's synopsis, so that the three cannot drift apart."""

import os
import re
import subprocess
import unittest

ROOT = os.environ["PEERDEX_SOURCE_ROOT"]
PEERDEX = os.environ["PEERDEX"]
# What the synopses leave out: asking for help or the version.
IGNORED = {"--help", "--version"}

# (how it is run, its man page, the .Nm/.Cm that opens its synopsis, the README's line start)
PROGRAMS = [
    ([os.environ["PEERDEX_TRACKER"]], "peerdex-tracker.8", None, "peerdex-tracker ["),
    ([os.environ["PEERDEX_LOGD"]], "peerdex-logd.8", None, "peerdex-logd ["),
    ([os.environ["PEERDEX_CLOCK"]], "peerdex-clock.8", None, "peerdex-clock ["),
    ([PEERDEX], "peerdex.1", "", "peerdex -s HOST"),
    ([PEERDEX, "serve"], "peerdex.1", "serve", "peerdex serve "),
    ([PEERDEX, "upload"], "peerdex.1", "upload", "peerdex upload "),
    ([PEERDEX, "download"], "peerdex.1", "download", "peerdex download "),
    ([PEERDEX, "ls"], "peerdex.1", "ls", "peerdex ls "),
]
# peerdex hash exists when the client was built with content ids (-Dcontent_ids).
if subprocess.run([PEERDEX, "hash", "--help"], capture_output=True, timeout=30).returncode == 0:
    PROGRAMS.append(([PEERDEX, "hash"], "peerdex.1", "hash", "peerdex hash "))


def help_options(argv):
    """Canonical (long) option names from --help, and a map of short to long."""
    out = subprocess.run(argv + ["--help"], capture_output=True, timeout=30).stdout.decode()
    aliases, names = {}, set()
    for line in out.splitlines():
        m = re.match(r"^\s+(?:(-\w), )?(--[\w-]+)", line)
        if m:
            names.add(m.group(2))
            if m.group(1):
                aliases[m.group(1)] = m.group(2)
    return names - IGNORED, aliases


def man_options(page, command):
    """Options of one synopsis block of the man page: .Fl p, .Fl -listen-port, .Fl qv."""
    with open(os.path.join(ROOT, "man", page)) as f:
        text = f.read()
    synopsis = text.split(".Sh SYNOPSIS", 1)[1].split(".Sh ", 1)[0]
    blocks = re.split(r"^\.Nm\s*$", synopsis, flags=re.M)[1:]
    for block in blocks:
        first = block.lstrip("\n").splitlines()[0] if block.strip() else ""
        is_sub = first.startswith(".Cm ")
        if command is None or (command == "" and not is_sub) or (is_sub and first.split()[1] == command):
            opts = set()
            for flag in re.findall(r"Fl (-?[\w-]+)", block):
                opts |= {"-" + flag} if flag.startswith("-") else {"-" + c for c in flag}
            if opts:
                return opts
    raise AssertionError("no synopsis for %r in %s" % (command, page))


def readme_options(start):
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(start):
            block = [line]
            for more in lines[i + 1:]:  # continuation lines are indented further
                if more.startswith("        ") and more.strip().startswith("["):
                    block.append(more)
                else:
                    break
            return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", " ".join(block))) - {"-"}
    raise AssertionError("no README synopsis starting with %r" % start)


def canonical(options, aliases):
    out = set()
    for o in options:
        if re.fullmatch(r"-\w\w+", o):  # -qv in a README synopsis
            out |= {aliases.get("-" + c, "-" + c) for c in o[1:]}
        else:
            out.add(aliases.get(o, o))
    return out - IGNORED


class Synopses(unittest.TestCase):
    def test_help_man_page_and_readme_agree(self):
        for argv, page, command, readme in PROGRAMS:
            with self.subTest(" ".join(os.path.basename(a) for a in argv)):
                names, aliases = help_options(argv)
                self.assertTrue(names, argv)
                self.assertEqual(canonical(man_options(page, command), aliases), names, "man page " + page)
                self.assertEqual(canonical(readme_options(readme), aliases), names, "README")


if __name__ == "__main__":
    unittest.main()
