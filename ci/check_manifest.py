#!/usr/bin/python3
"""Checks that tests.json and the tree agree: every test source is listed in some entry's
'sources', every listed source exists, and commands point at their sources. A test that is
not in the manifest never runs in CI, and a manifest entry without its file is a bug.

Exit status: 0 consistent, 1 inconsistencies (each printed), 2 manifest invalid.
"""

import argparse
import glob
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_tests  # noqa: E402  (schema validation is shared with the runner)

# Files that are tests and so must be listed in tests.json (globs relative to the root).
TEST_SOURCE_GLOBS = (
    "reference-vmm/tests/test_*.c",     # cmocka unit tests
    "integration/**/test_*.py",         # pytest integration suite
    "fuzz/**/fuzz_*.c",                 # libFuzzer targets (corpus replay / nightly fuzzing)
    "ci/**/test_*.py",                  # tests of the CI tooling itself
)
CMOCKA_BIN_DIR = "build/host/tests/"
CMOCKA_SRC_DIR = "reference-vmm/tests/"


def discover(root):
    found = set()
    for pat in TEST_SOURCE_GLOBS:
        for p in glob.glob(os.path.join(root, pat), recursive=True):
            if os.path.isfile(p):
                found.add(os.path.relpath(p, root))
    return found


def check(root, entries):
    problems = []
    referenced = {}
    for e in entries:
        for s in e["sources"]:
            referenced.setdefault(os.path.normpath(s), []).append(e["name"])
            if not os.path.exists(os.path.join(root, s)):
                problems.append("%s: source %s does not exist" % (e["name"], s))
        cmd = e["command"]
        if e["kind"] == "cmocka" and cmd[0].startswith(CMOCKA_BIN_DIR):
            want = CMOCKA_SRC_DIR + cmd[0][len(CMOCKA_BIN_DIR):] + ".c"
            if want not in e["sources"]:
                problems.append("%s: runs %s, so 'sources' must include %s" % (e["name"], cmd[0], want))
        if e["kind"] == "pytest":
            args = [os.path.normpath(a.split("::")[0]) for a in cmd[1:] if not a.startswith("-")]
            for s in e["sources"]:
                if not s.endswith(".py"):
                    continue
                ns = os.path.normpath(s)
                if not any(ns == a or ns.startswith(a.rstrip("/") + "/") for a in args):
                    problems.append("%s: source %s is not among the pytest arguments %s"
                                    % (e["name"], s, " ".join(cmd[1:])))
    for s in sorted(discover(root)):
        if os.path.normpath(s) not in referenced:
            problems.append("%s is a test source but no tests.json entry lists it in 'sources'" % s)
    return problems


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default=os.path.join(os.path.dirname(here), "tests.json"))
    args = ap.parse_args(argv)
    manifest = os.path.abspath(args.manifest)
    try:
        entries = run_tests.load_manifest(manifest)
    except run_tests.ManifestError as exc:
        for m in exc.errors:
            sys.stderr.write("check_manifest: %s\n" % m)
        return 2
    problems = check(os.path.dirname(manifest), entries)
    for p in problems:
        print("check_manifest: " + p)
    if problems:
        print("check_manifest: %d problem(s); see docs/testing.md" % len(problems))
        return 1
    print("check_manifest: %d entries, all test sources listed and present" % len(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
