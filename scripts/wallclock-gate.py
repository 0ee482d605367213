#!/usr/bin/env python3
"""The wall-clock part of the performance gate (ADR 015): the benches of a base commit and of
the working tree, built side by side and run interleaved in the same session, compared figure
by figure with the noise of that session taken into account.

    python3 scripts/wallclock-gate.py BASE                       # default benches, 5 rounds
    python3 scripts/wallclock-gate.py BASE --rounds 7 --bench lightning-btree:btree
    python3 scripts/wallclock-gate.py BASE --full                # full-size runs (not quick)
    python3 scripts/wallclock-gate.py BASE --new REV             # REV instead of the working tree

BASE is any commit (the previous accepted one: `git log` of performance-baselines.json, or
`HEAD~1`). The working tree is taken as `git stash create` makes it (tracked changes, staged or
not; commit or `git add -N` new files first). Both are checked out under target/gate/ and
built in a target directory each (kept between runs, so later runs build only what changed).

Rounds run base, new, then new, base, ... so that neither side always runs first. For every
figure the paired slowdowns s_i (new against the base run beside it; inverted for
lower-is-better figures) give a median m; the run's noise n is twice the largest of their
median absolute deviation and each side's own relative MAD across its rounds. A figure
regresses when m >= 5 %, m > n, at least 80 % of the rounds are slower, and there were at
least 5 rounds; when m >= 5 % but any of that fails, it is UNDECIDED (more rounds, or a
quieter machine, decide it) — never passed silently.
Exits 1 on any regression, 2 when there is none but some figure is undecided, else 0.
A summary goes to target/gate/wallclock-gate.json.
"""
import datetime
import importlib.util
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
GATE = ROOT / "target" / "gate"
THRESHOLD = 0.05
# CPU-bound benches with a quick mode: each run takes seconds, not minutes.
DEFAULT_BENCHES = ["lightning-compress:compress", "lightning-btree:btree", "lightning-cache:cache"]

spec = importlib.util.spec_from_file_location("bench_check", ROOT / "scripts" / "bench-check.py")
bench_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_check)


def git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, check=True, stdout=subprocess.PIPE,
                          text=True).stdout.strip()


def checkout(name, rev):
    """A detached worktree of `rev` at target/gate/<name>."""
    path = GATE / name
    if path.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT)
        shutil.rmtree(path, ignore_errors=True)
    git("worktree", "add", "--detach", "--force", str(path), rev)
    return path


def build(tree, bench):
    pkg, target = bench.split(":")
    # A target directory per tree: cargo names a workspace crate's artifacts by its path
    # relative to the workspace, the same in both trees, so one directory would hand both
    # sides the same binary.
    env = dict(os.environ, CARGO_TARGET_DIR=str(GATE / f"target-{tree.name}"))
    out = subprocess.run(
        ["cargo", "bench", "-p", pkg, "--bench", target, "--no-run", "--message-format=json"],
        cwd=tree, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg["target"]["name"] == target:
            return msg["executable"]
    sys.exit(f"wallclock-gate: no executable for {bench} in {tree}")


def run(tree, bench, binary, full):
    """Runs one bench and returns its figures {name: (value, unit)}."""
    pkg, _ = bench.split(":")
    env = dict(os.environ)
    if not full:
        env["LIGHTNING_BENCH_QUICK"] = "1"
    started = datetime.date.today().isoformat()
    before = set((tree / "benchmark_results").glob("*/*.json"))
    mtimes = {p: p.stat().st_mtime for p in before}
    subprocess.run([binary, "--bench"], cwd=tree / pkg, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    # The report the run wrote: the newest JSON under the tree's benchmark_results/.
    written = [p for p in (tree / "benchmark_results").glob("*/*.json")
               if p not in mtimes or p.stat().st_mtime > mtimes[p]]
    if not written:
        sys.exit(f"wallclock-gate: {bench} in {tree} wrote no report (started {started})")
    report = json.loads(max(written, key=lambda p: p.stat().st_mtime).read_text())
    return report["suite"], {f["name"]: (f["value"], f["unit"]) for f in report["figures"]}


MIN_ROUNDS = 5


def rel_mad(values):
    """Median absolute deviation relative to the median."""
    m = statistics.median(values)
    return statistics.median(abs(v - m) for v in values) / abs(m) if m else 0.0


def verdict(pairs, lower):
    """REGRESSION, UNDECIDED or ok for one figure's (base, new) pairs, with the median
    slowdown and the noise it was judged against."""
    slowdowns = [new / base - 1 if lower else base / new - 1 for base, new in pairs]
    m = statistics.median(slowdowns)
    # The noise of this run: how much the paired slowdowns scatter, and how much each side
    # scatters across its own rounds (an A/A difference this large is not a signal).
    noise = 2 * max(statistics.median(abs(s - m) for s in slowdowns),
                    rel_mad([b for b, _ in pairs]), rel_mad([n for _, n in pairs]))
    # Most rounds must agree: one disturbed pair must not decide.
    agree = sum(1 for s in slowdowns if s > 0) >= 0.8 * len(slowdowns)
    if m >= THRESHOLD and m > noise and agree and len(slowdowns) >= MIN_ROUNDS:
        return "REGRESSION", m, noise
    if m >= THRESHOLD:
        return "UNDECIDED", m, noise
    return "ok", m, noise


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("--"):
        sys.exit(__doc__)
    base_rev = git("rev-parse", args[0])
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 5
    benches = [args[i + 1] for i, a in enumerate(args) if a == "--bench"] or DEFAULT_BENCHES
    full = "--full" in args
    if "--new" in args:
        new_rev = git("rev-parse", args[args.index("--new") + 1])
    else:
        new_rev = git("stash", "create") or git("rev-parse", "HEAD")
    GATE.mkdir(parents=True, exist_ok=True)
    # Equal-length names: the checkout path ends up in the binaries (panic locations,
    # debug info); paths of different lengths shift their layout, and an A/A run of one
    # commit measured up to 8 % between "base" and "new" with a noise of 2-3 %.
    trees = {"base": checkout("base", base_rev), "new": checkout("head", new_rev)}
    binaries = {(side, b): build(tree, b) for side, tree in trees.items() for b in benches}
    paired = {}  # (suite, figure) -> [(base, new)]
    units = {}
    for r in range(rounds):
        order = ["base", "new"] if r % 2 == 0 else ["new", "base"]
        for b in benches:
            got = {}
            for side in order:
                suite, figures = run(trees[side], b, binaries[(side, b)], full)
                got[side] = (suite, figures)
            suite = got["new"][0]
            for name, (new_v, unit) in got["new"][1].items():
                base_v = got["base"][1].get(name, (None,))[0]
                if base_v is None:
                    continue
                paired.setdefault((suite, name), []).append((base_v, new_v))
                units[(suite, name)] = unit
            print(f"round {r + 1}/{rounds}: {b} done", flush=True)
    results, bad, undecided = [], [], []
    for (suite, name), pairs in sorted(paired.items()):
        unit = units[(suite, name)]
        lower = bench_check.lower_is_better(f"{suite}/{name}", unit)
        # Figures that are zero or not a number in some run (a count of nothing) are skipped.
        pairs = [(b, n) for b, n in pairs if b and n and b == b and n == n]
        if not pairs:
            continue
        v, m, noise = verdict(pairs, lower)
        results.append({"figure": f"{suite}/{name}", "unit": unit, "verdict": v,
                        "median_slowdown": m, "noise": noise, "rounds": len(pairs)})
        line = f"{suite}/{name:<44} slowdown {m:+7.1%}  noise {noise:6.1%}  {v}"
        if v == "REGRESSION":
            bad.append(line)
        elif v == "UNDECIDED":
            undecided.append(line)
    for line in undecided:
        print(line, "(the noise hides it: more rounds decide)")
    for line in bad:
        print(line)
    (GATE / "wallclock-gate.json").write_text(json.dumps(
        {"base": base_rev, "new": new_rev, "rounds": rounds, "benches": benches,
         "quick": not full, "figures": results}, indent=2) + "\n")
    print(f"compared {len(results)} figures over {rounds} interleaved rounds against "
          f"{base_rev[:10]}: {len(bad)} regressions, {len(undecided)} undecided")
    for tree in trees.values():
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
    sys.exit(1 if bad else 2 if undecided else 0)


if __name__ == "__main__":
    main()
