#!/usr/bin/python3
"""Fuzzing report for fuzz/nightly.sh: per-target statistics from the libFuzzer
logs, crash de-duplication by stack, line coverage summary; writes Markdown and
JSON under <build>/fuzz/report/. Stdlib only.

  fuzz_report.py crashes --build-dir B --target T   # reproduce + dedup T's artifacts
  fuzz_report.py write --build-dir B --targets "T1 T2" [--seconds S --jobs N]

Crash de-duplication: every artifact (crash-*, leak-*, timeout-*, oom-*) of a
target is run once more through the libFuzzer binary with symbolised stacks; the
signature is the sanitizer/error kind plus the top three frames that belong to
this project (reference-vmm/, fuzz/), function and file:line, hashed. One
directory per signature under <build>/fuzz/crashes/<target>/<sig>/ keeps the
smallest reproducer, its report and the reproduce commands.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

STATUS_FORK = re.compile(r"^#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s (\d+) "
                         r"oom/timeout/crash: (\d+)/(\d+)/(\d+) time: (\d+)s")
STATUS_PLAIN = re.compile(r"^#(\d+)\s+(INITED|NEW|REDUCE|pulse|DONE|RELOAD)\s+cov: (\d+) "
                          r"ft: (\d+) corp: (\d+)/\S+ .*?exec/s: (\d+)")
FRAME = re.compile(r"^\s*#(\d+) 0x[0-9a-f]+ in (\S+) (\S+)")
KIND = [
    (re.compile(r"FUZZ_CHECK failed at (\S+): (.*?): "), "invariant"),
    (re.compile(r"ERROR: AddressSanitizer: ([\w-]+)"), "asan"),
    (re.compile(r"ERROR: LeakSanitizer: detected memory leaks"), "leak"),
    (re.compile(r"(\S+:\d+:\d+): runtime error: (.*)"), "ubsan"),
    (re.compile(r"ERROR: libFuzzer: timeout"), "timeout"),
    (re.compile(r"ERROR: libFuzzer: out-of-memory"), "oom"),
    (re.compile(r"ERROR: libFuzzer: deadly signal"), "signal"),
]
OURS = ("reference-vmm/", "/fuzz/", "fuzz/")
KEY_FILES = re.compile(r"virtio/(queue|mmio|blk|console|vsock\w*)\.c$|core/config\.c$|"
                       r"aarch64/(image|fdt)\.c$|passthrough/dt_node\.c$")
NOT_OURS = ("compiler-rt", "/libfuzzer/", "FuzzerLoop", "fuzzer::", "__sanitizer",
            "__asan", "__ubsan", "__interceptor")


def parse_log(path):
    """(first status, last status, execs) from a libFuzzer log (fork or plain mode)."""
    first = last = None
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return None, None
    for ln in lines:
        m = STATUS_FORK.match(ln)
        if m:
            st = dict(execs=int(m.group(1)), cov=int(m.group(2)), ft=int(m.group(3)),
                      corp=int(m.group(4)), exec_s=int(m.group(5)), ooms=int(m.group(6)),
                      timeouts=int(m.group(7)), crashes=int(m.group(8)), time=int(m.group(9)))
        else:
            m = STATUS_PLAIN.match(ln)
            if not m:
                continue
            st = dict(execs=int(m.group(1)), cov=int(m.group(3)), ft=int(m.group(4)),
                      corp=int(m.group(5)), exec_s=int(m.group(6)))
        if first is None:
            first = st
        last = st
    return first, last


def signature(text):
    kind, where = "unknown", ""
    for rx, k in KIND:
        m = rx.search(text)
        if m:
            kind = k
            if k == "asan":
                kind = "asan:" + m.group(1)
            elif k == "invariant":
                where = m.group(1)
            elif k == "ubsan":
                where = m.group(1)
            break
    frames = []
    for ln in text.splitlines():
        m = FRAME.match(ln)
        if not m:
            continue
        func, loc = m.group(2), m.group(3)
        if any(s in func or s in loc for s in NOT_OURS):
            continue
        if not any(s in loc for s in OURS):
            continue
        loc = re.sub(r"^.*?(reference-vmm/|fuzz/)", r"\1", loc)
        loc = re.sub(r":\d+$", "", loc) if loc.count(":") > 1 else loc  # drop the column
        frames.append("%s %s" % (func, loc))
        if len(frames) == 3:
            break
    if where:
        frames.insert(0, re.sub(r"^.*?(reference-vmm/|fuzz/)", r"\1", where))
    key = kind + "|" + "|".join(frames[:3])
    return hashlib.sha1(key.encode()).hexdigest()[:12], kind, frames[:3]


def reproduce(binary, path, timeout=60):
    env = dict(os.environ,
               ASAN_OPTIONS="symbolize=1:detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:symbolize=1",
               LSAN_OPTIONS="symbolize=1")
    try:
        p = subprocess.run([binary, "-runs=1", path], env=env, capture_output=True, text=True,
                           errors="replace", timeout=timeout)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        return -1, (e.stdout or "") + (e.stderr or "") + "\n(reproduction timed out)\n"


def cmd_crashes(args):
    b = args.build_dir
    t = args.target
    binary = os.path.join(b, "fuzz", "libfuzzer", t)
    art = os.path.join(b, "fuzz", "work", t, "artifacts")
    out = os.path.join(b, "fuzz", "crashes", t)
    os.makedirs(out, exist_ok=True)
    found = {}
    for path in sorted(glob.glob(os.path.join(art, "*"))):
        name = os.path.basename(path)
        if not re.match(r"(crash|leak|timeout|oom|slow-unit)-", name):
            continue
        rc, text = reproduce(binary, path)
        if rc == 0 and not name.startswith("slow-unit"):
            sig, kind, frames = "flaky-" + hashlib.sha1(open(path, "rb").read()).hexdigest()[:8], \
                "not reproducible", []
        else:
            sig, kind, frames = signature(text)
        d = os.path.join(out, sig)
        os.makedirs(d, exist_ok=True)
        size = os.path.getsize(path)
        best = os.path.join(d, "input")
        if not os.path.exists(best) or size < os.path.getsize(best):
            shutil.copyfile(path, best)
            with open(os.path.join(d, "report.txt"), "w") as f:
                f.write(text)
        info = found.setdefault(sig, dict(signature=sig, kind=kind, frames=frames, count=0,
                                          artifacts=[]))
        info["count"] += 1
        info["artifacts"].append(name)
    for sig, info in found.items():
        inp = os.path.join(out, sig, "input")
        info["input"] = inp
        info["reproduce"] = [
            "build/host/fuzz/%s %s" % (t, inp),
            "%s %s" % (binary, inp),
        ]
        with open(os.path.join(out, sig, "info.json"), "w") as f:
            json.dump(info, f, indent=2)
    print("fuzz_report: %s: %d artifact(s), %d unique crash(es)" %
          (t, sum(i["count"] for i in found.values()), len(found)))
    return 0


def coverage_summary(b):
    p = os.path.join(b, "fuzz", "coverage", "summary.json")
    try:
        data = json.load(open(p))
    except (OSError, ValueError):
        return {}
    files = {}
    for d in data.get("data", []):
        for f in d.get("files", []):
            name = re.sub(r"^.*?reference-vmm/src/", "", f["filename"])
            lines = f["summary"]["lines"]
            if not name.endswith(".c") or (not lines["covered"] and not KEY_FILES.search(name)):
                continue  # headers, and files no target reaches
            files[name] = dict(covered=lines["covered"], count=lines["count"],
                               percent=round(lines["percent"], 2))
    return files


def cmd_write(args):
    b = args.build_dir
    rep = os.path.join(b, "fuzz", "report")
    os.makedirs(rep, exist_ok=True)
    cov = coverage_summary(b)
    targets = args.targets.split()
    summary = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), seconds_per_target=args.seconds,
                   jobs=args.jobs, targets=[], coverage=cov)
    for t in targets:
        work = os.path.join(b, "fuzz", "work", t)
        first, last = parse_log(os.path.join(work, "fuzz.log"))
        crashes = []
        for info in sorted(glob.glob(os.path.join(b, "fuzz", "crashes", t, "*", "info.json"))):
            try:
                crashes.append(json.load(open(info)))
            except (OSError, ValueError):
                pass
        meta = {}
        try:
            meta = json.load(open(os.path.join(work, "meta.json")))
        except (OSError, ValueError):
            pass
        r = dict(target=t, seconds=meta.get("seconds"), jobs=meta.get("jobs"),
                 corpus_before=meta.get("corpus_before"), corpus_after=meta.get("corpus_after"),
                 execs=last and last["execs"], exec_per_s=last and last["exec_s"],
                 cov_start=first and first["cov"], cov_end=last and last["cov"],
                 ft_start=first and first["ft"], ft_end=last and last["ft"],
                 new_features=(last["ft"] - first["ft"]) if first and last else None,
                 new_cov=(last["cov"] - first["cov"]) if first and last else None,
                 crashes=crashes)
        summary["targets"].append(r)
        with open(os.path.join(rep, t + ".json"), "w") as f:
            json.dump(r, f, indent=2)
        with open(os.path.join(rep, t + ".md"), "w") as f:
            f.write(target_md(r))
    with open(os.path.join(rep, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    md = summary_md(summary)
    with open(os.path.join(rep, "summary.md"), "w") as f:
        f.write(md)
    print(md)
    return 1 if any(r["crashes"] for r in summary["targets"]) and args.fail_on_crash else 0


def fmt(v):
    return "-" if v is None else str(v)


def target_md(r):
    out = ["# %s" % r["target"], "",
           "| metric | value |", "|---|---|"]
    for k in ("seconds", "jobs", "execs", "exec_per_s", "cov_start", "cov_end", "new_cov",
              "ft_start", "ft_end", "new_features", "corpus_before", "corpus_after"):
        out.append("| %s | %s |" % (k, fmt(r[k])))
    out += ["", "## Crashes (%d unique)" % len(r["crashes"]), ""]
    if not r["crashes"]:
        out.append("None.")
    for c in r["crashes"]:
        out += ["### %s: %s (%d artifact(s))" % (c["signature"], c["kind"], c["count"]), ""]
        for fr in c["frames"]:
            out.append("- `%s`" % fr)
        out += ["", "Reproduce:", "", "```"] + c.get("reproduce", []) + ["```", ""]
    return "\n".join(out) + "\n"


def summary_md(s):
    out = ["# Fuzzing report %s" % s["date"], "",
           "| target | s | jobs | execs | exec/s | cov | ft | new ft | corpus | crashes |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in s["targets"]:
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s→%s | %d |" % (
            r["target"], fmt(r["seconds"]), fmt(r["jobs"]), fmt(r["execs"]),
            fmt(r["exec_per_s"]), fmt(r["cov_end"]), fmt(r["ft_end"]), fmt(r["new_features"]),
            fmt(r["corpus_before"]), fmt(r["corpus_after"]), len(r["crashes"])))
    if s["coverage"]:
        out += ["", "## Line coverage of the VMM sources by the corpora", "",
                "| file | lines | covered | % |", "|---|---|---|---|"]
        for name in sorted(s["coverage"]):
            c = s["coverage"][name]
            out.append("| %s | %d | %d | %.1f |" % (name, c["count"], c["covered"], c["percent"]))
    crashes = [(r["target"], c) for r in s["targets"] for c in r["crashes"]]
    if crashes:
        out += ["", "## Crashes", ""]
        for t, c in crashes:
            out.append("- %s %s %s: `%s`" % (t, c["signature"], c["kind"],
                                              c.get("reproduce", ["?"])[0]))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("crashes")
    c.add_argument("--build-dir", default="build")
    c.add_argument("--target", required=True)
    w = sub.add_parser("write")
    w.add_argument("--build-dir", default="build")
    w.add_argument("--targets", required=True)
    w.add_argument("--seconds", type=int)
    w.add_argument("--jobs", type=int)
    w.add_argument("--fail-on-crash", action="store_true")
    args = ap.parse_args()
    return cmd_crashes(args) if args.cmd == "crashes" else cmd_write(args)


if __name__ == "__main__":
    sys.exit(main())
