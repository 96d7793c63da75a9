//! A histogram of fixed buckets, each an atomic: observing a value takes no lock and never
//! allocates, so it can sit on the path of every message.
//!
//! prometheus-client's own histogram locks a mutex per observation; one endpoint's sessions
//! all observe into the same histogram from every worker thread, so that lock would be
//! shared by every message of the endpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets of a histogram of durations, in nanoseconds: 100 µs to 10 s.
pub(crate) const SECONDS: &[u64] = &[
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Upper bounds of the buckets of a histogram of counts (how many connections one broadcast
/// reached): 0 to 10 000.
pub(crate) const COUNTS: &[u64] = &[
    0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000,
];

/// Observations of whole units (nanoseconds, connections) sorted into buckets.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [u64],
    /// One count per bound, and one for what is above the last: not cumulative, so an
    /// observation adds to one bucket only.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// A histogram read at one moment, as Prometheus wants it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Read {
    /// The sum of the observations, in the exported unit.
    pub(crate) sum: f64,
    pub(crate) count: u64,
    /// Upper bound (in the exported unit) and count of each bucket, not cumulative (the
    /// encoder adds them up); the last bound is `+Inf`.
    pub(crate) buckets: Vec<(f64, u64)>,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub(crate) fn durations() -> Self {
        Self::new(SECONDS)
    }

    pub(crate) fn counts() -> Self {
        Self::new(COUNTS)
    }

    pub(crate) fn observe(&self, value: u64) {
        // Most values land in the first few buckets: a scan beats a search here.
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub(crate) fn observe_duration(&self, took: Duration) {
        self.observe(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The histogram now, each value multiplied by `scale` (1e-9 turns nanoseconds into
    /// seconds).
    pub(crate) fn read(&self, scale: f64) -> Read {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, bucket)| {
                let bound = self
                    .bounds
                    .get(i)
                    .map_or(f64::INFINITY, |&bound| bound as f64 * scale);
                (bound, bucket.load(Ordering::Relaxed))
            })
            .collect();
        Read {
            sum: self.sum.load(Ordering::Relaxed) as f64 * scale,
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }

    /// How many values it has observed.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

impl Read {
    /// Adds `other`, a read of a histogram with the same bounds, to this one.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn add(&mut self, other: &Read) {
        self.sum += other.sum;
        self.count += other.count;
        for ((_, mine), (_, theirs)) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_counts_in_the_first_bucket_that_holds_it() {
        let histogram = Histogram::new(&[1, 10, 100]);
        for value in [0, 1, 2, 10, 50, 1000] {
            histogram.observe(value);
        }
        let read = histogram.read(1.0);
        assert_eq!(
            read.buckets,
            vec![(1.0, 2), (10.0, 2), (100.0, 1), (f64::INFINITY, 1)]
        );
        assert_eq!((read.count, histogram.count()), (6, 6));
        assert_eq!(read.sum, 1063.0);
        let mut twice = read.clone();
        twice.add(&read);
        assert_eq!((twice.count, twice.sum), (12, 2126.0));
        assert_eq!(twice.buckets[1], (10.0, 4));
    }

    #[test]
    fn durations_are_read_in_seconds() {
        let histogram = Histogram::durations();
        histogram.observe_duration(Duration::from_millis(3));
        let read = histogram.read(1e-9);
        assert!((read.sum - 0.003).abs() < 1e-12, "{}", read.sum);
        let (bound, count) = read.buckets[5];
        assert!((bound - 0.005).abs() < 1e-12);
        assert_eq!(count, 1);
        assert_eq!(read.buckets[4].1, 0, "2.5 ms holds nothing");
    }
}
