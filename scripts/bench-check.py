#!/usr/bin/env python3
"""Compare the newest bench reports with the accepted baselines.

    python3 scripts/bench-check.py            # newest benchmark_results/<date>/ against
                                              # performance-baselines.json
    python3 scripts/bench-check.py --accept   # make the newest figures the baseline

A figure regresses when it is worse than its baseline by its tolerance (default 5 %; fsync-bound
figures carry a wider one in the baseline file, since this disk's fsync latency varies by about
25 % between runs). Times and sizes are lower-is-better: units of time (ns, us, ms, s) or size
(bytes, KiB, MB, MiB, GB), and ratios of them (a name ending in _ns, _us, _ms, _mib, _mb or
_bytes, or holding "size"); everything else (rates, hit ratios, speed-ups, compression
ratios) is higher-is-better.
Exits 1 on any regression, listing each.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASELINES = ROOT / "performance-baselines.json"


def newest_reports():
    dates = sorted(p for p in (ROOT / "benchmark_results").iterdir() if p.is_dir())
    if not dates:
        sys.exit("no bench reports under benchmark_results/; run the benches first")
    figures = {}
    for report in sorted(dates[-1].glob("*.json")):
        data = json.loads(report.read_text())
        if data.get("quick") or "figures" not in data:
            # Quick runs, and reference data that is not a bench report (duckdb-columns.json).
            continue
        for f in data["figures"]:
            figures[f"{data['suite']}/{f['name']}"] = (f["value"], f["unit"])
    return dates[-1].name, figures


LOWER_UNITS = {"ns", "us", "ms", "s", "bytes", "KiB", "MB", "MiB", "GB", "GiB", "instructions"}
LOWER_SUFFIXES = ("_ns", "_us", "_ms", "_mib", "_mb", "_bytes")


def lower_is_better(name, unit):
    """Whether a smaller value of figure `name` (suite/name) in `unit` is an improvement.

    >>> lower_is_better("wal/commit_p99", "us"), lower_is_better("peers/redb_file_size_mib", "MiB")
    (True, True)
    >>> lower_is_better("peers/lightning_btree_vs_lmdb_file_size_mib", "ratio")
    True
    >>> lower_is_better("peers/lightning_btree_vs_lmdb_get_random", "ratio")
    False
    >>> lower_is_better("cache/hit_zipf_25pct_sieve", "%"), lower_is_better("compress/ratio_random_u64", "x")
    (False, False)
    """
    return unit in LOWER_UNITS or name.endswith(LOWER_SUFFIXES) or "size" in name


def main():
    date, figures = newest_reports()
    if "--accept" in sys.argv:
        old = json.loads(BASELINES.read_text()) if BASELINES.exists() else {}
        # Figures these reports do not hold (other suites' dates, the instruction counts of
        # scripts/icount.py) keep their baselines.
        out = dict(old)
        for key, (value, unit) in sorted(figures.items()):
            if "/target_" in key:
                continue
            tolerance = old.get(key, {}).get("tolerance", 0.05)
            out[key] = {"value": value, "unit": unit, "tolerance": tolerance, "date": date}
        BASELINES.write_text(json.dumps(dict(sorted(out.items())), indent=2) + "\n")
        print(f"accepted {len(figures)} figures from {date} as the baseline")
        return
    baselines = json.loads(BASELINES.read_text())
    bad = []
    for key, base in baselines.items():
        if key not in figures:
            continue
        value, unit = figures[key]
        lower_better = lower_is_better(key, unit)
        change = (value - base["value"]) / base["value"] if base["value"] else 0.0
        worse = change > base["tolerance"] if lower_better else -change > base["tolerance"]
        if worse:
            bad.append(f"{key}: {value:.3f} {unit} vs baseline {base['value']:.3f} ({change:+.1%}, tolerance {base['tolerance']:.0%})")
    for line in bad:
        print("REGRESSION", line)
    print(f"checked {len(baselines)} baseline figures against {date}: {len(bad)} regressions")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
