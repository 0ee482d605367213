#!/usr/bin/env python3
"""Source audits for scripts/security.sh (ADR 014).

  audit.py unsafe            every `unsafe` block, fn and impl in the workspace's sources with
                             its `// SAFETY:` rationale; exit 1 when one has none.
  audit.py panics FILE.json  the panic paths clippy found in library code (the JSON messages
                             of `cargo clippy --message-format=json` with the panic lints on),
                             each with the comment that says why it cannot fire; exit 1 when
                             one has none.

A rationale is a comment within the three lines above the finding (or on its line) that
starts with `SAFETY:` (unsafe) or `CANNOT FIRE:` / `INVARIANT:` (panic paths). A function
whose every index is bounded by one check (a codec that validates a length once, then reads
fixed offsets) may instead carry `#[allow(clippy::indexing_slicing, reason = "...")]`: clippy
then reports nothing inside it, so `panics` also lists every such `allow` of a panic lint in
library code with its reason, and counts one without a reason, or one on a whole module or
crate (`#![allow(..)]`, too broad to say why each site holds), as missing.
"""

import json
import os
import re
import sys

SOURCE_DIRS = ["."]
SKIP = {"target", ".git", "node_modules", "security_reports", "benchmark_results"}
UNSAFE = re.compile(r"\bunsafe\s*(\{|fn\b|impl\b|extern\b)")
PANIC_LINTS = {
    "clippy::unwrap_used",
    "clippy::expect_used",
    "clippy::panic",
    "clippy::unreachable",
    "clippy::indexing_slicing",
    "clippy::todo",
    "clippy::unimplemented",
}


def rust_files():
    for top in SOURCE_DIRS:
        for dirpath, dirnames, files in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.startswith("."))
            for f in sorted(files):
                if f.endswith(".rs"):
                    yield os.path.normpath(os.path.join(dirpath, f))


def code_part(line):
    """The line without a trailing `//` comment (strings containing `//` are rare here)."""
    return line.split("//", 1)[0]


def rationale(lines, index, markers):
    """The rationale comment on line `index` (0-based) or in the block of comment and
    attribute lines just above it, or None."""
    here = lines[index]
    for m in markers:
        if "// " + m in here:
            return here.split("// " + m, 1)[1].strip()
    j = index - 1
    found = None
    while j >= 0 and j >= index - 8:
        s = lines[j].strip()
        if s.startswith("//"):
            for m in markers:
                if s.startswith("// " + m):
                    found = s[len("// " + m):].strip()
            j -= 1
            continue
        if s.startswith("#[") or s.startswith("#!["):
            j -= 1
            continue
        # A match arm or call opening on the line above the finding.
        break
    return found


def audit_unsafe():
    rows, missing = [], 0
    for path in rust_files():
        try:
            lines = open(path, encoding="utf-8").read().split("\n")
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(lines):
            code = code_part(line)
            if "unsafe_code" in code or not UNSAFE.search(code):
                continue
            why = rationale(lines, i, ["SAFETY:"])
            if why is None and re.search(r"\bunsafe\s+fn\b", code):
                # A declaration, not a use: its contract is the trait's or its doc's
                # `# Safety`, and each call site's SAFETY comment says how it is met.
                why = "(an `unsafe fn` declaration: each call's SAFETY comment meets its contract)"
            if why is None:
                missing += 1
            rows.append((path, i + 1, code.strip(), why))
    print("# Every `unsafe` in the workspace's sources\n")
    print("| where | code | SAFETY |")
    print("|---|---|---|")
    for path, n, code, why in rows:
        print(f"| `{path}:{n}` | `{code[:70]}` | {why if why is not None else '**MISSING**'} |")
    print(f"\n{len(rows)} unsafe sites, {missing} without a SAFETY rationale.")
    return 1 if missing else 0


ALLOW_START = re.compile(r"#(!?)\[allow\(")


def attribute_body(text, start):
    """The text between `allow(` (ending at `start`) and its closing parenthesis, skipping
    string literals (a reason may hold brackets and parentheses); None if unbalanced."""
    depth, i, n = 1, start, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None
REASON = re.compile(r'reason\s*=\s*"((?:[^"\\]|\\.)*)"', re.S)


def library_files():
    """The library sources clippy --lib sees: src/ of the crates, not tests/ or benches/."""
    for path in rust_files():
        parts = path.split(os.sep)
        if "src" in parts and not {"tests", "benches", "fuzz", "examples"} & set(
                parts[:parts.index("src")]) or path.startswith(os.path.join("tests", "testkit", "src")):
            yield path


def panic_allows():
    """Every `allow` of a panic lint in library code: (path, line, lints, reason or None)."""
    out, missing = [], 0
    lints = {l.removeprefix("clippy::") for l in PANIC_LINTS}
    for path in library_files():
        try:
            text = open(path, encoding="utf-8").read()
        except UnicodeDecodeError:
            continue
        for m in ALLOW_START.finditer(text):
            body = attribute_body(text, m.end())
            if body is None:
                continue
            named = [x.strip().removeprefix("clippy::") for x in
                     REASON.sub("", body).split(",") if x.strip()]
            hit = sorted(set(named) & lints)
            if not hit:
                continue
            reason = REASON.search(body)
            why = (" ".join(reason.group(1).replace("\\\n", " ").split())
                   if reason and not m.group(1) else None)
            if why is None:
                missing += 1
            line = text.count("\n", 0, m.start()) + 1
            out.append((path, line, ", ".join(hit), why))
    return out, missing


def audit_panics(json_path):
    seen = set()
    rows, missing = [], 0
    with open(json_path, encoding="utf-8") as f:
        for raw in f:
            raw = raw.strip()
            if not raw.startswith("{"):
                continue
            try:
                msg = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if msg.get("reason") != "compiler-message":
                continue
            m = msg.get("message") or {}
            code = (m.get("code") or {}).get("code")
            if code not in PANIC_LINTS:
                continue
            spans = [s for s in m.get("spans", []) if s.get("is_primary")]
            if not spans:
                continue
            s = spans[0]
            key = (s["file_name"], s["line_start"], s["column_start"], code)
            if key in seen:
                continue
            seen.add(key)
            path = s["file_name"]
            try:
                lines = open(path, encoding="utf-8").read().split("\n")
            except OSError:
                lines = []
            idx = s["line_start"] - 1
            why = rationale(lines, idx, ["CANNOT FIRE:", "INVARIANT:"]) if lines else None
            if why is None:
                missing += 1
            text = lines[idx].strip() if 0 <= idx < len(lines) else ""
            rows.append((path, s["line_start"], code, text, why))
    rows.sort()
    print("# Panic paths in library code (clippy: unwrap_used, expect_used, panic, unreachable,")
    print("# indexing_slicing, todo, unimplemented; tests excluded)\n")
    print("| where | lint | code | why it cannot fire |")
    print("|---|---|---|---|")
    for path, n, code, text, why in rows:
        text = text.replace("|", "\\|")[:80]
        print(f"| `{path}:{n}` | {code.removeprefix('clippy::')} | `{text}` | "
              f"{why if why is not None else '**MISSING**'} |")
    allows, allow_missing = panic_allows()
    missing += allow_missing
    print(f"\n## Panic lints allowed on an item, with the reason ({len(allows)})\n")
    print("| where | lints | reason |")
    print("|---|---|---|")
    for path, n, lints, why in allows:
        print(f"| `{path}:{n}` | {lints} | {why if why is not None else '**MISSING**'} |")
    by_lint = {}
    for _, _, code, _, why in rows:
        by_lint.setdefault(code, [0, 0])
        by_lint[code][0] += 1
        by_lint[code][1] += why is None
    print()
    for code, (n, miss) in sorted(by_lint.items()):
        print(f"- {code}: {n} sites, {miss} without a rationale")
    print(f"\n{len(rows)} panic paths and {len(allows)} allows, {missing} without a rationale.")
    return 1 if missing else 0


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "unsafe":
        return audit_unsafe()
    if len(sys.argv) >= 3 and sys.argv[1] == "panics":
        return audit_panics(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
