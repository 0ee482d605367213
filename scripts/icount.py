#!/usr/bin/env python3
"""The instruction-count part of the performance gate: every hot path of benches/icount run
under Valgrind's callgrind, its instructions compared with performance-baselines.json.

    python3 scripts/icount.py             # build, count every path, fail on a regression
    python3 scripts/icount.py --runs 3    # each path three times; the spread is reported
    python3 scripts/icount.py --accept    # make these counts the baseline (icount/<path>)
    python3 scripts/icount.py --report    # also write benchmark_results/<date>/icount.json
    python3 scripts/icount.py btree_get   # some paths only

A path regresses when it runs >= 5 % more instructions than its baseline (the tolerance of its
entry in the baseline file). Counts from one build are the same from run to run to well under
1 % (callgrind counts instructions, not time), so the gate holds 5 % on a machine whose
wall-clock figures swing 20-40 %. A count that drops by 5 % or more is reported so the
baseline can be lowered with --accept. Baselines belong to the pinned toolchain
(rust-toolchain.toml): a toolchain update re-accepts them in the same change.
Exits 1 on any regression or failed run.
"""
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASELINES = ROOT / "performance-baselines.json"
TOLERANCE = 0.05


def build():
    """Builds the bench binary (release profile) and returns its path."""
    out = subprocess.run(
        ["cargo", "bench", "-p", "lightning-icount", "--bench", "icount", "--no-run",
         "--locked", "--message-format=json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg["target"]["name"] == "icount":
            return msg["executable"]
    sys.exit("icount: cargo built no `icount` bench binary")


def count(binary, path):
    """Instructions executed inside `hot_<path>` (callgrind, collection toggled on there)."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "callgrind.out")
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no",
             f"--toggle-collect=*::hot_{path}", f"--callgrind-out-file={out_file}",
             binary, path],
            cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        if run.returncode != 0:
            sys.exit(f"icount: {path} failed under callgrind (exit {run.returncode}):\n"
                     f"{run.stdout}{run.stderr[-3000:]}")
        total = None
        for line in pathlib.Path(out_file).read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
        if not total:
            sys.exit(f"icount: callgrind counted nothing inside hot_{path}: was it inlined "
                     "or renamed?")
        return total


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = 1
    if "--runs" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1])
        args = [a for a in args if a != str(runs)]
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        sys.exit("icount: valgrind is not installed (apt-get install valgrind)")
    binary = build()
    paths = subprocess.run([binary, "--list"], check=True, stdout=subprocess.PIPE,
                           text=True).stdout.split()
    if args:
        unknown = sorted(set(args) - set(paths))
        if unknown:
            sys.exit(f"icount: no hot path {unknown}; there are {paths}")
        paths = args
    baselines = json.loads(BASELINES.read_text()) if BASELINES.exists() else {}
    counts = {}
    bad, better = [], []
    print(f"{'path':<20}{'instructions':>16}{'baseline':>16}{'change':>9}  spread")
    for path in paths:
        seen = [count(binary, path) for _ in range(runs)]
        value = max(seen)
        spread = (max(seen) - min(seen)) / min(seen)
        counts[path] = value
        base = baselines.get(f"icount/{path}")
        if base:
            change = (value - base["value"]) / base["value"]
            tol = base.get("tolerance", TOLERANCE)
            if change >= tol:
                bad.append(f"icount/{path}: {value:,} instructions vs baseline "
                           f"{base['value']:,.0f} ({change:+.1%}, tolerance {tol:.0%})")
            elif change <= -tol:
                better.append(f"icount/{path}: {change:+.1%}")
            shown = f"{base['value']:>16,.0f}{change:>+9.1%}"
        else:
            shown = f"{'(none)':>16}{'':>9}"
        print(f"{path:<20}{value:>16,}{shown}  {spread:.3%} over {runs} run(s)")
    date = datetime.date.today().isoformat()
    if "--report" in sys.argv:
        out_dir = ROOT / "benchmark_results" / date
        out_dir.mkdir(parents=True, exist_ok=True)
        report = {
            "suite": "icount",
            "date": date,
            "quick": False,
            "figures": [
                {"name": p, "value": v, "unit": "instructions",
                 "details": f"instructions inside hot_{p} (benches/icount), callgrind"}
                for p, v in counts.items()
            ],
        }
        (out_dir / "icount.json").write_text(json.dumps(report, indent=2) + "\n")
    if "--accept" in sys.argv:
        for p, v in counts.items():
            old = baselines.get(f"icount/{p}", {})
            baselines[f"icount/{p}"] = {
                "value": v, "unit": "instructions",
                "tolerance": old.get("tolerance", TOLERANCE), "date": date,
            }
        BASELINES.write_text(json.dumps(dict(sorted(baselines.items())), indent=2) + "\n")
        print(f"accepted {len(counts)} instruction counts as the baseline")
        return
    for line in better:
        print("IMPROVED", line, "(lower the baseline: scripts/icount.py --accept)")
    for line in bad:
        print("REGRESSION", line)
    missing = [p for p in counts if f"icount/{p}" not in baselines]
    if missing:
        print(f"REGRESSION no baseline for {missing}: run scripts/icount.py --accept")
    print(f"checked {len(counts)} hot paths: {len(bad)} regressions")
    sys.exit(1 if bad or missing else 0)


if __name__ == "__main__":
    main()
