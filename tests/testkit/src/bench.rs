//! The bench report format shared by every bench binary.
//!
//! A bench collects [`Figure`]s and calls [`write_report`], which prints them and writes
//! `benchmark_results/<YYYY-MM-DD>/<suite>.json` and `<suite>.html` at the workspace root.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A temporary directory for a bench's files: under `LIGHTNING_BENCH_DIR` if set (to measure
/// a particular disk), else in the system's temporary directory. Removed when dropped.
pub fn temp_dir() -> io::Result<tempfile::TempDir> {
    match std::env::var_os("LIGHTNING_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(PathBuf::from(d)),
        None => tempfile::tempdir(),
    }
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Stable name, used as the baseline key.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// Its unit (`GB/s`, `ops/s`, `us`, ...).
    pub unit: &'static str,
    /// How it was measured, for a reader of the report.
    pub detail: String,
}

impl Figure {
    /// A figure.
    pub fn new(
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Figure {
            name: name.into(),
            value,
            unit,
            detail: detail.into(),
        }
    }
}

/// `true` when `LIGHTNING_BENCH_QUICK` is set: a smoke run whose figures are not to be quoted.
pub fn quick() -> bool {
    std::env::var_os("LIGHTNING_BENCH_QUICK").is_some()
}

/// Repeats `f` until `budget` has passed; returns (iterations, elapsed).
pub fn repeat(budget: Duration, mut f: impl FnMut()) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < budget {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    (n, start.elapsed())
}

/// The value at quantile `q` (0.0..=1.0) of unsorted samples.
pub fn percentile(samples: &mut [u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a slice"
    )]
    let i = ((samples.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    // INVARIANT: `i <= samples.len() - 1`: `q` is clamped to `0.0..=1.0` (a NaN casts to 0),
    // and `(len - 1) as f64` is exact for any slice that fits in memory (below 2^53 items).
    samples[i]
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's civil-from-days.
fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_date(i64::try_from(secs / 86_400).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Prints the figures and writes the JSON and HTML reports; returns the JSON's path.
pub fn write_report(suite: &str, figures: &[Figure]) -> io::Result<PathBuf> {
    write_report_with(suite, figures, &[])
}

/// The machine a run measured, as `(name, value)` pairs for a report: CPU model, cores,
/// memory, kernel and the file system of `dir` (where the bench's files were).
pub fn machine(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or_else(
            || "unknown".to_owned(),
            |l| l.trim_start_matches([' ', '\t', ':']).to_owned(),
        );
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let meminfo = read("/proc/meminfo");
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map_or_else(|| "unknown".to_owned(), |l| l.trim().to_owned());
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    // The file system: the mount point that is the longest prefix of the directory.
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = read("/proc/mounts");
    let fs = mounts
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (device, point, kind) = (parts.next()?, parts.next()?, parts.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), format!("{kind} on {point} ({device})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_owned(), |(_, fs)| fs);
    vec![
        ("cpu", cpu),
        ("cores", cores.to_string()),
        ("memory", memory),
        ("kernel", kernel),
        ("filesystem", fs),
        ("bench_dir", dir.display().to_string()),
    ]
}

/// [`write_report`] with `(name, value)` pairs describing the run (the machine, say):
/// a `"machine"` object in the JSON and a table above the figures in the HTML.
pub fn write_report_with(
    suite: &str,
    figures: &[Figure],
    meta: &[(&str, String)],
) -> io::Result<PathBuf> {
    let date = today();
    let quick = quick();
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../benchmark_results")
        .join(&date);
    std::fs::create_dir_all(&out)?;
    let mut json = format!(
        "{{\n  \"suite\": \"{}\",\n  \"date\": \"{date}\",\n  \"quick\": {quick},\n",
        escape(suite)
    );
    let mut meta_rows = String::new();
    if !meta.is_empty() {
        let pairs: Vec<String> = meta
            .iter()
            .map(|(k, v)| format!("\"{}\": \"{}\"", escape(k), escape(v)))
            .collect();
        let _ = writeln!(json, "  \"machine\": {{{}}},", pairs.join(", "));
        for (k, v) in meta {
            let _ = write!(meta_rows, "<tr><th>{k}</th><td>{v}</td></tr>");
        }
        meta_rows = format!("<table border=1 cellpadding=4>{meta_rows}</table>");
    }
    json.push_str("  \"figures\": [\n");
    let mut rows = String::new();
    for (i, f) in figures.iter().enumerate() {
        let comma = if i + 1 < figures.len() { "," } else { "" };
        let _ = writeln!(
            json,
            "    {{\"name\": \"{}\", \"value\": {:.3}, \"unit\": \"{}\", \"detail\": \"{}\"}}{comma}",
            escape(&f.name),
            f.value,
            f.unit,
            escape(&f.detail)
        );
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{:.3}</td><td>{}</td><td>{}</td></tr>",
            f.name, f.value, f.unit, f.detail
        );
        #[expect(clippy::print_stdout, reason = "a bench report prints its figures")]
        {
            println!(
                "{:<36} {:>14.3} {:<8} {}",
                f.name, f.value, f.unit, f.detail
            );
        }
    }
    json.push_str("  ]\n}\n");
    let json_path = out.join(format!("{suite}.json"));
    std::fs::write(&json_path, json)?;
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>Lightning DB bench: {suite}, {date}</title>\
         <h1>Lightning DB bench: {suite}, {date}</h1><p>quick run: {quick}</p>{meta_rows}<table border=1 cellpadding=4>\
         <tr><th>figure</th><th>value</th><th>unit</th><th>how</th></tr>\n{rows}</table>\n"
    );
    std::fs::write(out.join(format!("{suite}.html")), html)?;
    Ok(json_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(20_418), (2025, 11, 26));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
    }

    #[test]
    fn percentiles() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(
            (
                percentile(&mut v, 0.5),
                percentile(&mut v, 0.99),
                percentile(&mut v, 1.0)
            ),
            (51, 99, 100)
        );
        assert_eq!(percentile(&mut [], 0.5), 0);
    }
}
