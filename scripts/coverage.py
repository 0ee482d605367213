#!/usr/bin/env python3
"""Line coverage of the critical paths (issue #19) from `cargo llvm-cov --json --summary-only`
output, and the uncovered lines of each path from `cargo llvm-cov report --text`.

  coverage.py SUMMARY.json LINES.txt   -> markdown on stdout; exit 1 when a path is < 80 %
"""

import json
import os
import re
import sys

THRESHOLD = 80.0

# The critical paths the original plan names, as source files.
CRITICAL = {
    "transactions": [
        "lightning-mvcc/src/commit.rs", "lightning-mvcc/src/locks.rs",
        "lightning-mvcc/src/oracle.rs", "lightning-mvcc/src/txn.rs",
        "lightning-mvcc/src/versions.rs", "lightning-mvcc/src/store.rs",
        "lightning-db/src/tx.rs", "lightning-db/src/record.rs",
    ],
    "WAL": [
        "lightning-wal/src/wal.rs", "lightning-wal/src/frame.rs", "lightning-wal/src/scan.rs",
        "lightning-wal/src/archive.rs", "lightning-wal/src/export.rs", "lightning-wal/src/wal/",
    ],
    "compaction and GC": [
        "lightning-db/src/store.rs", "lightning-btree/src/bulk.rs",
        "lightning-btree/src/page_set.rs",
    ],
    "checkpoint": [
        "lightning-page/src/allocator.rs", "lightning-page/src/page_file.rs",
        "lightning-page/src/superblock.rs", "lightning-btree/src/store.rs",
        "lightning-cache/src/pool.rs", "lightning-db/src/db.rs", "lightning-db/src/open.rs",
    ],
    "columnar scan": [
        "lightning-columnar/src/scan.rs", "lightning-columnar/src/segment/",
        "lightning-columnar/src/expr.rs", "lightning-columnar/src/parallel.rs",
    ],
}


def rel(path):
    root = os.getcwd() + os.sep
    return path[len(root):] if path.startswith(root) else path


def matches(path, patterns):
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in patterns)


def uncovered_lines(lines_txt):
    """file -> [line numbers with a zero count] from llvm-cov's text report."""
    out, current = {}, None
    head = re.compile(r"^(/\S+\.rs):$")
    row = re.compile(r"^\s*(\d+)\|\s*(\S+)\|")
    with open(lines_txt, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = head.match(line.rstrip("\n"))
            if m:
                current = rel(m.group(1))
                continue
            m = row.match(line)
            if m and current and m.group(2) == "0":
                out.setdefault(current, []).append(int(m.group(1)))
    return out


def ranges(nums):
    out, start, prev = [], None, None
    for n in nums:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append((start, prev))
            start = prev = n
    if start is not None:
        out.append((start, prev))
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


def main():
    summary = json.load(open(sys.argv[1], encoding="utf-8"))
    files = {rel(f["filename"]): f["summary"]["lines"] for f in summary["data"][0]["files"]}
    missing = uncovered_lines(sys.argv[2]) if len(sys.argv) > 2 else {}
    total = summary["data"][0]["totals"]["lines"]
    print("# Line coverage of the critical paths\n")
    print(f"Whole workspace: {total['covered']}/{total['count']} lines, "
          f"{total['percent']:.1f} %.\n")
    print("| path | lines covered | % | files |")
    print("|---|---|---|---|")
    failing = 0
    details = []
    for name, patterns in CRITICAL.items():
        chosen = sorted(p for p in files if matches(p, patterns))
        covered = sum(files[p]["covered"] for p in chosen)
        count = sum(files[p]["count"] for p in chosen)
        pct = 100.0 * covered / count if count else 0.0
        failing += pct < THRESHOLD
        print(f"| {name} | {covered}/{count} | {pct:.1f} | {len(chosen)} |")
        details.append((name, chosen))
    for name, chosen in details:
        print(f"\n## {name}: uncovered lines\n")
        for p in chosen:
            lines = files[p]
            gaps = missing.get(p, [])
            print(f"- `{p}` {lines['covered']}/{lines['count']} ({lines['percent']:.1f} %)"
                  + (f": {ranges(gaps)}" if gaps else ""))
    print(f"\n{failing} critical path(s) below {THRESHOLD:.0f} %.")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
