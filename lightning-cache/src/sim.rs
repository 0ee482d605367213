//! Trace-driven simulation of eviction policies, for choosing one by measurement.
//!
//! Each policy caches up to `capacity` keys and answers "was this access a hit?". The
//! buffer pool uses [`Sieve`]'s queue; the others are here to measure it against: exact
//! LRU, CLOCK, and Belady's offline optimum ([`belady_hits`]), the upper bound for any
//! policy. Trace generators make zipfian, uniform and scan-mixed workloads.

use std::collections::{BinaryHeap, HashMap};

use crate::sieve::{SieveQueue, Verdict};

/// An eviction policy under simulation.
pub trait Policy {
    /// A short name for reports.
    fn name(&self) -> &'static str;
    /// Accesses `key`; `true` on a hit. A miss inserts it, evicting if full.
    fn access(&mut self, key: u64) -> bool;
}

/// Slot bookkeeping shared by the simulated policies.
#[derive(Debug)]
struct Slots {
    capacity: usize,
    index: HashMap<u64, u32>,
    keys: Vec<u64>,
}

impl Slots {
    fn new(capacity: usize) -> Self {
        Slots {
            capacity: capacity.max(1),
            index: HashMap::with_capacity(capacity),
            keys: Vec::with_capacity(capacity),
        }
    }

    /// A slot for a new key: a fresh one while not full, else `victim` (already chosen).
    fn place(&mut self, key: u64, victim: Option<u32>) -> u32 {
        if let Some(v) = victim {
            // INVARIANT: `v < keys.len()`: a victim is a slot `place` handed out before (from
            // the policy's queue or hand, which hold only those), and `keys` never shrinks.
            let slot = &mut self.keys[v as usize];
            let old = std::mem::replace(slot, key);
            self.index.remove(&old);
            self.index.insert(key, v);
            v
        } else {
            let s = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
            self.keys.push(key);
            self.index.insert(key, s);
            s
        }
    }

    fn full(&self) -> bool {
        self.keys.len() >= self.capacity
    }
}

/// Exact LRU: every hit moves the key to the front.
#[derive(Debug)]
pub struct Lru {
    slots: Slots,
    queue: SieveQueue,
}

impl Lru {
    /// An empty LRU cache of `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Lru {
            slots: Slots::new(capacity),
            queue: SieveQueue::new(capacity.max(1)),
        }
    }
}

impl Policy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }

    fn access(&mut self, key: u64) -> bool {
        if let Some(&s) = self.slots.index.get(&key) {
            self.queue.touch(s);
            return true;
        }
        let victim = if self.slots.full() {
            let v = self.queue.oldest();
            if let Some(v) = v {
                self.queue.remove(v);
            }
            v
        } else {
            None
        };
        let s = self.slots.place(key, victim);
        self.queue.push(s);
        false
    }
}

/// CLOCK (second chance): a hand sweeps slots in a fixed circle.
#[derive(Debug)]
pub struct Clock {
    slots: Slots,
    referenced: Vec<bool>,
    hand: usize,
}

impl Clock {
    /// An empty CLOCK cache of `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Clock {
            slots: Slots::new(capacity),
            referenced: Vec::with_capacity(capacity),
            hand: 0,
        }
    }
}

impl Policy for Clock {
    fn name(&self) -> &'static str {
        "clock"
    }

    #[allow(
        clippy::allow_attributes,
        clippy::indexing_slicing,
        reason = "`referenced` grows with `slots.keys` (a fresh slot pushes to both), every slot
                  number is below `keys.len()`, and the hand wraps modulo `referenced.len()`"
    )]
    fn access(&mut self, key: u64) -> bool {
        if let Some(&s) = self.slots.index.get(&key) {
            self.referenced[s as usize] = true;
            return true;
        }
        let victim = if self.slots.full() {
            loop {
                let h = self.hand;
                self.hand = (self.hand + 1) % self.referenced.len();
                if self.referenced[h] {
                    self.referenced[h] = false;
                } else {
                    break Some(u32::try_from(h).unwrap_or(0));
                }
            }
        } else {
            self.referenced.push(false);
            None
        };
        let s = self.slots.place(key, victim);
        self.referenced[s as usize] = false;
        false
    }
}

/// SIEVE: the buffer pool's policy.
#[derive(Debug)]
pub struct Sieve {
    slots: Slots,
    visited: Vec<bool>,
    queue: SieveQueue,
}

impl Sieve {
    /// An empty SIEVE cache of `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Sieve {
            slots: Slots::new(capacity),
            visited: Vec::with_capacity(capacity),
            queue: SieveQueue::new(capacity.max(1)),
        }
    }
}

impl Policy for Sieve {
    fn name(&self) -> &'static str {
        "sieve"
    }

    #[allow(
        clippy::allow_attributes,
        clippy::indexing_slicing,
        reason = "`visited` grows with `slots.keys` (a fresh slot pushes to both), and every slot
                  number (in the index or the queue) is below `keys.len()`; when full, `evict`
                  finds a victim within two turns, as this judge spares a slot only once"
    )]
    fn access(&mut self, key: u64) -> bool {
        if let Some(&s) = self.slots.index.get(&key) {
            self.visited[s as usize] = true;
            return true;
        }
        let victim = if self.slots.full() {
            let visited = &mut self.visited;
            self.queue.evict(|s| {
                let v = &mut visited[s as usize];
                if *v {
                    *v = false;
                    Verdict::Spare
                } else {
                    Verdict::Evict
                }
            })
        } else {
            self.visited.push(false);
            None
        };
        let s = self.slots.place(key, victim);
        self.visited[s as usize] = false;
        self.queue.push(s);
        false
    }
}

/// Hits of Belady's optimal offline policy (evict the key used furthest in the future),
/// counting only accesses at or after position `from`.
pub fn belady_hits(trace: &[u64], capacity: usize, from: usize) -> u64 {
    let capacity = capacity.max(1);
    // next[i]: the position of the next access to trace[i]'s key after i.
    let mut next = vec![usize::MAX; trace.len()];
    let mut last: HashMap<u64, usize> = HashMap::new();
    for (i, (k, n)) in trace.iter().zip(&mut next).enumerate().rev() {
        if let Some(&j) = last.get(k) {
            *n = j;
        }
        last.insert(*k, i);
    }
    let mut cached: HashMap<u64, usize> = HashMap::with_capacity(capacity);
    let mut heap: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut hits = 0;
    for (i, (k, &n)) in trace.iter().zip(&next).enumerate() {
        if cached.contains_key(k) {
            hits += u64::from(i >= from);
        } else if cached.len() >= capacity {
            // Lazy deletion: heap entries whose next use no longer matches are stale.
            while let Some((when, key)) = heap.pop() {
                if cached.get(&key) == Some(&when) {
                    cached.remove(&key);
                    break;
                }
            }
        }
        cached.insert(*k, n);
        heap.push((n, *k));
    }
    hits
}

/// Hit ratio of `policy` over `trace`.
#[expect(clippy::cast_precision_loss, reason = "a ratio")]
pub fn hit_ratio(policy: &mut dyn Policy, trace: &[u64]) -> f64 {
    let hits = trace.iter().filter(|k| policy.access(**k)).count();
    hits as f64 / trace.len().max(1) as f64
}

/// `SplitMix64` for trace generation.
fn mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[expect(
    clippy::cast_precision_loss,
    reason = "a uniform float from 53 random bits"
)]
fn unit(state: &mut u64) -> f64 {
    (mix(state) >> 11) as f64 / (1u64 << 53) as f64
}

/// `len` keys from `0..pages` with zipfian popularity of exponent `theta`. Ranks are
/// scattered over the key space by a bijection, so hot keys are not neighbours.
pub fn zipf_trace(pages: u64, theta: f64, len: usize, seed: u64) -> Vec<u64> {
    let n = usize::try_from(pages).unwrap_or(usize::MAX).max(1);
    let mut cdf = Vec::with_capacity(n);
    let mut sum = 0.0;
    for rank in 1..=n {
        #[expect(clippy::cast_precision_loss, reason = "ranks up to a few million")]
        let r = rank as f64;
        sum += 1.0 / r.powf(theta);
        cdf.push(sum);
    }
    let mut state = seed;
    (0..len)
        .map(|_| {
            let u = unit(&mut state) * sum;
            let rank = cdf.partition_point(|c| *c < u).min(n - 1) as u64;
            scatter(rank, pages.max(1))
        })
        .collect()
}

/// A bijection of `0..pages` onto itself: an affine map modulo the next power of two,
/// repeated until the value falls in range (cycle walking).
fn scatter(rank: u64, pages: u64) -> u64 {
    let mask = pages.next_power_of_two() - 1;
    let mut x = rank;
    loop {
        x = x
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0x632B_E59B_D9B4_E019)
            & mask;
        if x < pages {
            return x;
        }
    }
}

/// Hits of `policy` over `trace`, counting only accesses after the first `warmup` (the
/// steady-state hit ratio, without the compulsory misses of filling the cache).
#[expect(clippy::cast_precision_loss, reason = "a ratio")]
pub fn steady_hit_ratio(policy: &mut dyn Policy, trace: &[u64], warmup: usize) -> f64 {
    let (warm, rest) = trace.split_at_checked(warmup).unwrap_or((trace, &[]));
    for k in warm {
        policy.access(*k);
    }
    let hits = rest.iter().filter(|k| policy.access(**k)).count();
    hits as f64 / rest.len().max(1) as f64
}

/// `len` keys uniform over `0..pages`.
pub fn uniform_trace(pages: u64, len: usize, seed: u64) -> Vec<u64> {
    let mut state = seed;
    (0..len).map(|_| mix(&mut state) % pages.max(1)).collect()
}

/// `trace` with a full sequential scan of `0..pages` spliced in after every `every` accesses.
pub fn with_scans(trace: &[u64], pages: u64, every: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(trace.len() * 2);
    for (i, k) in trace.iter().enumerate() {
        if i > 0 && i % every.max(1) == 0 {
            out.extend(0..pages);
        }
        out.push(*k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_lru(trace: &[u64], capacity: usize) -> u64 {
        let mut order: Vec<u64> = Vec::new();
        let mut hits = 0;
        for k in trace {
            if let Some(p) = order.iter().position(|x| x == k) {
                hits += 1;
                order.remove(p);
            } else if order.len() >= capacity {
                order.remove(0);
            }
            order.push(*k);
        }
        hits
    }

    #[test]
    fn lru_matches_a_brute_force_reference() {
        let trace = zipf_trace(200, 0.9, 5000, 1);
        for cap in [1, 5, 50, 199] {
            let mut lru = Lru::new(cap);
            let hits = trace.iter().filter(|k| lru.access(**k)).count() as u64;
            assert_eq!(hits, brute_lru(&trace, cap), "capacity {cap}");
        }
    }

    #[test]
    fn belady_bounds_every_policy_and_all_fit_means_only_cold_misses() {
        let trace = zipf_trace(500, 0.99, 20_000, 2);
        for cap in [10, 50, 250] {
            let best = belady_hits(&trace, cap, 0);
            for mut p in [
                Box::new(Lru::new(cap)) as Box<dyn Policy>,
                Box::new(Clock::new(cap)),
                Box::new(Sieve::new(cap)),
            ] {
                let hits = trace.iter().filter(|k| p.access(**k)).count() as u64;
                assert!(hits <= best, "{} beat Belady at {cap}", p.name());
            }
        }
        let distinct = trace.iter().collect::<std::collections::HashSet<_>>().len() as u64;
        assert_eq!(belady_hits(&trace, 500, 0), trace.len() as u64 - distinct);
        let mut s = Sieve::new(500);
        assert_eq!(
            trace.iter().filter(|k| s.access(**k)).count() as u64,
            trace.len() as u64 - distinct
        );
    }

    #[test]
    fn scatter_is_a_bijection() {
        for pages in [1u64, 7, 100, 1024, 1000] {
            let mut seen: Vec<u64> = (0..pages).map(|r| scatter(r, pages)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..pages).collect::<Vec<_>>());
        }
    }

    #[test]
    fn zipf_is_skewed_and_uniform_is_not() {
        let z = zipf_trace(10_000, 0.99, 100_000, 3);
        let mut counts: HashMap<u64, u32> = HashMap::new();
        for k in &z {
            *counts.entry(*k).or_default() += 1;
        }
        let max = counts.values().max().copied().unwrap_or(0);
        assert!(
            max > 5_000,
            "the hottest key of a zipf(0.99) trace is hot: {max}"
        );
        let u = uniform_trace(10_000, 100_000, 3);
        assert!(u.iter().all(|k| *k < 10_000));
    }
}
