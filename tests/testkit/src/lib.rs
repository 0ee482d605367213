//! Helpers shared by Lightning DB's test suites (not published).
//!
//! - [`Rng`]: a tiny seeded generator, so a failing scenario replays from its seed;
//! - [`scaled`]: scenario counts that CI keeps modest and a soak run raises with an
//!   environment variable instead of an edit;
//! - [`run_seeds`]: runs a scenario per seed and reports every failing seed with the
//!   command that replays it;
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

/// Runs `scenario` for `count` seeds starting at `LIGHTNING_TEST_SEED` (default 0), and
/// panics listing every failing seed with its error. Returns how many ran.
pub fn run_seeds<E: Display>(
    name: &str,
    count: u64,
    mut scenario: impl FnMut(u64) -> Result<(), E>,
) -> u64 {
    let first = env_u64("LIGHTNING_TEST_SEED", 0);
    let mut failures = Vec::new();
    for seed in first..first + count {
        if let Err(e) = scenario(seed) {
            failures.push(format!("  seed {seed}: {e}"));
            if failures.len() >= 10 {
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} scenario(s) failed (replay one with LIGHTNING_TEST_SEED=<seed> LIGHTNING_TEST_SCALE=1):\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
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
}
