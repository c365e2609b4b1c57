#!/usr/bin/python3
"""Benchmark runner and target checker (docs/testing.md, "Benchmarks and coverage").

  bench.py host [--quick]   run every build/bench/bench_* binary (built by `make bench-build`),
                            collect their BENCH lines, check them against bench/targets.json
  bench.py report           print the merged table of the parts measured so far
  bench.py check-targets    validate bench/targets.json only

A metric misses its target when its value is below "min" or above "max"; a metric listed in
targets.json for the part that was run but not measured is a failure too (a benchmark that
silently stopped reporting is a bug). Metrics with neither "min" nor "max" are reported only.

Each part (host; board, written by integration/test_bench.py through this module) goes to
build/results/bench/<part>.json; build/results/bench.json and bench.md merge the parts
present, each with its own time, git revision and host load. Exit status of `host`: 0 all
targets met, 1 a target missed or a benchmark failed, 2 bad targets file or usage.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = os.path.join(ROOT, "bench", "targets.json")
PARTS = ("host", "board")
BENCH_LINE = re.compile(r"^BENCH (\{.*\})\s*$")


class TargetsError(Exception):
    pass


# ----------------------------------------------------------------------------- targets

def load_targets(path=TARGETS):
    """{metric: {"part", "unit", "min"?, "max"?, "why"}} from targets.json, validated."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise TargetsError(f"{path}: {exc}") from exc
    errors = []
    metrics = doc.get("metrics") if isinstance(doc, dict) else None
    if not isinstance(metrics, dict) or not metrics:
        raise TargetsError(f"{path}: needs an object 'metrics' of metric name -> target")
    for name, t in metrics.items():
        where = f"{path}: {name}"
        if not isinstance(t, dict):
            errors.append(f"{where}: not an object")
            continue
        for k in sorted(set(t) - {"part", "unit", "min", "max", "why"}):
            errors.append(f"{where}: unknown key '{k}'")
        if t.get("part") not in PARTS:
            errors.append(f"{where}: 'part' must be one of {', '.join(PARTS)}")
        if not isinstance(t.get("unit"), str) or not t.get("unit"):
            errors.append(f"{where}: 'unit' must be a non-empty string")
        if not isinstance(t.get("why"), str) or not t.get("why"):
            errors.append(f"{where}: 'why' must say where the threshold comes from")
        for k in ("min", "max"):
            if k in t and (isinstance(t[k], bool) or not isinstance(t[k], (int, float))):
                errors.append(f"{where}: '{k}' must be a number")
    if errors:
        raise TargetsError("\n".join(errors))
    return metrics


def target_text(t):
    if t is None:
        return "(no target)"
    if "min" in t and "max" in t:
        return f"{fmt(t['min'])} .. {fmt(t['max'])}"
    if "min" in t:
        return f">= {fmt(t['min'])}"
    if "max" in t:
        return f"<= {fmt(t['max'])}"
    return "(info)"


def fmt(v):
    """Readable number: 4 significant digits below 100, else a comma-grouped integer."""
    if v is None:
        return "-"
    if abs(v) < 100:
        return f"{v:.4g}"
    return f"{v:,.0f}"


def evaluate(part, measured, targets):
    """Rows (dicts) for `part`: every metric measured plus every target of the part that was
    not measured. measured: {metric: {"value", "unit", ...extra}}."""
    rows = []
    names = [n for n, t in targets.items() if n in measured or t["part"] == part]
    names += [n for n in measured if n not in targets]
    for name in names:
        t = targets.get(name)
        if name not in measured:
            rows.append({"metric": name, "value": None, "unit": t["unit"], "target": t,
                         "target_text": target_text(t),
                         "ok": None if ("min" not in t and "max" not in t) else False,
                         "note": "not measured"})
            continue
        m = measured[name]
        row = dict(m)
        row.update(metric=name, target=t, target_text=target_text(t))
        v = m.get("value")
        if t is None or ("min" not in t and "max" not in t):
            row["ok"] = None
            if t is None:
                row["note"] = "not in bench/targets.json"
        elif v is None:
            row["ok"] = False
            row["note"] = m.get("note") or "not measured"
        else:
            row["ok"] = ("min" not in t or v >= t["min"]) and ("max" not in t or v <= t["max"])
            if t.get("unit") and m.get("unit") and t["unit"] != m["unit"]:
                row["ok"] = False
                row["note"] = f"unit {m['unit']}, targets.json says {t['unit']}"
        rows.append(row)
    return rows


def table(rows):
    """A plain-text table: metric, value, unit, target, ok."""
    head = ("metric", "value", "unit", "target", "ok")
    body = []
    for r in rows:
        ok = {True: "ok", False: "MISS", None: "-"}[r.get("ok")]
        note = f"  ({r['note']})" if r.get("note") else ""
        body.append((r["metric"], fmt(r.get("value")), r.get("unit") or "", r["target_text"], ok + note))
    widths = [max(len(x[i]) for x in [head] + body) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)) + "  ok"]
    lines.append("  ".join("-" * w for w in widths) + "  --")
    for b in body:
        lines.append("  ".join(c.ljust(w) if i != 1 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(b, widths))) + "  " + b[4])
    return "\n".join(lines)


# ----------------------------------------------------------------------------- results

def results_dir(build_dir=None):
    return os.path.join(build_dir or os.path.join(ROOT, "build"), "results")


def git_revision():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def loadavg():
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def host_info():
    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"machine": platform.machine(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "cpu_model": cpu}


def write_part(part, rows, *, build_dir=None, load_start=None, extra=None):
    """Save one part's rows and regenerate the merged bench.json / bench.md. Returns the
    merged document."""
    out = results_dir(build_dir)
    os.makedirs(os.path.join(out, "bench"), exist_ok=True)
    doc = {"part": part,
           "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "git": git_revision(), "host": host_info(), "loadavg_start": load_start,
           "loadavg_end": loadavg(), "ok": all(r.get("ok") is not False for r in rows),
           "metrics": [{k: v for k, v in r.items() if k != "target_text"} for r in rows]}
    doc.update(extra or {})
    path = os.path.join(out, "bench", part + ".json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)
    return merge(build_dir)


def merge(build_dir=None):
    """build/results/bench.json + bench.md from the part files present."""
    out = results_dir(build_dir)
    parts = []
    for part in PARTS:
        p = os.path.join(out, "bench", part + ".json")
        if os.path.isfile(p):
            try:
                with open(p, encoding="utf-8") as f:
                    parts.append(json.load(f))
            except (OSError, ValueError):
                pass
    doc = {"ok": all(p.get("ok") for p in parts), "parts": parts}
    with open(os.path.join(out, "bench.json.tmp"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
    os.replace(os.path.join(out, "bench.json.tmp"), os.path.join(out, "bench.json"))
    md = ["# Benchmark results", "",
          "Targets: `bench/targets.json`. Timings taken on a loaded machine are noisy: see the "
          "load averages.", ""]
    for p in parts:
        h = p.get("host") or {}
        md += [f"## {p['part']}: {'all targets met' if p.get('ok') else 'TARGET MISSED'}", "",
               f"{p.get('time')}, git {p.get('git')}, {h.get('machine')} {h.get('cpus')} CPUs "
               f"({h.get('cpu_model')}), load average {p.get('loadavg_start')} at start, "
               f"{p.get('loadavg_end')} at end.", "",
               "| metric | value | unit | target | ok | what |", "|---|---:|---|---|---|---|"]
        for r in p["metrics"]:
            ok = {True: "ok", False: "**MISS**", None: "-"}[r.get("ok")]
            if r.get("note"):
                ok += f" ({r['note']})"
            md.append(f"| {r['metric']} | {fmt(r.get('value'))} | {r.get('unit') or ''} | "
                      f"{target_text(r.get('target'))} | {ok} | {r.get('what', '')} |")
        md.append("")
    with open(os.path.join(out, "bench.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    return doc


# ----------------------------------------------------------------------------- host part

def parse_bench_lines(text):
    out = {}
    for line in text.splitlines():
        m = BENCH_LINE.match(line)
        if m:
            d = json.loads(m.group(1))
            out[d.pop("metric")] = d
    return out


def run_host(args):
    targets = load_targets(args.targets)
    bins = sorted(os.path.join(args.build_dir, "bench", os.path.basename(p)[:-2])
                  for p in glob.glob(os.path.join(ROOT, "bench", "bench_*.c")))
    load_start = loadavg()
    measured, failures = {}, []
    print(f"bench: host micro-benchmarks, load average {load_start} "
          f"({os.cpu_count()} CPUs; other jobs make the numbers noisy)", flush=True)
    for b in bins:
        name = os.path.basename(b)
        if not os.access(b, os.X_OK):
            failures.append(f"{b} is missing: run `make bench-build`")
            continue
        argv = [b] + (["--quick"] if args.quick else [])
        print(f"== {name}", flush=True)
        proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
        got = parse_bench_lines(proc.stdout)
        if proc.returncode != 0:
            failures.append(f"{name} exited with status {proc.returncode}")
        if not got:
            failures.append(f"{name} reported no metric")
        for k, v in got.items():
            v["source"] = name
            measured[k] = v
    rows = evaluate("host", measured, targets)
    for f in failures:
        rows.append({"metric": "(benchmark failure)", "value": None, "unit": "",
                     "target": None, "target_text": "", "ok": False, "note": f})
    write_part("host", rows, build_dir=args.build_dir, load_start=load_start,
               extra={"quick": bool(args.quick)})
    print()
    print(table(rows))
    missed = [r["metric"] for r in rows if r.get("ok") is False]
    out = results_dir(args.build_dir)
    print(f"\nbench: {len(rows) - len(missed)} metrics ok or informational, {len(missed)} missed"
          f"{': ' + ', '.join(missed) if missed else ''}; {out}/bench.json, {out}/bench.md")
    return 1 if missed else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("host", "report", "check-targets"))
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--targets", default=TARGETS)
    ap.add_argument("--quick", action="store_true", help="host: 3 short repetitions (smoke test)")
    args = ap.parse_args(argv)
    try:
        if args.command == "check-targets":
            print(f"{args.targets}: {len(load_targets(args.targets))} metrics")
            return 0
        if args.command == "report":
            doc = merge(args.build_dir)
            for p in doc["parts"]:
                print(f"== {p['part']} ({p.get('time')}, git {p.get('git')})")
                print(table([dict(r, target_text=target_text(r.get("target"))) for r in p["metrics"]]))
            return 0 if doc["ok"] else 1
        return run_host(args)
    except TargetsError as exc:
        print(f"bench: bad targets file:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
