//! Output: errors, escaping bytes for a terminal, hex, figures, percentiles, progress bars.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Everything a command can fail with; the message says what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The database refused or failed.
    #[error(transparent)]
    Db(#[from] lightning_db::Error),
    /// An argument that cannot be used as given.
    #[error("{0}")]
    Input(String),
    /// A file-system operation of the tool itself.
    #[error("could not {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Standard output could not be written.
    #[error("could not write the output: {0}")]
    Output(std::io::Error),
    /// The work ran but its result is wrong (the demo's verification).
    #[error("{0}")]
    Failed(String),
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

pub(crate) type Result<T> = std::result::Result<T, CliError>;

/// What a command ended with, besides an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done.
    Done,
    /// Done, and what it looked at is wrong (`check` found problems, `get` found nothing):
    /// exit code 1.
    Problems,
}

/// Standard output, locked and buffered, for one command's printing.
pub(crate) fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::new(std::io::stdout().lock())
}

/// A key or value given on the command line, as bytes: hexadecimal with `hex`, else the
/// argument's own bytes (any bytes on Unix, where arguments need not be UTF-8).
pub(crate) fn arg_bytes(what: &str, arg: &OsStr, hex: bool) -> Result<Vec<u8>> {
    if hex {
        let text = arg
            .to_str()
            .ok_or_else(|| CliError::Input(format!("the {what} is not hexadecimal (--hex)")))?;
        return from_hex(text).ok_or_else(|| {
            CliError::Input(format!(
                "the {what} {text:?} is not hexadecimal (--hex wants pairs of 0-9a-f)"
            ))
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(arg.as_bytes().to_vec())
    }
    #[cfg(not(unix))]
    {
        arg.to_str().map(|s| s.as_bytes().to_vec()).ok_or_else(|| {
            CliError::Input(format!(
                "the {what} is not valid Unicode; give it in hexadecimal with --hex"
            ))
        })
    }
}

/// Bytes from pairs of hexadecimal digits; `None` unless every pair is one.
pub(crate) fn from_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `bytes` made safe for a terminal: printable text as it is; `\\`, `\n`, `\r`, `\t`;
/// other control characters (and the ones that reorder text) as `\u{..}`; bytes that are
/// not UTF-8 as `\xNN`.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() || is_reordering(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Characters that change the display order of what follows (bidirectional controls).
fn is_reordering(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `n` with thousands separators: 1,234,567.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as KiB/MiB/GiB with one decimal.
#[expect(clippy::cast_precision_loss, reason = "a figure for people")]
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Microseconds for a table: one decimal under 10, none above.
pub(crate) fn us(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Milliseconds with one decimal.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Latencies of one kind of operation, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Latencies(Vec<u64>);

impl Latencies {
    pub(crate) fn record(&mut self, d: Duration) {
        self.0.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub(crate) fn len(&self) -> u64 {
        self.0.len() as u64
    }

    pub(crate) fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// The `q` quantile in microseconds (0 when empty), after [`sort`](Self::sort).
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an index into the sorted latencies"
    )]
    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let at = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[at.min(self.0.len() - 1)] as f64 / 1e3
    }

    pub(crate) fn sort(&mut self) {
        self.0.sort_unstable();
    }
}

/// A progress bar on standard error, drawn only when standard output is a terminal (so
/// redirected or piped output stays clean).
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg:<28} [{bar:24}] {percent:>3}% {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Waits until `run_for` has passed or `finished()` says a worker ended early, moving `bar`
/// along; `each(fraction done)` runs at every step and may end the wait with an error.
pub(crate) fn wait_out<E>(
    bar: &ProgressBar,
    run_for: Duration,
    finished: impl Fn() -> bool,
    mut each: impl FnMut(f64) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let t = std::time::Instant::now();
    while t.elapsed() < run_for && !finished() {
        std::thread::sleep(Duration::from_millis(20));
        let done = (t.elapsed().as_secs_f64() / run_for.as_secs_f64()).min(1.0);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a per-mille"
        )]
        bar.set_position((done * 1000.0) as u64);
        each(done)?;
    }
    Ok(())
}

/// Writes `value` as pretty JSON and a newline.
pub(crate) fn json(out: &mut impl Write, value: &serde_json::Value) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)
        .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
    writeln!(out)?;
    Ok(())
}

/// Microseconds since the Unix epoch, now.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `µs` since the epoch as RFC 3339 in UTC, to the second (`-` for 0: no time).
pub(crate) fn rfc3339(us: u64) -> String {
    if us == 0 {
        return "-".into();
    }
    let secs = i64::try_from(us / 1_000_000).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A time given on the command line: RFC 3339 in UTC (`2026-12-07T09:30:00Z`, an optional
/// fraction of up to six digits) or whole microseconds since the epoch. `None` if neither.
#[expect(
    clippy::many_single_char_names,
    reason = "the fields of a date and a time"
)]
pub(crate) fn parse_time(text: &str) -> Option<u64> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let t = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = t.split_once(['T', ' '])?;
    let mut dp = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, d) = (dp.next()??, dp.next()??, dp.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut tp = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (tp.next()??, tp.next()??, tp.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 || y < 1970
    {
        return None;
    }
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().ok()? * 10i64.pow(6 - u32::try_from(frac.len()).ok()?)
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs.checked_mul(1_000_000)?.checked_add(micros)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_text_and_shows_everything_else() {
        assert_eq!(escape(b"user:42"), "user:42");
        assert_eq!(escape("día".as_bytes()), "día");
        assert_eq!(escape(b"a\nb\t\\"), "a\\nb\\t\\\\");
        assert_eq!(escape(b"\x1b[31m"), "\\u{1b}[31m");
        assert_eq!(escape(b"\xff\xfeok"), "\\xff\\xfeok");
        assert_eq!(escape("a\u{202e}b".as_bytes()), "a\\u{202e}b");
    }

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(hex(b"\x00\xffA"), "00ff41");
        assert_eq!(from_hex("00ff41"), Some(b"\x00\xffA".to_vec()));
        assert_eq!(from_hex("0x0a"), Some(vec![10]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é0"), None);
    }

    #[test]
    fn times_round_trip_through_rfc3339() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2026-12-07T09:30:00Z"),
            Some(1_796_635_800_000_000)
        );
        assert_eq!(rfc3339(1_796_635_800_000_000), "2026-12-07T09:30:00Z");
        assert_eq!(
            parse_time("2024-02-29T23:59:59.5Z"),
            Some(1_709_251_199_500_000)
        );
        assert_eq!(rfc3339(1_709_251_199_500_000), "2024-02-29T23:59:59Z");
        assert_eq!(parse_time("1733564400000000"), Some(1_733_564_400_000_000));
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-12-07T09:30:00",
            "yesterday",
            "2026-12-07T25:00:00Z",
            "2026-12-07T09:30:00.1234567Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }
}
