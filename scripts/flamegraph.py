#!/usr/bin/env python3
"""A flamegraph as one self-contained SVG from `perf script` output (no external tools).

    perf record -F 499 -e cpu-clock --call-graph dwarf -o perf.data -- COMMAND
    perf script -i perf.data | python3 scripts/flamegraph.py "title" > out.svg

Stacks are folded (root first), frames merged by name; each box's width is its share of the
samples, its tooltip (an SVG <title>) the frame and its sample count. Frames under 0.1 % of
the samples are left out so the file stays small.
"""
import html
import sys
from collections import defaultdict


def folded(lines):
    """Samples of `perf script` text -> {stack tuple (root first): count}."""
    stacks = defaultdict(int)
    frames = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                stacks[tuple(reversed(frames))] += 1
            frames = []
            continue
        if line[0] in " \t":
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                name = parts[1].rsplit(" (", 1)[0]
                name = name.split("+0x")[0]
                frames.append(name)
        else:
            frames = []  # a sample's header line (command, pid, time, event): a new stack
    if frames:
        stacks[tuple(reversed(frames))] += 1
    return stacks


def tree(stacks):
    root = {"n": 0, "kids": {}}
    for stack, count in stacks.items():
        node = root
        node["n"] += count
        for f in stack:
            node = node["kids"].setdefault(f, {"n": 0, "kids": {}})
            node["n"] += count
    return root


def colour(name):
    h = sum(map(ord, name)) % 60
    return f"rgb({205 + h // 3},{80 + h * 2},{40 + h})"


def main():
    title = sys.argv[1] if len(sys.argv) > 1 else "flamegraph"
    root = tree(folded(sys.stdin))
    total = root["n"] or 1
    width, row = 1200, 16
    boxes = []
    depth_max = [0]

    def walk(node, x, depth):
        depth_max[0] = max(depth_max[0], depth)
        for name, kid in sorted(node["kids"].items()):
            w = width * kid["n"] / total
            if kid["n"] / total >= 0.001:
                boxes.append((x, depth, w, name, kid["n"]))
                walk(kid, x, depth + 1)
            x += w

    walk(root, 0.0, 0)
    height = (depth_max[0] + 2) * row + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="monospace" font-size="11">',
           f'<text x="4" y="16" font-size="14">{html.escape(title)} — {total} samples</text>']
    for x, depth, w, name, n in boxes:
        y = height - (depth + 1) * row
        label = html.escape(name[: int(w / 7)]) if w > 21 else ""
        out.append(f'<g><title>{html.escape(name)}: {n} samples ({100 * n / total:.1f} %)</title>'
                   f'<rect x="{x:.1f}" y="{y}" width="{max(w - 0.5, 0.5):.1f}" height="{row - 1}" '
                   f'fill="{colour(name)}"/><text x="{x + 2:.1f}" y="{y + 11}">{label}</text></g>')
    out.append("</svg>")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
