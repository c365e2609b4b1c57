#!/usr/bin/python3
"""Test manifest runner: reads tests.json, runs the selected entries one after the
other with per-entry timeouts, logs each to build/logs/<name>.log, and writes JUnit XML
(per entry and merged into all.xml). Schema and usage: docs/testing.md.

Exit status: 0 all selected testcases passed (or were skipped), 1 at least one failed,
2 the manifest or the command line is invalid. Stdlib only; runs under /usr/bin/python3.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

# ---------------------------------------------------------------------------
# Manifest schema
# ---------------------------------------------------------------------------

KINDS = ("cmocka", "pytest", "command")
TIERS = ("pr", "nightly", "hil")
PLATFORMS = ("x86_64", "aarch64")
REQUIREMENTS = ("qemu-aarch64", "host-kvm", "orin", "clang")
# --tier X runs the entries whose tier is in TIER_SELECT[X].
TIER_SELECT = {
    "pr": ("pr",),
    "nightly": ("pr", "nightly"),
    "hil": ("hil",),
    "all": TIERS,
}
REQUIRED_KEYS = ("name", "kind", "command", "tier", "requires", "platforms",
                 "timeout", "sources", "description")
OPTIONAL_KEYS = ("env",)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
RESERVED_NAMES = ("all", "raw")
MAX_TIMEOUT = 4 * 3600


class ManifestError(Exception):
    """The manifest is unusable; .errors lists every problem found."""

    def __init__(self, errors):
        super().__init__("\n".join(errors))
        self.errors = errors


def _no_duplicate_keys(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError("duplicate key %r in a JSON object" % k)
        obj[k] = v
    return obj


def _is_str_list(v, allow_empty=True):
    return (isinstance(v, list) and all(isinstance(x, str) and x for x in v)
            and (allow_empty or len(v) > 0))


def validate_entry(i, e, errors):
    """Append to errors every schema violation of tests[i]; return the entry or None."""
    where = "tests[%d]" % i
    if not isinstance(e, dict):
        errors.append("%s: must be an object, got %s" % (where, type(e).__name__))
        return None
    if isinstance(e.get("name"), str):
        where = "tests[%d] (%s)" % (i, e["name"])
    n0 = len(errors)
    for k in sorted(set(e) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS)):
        errors.append("%s: unknown key %r (allowed: %s)"
                      % (where, k, ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS)))
    for k in REQUIRED_KEYS:
        if k not in e:
            errors.append("%s: missing required key %r" % (where, k))
    if len(errors) != n0:
        return None

    name = e["name"]
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors.append("%s: 'name' must match %s" % (where, NAME_RE.pattern))
    elif name in RESERVED_NAMES:
        errors.append("%s: 'name' %r is reserved" % (where, name))
    if e["kind"] not in KINDS:
        errors.append("%s: 'kind' must be one of %s, got %r" % (where, "|".join(KINDS), e["kind"]))
    if not _is_str_list(e["command"], allow_empty=False):
        errors.append("%s: 'command' must be a non-empty list of non-empty strings (argv)" % where)
    if e["tier"] not in TIERS:
        errors.append("%s: 'tier' must be one of %s, got %r" % (where, "|".join(TIERS), e["tier"]))
    req = e["requires"]
    if not _is_str_list(req):
        errors.append("%s: 'requires' must be a list of strings" % where)
    else:
        for r in req:
            if r not in REQUIREMENTS:
                errors.append("%s: unknown requirement %r (known: %s)"
                              % (where, r, ", ".join(REQUIREMENTS)))
        if len(set(req)) != len(req):
            errors.append("%s: 'requires' lists a requirement twice" % where)
    plats = e["platforms"]
    if not _is_str_list(plats, allow_empty=False):
        errors.append("%s: 'platforms' must be a non-empty list of strings" % where)
    else:
        for p in plats:
            if p not in PLATFORMS:
                errors.append("%s: unknown platform %r (known: %s)" % (where, p, ", ".join(PLATFORMS)))
        if len(set(plats)) != len(plats):
            errors.append("%s: 'platforms' lists a platform twice" % where)
    t = e["timeout"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= MAX_TIMEOUT:
        errors.append("%s: 'timeout' must be a number of seconds in (0, %d], got %r"
                      % (where, MAX_TIMEOUT, t))
    src = e["sources"]
    if not _is_str_list(src):
        errors.append("%s: 'sources' must be a list of repository-relative paths" % where)
    else:
        for s in src:
            if os.path.isabs(s) or ".." in s.split("/"):
                errors.append("%s: source %r must be a relative path inside the repository" % (where, s))
        if e["kind"] in ("cmocka", "pytest") and not src:
            errors.append("%s: a %s entry must list its test source in 'sources'" % (where, e["kind"]))
    if not isinstance(e["description"], str) or not e["description"].strip():
        errors.append("%s: 'description' must be a non-empty string" % where)
    if "env" in e:
        env = e["env"]
        if not (isinstance(env, dict) and all(isinstance(k, str) and k and "=" not in k
                                              and isinstance(v, str) for k, v in env.items())):
            errors.append("%s: 'env' must be an object of string -> string" % where)
        elif e["kind"] == "cmocka" and any(k.startswith("CMOCKA_") for k in env):
            errors.append("%s: 'env' may not set CMOCKA_* (the runner owns them)" % where)
    if e["kind"] == "pytest" and _is_str_list(e["command"], allow_empty=False):
        if any(a.startswith("--junitxml") or a.startswith("--junit-xml") for a in e["command"]):
            errors.append("%s: 'command' may not pass --junitxml (the runner adds it)" % where)
    if len(errors) != n0:
        return None
    return e


def load_manifest(path):
    """Parse and strictly validate a manifest; return the list of entries or raise ManifestError."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ManifestError(["%s: cannot read: %s" % (path, exc.strerror or exc)])
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise ManifestError(["%s: invalid JSON: %s" % (path, exc)])
    errors = []
    if not isinstance(doc, dict):
        raise ManifestError(["%s: top level must be an object {\"tests\": [...]}" % path])
    for k in sorted(set(doc) - {"tests"}):
        errors.append("unknown top-level key %r (only 'tests' is allowed)" % k)
    tests = doc.get("tests")
    if not isinstance(tests, list):
        errors.append("top-level 'tests' must be a list")
        tests = []
    entries, seen = [], {}
    for i, e in enumerate(tests):
        v = validate_entry(i, e, errors)
        if v is None:
            continue
        if v["name"] in seen:
            errors.append("tests[%d]: duplicate name %r (first at tests[%d])" % (i, v["name"], seen[v["name"]]))
            continue
        seen[v["name"]] = i
        entries.append(v)
    if errors:
        raise ManifestError(["%s: %s" % (path, m) for m in errors])
    return entries


# ---------------------------------------------------------------------------
# Requirements: each check returns None when met, else a one-line reason.
# ---------------------------------------------------------------------------

def host_arch():
    m = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def check_qemu_aarch64(ctx):
    if shutil.which("qemu-system-aarch64") is None:
        return "qemu-system-aarch64 not found on PATH"
    board = os.path.join(ctx.build_dir, "images", "aarch64", "board.cpio")
    if not os.path.isfile(board):
        return "%s missing (run `make images`)" % os.path.relpath(board, ctx.root)
    return None


def check_host_kvm(ctx):
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return "cannot open /dev/kvm read-write: %s" % (exc.strerror or exc)
    os.close(fd)
    return None


def check_orin(ctx):
    env = os.environ.get("LG_ENV")
    if not env:
        return "LG_ENV is not set (point it at the labgrid environment file of the Orin)"
    if not os.path.isfile(env):
        return "LG_ENV=%s does not exist" % env
    return None


def check_clang(ctx):
    clang = shutil.which("clang")
    if clang is None:
        return "clang not found on PATH"
    lib = "libclang_rt.fuzzer-%s.a" % host_arch()
    try:
        out = subprocess.run([clang, "-print-file-name=" + lib], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                             universal_newlines=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return "clang -print-file-name failed: %s" % exc
    if not (os.path.isabs(out) and os.path.isfile(out)):
        return "libFuzzer runtime %s not found (Debian: libclang-rt-14-dev)" % lib
    return None


REQUIREMENT_CHECKS = {
    "qemu-aarch64": check_qemu_aarch64,
    "host-kvm": check_host_kvm,
    "orin": check_orin,
    "clang": check_clang,
}
assert set(REQUIREMENT_CHECKS) == set(REQUIREMENTS)


class Context:
    def __init__(self, root, build_dir, junit_dir, log_dir, platform_name, verbose):
        self.root = root
        self.build_dir = build_dir
        self.junit_dir = junit_dir
        self.log_dir = log_dir
        self.platform = platform_name
        self.verbose = verbose
        self._req_cache = {}

    def requirement(self, name):
        if name not in self._req_cache:
            self._req_cache[name] = REQUIREMENT_CHECKS[name](self)
        return self._req_cache[name]

    def skip_reason(self, e):
        """None if the entry can run here, else why not."""
        if self.platform not in e["platforms"]:
            return "not for platform %s (runs on %s)" % (self.platform, ", ".join(e["platforms"]))
        for r in e["requires"]:
            why = self.requirement(r)
            if why:
                return "requires %s: %s" % (r, why)
        return None


# ---------------------------------------------------------------------------
# JUnit XML
# ---------------------------------------------------------------------------

class Case:
    """One testcase. status: 'passed' | 'failed' | 'skipped'."""

    def __init__(self, classname, name, status, message="", text="", time_s=0.0):
        self.classname = classname
        self.name = name
        self.status = status
        self.message = message
        self.text = text
        self.time = time_s


def _parse_junit_text(text):
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        pass
    # cmocka without %g appends one <testsuites> per group to a single file:
    # strip the XML declarations and wrap everything in one root.
    body = re.sub(r"<\?xml[^>]*\?>", "", text)
    return ET.fromstring("<junitwrap>" + body + "</junitwrap>")


def parse_junit(path, default_class):
    """Return the testcases of a JUnit file (raises ValueError if it is not JUnit XML)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if not text.strip():
        raise ValueError("empty file")
    try:
        root = _parse_junit_text(text)
    except ET.ParseError as exc:
        raise ValueError("not well-formed XML: %s" % exc)
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if not suites and root.tag not in ("testsuites", "junitwrap"):
        raise ValueError("root element <%s> is not <testsuites>/<testsuite>" % root.tag)
    cases = []
    for s in suites:
        sname = s.get("name") or ""
        for tc in s.findall("testcase"):
            cls = tc.get("classname") or (default_class + "." + sname if sname else default_class)
            name = tc.get("name") or "?"
            try:
                t = float(tc.get("time") or 0)
            except ValueError:
                t = 0.0
            fail = tc.find("failure")
            if fail is None:
                fail = tc.find("error")
            skip = tc.find("skipped")
            if fail is not None:
                cases.append(Case(cls, name, "failed", fail.get("message") or "",
                                  (fail.text or "").strip(), t))
            elif skip is not None:
                msg = skip.get("message") or (skip.text or "").strip()
                if skip.get("type") == "pytest.xfail":
                    msg = "xfail: " + msg
                cases.append(Case(cls, name, "skipped", msg, (skip.text or "").strip(), t))
            else:
                cases.append(Case(cls, name, "passed", time_s=t))
    return cases


def count(cases):
    c = {"passed": 0, "failed": 0, "skipped": 0}
    for k in cases:
        c[k.status] += 1
    return c


def suite_element(name, cases, duration):
    c = count(cases)
    s = ET.Element("testsuite", name=name, tests=str(len(cases)), failures=str(c["failed"]),
                   errors="0", skipped=str(c["skipped"]), time="%.3f" % duration)
    for k in cases:
        tc = ET.SubElement(s, "testcase", classname=k.classname, name=k.name, time="%.3f" % k.time)
        if k.status == "failed":
            f = ET.SubElement(tc, "failure", message=_xml_safe(k.message))
            f.text = _xml_safe(k.text)
        elif k.status == "skipped":
            ET.SubElement(tc, "skipped", message=_xml_safe(k.message))
    return s


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(s):
    return _XML_BAD.sub("?", s or "")


def write_xml(path, suites):
    root = ET.Element("testsuites")
    tot = {"tests": 0, "failures": 0, "skipped": 0}
    t = 0.0
    for s in suites:
        root.append(s)
        tot["tests"] += int(s.get("tests"))
        tot["failures"] += int(s.get("failures"))
        tot["skipped"] += int(s.get("skipped"))
        t += float(s.get("time"))
    for k, v in tot.items():
        root.set(k, str(v))
    root.set("errors", "0")
    root.set("time", "%.3f" % t)
    tmp = path + ".tmp"
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Running one entry
# ---------------------------------------------------------------------------

class Interrupted(Exception):
    pass


def _on_sigterm(signum, frame):
    raise Interrupted()


def tail(path, lines=30, max_bytes=64 * 1024):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_process(argv, cwd, env, timeout, log, echo):
    """Run argv in its own process group, copying its output to log (and stdout when echo).
    Returns (returncode or None on timeout, timed_out)."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def pump():
        fd = proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            log.write(chunk)
            log.flush()
            if echo:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()

    th = threading.Thread(target=pump, daemon=True)
    th.start()
    timed_out = False
    try:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    except BaseException:
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        # Nothing the test started may outlive it (and keep our pipe open).
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        th.join(timeout=10)
        proc.stdout.close()
    return (None if timed_out else proc.returncode), timed_out


SANITIZER_RE = re.compile(r"(ERROR: \w*Sanitizer.*|SUMMARY: \w*Sanitizer.*|^.*runtime error: .*)", re.M)


def describe_status(rc):
    if rc is not None and rc < 0:
        try:
            return "killed by signal %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exited with status %s" % rc


class Result:
    def __init__(self, name, cases, duration, skipped_reason=None):
        self.name = name
        self.cases = cases
        self.duration = duration
        self.skipped_reason = skipped_reason


def _resolve_exe(cmd0, root):
    if "/" in cmd0:
        p = cmd0 if os.path.isabs(cmd0) else os.path.join(root, cmd0)
        return p if os.path.isfile(p) and os.access(p, os.X_OK) else None
    return shutil.which(cmd0)


def run_entry(ctx, e):
    name, kind = e["name"], e["kind"]
    start = time.monotonic()

    def fail(title, text):
        return Result(name, [Case(name, name, "failed", title, text)], time.monotonic() - start)

    missing = [s for s in e["sources"] if not os.path.exists(os.path.join(ctx.root, s))]
    if missing:
        return fail("test source missing: %s" % ", ".join(missing),
                    "tests.json lists %s but it does not exist; a missing test is a bug" % ", ".join(missing))
    why = ctx.skip_reason(e)
    if why:
        return Result(name, [Case(name, name, "skipped", why)], 0.0, skipped_reason=why)
    argv = list(e["command"])
    exe = _resolve_exe(argv[0], ctx.root)
    if exe is None:
        hint = " (not built? run `make`)" if kind == "cmocka" else ""
        return fail("command not found: %s%s" % (argv[0], hint),
                    "%s does not exist or is not executable; a missing test is a bug" % argv[0])
    if "/" in argv[0] and not os.path.isabs(argv[0]):
        argv[0] = exe

    raw_dir = os.path.join(ctx.junit_dir, "raw", name)
    shutil.rmtree(raw_dir, ignore_errors=True)
    os.makedirs(raw_dir, exist_ok=True)
    env = dict(os.environ)
    env.update(e.get("env", {}))
    if kind == "cmocka":
        # cmocka 1.1.5 never overwrites an existing file and, without %g, appends one
        # <testsuites> per group to the same file: one file per group in a fresh dir.
        env["CMOCKA_MESSAGE_OUTPUT"] = "xml"
        env["CMOCKA_XML_FILE"] = os.path.join(raw_dir, "%g.xml")
    elif kind == "pytest":
        argv.append("--junitxml=" + os.path.join(raw_dir, name + ".xml"))

    log_path = os.path.join(ctx.log_dir, name + ".log")
    with open(log_path, "wb") as log:
        log.write(("# %s (%s, tier %s, timeout %ss)\n# cwd: %s\n# argv: %s\n"
                   % (name, kind, e["tier"], e["timeout"], ctx.root,
                      " ".join(_shquote(a) for a in argv))).encode())
        for k, v in sorted(e.get("env", {}).items()):
            log.write(("# env: %s=%s\n" % (k, v)).encode())
        if kind == "cmocka":
            log.write(b"# env: CMOCKA_MESSAGE_OUTPUT=xml CMOCKA_XML_FILE=" +
                      env["CMOCKA_XML_FILE"].encode() + b"\n")
        log.write(b"\n")
        log.flush()
        try:
            rc, timed_out = run_process(argv, ctx.root, env, e["timeout"], log, ctx.verbose)
        except OSError as exc:
            return fail("cannot execute %s: %s" % (argv[0], exc.strerror or exc), str(exc))
        duration = time.monotonic() - start
        log.write(("\n# %s after %.1fs\n" % ("TIMEOUT" if timed_out else describe_status(rc), duration)).encode())

    out_tail = tail(log_path)
    cases = []
    if kind == "command":
        if timed_out:
            pass
        elif rc == 0:
            cases.append(Case(name, name, "passed", time_s=duration))
        else:
            cases.append(Case(name, name, "failed", describe_status(rc), out_tail, duration))
    else:
        xmls = sorted(f for f in os.listdir(raw_dir) if f.endswith(".xml"))
        for f in xmls:
            try:
                cases.extend(parse_junit(os.path.join(raw_dir, f), name))
            except (ValueError, OSError) as exc:
                cases.append(Case(name, name + " (junit)", "failed",
                                  "unreadable JUnit XML %s: %s" % (f, exc), out_tail))
        c = count(cases)
        san = None
        if kind == "cmocka" and not timed_out:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                m = SANITIZER_RE.search(f.read())
            san = m.group(0).strip() if m else None
        why = None
        if timed_out:
            pass
        elif not xmls:
            why = (name, "%s and produced no JUnit XML" % describe_status(rc))
        elif rc != 0 and (c["failed"] == 0 or rc < 0):
            # a crash / sanitizer exit / internal error that the XML does not account for
            why = (name + " (exit status)", "%s but reported %s" % (
                describe_status(rc), "no failing testcase" if c["failed"] == 0 else
                "its failing testcases (crashed?)"))
        elif kind == "pytest" and not cases:
            why = (name, "pytest collected no tests")
        elif san:
            why = (name + " (sanitizer)", "sanitizer report in the output")
        if why:
            msg = why[1] + ("; sanitizer: " + san if san else "")
            cases.append(Case(name, why[0], "failed", msg, out_tail, duration))
    if timed_out:
        cases.append(Case(name, name + " (timeout)", "failed",
                          "timed out after %ss; process group killed" % e["timeout"], out_tail, duration))
    return Result(name, cases, duration)


def _shquote(a):
    return a if re.match(r"^[A-Za-z0-9_./=:,+@%-]+$", a) else "'" + a.replace("'", "'\\''") + "'"


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def select(entries, tier, only):
    if only:
        by_name = {e["name"]: e for e in entries}
        unknown = [n for n in only if n not in by_name]
        if unknown:
            raise ManifestError(["--only: no test named %s in the manifest" % ", ".join(repr(n) for n in unknown)])
        seen = set()
        return [by_name[n] for n in only if not (n in seen or seen.add(n))]
    return [e for e in entries if e["tier"] in TIER_SELECT[tier]]


def summary_counts(results):
    c = {"passed": 0, "failed": 0, "skipped": 0}
    for r in results:
        for k, v in count(r.cases).items():
            c[k] += v
    return c


def fmt_counts(c):
    parts = ["%d passed" % c["passed"]]
    if c["failed"]:
        parts.append("%d failed" % c["failed"])
    if c["skipped"]:
        parts.append("%d skipped" % c["skipped"])
    return ", ".join(parts)


def shortpath(p):
    rel = os.path.relpath(p)
    return p if rel.startswith("..") else rel


def out(msg=""):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Run the tests listed in tests.json (see docs/testing.md).")
    ap.add_argument("--manifest", default=os.path.join(os.path.dirname(here), "tests.json"),
                    help="manifest path; commands and sources are relative to its directory "
                         "(default: the repository's tests.json)")
    ap.add_argument("--tier", choices=sorted(TIER_SELECT), default="pr",
                    help="pr: pr; nightly: pr+nightly; hil: hil; all: everything (default: pr)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run just these entries, whatever their tier")
    ap.add_argument("--list", action="store_true", help="list the selected entries and whether they would run")
    ap.add_argument("--platform", default=host_arch(), help="platform to select for (default: uname -m)")
    ap.add_argument("--build-dir", help="build directory (default: <root>/build)")
    ap.add_argument("--junit-dir", help="JUnit output directory (default: <build-dir>/junit)")
    ap.add_argument("--log-dir", help="per-test logs (default: <build-dir>/logs)")
    ap.add_argument("-v", "--verbose", action="store_true", help="also stream each test's output")
    args = ap.parse_args(argv)

    manifest = os.path.abspath(args.manifest)
    root = os.path.dirname(manifest)
    try:
        entries = load_manifest(manifest)
        selected = select(entries, args.tier, args.only)
    except ManifestError as exc:
        for m in exc.errors:
            sys.stderr.write("run_tests: %s\n" % m)
        return 2
    build_dir = os.path.abspath(args.build_dir) if args.build_dir else os.path.join(root, "build")
    ctx = Context(root, build_dir,
                  os.path.abspath(args.junit_dir) if args.junit_dir else os.path.join(build_dir, "junit"),
                  os.path.abspath(args.log_dir) if args.log_dir else os.path.join(build_dir, "logs"),
                  args.platform, args.verbose)

    if args.list:
        for e in selected:
            why = ctx.skip_reason(e)
            out("%-24s %-8s %-8s %6ss  %-22s %s" % (
                e["name"], e["tier"], e["kind"], e["timeout"], ",".join(e["requires"]) or "-",
                ("SKIP: " + why) if why else "runs"))
        return 0

    os.makedirs(ctx.junit_dir, exist_ok=True)
    os.makedirs(ctx.log_dir, exist_ok=True)
    # Drop stale results of every manifest entry, so the directory reflects this run only.
    for e in entries:
        for p in (os.path.join(ctx.junit_dir, e["name"] + ".xml"),):
            if os.path.exists(p):
                os.unlink(p)
        shutil.rmtree(os.path.join(ctx.junit_dir, "raw", e["name"]), ignore_errors=True)
    all_xml = os.path.join(ctx.junit_dir, "all.xml")

    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    results = []
    interrupted = False
    what = ("--only " + " ".join(args.only)) if args.only else "tier " + args.tier
    out("run_tests: %d test entries (%s, platform %s); logs in %s, JUnit in %s" % (
        len(selected), what, ctx.platform, shortpath(ctx.log_dir), shortpath(ctx.junit_dir)))
    current = None
    try:
        for i, e in enumerate(selected, 1):
            prefix = "[%d/%d]" % (i, len(selected))
            if ctx.verbose:
                out("%s %s ..." % (prefix, e["name"]))
            current = e
            r = run_entry(ctx, e)
            current = None
            results.append(r)
            write_xml(os.path.join(ctx.junit_dir, e["name"] + ".xml"),
                      [suite_element(e["name"], r.cases, r.duration)])
            if r.skipped_reason is not None:
                out("%s SKIP %s: %s" % (prefix, e["name"], r.skipped_reason))
                continue
            c = count(r.cases)
            status = "FAIL" if c["failed"] else "ok"
            out("%s %s ... %s (%s) %.1fs" % (prefix, e["name"], status, fmt_counts(c), r.duration))
            for k in r.cases:
                if k.status == "skipped":
                    out("    skipped %s::%s: %s" % (k.classname, k.name, k.message))
            if c["failed"]:
                for k in r.cases:
                    if k.status == "failed":
                        msg = k.message.splitlines()[0] if k.message else ""
                        out("    FAILED %s::%s: %s" % (k.classname, k.name, msg[:200] + ("…" if len(msg) > 200 else "")))
                t = tail(os.path.join(ctx.log_dir, e["name"] + ".log"), 20)
                if t and not ctx.verbose:
                    out("    --- last lines of %s ---" % shortpath(os.path.join(ctx.log_dir, e["name"] + ".log")))
                    for line in t.splitlines():
                        out("    | " + line)
    except (KeyboardInterrupt, Interrupted):
        interrupted = True
        out("run_tests: interrupted")
        if current is not None:
            results.append(Result(current["name"], [Case(current["name"], current["name"] + " (interrupted)",
                                                         "failed", "the test run was interrupted")], 0.0))
    finally:
        signal.signal(signal.SIGTERM, old_term)

    write_xml(all_xml, [suite_element(r.name, r.cases, r.duration) for r in results])
    c = summary_counts(results)
    failed = [r.name for r in results if count(r.cases)["failed"]]
    if failed:
        out("failed entries: " + ", ".join(failed))
    out("%d passed, %d failed, %d skipped" % (c["passed"], c["failed"], c["skipped"]))
    if interrupted:
        return 130
    return 0 if c["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
