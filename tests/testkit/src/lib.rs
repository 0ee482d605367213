//! Helpers shared by Lightning DB's test suites (not published).
//!
//! - [`Rng`]: a tiny seeded generator, so a failing scenario replays from its seed;
//! - [`scaled`]: scenario counts that CI keeps modest and a soak run raises with an
//!   environment variable instead of an edit;
//! - [`run_seeds`]: runs a scenario per seed, reports every failing seed with the
//!   command that replays it, and sums up what the scenarios saw ([`SeedRun`]): how many
//!   ran, and how many of their simulated power cuts really dropped unsynced operations
//!   ([`Outcome`]), so a crash suite can prove its crashes are not vacuous;
//! - [`bench`](mod@bench): the report format every bench binary writes.
//!
//! # Environment
//!
//! | variable              | effect                                                    |
//! |-----------------------|-----------------------------------------------------------|
//! | `LIGHTNING_TEST_SCALE`| multiplies every [`scaled`] count (default 1; e.g. 100)   |
//! | `LIGHTNING_TEST_SEED` | first seed of [`run_seeds`] (default 0), to replay a seed |
//!
//! ```
//! let n = lightning_testkit::scaled(10);
//! assert!(n >= 10 || std::env::var("LIGHTNING_TEST_SCALE").is_ok());
//! let mut rng = lightning_testkit::Rng::new(7);
//! assert!(rng.below(6) < 6);
//! ```
#![forbid(unsafe_code)]

pub mod bench;

use std::fmt::Display;

/// `SplitMix64`: small, fast, reproducible. Not for anything but tests.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// `true` with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64().to_le_bytes()[0]).collect()
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// `default` times `LIGHTNING_TEST_SCALE` (default 1, at least 1).
pub fn scaled(default: u64) -> u64 {
    default.saturating_mul(env_u64("LIGHTNING_TEST_SCALE", 1).max(1))
}

/// What one scenario reports besides passing: the simulated power cuts it went through.
///
/// A scenario with no power cut returns `()`, which converts to [`Outcome::NONE`]. A crash
/// scenario returns `Outcome::crash(report.pending, report.kept)` from the crash VFS's
/// report (combine several with [`and`](Self::and)), so [`run_seeds`] can tell how many
/// scenarios really lost unsynced operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Power cuts simulated.
    pub crashes: u64,
    /// Of those, cuts that dropped at least one pending operation (lost or torn it).
    pub dropping_crashes: u64,
    /// Operations pending at the cuts.
    pub pending: u64,
    /// Pending operations the cuts did not keep whole.
    pub dropped: u64,
}

impl Outcome {
    /// No power cut.
    pub const NONE: Outcome = Outcome {
        crashes: 0,
        dropping_crashes: 0,
        pending: 0,
        dropped: 0,
    };

    /// One power cut that found `pending` operations pending and kept `kept` of them
    /// whole (the crash VFS's `CrashReport::pending` and `CrashReport::kept`).
    pub fn crash(pending: usize, kept: usize) -> Self {
        let dropped = pending.saturating_sub(kept) as u64;
        Outcome {
            crashes: 1,
            dropping_crashes: u64::from(dropped > 0),
            pending: pending as u64,
            dropped,
        }
    }

    /// Both outcomes: the cuts of a scenario that cut the power more than once.
    #[must_use]
    pub fn and(self, other: Outcome) -> Self {
        Outcome {
            crashes: self.crashes + other.crashes,
            dropping_crashes: self.dropping_crashes + other.dropping_crashes,
            pending: self.pending + other.pending,
            dropped: self.dropped + other.dropped,
        }
    }
}

impl From<()> for Outcome {
    fn from((): ()) -> Self {
        Outcome::NONE
    }
}

/// What [`run_seeds`] ran: counted as the scenarios ran, never taken from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRun {
    /// The suite's name.
    pub name: String,
    /// Scenarios that ran to completion and passed.
    pub scenarios: u64,
    /// Scenarios that cut the power at least once.
    pub crashed: u64,
    /// Scenarios in which some power cut dropped at least one pending operation.
    pub dropping: u64,
    /// Every scenario's outcome added up.
    pub total: Outcome,
}

impl SeedRun {
    /// Panics unless at least `percent` % of the scenarios lost unsynced operations in a
    /// power cut: a crash suite whose cuts keep everything proves nothing about recovery.
    pub fn assert_dropping(&self, percent: u64) {
        assert!(
            self.scenarios > 0 && self.dropping * 100 >= self.scenarios * percent,
            "{}: only {} of {} scenarios had a power cut that dropped unsynced operations \
             (at least {percent} % must): {self}",
            self.name,
            self.dropping,
            self.scenarios,
        );
    }
}

impl Display for SeedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} scenarios, {} with a power cut, {} of them dropping unsynced operations \
             ({} of {} pending operations dropped over {} cuts)",
            self.name,
            self.scenarios,
            self.crashed,
            self.dropping,
            self.total.dropped,
            self.total.pending,
            self.total.crashes,
        )
    }
}

/// Runs `scenario` for `count` seeds starting at `LIGHTNING_TEST_SEED` (default 0), and
/// panics listing every failing seed with its error (it stops after ten failures).
/// Returns what ran: the passing scenarios and their power cuts.
pub fn run_seeds<O: Into<Outcome>, E: Display>(
    name: &str,
    count: u64,
    mut scenario: impl FnMut(u64) -> Result<O, E>,
) -> SeedRun {
    let first = env_u64("LIGHTNING_TEST_SEED", 0);
    let mut run = SeedRun {
        name: name.to_owned(),
        scenarios: 0,
        crashed: 0,
        dropping: 0,
        total: Outcome::NONE,
    };
    let mut failures = Vec::new();
    for seed in first..first.saturating_add(count) {
        match scenario(seed) {
            Ok(outcome) => {
                let outcome = outcome.into();
                run.scenarios += 1;
                run.crashed += u64::from(outcome.crashes > 0);
                run.dropping += u64::from(outcome.dropping_crashes > 0);
                run.total = run.total.and(outcome);
            }
            Err(e) => {
                failures.push(format!("  seed {seed}: {e}"));
                if failures.len() >= 10 {
                    break;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} scenario(s) failed (replay one with LIGHTNING_TEST_SEED=<seed> LIGHTNING_TEST_SCALE=1):\n{}",
        failures.len(),
        failures.join("\n")
    );
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_spread() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(1);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(1);
        let b: Vec<u64> = (0..8).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        let mut r = Rng::new(2);
        let mut hits = [0u32; 4];
        for _ in 0..4000 {
            hits[usize::try_from(r.below(4)).unwrap()] += 1;
        }
        assert!(hits.iter().all(|&h| h > 800), "{hits:?}");
    }

    #[test]
    fn run_seeds_reports_failures() {
        let r = std::panic::catch_unwind(|| {
            run_seeds("t", 5, |s| if s == 3 { Err("boom") } else { Ok(()) })
        });
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("seed 3: boom"), "{msg}");
    }

    #[test]
    fn run_seeds_counts_what_ran_and_what_the_cuts_dropped() {
        let first = env_u64("LIGHTNING_TEST_SEED", 0);
        let mut calls = 0;
        let run = run_seeds("t", 10, |seed| {
            calls += 1;
            Ok::<_, String>(match (seed - first) % 5 {
                0 => Outcome::NONE,
                1 => Outcome::crash(4, 4),
                2 => Outcome::crash(4, 1),
                3 => Outcome::crash(0, 0).and(Outcome::crash(2, 0)),
                _ => Outcome::crash(3, 3).and(Outcome::crash(3, 3)),
            })
        });
        assert_eq!(calls, 10);
        assert_eq!(
            (run.scenarios, run.crashed, run.dropping),
            (10, 8, 4),
            "{run}"
        );
        assert_eq!(
            run.total,
            Outcome {
                crashes: 12,
                dropping_crashes: 4,
                pending: 2 * (4 + 4 + 2 + 6),
                dropped: 2 * (3 + 2),
            }
        );
        run.assert_dropping(40);
        let too_few = std::panic::catch_unwind(|| run.assert_dropping(41));
        let msg = *too_few.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("only 4 of 10 scenarios"), "{msg}");
    }

    #[test]
    fn a_suite_whose_cuts_keep_everything_fails_the_dropping_check() {
        let run = run_seeds("keeps all", 20, |_| Ok::<_, String>(Outcome::crash(7, 7)));
        assert_eq!((run.scenarios, run.crashed, run.dropping), (20, 20, 0));
        assert!(std::panic::catch_unwind(|| run.assert_dropping(1)).is_err());
        let plain = run_seeds("no crashes", 3, |_| Ok::<(), String>(()));
        assert_eq!((plain.scenarios, plain.crashed), (3, 0));
    }
}
