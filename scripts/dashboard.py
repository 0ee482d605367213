#!/usr/bin/env python3
"""The peer-benchmark dashboard: one self-contained HTML page (no network, no scripts, no
external fonts; charts are inline SVG) from the dated reports in benchmark_results/.

    python3 scripts/dashboard.py                 # newest peers.json -> <its dir>/peers-dashboard.html
    python3 scripts/dashboard.py --out FILE      # somewhere else
    python3 scripts/dashboard.py --check [FILE]  # also render it (or FILE) in headless Chromium
    python3 scripts/dashboard.py --suite oltp    # newest oltp-peers.json -> <its dir>/oltp-peers.html
    python3 scripts/dashboard.py --crates [--check]  # every per-crate <suite>.html redrawn with charts

`--check` opens the page in headless Chromium (Debian's `chromium`), takes a screenshot and
fails unless the screenshot is of non-trivial size (a blank page is a few KB) and the console
logged nothing (an error, a failed resource).

It draws, for the newest run, one bar chart per workload (every engine's median, the figure's
unit, Lightning DB's bars highlighted) and, across every dated run, the trend of Lightning
DB's figures per workload (one line per engine of ours). Figures are `<engine>_<workload>`
as benches/peers writes them; ratios (`_vs_`) are left to the table under each chart.

`--crates` redraws the page of every per-crate bench report (btree, cache, wal, database, ...;
the JSON that `lightning_testkit::bench::write_report` writes beside a plain table): one bar
chart per unit (every figure of that unit side by side; a log scale when they span more than
two decades) and, in the table, a sparkline of each figure across the dated runs of the suite.
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


def log_bars(title, groups, labels, colours):
    """Grouped horizontal bars on a log scale: `groups` is [(name, [value per label])]."""
    vals = [v for _, vs in groups for v in vs if v == v and v > 0]
    if not vals:
        return ""
    import math
    lo, hi = math.log10(min(vals)) - 0.2, math.log10(max(vals)) + 0.1
    width, bar_h, label_w = 480, 9, 130
    h = 40 + len(groups) * (len(labels) * (bar_h + 1) + 8)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + label_w + 80}" '
             f'height="{h}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="0" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for k, (label, colour) in enumerate(zip(labels, colours)):
        parts.append(f'<rect x="{label_w + 70 * k}" y="20" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{label_w + 70 * k + 13}" y="29" font-size="11">{label}</text>')
    y = 38
    for name, vs in groups:
        weight = "bold" if name in OURS else "normal"
        parts.append(f'<text x="0" y="{y + 2 * bar_h}" font-size="12" font-weight="{weight}">'
                     f'{html.escape(name)}</text>')
        for v, colour in zip(vs, colours):
            if v == v and v > 0:
                w = max(1.0, width * (math.log10(v) - lo) / (hi - lo or 1))
                parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                             f'fill="{colour}"/><text x="{label_w + w + 3:.1f}" y="{y + 8}" '
                             f'font-size="9">{fmt(v)}</text>')
            y += bar_h + 1
        y += 8
    parts.append("</svg>")
    return "".join(parts)


def lines(title, unit, xs, series):
    """A line chart over categorical `xs` (thread counts), log y: one line per engine."""
    import math
    vals = [v for pts in series.values() for v in pts if v == v and v > 0]
    if not vals:
        return ""
    lo, hi = math.log10(min(vals)) - 0.1, math.log10(max(vals)) + 0.1
    width, height, left, bottom = 480, 200, 60, 30
    x = [left + i * (width - left - 10) / max(1, len(xs) - 1) for i in range(len(xs))]

    def y(v):
        return 20 + (height - bottom - 20) * (1 - (math.log10(v) - lo) / (hi - lo or 1))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 150}" height="{height}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="0" y="12" font-size="13" font-weight="bold">{html.escape(title)} '
             f'({html.escape(unit)}, log scale)</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
             f'stroke="#adb5bd"/>',
             f'<text x="0" y="{y(10 ** (hi - 0.1)) + 4:.1f}" font-size="11">{fmt(10 ** (hi - 0.1))}</text>',
             f'<text x="0" y="{y(10 ** (lo + 0.1)) + 4:.1f}" font-size="11">{fmt(10 ** (lo + 0.1))}</text>']
    for i, t in enumerate(xs):
        parts.append(f'<text x="{x[i] - 14:.1f}" y="{height - 10}" font-size="11">{t} thr</text>')
    for k, (e, pts) in enumerate(series.items()):
        colour = COLOURS.get(e, "#868e96")
        coords = [(x[i], y(v)) for i, v in enumerate(pts) if v == v and v > 0]
        parts.append('<polyline points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
                     + f'" fill="none" stroke="{colour}" stroke-width="2"/>')
        for a, b in coords:
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{width + 8}" y="{30 + 16 * k}" font-size="12" fill="{colour}" '
                     f'font-weight="{"bold" if e in OURS else "normal"}">{e}</text>')
    parts.append("</svg>")
    return "".join(parts)


PERCENTILES = [("p50", "#74c0fc"), ("p95", "#4dabf7"), ("p99", "#1c7ed6"), ("p999", "#0b3d91")]
MATRIX_OPS = ["get", "range", "put", "batch", "delete"]
YCSB = [f"ycsb_{w}_{d}" for w in "abcf" for d in ("zipf", "uniform")]
# The targets for every workload: latency bounds (us) and a throughput floor for
# simple operations (reads and single-key writes without an fsync each).
TARGET_P = {"p50": 1_000, "p95": 10_000, "p99": 50_000}


def oltp_page():
    """The OLTP suite's page from the newest oltp-peers.json (and trends across runs)."""
    runs = []
    for path in sorted(RESULTS.glob("*/oltp-peers.json")):
        data = json.loads(path.read_text())
        if data.get("quick") and "--quick" not in sys.argv:
            continue
        runs.append((data.get("date", path.parent.name), path, data))
    if not runs:
        sys.exit("dashboard: no oltp-peers.json under benchmark_results/ "
                 "(PEERS_SUITE=oltp cargo bench -p lightning-peers; --quick takes smoke runs)")
    date, path, data = runs[-1]
    fig = {f["name"]: f for f in data["figures"]}
    engines = [e for e in ENGINES if any(n.startswith(e + "_") for n in fig)]

    def val(e, name):
        f = fig.get(f"{e}_{name}")
        return f["value"] if f else float("nan")

    threads = sorted({int(n.split("_t")[1].split("_")[0]) for n in fig
                      if "_get_t" in n and n.endswith("_ops")})
    body = [f"<h1>Lightning DB OLTP beside its peers — {html.escape(date)}</h1>",
            f"<p>From <code>{html.escape(str(path.relative_to(ROOT)))}</code>"
            f"{' (a quick smoke run: not to be quoted)' if data.get('quick') else ''}. "
            "Medians of interleaved rounds; bold engines are ours.</p>"]
    machine = data.get("machine", {})
    if machine:
        body.append("<h2>Machine</h2><table>" + "".join(
            f"<tr><th>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in machine.items()) + "</table>")
    # Targets for the database: every workload's latency bounds, simple ops' throughput.
    misses, checked = [], 0
    for w in YCSB + [f"{op}_t{t}" for op in MATRIX_OPS for t in threads]:
        for p, bound in TARGET_P.items():
            v = val("lightning_db", f"{w}_{p}_us")
            if v == v:
                checked += 1
                if v >= bound:
                    misses.append(f"{w} {p} {v:,.0f} us (target < {bound:,} us)")
        ops = val("lightning_db", f"{w}_ops")
        simple = not any(w.startswith(x) for x in ("put_", "delete_", "batch_"))
        if simple and ops == ops:
            checked += 1
            if ops <= 100_000:
                misses.append(f"{w} {ops:,.0f} ops/s (target > 100,000)")
    body.append(f"<h2>Targets (lightning_db)</h2><p>{checked} checks, {len(misses)} missed "
                "(latency p50 &lt; 1 ms, p95 &lt; 10 ms, p99 &lt; 50 ms on every workload; "
                "&gt; 100,000 ops/s on reads and non-durable YCSB ops; durable single-key "
                "writes are bounded by fsync and listed in the table)</p><ul>"
                + "".join(f"<li>{html.escape(m)}</li>" for m in misses) + "</ul>")
    body.append("<h2>Throughput by engine and thread count</h2>")
    for op in MATRIX_OPS:
        series = {e: [val(e, f"{op}_t{t}_ops") for t in threads] for e in engines}
        body.append(lines(op, "ops/s", threads, series))
    body.append("<h2>YCSB (4 threads, non-durable writes)</h2>")
    for w in YCSB:
        body.append(bars(w, "ops/s", [(e, val(e, f"{w}_ops")) for e in engines]))
    body.append("<h2>Latency percentiles per workload (µs, log scale)</h2>")
    for op in MATRIX_OPS:
        for t in threads:
            groups = [(e, [val(e, f"{op}_t{t}_{p}_us") for p, _ in PERCENTILES]) for e in engines]
            body.append(log_bars(f"{op}, {t} threads", groups, [p for p, _ in PERCENTILES],
                                 [c for _, c in PERCENTILES]))
    for w in YCSB:
        groups = [(e, [val(e, f"{w}_p50_us"), val(e, f"{w}_p99_us")]) for e in engines]
        body.append(log_bars(w, groups, ["p50", "p99"], ["#74c0fc", "#1c7ed6"]))
    extra = [n for n in fig if n.startswith("lightning_db_transfers") or "_pool_" in n]
    if extra:
        body.append("<h2>Contended transfers and the buffer pool</h2>")
        pool = [n for n in extra if "_pool_" in n and "_vs_" not in n]
        for pct in sorted({n.rsplit("_c", 1)[1] for n in pool}, key=int):
            body.append(bars(f"hit ratio, cache = {pct} % of the data file", "ratio",
                             [(k, fig[f"lightning_db_pool_{k}_c{pct}"]["value"])
                              for k in ("hit_ratio", "static_optimum", "belady")
                              if f"lightning_db_pool_{k}_c{pct}" in fig]))
        body.append("<table>" + "".join(
            f"<tr><td style='text-align:left'>{html.escape(n)}</td><td>{fig[n]['value']:,.4f}</td>"
            f"<td>{html.escape(fig[n]['unit'])}</td></tr>" for n in extra) + "</table>")
    # Trends of our throughputs across dated runs.
    if len(runs) > 1:
        body.append("<h2>Trends across dated runs (lightning_db)</h2>")
        for w in YCSB + [f"{op}_t{t}" for op in MATRIX_OPS for t in threads]:
            pts = [(d, next((f["value"] for f in r["figures"]
                             if f["name"] == f"lightning_db_{w}_ops"), float("nan")))
                   for d, _, r in runs]
            body.append(trend(w, "ops/s", {"lightning_db": pts}))
    body.append("<h2>Every figure</h2><table><tr><th>figure</th><th>value</th><th>unit</th></tr>"
                + "".join(f"<tr><td style='text-align:left'>{html.escape(f['name'])}</td>"
                          f"<td>{f['value']:,.3f}</td><td>{html.escape(f['unit'])}</td></tr>"
                          for f in data["figures"]) + "</table>")
    out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv \
        else path.parent / "oltp-peers.html"
    page = ("<!doctype html><html lang=en><meta charset=utf-8>"
            f"<title>Lightning DB OLTP peers, {html.escape(date)}</title>"
            "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}"
            "svg{display:block;margin:1em 0}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ced4da;padding:2px 8px;text-align:right}</style>"
            + "".join(body) + "</html>\n")
    out.write_text(page)
    print(f"wrote {out} ({len(data['figures'])} figures, {len(runs)} runs; "
          f"targets: {checked} checks, {len(misses)} missed)")
    for m in misses:
        print("MISS", m)
    if "--check" in sys.argv:
        render_check(out)


PEER_SUITES = {"peers", "oltp-peers"}


def hbars(title, unit, rows, log):
    """Horizontal bars, one per (label, value); a log10 scale when `log`."""
    import math
    rows = [(k, v) for k, v in rows if v == v and v > 0]
    if not rows:
        return ""
    label_w, width, bar_h = 300, 420, 16
    if log:
        lo = math.floor(math.log10(min(v for _, v in rows)))
        hi = math.ceil(math.log10(max(v for _, v in rows))) or lo + 1
        scale = lambda v: width * (math.log10(v) - lo + 0.15) / (hi - lo + 0.15)
    else:
        top = max(v for _, v in rows)
        scale = lambda v: width * v / top
    h = len(rows) * (bar_h + 4) + 28
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + width + 80}" '
             f'height="{h}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="0" y="14" font-size="13" font-weight="bold">{html.escape(title)} '
             f'({html.escape(unit)}{", log scale" if log else ""})</text>']
    for i, (k, v) in enumerate(rows):
        y = 22 + i * (bar_h + 4)
        w = max(1.0, scale(v))
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" '
                     f'text-anchor="end">{html.escape(k[:48])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                     f'fill="#1971c2"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="11">'
                     f'{fmt(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def sparkline(points):
    """A 120x24 line of (date, value) points, oldest first; '' with fewer than two."""
    points = [(d, v) for d, v in points if v == v]
    if len(points) < 2:
        return ""
    vals = [v for _, v in points]
    lo, hi = min(vals), max(vals)
    step = 116 / (len(points) - 1)
    coords = " ".join(f"{2 + i * step:.1f},{22 - 20 * ((v - lo) / (hi - lo) if hi > lo else 0.5):.1f}"
                      for i, (_, v) in enumerate(points))
    title = ", ".join(f"{d}: {fmt(v)}" for d, v in points)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="24" role="img" '
            f'aria-label="trend"><title>{html.escape(title)}</title>'
            f'<polyline points="{coords}" fill="none" stroke="#d9480f" stroke-width="1.5"/></svg>')


def crate_pages():
    """Redraws every per-crate report's HTML from its JSON; returns the pages written."""
    runs = {}
    for path in sorted(RESULTS.glob("*/*.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        suite = data.get("suite")
        if not suite or suite in PEER_SUITES or not data.get("figures"):
            continue
        runs.setdefault(suite, []).append((data.get("date", path.parent.name), path, data))
    written = []
    for suite, dated in sorted(runs.items()):
        history = [(d, data) for d, _, data in dated if not data.get("quick")]
        for date, path, data in dated:
            by_unit = {}
            for f in data["figures"]:
                by_unit.setdefault(f["unit"], []).append((f["name"], f["value"]))
            charts = []
            for unit, rows in by_unit.items():
                vals = [v for _, v in rows if v == v and v > 0]
                if len(vals) < 2:
                    continue
                log = max(vals) / min(vals) > 100
                charts.append(hbars(f"{suite}: figures in {unit}", unit, rows, log))
            machine = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                              for k, v in (data.get("machine") or {}).items())
            table = []
            for f in data["figures"]:
                past = [(d, next((g["value"] for g in h["figures"] if g["name"] == f["name"]),
                                 float("nan"))) for d, h in history if d <= date]
                table.append(f"<tr><td>{html.escape(f['name'])}</td><td>{f['value']:,.3f}</td>"
                             f"<td>{html.escape(f['unit'])}</td><td>{sparkline(past)}</td>"
                             f"<td class=l>{html.escape(f.get('detail', ''))}</td></tr>")
            page = ("<!doctype html><html lang=en><meta charset=utf-8>"
                    f"<title>Lightning DB bench: {html.escape(suite)}, {html.escape(date)}</title>"
                    "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
                    "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
                    "td,th{border:1px solid #ced4da;padding:2px 8px;text-align:right}"
                    "td.l{text-align:left}</style>"
                    f"<h1>Lightning DB bench: {html.escape(suite)}, {html.escape(date)}</h1>"
                    f"<p>quick run: {str(bool(data.get('quick'))).lower()}; "
                    f"{len(data['figures'])} figures; trend over {len(history)} dated full run(s) "
                    "of this suite.</p>"
                    + (f"<table>{machine}</table>" if machine else "")
                    + "".join(f"<section>{c}</section>" for c in charts)
                    + "<table><tr><th>figure</th><th>value</th><th>unit</th><th>trend</th>"
                    "<th>how</th></tr>" + "".join(table) + "</table></html>\n")
            out = path.with_suffix(".html")
            out.write_text(page)
            written.append(out)
    return written


def main():
    if "--crates" in sys.argv:
        pages = crate_pages()
        print(f"wrote {len(pages)} per-crate pages with charts")
        if "--check" in sys.argv:
            for page in pages:
                render_check(page)
        return
    if "--suite" in sys.argv and sys.argv[sys.argv.index("--suite") + 1] == "oltp":
        oltp_page()
        return
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
