#!/usr/bin/env python3
"""The peer-benchmark dashboard: one self-contained HTML page (no network, no scripts, no
external fonts; charts are inline SVG) from the dated reports in benchmark_results/.

    python3 scripts/dashboard.py                 # newest peers.json -> <its dir>/peers-dashboard.html
    python3 scripts/dashboard.py --out FILE      # somewhere else
    python3 scripts/dashboard.py --check [FILE]  # also render it (or FILE) in headless Chromium

`--check` opens the page in headless Chromium (Debian's `chromium`), takes a screenshot and
fails unless the screenshot is of non-trivial size (a blank page is a few KB) and the console
logged nothing (an error, a failed resource).

It draws, for the newest run, one bar chart per workload (every engine's median, the figure's
unit, Lightning DB's bars highlighted) and, across every dated run, the trend of Lightning
DB's figures per workload (one line per engine of ours). Figures are `<engine>_<workload>`
as benches/peers writes them; ratios (`_vs_`) are left to the table under each chart.
"""
import html
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmark_results"
ENGINES = ["lightning_db", "lightning_btree", "lmdb", "redb", "sqlite", "rocksdb"]
OURS = {"lightning_db", "lightning_btree"}
COLOURS = {"lightning_db": "#d9480f", "lightning_btree": "#f08c00", "lmdb": "#1971c2",
           "redb": "#2f9e44", "sqlite": "#7048e8", "rocksdb": "#495057"}


def reports():
    """Every non-quick peers report, oldest first: (date, {engine: {workload: (value, unit)}})."""
    out = []
    for path in sorted(RESULTS.glob("*/peers.json")):
        data = json.loads(path.read_text())
        if data.get("quick"):
            continue
        table = {}
        for f in data["figures"]:
            if "_vs_" in f["name"]:
                continue
            for e in ENGINES:
                if f["name"].startswith(e + "_"):
                    table.setdefault(e, {})[f["name"][len(e) + 1:]] = (f["value"], f["unit"])
                    break
        out.append((data.get("date", path.parent.name), path, table))
    return out


def fmt(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def bars(workload, unit, values):
    """A horizontal bar chart: one bar per engine."""
    rows = [(e, v) for e, v in values if v == v and v > 0]
    if not rows:
        return ""
    top = max(v for _, v in rows)
    width, bar_h, label_w = 520, 22, 130
    h = len(rows) * (bar_h + 6) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + label_w + 90}" '
             f'height="{h}" role="img" aria-label="{html.escape(workload)}">',
             f'<text x="0" y="14" font-size="13" font-weight="bold">'
             f'{html.escape(workload)} ({html.escape(unit)})</text>']
    for i, (e, v) in enumerate(rows):
        y = 24 + i * (bar_h + 6)
        w = max(1.0, width * v / top)
        weight = "bold" if e in OURS else "normal"
        parts.append(f'<text x="0" y="{y + 15}" font-size="12" font-weight="{weight}">{e}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                     f'fill="{COLOURS.get(e, "#868e96")}"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12">{fmt(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def trend(workload, unit, series):
    """A line chart across dated runs: one polyline per engine of ours."""
    dates = sorted({d for points in series.values() for d, _ in points})
    if len(dates) < 2:
        return ""
    values = [v for points in series.values() for _, v in points if v == v]
    if not values:
        return ""
    lo, hi = 0.0, max(values) * 1.1
    width, height, left, bottom = 520, 160, 60, 30
    x = {d: left + i * (width - left - 10) / (len(dates) - 1) for i, d in enumerate(dates)}

    def y(v):
        return 10 + (height - bottom - 10) * (1 - (v - lo) / (hi - lo or 1))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 150}" height="{height}" '
             f'role="img" aria-label="trend of {html.escape(workload)}">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
             f'stroke="#adb5bd"/>',
             f'<text x="0" y="{y(hi / 1.1) + 4:.1f}" font-size="11">{fmt(hi / 1.1)}</text>',
             f'<text x="0" y="{height - bottom + 4}" font-size="11">0</text>']
    for d in dates:
        parts.append(f'<text x="{x[d] - 28:.1f}" y="{height - 10}" font-size="10">{d}</text>')
    for k, (e, points) in enumerate(sorted(series.items())):
        pts = " ".join(f"{x[d]:.1f},{y(v):.1f}" for d, v in sorted(points) if v == v)
        colour = COLOURS.get(e, "#868e96")
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for d, v in points:
            if v == v:
                parts.append(f'<circle cx="{x[d]:.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{width + 8}" y="{20 + 16 * k}" font-size="12" '
                     f'fill="{colour}">{e}</text>')
    parts.append("</svg>")
    return "".join(parts)


MIN_SCREENSHOT = 20_000


def render_check(page):
    """Renders `page` in headless Chromium; exits 1 on console messages or a blank screenshot."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("dashboard: --check needs Chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        shot = pathlib.Path(tmp) / "page.png"
        run = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1000,2400", f"--user-data-dir={tmp}/profile",
             f"--screenshot={shot}", "--enable-logging=stderr", "--v=0",
             page.resolve().as_uri()],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        console = [line for line in run.stdout.splitlines() if ":CONSOLE" in line]
        size = shot.stat().st_size if shot.exists() else 0
    problems = []
    if run.returncode != 0:
        problems.append(f"chromium exited {run.returncode}")
    if size < MIN_SCREENSHOT:
        problems.append(f"screenshot of {size} bytes (a rendered page is over {MIN_SCREENSHOT})")
    problems += [f"console: {line}" for line in console]
    for p in problems:
        print("RENDER", p)
    print(f"rendered {page}: screenshot {size:,} bytes, {len(console)} console messages")
    if problems:
        sys.exit(1)


def main():
    if "--check" in sys.argv:
        given = [a for a in sys.argv[sys.argv.index("--check") + 1:] if not a.startswith("--")]
        if given:
            render_check(pathlib.Path(given[0]))
            return
    runs = reports()
    if not runs:
        sys.exit("dashboard: no peers.json under benchmark_results/ (cargo bench -p lightning-peers)")
    date, path, newest = runs[-1]
    out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv \
        else path.parent / "peers-dashboard.html"
    workloads = []
    for e in ENGINES:
        for w in newest.get(e, {}):
            if w not in workloads:
                workloads.append(w)
    body = [f"<h1>Lightning DB beside its peers — {html.escape(date)}</h1>",
            f"<p>From <code>{html.escape(str(path.relative_to(ROOT)))}</code> and "
            f"{len(runs)} dated run(s). Medians of interleaved rounds on one machine; "
            "bold engines are ours.</p>"]
    for w in workloads:
        unit = next(newest[e][w][1] for e in ENGINES if w in newest.get(e, {}))
        values = [(e, newest[e][w][0]) for e in ENGINES if w in newest.get(e, {})]
        series = {e: [(d, t[e][w][0]) for d, _, t in runs if w in t.get(e, {})]
                  for e in OURS if any(w in t.get(e, {}) for _, _, t in runs)}
        rows = "".join(f"<tr><td>{e}</td><td>{v:,.3f}</td></tr>" for e, v in values)
        body.append(f'<section><h2>{html.escape(w)}</h2>{bars(w, unit, values)}'
                    f'{trend(w, unit, series)}'
                    f'<table><tr><th>engine</th><th>{html.escape(unit)}</th></tr>{rows}</table>'
                    "</section>")
    page = ("<!doctype html><html lang=en><meta charset=utf-8>"
            f"<title>Lightning DB peers, {html.escape(date)}</title>"
            "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}"
            "section{margin-bottom:2em}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ced4da;padding:2px 8px;text-align:right}</style>"
            + "".join(body) + "</html>\n")
    out.write_text(page)
    print(f"wrote {out} ({len(workloads)} workloads, {len(runs)} runs)")
    if "--check" in sys.argv:
        render_check(out)


if __name__ == "__main__":
    main()
