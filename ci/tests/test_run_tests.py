# Tests of ci/run_tests.py and ci/check_manifest.py: tiny fake manifests in temporary
# directories, the runner run as a subprocess exactly as `make test` runs it.
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest

CI = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(CI, "run_tests.py")
CHECKER = os.path.join(CI, "check_manifest.py")
PY = "/usr/bin/python3"

sys.path.insert(0, CI)
import run_tests  # noqa: E402


def entry(name, command, **kw):
    e = {"name": name, "kind": "command", "command": command, "tier": "pr", "requires": [],
         "platforms": ["x86_64", "aarch64"], "timeout": 30, "sources": [],
         "description": "fake test " + name}
    e.update(kw)
    return e


def write_manifest(root, entries, raw=None):
    path = os.path.join(str(root), "tests.json")
    with open(path, "w") as f:
        f.write(raw if raw is not None else json.dumps({"tests": entries}, indent=1))
    return path


def run(root, entries, *args, raw=None, env=None, platform="x86_64", timeout=120):
    manifest = write_manifest(root, entries, raw)
    full_env = dict(os.environ)
    full_env.pop("LG_ENV", None)
    if env:
        full_env.update(env)
    p = subprocess.run([PY, RUNNER, "--manifest", manifest, "--platform", platform] + list(args),
                       cwd=str(root), env=full_env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    return p


def last_line(p):
    return p.stdout.rstrip("\n").splitlines()[-1]


def all_cases(root):
    tree = ET.parse(os.path.join(str(root), "build", "junit", "all.xml"))
    out = []
    for s in tree.getroot().findall("testsuite"):
        for tc in s.findall("testcase"):
            if tc.find("failure") is not None or tc.find("error") is not None:
                st = "failed"
            elif tc.find("skipped") is not None:
                st = "skipped"
            else:
                st = "passed"
            sk = tc.find("skipped")
            out.append((s.get("name"), tc.get("name"), st, sk.get("message") if sk is not None else None))
    return out


def alive(pid):
    """True if pid is a live process (a zombie waiting for init to reap it counts as dead)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def make_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


# ----------------------------------------------------------------- command entries

def test_passing_command(tmp_path):
    p = run(tmp_path, [entry("ok1", ["sh", "-c", "echo hello-from-test"])])
    assert p.returncode == 0, p.stdout + p.stderr
    assert last_line(p) == "1 passed, 0 failed, 0 skipped"
    assert "[1/1] ok1 ... ok (1 passed)" in p.stdout
    log = (tmp_path / "build" / "logs" / "ok1.log").read_text()
    assert "hello-from-test" in log
    assert all_cases(tmp_path) == [("ok1", "ok1", "passed", None)]
    assert (tmp_path / "build" / "junit" / "ok1.xml").exists()


def test_failing_command_shows_tail(tmp_path):
    p = run(tmp_path, [entry("bad", ["sh", "-c", "echo the-reason-it-broke; exit 3"]),
                       entry("good", ["true"])])
    assert p.returncode == 1
    assert last_line(p) == "1 passed, 1 failed, 0 skipped"
    assert "bad ... FAIL" in p.stdout
    assert "the-reason-it-broke" in p.stdout
    assert "exited with status 3" in p.stdout
    cases = all_cases(tmp_path)
    assert ("bad", "bad", "failed", None) in cases
    root = ET.parse(str(tmp_path / "build" / "junit" / "all.xml")).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"


def test_timeout_kills_process_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    cmd = ["sh", "-c", "sleep 300 & echo $! > %s; echo started; wait" % pidfile]
    t0 = time.monotonic()
    p = run(tmp_path, [entry("slow", cmd, timeout=1)])
    assert time.monotonic() - t0 < 30
    assert p.returncode == 1
    assert last_line(p) == "0 passed, 1 failed, 0 skipped"
    assert "timed out after 1s" in p.stdout
    assert "started" in p.stdout          # tail of the output
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    assert not alive(pid)                 # the grandchild died with the group
    assert all_cases(tmp_path) == [("slow", "slow (timeout)", "failed", None)]


def test_stdin_is_not_inherited(tmp_path):
    p = run(tmp_path, [entry("reads", ["sh", "-c", "cat; echo done"], timeout=10)])
    assert p.returncode == 0, p.stdout


def test_env_is_passed(tmp_path):
    p = run(tmp_path, [entry("envy", ["sh", "-c", 'test "$FOO" = bar'], env={"FOO": "bar"})])
    assert p.returncode == 0, p.stdout


def test_commands_run_in_manifest_dir(tmp_path):
    (tmp_path / "marker").write_text("x")
    p = run(tmp_path, [entry("cwd", ["test", "-f", "marker"])])
    assert p.returncode == 0, p.stdout


# ----------------------------------------------------------------- skips and missing tests

def test_missing_requirement_skips_with_reason(tmp_path):
    p = run(tmp_path, [entry("needs_orin", ["true"], requires=["orin"]),
                       entry("needs_board", ["true"], requires=["qemu-aarch64"])])
    assert p.returncode == 0
    assert "SKIP needs_orin: requires orin: LG_ENV is not set" in p.stdout
    assert "SKIP needs_board: requires qemu-aarch64: " in p.stdout
    assert last_line(p) == "0 passed, 0 failed, 2 skipped"
    cases = all_cases(tmp_path)
    assert cases[0][2] == "skipped" and cases[0][3].startswith("requires orin: LG_ENV is not set")


def test_orin_requirement_met_with_env_file(tmp_path):
    envfile = tmp_path / "orin.yaml"
    envfile.write_text("targets: {}\n")
    p = run(tmp_path, [entry("hil1", ["true"], tier="hil", requires=["orin"])],
            "--tier", "hil", env={"LG_ENV": str(envfile)})
    assert last_line(p) == "1 passed, 0 failed, 0 skipped"
    p = run(tmp_path, [entry("hil1", ["true"], tier="hil", requires=["orin"])],
            "--tier", "hil", env={"LG_ENV": str(tmp_path / "nope.yaml")})
    assert "does not exist" in p.stdout and last_line(p) == "0 passed, 0 failed, 1 skipped"


def test_platform_filter_skips(tmp_path):
    p = run(tmp_path, [entry("armonly", ["true"], platforms=["aarch64"])], platform="x86_64")
    assert "SKIP armonly: not for platform x86_64" in p.stdout
    assert p.returncode == 0
    p = run(tmp_path, [entry("armonly", ["true"], platforms=["aarch64"])], platform="aarch64")
    assert last_line(p) == "1 passed, 0 failed, 0 skipped"


def test_missing_binary_is_a_failure(tmp_path):
    (tmp_path / "test_x.c").write_text("")
    p = run(tmp_path, [entry("test_x", ["build/host/tests/test_x"], kind="cmocka", sources=["test_x.c"])])
    assert p.returncode == 1
    assert "command not found: build/host/tests/test_x" in p.stdout
    assert last_line(p) == "0 passed, 1 failed, 0 skipped"


def test_missing_source_fails_even_if_it_would_skip(tmp_path):
    p = run(tmp_path, [entry("gone", ["true"], requires=["orin"], sources=["integration/test_gone.py"])])
    assert p.returncode == 1
    assert "test source missing: integration/test_gone.py" in p.stdout


def test_missing_pytest_file_is_a_failure(tmp_path):
    # the source check catches it; without 'sources' pytest itself errors and writes no tests
    p = run(tmp_path, [entry("it", [PY, "-m", "pytest", "-q", "nofile.py"], kind="pytest",
                             sources=["nofile.py"])])
    assert p.returncode == 1


# ----------------------------------------------------------------- manifest errors

BAD_MANIFESTS = {
    "invalid_json": ('{"tests": [', "invalid JSON"),
    "not_object": ('[]', "top level must be an object"),
    "top_key": ('{"tests": [], "extra": 1}', "unknown top-level key 'extra'"),
    "dup_json_key": ('{"tests": [], "tests": []}', "duplicate key 'tests'"),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_malformed_manifest_exit_2(tmp_path, case):
    raw, msg = BAD_MANIFESTS[case]
    p = run(tmp_path, [], raw=raw)
    assert p.returncode == 2, p.stdout + p.stderr
    assert msg in p.stderr


def _bad(**kw):
    e = entry("e1", ["true"])
    for k, v in kw.items():
        if v is KeyError:
            del e[k]
        else:
            e[k] = v
    return e


@pytest.mark.parametrize("bad,msg", [
    (_bad(timout=3), "unknown key 'timout'"),
    (_bad(timeout=KeyError), "missing required key 'timeout'"),
    (_bad(description=KeyError), "missing required key 'description'"),
    (_bad(kind="shell"), "'kind' must be one of"),
    (_bad(tier="weekly"), "'tier' must be one of"),
    (_bad(requires=["gpu"]), "unknown requirement 'gpu'"),
    (_bad(platforms=["riscv64"]), "unknown platform 'riscv64'"),
    (_bad(platforms=[]), "'platforms' must be a non-empty list"),
    (_bad(timeout=0), "'timeout' must be a number"),
    (_bad(timeout=True), "'timeout' must be a number"),
    (_bad(command="true"), "'command' must be a non-empty list"),
    (_bad(command=[]), "'command' must be a non-empty list"),
    (_bad(name="has space"), "'name' must match"),
    (_bad(name="all"), "reserved"),
    (_bad(sources=["../x.c"]), "relative path inside the repository"),
    (_bad(kind="cmocka"), "must list its test source"),
    (_bad(env={"A": 1}), "'env' must be an object"),
    (_bad(kind="pytest", sources=["t.py"], command=["pytest", "--junitxml=x"]), "may not pass --junitxml"),
])
def test_invalid_entry_exit_2(tmp_path, bad, msg):
    p = run(tmp_path, [bad])
    assert p.returncode == 2
    assert msg in p.stderr, p.stderr
    assert "tests[0]" in p.stderr


def test_duplicate_names_exit_2(tmp_path):
    p = run(tmp_path, [entry("same", ["true"]), entry("same", ["false"])])
    assert p.returncode == 2
    assert "duplicate name 'same'" in p.stderr


def test_all_errors_are_reported(tmp_path):
    p = run(tmp_path, [_bad(tier="x"), _bad(kind="y")])
    assert p.returncode == 2
    assert "tests[0]" in p.stderr and "tests[1]" in p.stderr


def test_unknown_only_name_exit_2(tmp_path):
    p = run(tmp_path, [entry("a", ["true"])], "--only", "b")
    assert p.returncode == 2 and "no test named 'b'" in p.stderr


def test_bad_cli_exit_2(tmp_path):
    p = run(tmp_path, [entry("a", ["true"])], "--tier", "weekly")
    assert p.returncode == 2


# ----------------------------------------------------------------- selection

TIERED = [entry("p1", ["true"], tier="pr"), entry("n1", ["true"], tier="nightly"),
          entry("h1", ["true"], tier="hil")]


@pytest.mark.parametrize("tier,names", [
    ("pr", ["p1"]), ("nightly", ["p1", "n1"]), ("hil", ["h1"]), ("all", ["p1", "n1", "h1"]),
])
def test_tier_selection(tmp_path, tier, names):
    p = run(tmp_path, TIERED, "--tier", tier)
    assert p.returncode == 0
    assert [c[0] for c in all_cases(tmp_path)] == names


def test_only_overrides_tier(tmp_path):
    p = run(tmp_path, TIERED, "--only", "h1", "n1")
    assert [c[0] for c in all_cases(tmp_path)] == ["h1", "n1"]
    assert "[1/2] h1 ... ok" in p.stdout and "[2/2] n1 ... ok" in p.stdout


def test_list(tmp_path):
    p = run(tmp_path, TIERED + [entry("o1", ["true"], requires=["orin"])], "--list", "--tier", "all")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert [l.split()[0] for l in lines] == ["p1", "n1", "h1", "o1"]
    assert "SKIP: requires orin" in lines[3]
    assert not (tmp_path / "build").exists()   # --list runs nothing


def test_stale_results_are_removed(tmp_path):
    run(tmp_path, TIERED, "--tier", "all")
    assert (tmp_path / "build" / "junit" / "h1.xml").exists()
    run(tmp_path, TIERED, "--tier", "pr")
    assert not (tmp_path / "build" / "junit" / "h1.xml").exists()
    assert (tmp_path / "build" / "junit" / "p1.xml").exists()


# ----------------------------------------------------------------- cmocka XML handling

FAKE_CMOCKA = """#!/usr/bin/python3
# Writes what cmocka 1.1.5 writes with CMOCKA_MESSAGE_OUTPUT=xml: one file per group (%g).
import os, sys
assert os.environ["CMOCKA_MESSAGE_OUTPUT"] == "xml"
pat = os.environ["CMOCKA_XML_FILE"]
assert "%g" in pat
groups = {
  "grp_a": '<testcase name="a1" time="0.001"></testcase><testcase name="a2" time="0.000">'
           '<failure><![CDATA[0x1 != 0x2\\ntest.c:8: error: Failure!]]></failure></testcase>',
  "grp_b": '<testcase name="b1"></testcase><testcase name="b2"><skipped/></testcase>'
           '<testcase name="b3"></testcase>',
}
for g, body in groups.items():
    with open(pat.replace("%g", g), "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8" ?>\\n<testsuites><testsuite name="%s">%s'
                '</testsuite></testsuites>' % (g, body))
print("fake cmocka ran")
sys.exit(int(os.environ.get("FAKE_RC", "1")))
"""


def _cmocka_entry(tmp_path, script=FAKE_CMOCKA, **kw):
    (tmp_path / "build" / "host" / "tests").mkdir(parents=True, exist_ok=True)
    make_exe(str(tmp_path / "build" / "host" / "tests" / "test_fake"), script)
    (tmp_path / "test_fake.c").write_text("")
    return entry("test_fake", ["build/host/tests/test_fake"], kind="cmocka", sources=["test_fake.c"], **kw)


def test_fake_cmocka_xml_merge_and_counts(tmp_path):
    p = run(tmp_path, [_cmocka_entry(tmp_path), entry("cmd", ["true"])])
    assert p.returncode == 1
    assert last_line(p) == "4 passed, 1 failed, 1 skipped"
    assert "test_fake ... FAIL (3 passed, 1 failed, 1 skipped)" in p.stdout
    assert "FAILED test_fake.grp_a::a2" in p.stdout
    cases = all_cases(tmp_path)
    assert [(c[1], c[2]) for c in cases] == [("a1", "passed"), ("a2", "failed"), ("b1", "passed"),
                                             ("b2", "skipped"), ("b3", "passed"), ("cmd", "passed")]
    root = ET.parse(str(tmp_path / "build" / "junit" / "all.xml")).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("6", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["test_fake", "cmd"]
    assert suites[0].find("testcase").get("classname") == "test_fake.grp_a"


def test_cmocka_nonzero_exit_without_failures_is_a_failure(tmp_path):
    script = FAKE_CMOCKA.replace("<failure>", "<!--").replace("</failure>", "-->")
    p = run(tmp_path, [_cmocka_entry(tmp_path, script, env={"FAKE_RC": "1"})])
    assert p.returncode == 1
    assert last_line(p) == "4 passed, 1 failed, 1 skipped"
    assert "exited with status 1 but reported no failing testcase" in p.stdout


def test_cmocka_clean_run_passes(tmp_path):
    script = FAKE_CMOCKA.replace("<failure>", "<!--").replace("</failure>", "-->")
    p = run(tmp_path, [_cmocka_entry(tmp_path, script, env={"FAKE_RC": "0"})])
    assert p.returncode == 0, p.stdout
    assert last_line(p) == "4 passed, 0 failed, 1 skipped"


def test_cmocka_without_xml_is_a_failure(tmp_path):
    script = "#!/bin/sh\necho 'no xml here'\nexit 0\n"
    p = run(tmp_path, [_cmocka_entry(tmp_path, script)])
    assert p.returncode == 1
    assert "produced no JUnit XML" in p.stdout
    assert last_line(p) == "0 passed, 1 failed, 0 skipped"


def test_cmocka_crash_is_a_failure(tmp_path):
    script = FAKE_CMOCKA.replace('sys.exit(int(os.environ.get("FAKE_RC", "1")))',
                                 'import signal; os.kill(os.getpid(), signal.SIGSEGV)')
    p = run(tmp_path, [_cmocka_entry(tmp_path, script)])
    assert p.returncode == 1
    assert "killed by signal SIGSEGV" in p.stdout


def test_cmocka_sanitizer_report_is_a_failure(tmp_path):
    script = FAKE_CMOCKA.replace("<failure>", "<!--").replace("</failure>", "-->").replace(
        'print("fake cmocka ran")', 'print("==1==ERROR: AddressSanitizer: heap-buffer-overflow")')
    p = run(tmp_path, [_cmocka_entry(tmp_path, script, env={"FAKE_RC": "0"})])
    assert p.returncode == 1
    assert "sanitizer report" in p.stdout


def test_cmocka_garbage_xml_is_a_failure(tmp_path):
    script = ("#!/bin/sh\nf=$(echo \"$CMOCKA_XML_FILE\" | sed 's/%g/g/')\n"
              "echo '<testsuites><testsuite' > \"$f\"\nexit 0\n")
    p = run(tmp_path, [_cmocka_entry(tmp_path, script)])
    assert p.returncode == 1
    assert "unreadable JUnit XML" in p.stdout


def test_parse_concatenated_cmocka_file(tmp_path):
    # cmocka 1.1.5 without %g appends a second <testsuites> (no declaration) to the same file
    f = tmp_path / "x.xml"
    f.write_text('<?xml version="1.0" encoding="UTF-8" ?>\n<testsuites>\n<testsuite name="g1">'
                 '<testcase name="a"></testcase></testsuite>\n</testsuites>\n<testsuites>\n'
                 '<testsuite name="g2"><testcase name="b"><failure>x</failure></testcase>'
                 '</testsuite>\n</testsuites>\n')
    cases = run_tests.parse_junit(str(f), "t")
    assert [(c.classname, c.name, c.status) for c in cases] == [("t.g1", "a", "passed"),
                                                                 ("t.g2", "b", "failed")]


HAVE_CMOCKA = shutil.which("gcc") and os.path.exists("/usr/include/cmocka.h")

REAL_CMOCKA_C = r"""
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
static void t_ok(void **s) { (void)s; assert_int_equal(2, 2); }
static void t_fail(void **s) { (void)s; assert_int_equal(1, 2); }
static void t_skip(void **s) { (void)s; skip(); }
static void t_maybe_crash(void **s) { (void)s; if (getenv("CRASH")) abort(); }
int main(void)
{
	const struct CMUnitTest first[] = { cmocka_unit_test(t_ok), cmocka_unit_test(t_skip),
					    cmocka_unit_test(t_fail) };
	const struct CMUnitTest second[] = { cmocka_unit_test(t_ok), cmocka_unit_test(t_maybe_crash) };
	int r = cmocka_run_group_tests_name("first", first, NULL, NULL);
	r += cmocka_run_group_tests_name("second", second, NULL, NULL);
	return r;
}
"""


@pytest.mark.skipif(not HAVE_CMOCKA, reason="gcc or cmocka.h (libcmocka-dev) not installed")
def test_real_cmocka_binary(tmp_path):
    bindir = tmp_path / "build" / "host" / "tests"
    bindir.mkdir(parents=True)
    (tmp_path / "test_real.c").write_text(REAL_CMOCKA_C)
    subprocess.run(["gcc", "-o", str(bindir / "test_real"), str(tmp_path / "test_real.c"), "-lcmocka"],
                   check=True)
    e = entry("test_real", ["build/host/tests/test_real"], kind="cmocka", sources=["test_real.c"])
    # run twice: the second run must not see the first run's files (cmocka never overwrites)
    for _ in range(2):
        p = run(tmp_path, [e])
        assert p.returncode == 1
        assert last_line(p) == "3 passed, 1 failed, 1 skipped"
    assert "FAILED test_real.first::t_fail" in p.stdout
    assert sorted(os.listdir(str(tmp_path / "build" / "junit" / "raw" / "test_real"))) == \
        ["first.xml", "second.xml"]
    # a crash in the second group: its XML is never written, the abort must still fail the run
    e["env"] = {"CRASH": "1"}
    p = run(tmp_path, [e])
    assert p.returncode == 1
    assert "killed by signal SIGABRT" in p.stdout
    e["env"] = {}
    (tmp_path / "test_real.c").write_text(REAL_CMOCKA_C.replace("assert_int_equal(1, 2)", "(void)0"))
    subprocess.run(["gcc", "-o", str(bindir / "test_real"), str(tmp_path / "test_real.c"), "-lcmocka"],
                   check=True)
    p = run(tmp_path, [e])
    assert p.returncode == 0, p.stdout
    assert last_line(p) == "4 passed, 0 failed, 1 skipped"


# ----------------------------------------------------------------- pytest entries

def test_pytest_entry_counts_cases_and_skip_reasons(tmp_path):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent("""
        import pytest
        def test_one(): pass
        def test_two(): pass
        def test_broken(): assert 1 == 2
        def test_needs_board(): pytest.skip("no board in this sandbox")
    """))
    e = entry("inner", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
              kind="pytest", sources=["test_inner.py"])
    p = run(tmp_path, [e])
    assert p.returncode == 1
    assert last_line(p) == "2 passed, 1 failed, 1 skipped"
    assert "skipped test_inner::test_needs_board: no board in this sandbox" in p.stdout
    cases = all_cases(tmp_path)
    assert ("inner", "test_needs_board", "skipped", "no board in this sandbox") in cases
    assert ("inner", "test_broken", "failed", None) in cases


def test_pytest_collection_error_is_a_failure(tmp_path):
    (tmp_path / "test_imp.py").write_text("import no_such_module_here\n")
    e = entry("imp", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_imp.py"],
              kind="pytest", sources=["test_imp.py"])
    p = run(tmp_path, [e])
    assert p.returncode == 1
    assert "0 passed, 1 failed" in last_line(p)


def test_pytest_no_tests_is_a_failure(tmp_path):
    (tmp_path / "test_empty.py").write_text("x = 1\n")
    e = entry("empty", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_empty.py"],
              kind="pytest", sources=["test_empty.py"])
    p = run(tmp_path, [e])
    assert p.returncode == 1
    assert "exited with status 5" in p.stdout


# ----------------------------------------------------------------- check_manifest

def _check(root, entries):
    manifest = write_manifest(root, entries)
    return subprocess.run([PY, CHECKER, "--manifest", manifest], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


def test_check_manifest(tmp_path):
    (tmp_path / "reference-vmm" / "tests").mkdir(parents=True)
    (tmp_path / "integration" / "sub").mkdir(parents=True)
    (tmp_path / "reference-vmm" / "tests" / "test_bus.c").write_text("")
    (tmp_path / "integration" / "sub" / "test_deep.py").write_text("")
    good = [entry("test_bus", ["build/host/tests/test_bus"], kind="cmocka",
                  sources=["reference-vmm/tests/test_bus.c"]),
            entry("deep", [PY, "-m", "pytest", "integration/sub"], kind="pytest",
                  sources=["integration/sub/test_deep.py"])]
    p = _check(tmp_path, good)
    assert p.returncode == 0, p.stdout

    (tmp_path / "reference-vmm" / "tests" / "test_new.c").write_text("")
    p = _check(tmp_path, good)
    assert p.returncode == 1
    assert "reference-vmm/tests/test_new.c is a test source but no tests.json entry lists it" in p.stdout

    (tmp_path / "reference-vmm" / "tests" / "test_new.c").unlink()
    p = _check(tmp_path, good + [entry("ghost", ["true"], sources=["fuzz/fuzz_ghost.c"])])
    assert p.returncode == 1 and "source fuzz/fuzz_ghost.c does not exist" in p.stdout

    wrong = [dict(good[0], command=["build/host/tests/test_other"]), good[1]]
    p = _check(tmp_path, wrong)
    assert p.returncode == 1 and "must include reference-vmm/tests/test_other.c" in p.stdout

    p = _check(tmp_path, [good[0], dict(good[1], command=[PY, "-m", "pytest", "integration/other"])])
    assert p.returncode == 1 and "not among the pytest arguments" in p.stdout

    p = _check(tmp_path, [good[0], good[0]])
    assert p.returncode == 2


def test_repository_manifest_is_valid():
    entries = run_tests.load_manifest(os.path.join(os.path.dirname(CI), "tests.json"))
    names = [e["name"] for e in entries]
    assert "check_manifest" in names and "ci_run_tests" in names


def test_sigterm_records_the_running_entry_as_failed(tmp_path):
    manifest = write_manifest(tmp_path, [entry("long", ["sleep", "300"], timeout=600)])
    proc = subprocess.Popen([PY, RUNNER, "--manifest", manifest], cwd=str(tmp_path),
                            stdout=subprocess.PIPE, universal_newlines=True)
    time.sleep(1.0)
    proc.terminate()
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert stdout.rstrip("\n").splitlines()[-1] == "0 passed, 1 failed, 0 skipped"
    assert all_cases(tmp_path) == [("long", "long (interrupted)", "failed", None)]


def test_requirement_checks_answer(tmp_path):
    ctx = run_tests.Context(str(tmp_path), str(tmp_path / "build"), "", "", "x86_64", False)
    for name in run_tests.REQUIREMENTS:
        why = ctx.requirement(name)
        assert why is None or (isinstance(why, str) and why)
    kvm_ok = os.access("/dev/kvm", os.R_OK | os.W_OK)
    assert (ctx.requirement("host-kvm") is None) == kvm_ok
    if shutil.which("qemu-system-aarch64"):
        assert "board.cpio missing" in ctx.requirement("qemu-aarch64")
        (tmp_path / "build" / "images" / "aarch64").mkdir(parents=True)
        (tmp_path / "build" / "images" / "aarch64" / "board.cpio").write_bytes(b"")
        assert run_tests.check_qemu_aarch64(ctx) is None
    if shutil.which("clang") and os.path.exists("/usr/lib/llvm-14/lib/clang"):
        assert ctx.requirement("clang") is None


ASAN_CMOCKA_C = r"""
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
static void *keep;
static void t_leaks(void **s) { (void)s; if (getenv("LEAK")) { keep = malloc(10); keep = NULL; } }
static void t_overflows(void **s)
{
	(void)s;
	if (getenv("OOB")) { volatile char *p = malloc(4); p[4] = 1; free((void *)p); }
}
int main(void)
{
	const struct CMUnitTest g[] = { cmocka_unit_test(t_leaks), cmocka_unit_test(t_overflows) };
	return cmocka_run_group_tests(g, NULL, NULL);
}
"""


@pytest.mark.skipif(not HAVE_CMOCKA, reason="gcc or cmocka.h (libcmocka-dev) not installed")
def test_real_cmocka_under_asan(tmp_path):
    # like `make`'s unit tests: ASan reports at exit (leaks) or aborts mid-group (overflow)
    bindir = tmp_path / "build" / "host" / "tests"
    bindir.mkdir(parents=True)
    (tmp_path / "test_asan.c").write_text(ASAN_CMOCKA_C)
    r = subprocess.run(["gcc", "-g", "-fsanitize=address,undefined", "-o", str(bindir / "test_asan"),
                        str(tmp_path / "test_asan.c"), "-lcmocka"])
    if r.returncode != 0:
        pytest.skip("cannot link with -fsanitize=address here")

    def e(name, env):
        return entry(name, ["build/host/tests/test_asan"], kind="cmocka", sources=["test_asan.c"], env=env)
    p = run(tmp_path, [e("clean", {}), e("leak", {"LEAK": "1"}), e("oob", {"OOB": "1"})],
            env={"ASAN_OPTIONS": "detect_leaks=1"})
    assert "[1/3] clean ... ok (2 passed)" in p.stdout
    assert "leak ... FAIL (2 passed, 1 failed)" in p.stdout
    assert "LeakSanitizer" in p.stdout or "exited with status" in p.stdout
    assert "oob ... FAIL" in p.stdout and "AddressSanitizer: heap-buffer-overflow" in p.stdout
    assert last_line(p) == "4 passed, 2 failed, 0 skipped"
    assert p.returncode == 1
