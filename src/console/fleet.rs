//! Fleet figures for the header: calls per second over the last minute and wake latency
//! percentiles, gathered from the event stream.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

/// Seconds of call rate history kept.
pub const RATE_WINDOW: usize = 60;
/// Wakes kept for the latency percentiles.
const WAKE_SAMPLES: usize = 500;

#[derive(Debug, Default)]
pub struct Fleet {
    /// Calls per second, oldest first; the last entry is the second `newest_second`.
    calls: VecDeque<u64>,
    newest_second: i64,
    wakes_ms: VecDeque<f64>,
}

impl Fleet {
    pub fn record_call(&mut self, at: DateTime<Utc>) {
        let second = at.timestamp();
        self.advance(second);
        let back = self.newest_second - second;
        if back >= 0 && (back as usize) < self.calls.len() {
            let at = self.calls.len() - 1 - back as usize;
            self.calls[at] += 1;
        }
    }

    pub fn record_wake(&mut self, duration_ms: f64) {
        if self.wakes_ms.len() == WAKE_SAMPLES {
            self.wakes_ms.pop_front();
        }
        self.wakes_ms.push_back(duration_ms);
    }

    /// Moves the window so that it ends at `second`.
    fn advance(&mut self, second: i64) {
        if self.calls.is_empty() {
            self.newest_second = second;
            self.calls.push_back(0);
            return;
        }
        let gap = (second - self.newest_second).clamp(0, RATE_WINDOW as i64) as usize;
        for _ in 0..gap {
            self.calls.push_back(0);
        }
        self.newest_second = self.newest_second.max(second);
        while self.calls.len() > RATE_WINDOW {
            self.calls.pop_front();
        }
    }

    /// Calls per second for the last `RATE_WINDOW` seconds up to `now`, oldest first.
    pub fn rates(&self, now: DateTime<Utc>) -> Vec<u64> {
        let shift = (now.timestamp() - self.newest_second).clamp(0, RATE_WINDOW as i64) as usize;
        let mut rates: Vec<u64> = self
            .calls
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0, shift))
            .collect();
        let excess = rates.len().saturating_sub(RATE_WINDOW);
        rates.drain(..excess);
        let missing = RATE_WINDOW - rates.len();
        let mut padded = vec![0; missing];
        padded.extend(rates);
        padded
    }

    /// Returns whether any call happened within the window, so the sparkline still moves.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.rates(now).iter().any(|&n| n > 0)
    }

    /// Median and 99th percentile wake time in milliseconds.
    pub fn wake_percentiles(&self) -> Option<(f64, f64)> {
        if self.wakes_ms.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.wakes_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
        Some((at(0.5), at(0.99)))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn rates_bucket_by_second_and_slide() {
        let t = |s: i64| Utc.timestamp_opt(1_000_000 + s, 0).unwrap();
        let mut fleet = Fleet::default();
        fleet.record_call(t(0));
        fleet.record_call(t(0));
        fleet.record_call(t(2));
        let rates = fleet.rates(t(3));
        assert_eq!(rates.len(), RATE_WINDOW);
        assert_eq!(&rates[RATE_WINDOW - 4..], &[2, 0, 1, 0]);
        assert!(fleet.active(t(3)));
        assert!(!fleet.active(t(200)));
    }

    #[test]
    fn wake_percentiles_of_samples() {
        let mut fleet = Fleet::default();
        assert_eq!(fleet.wake_percentiles(), None);
        for ms in 1..=100 {
            fleet.record_wake(ms as f64);
        }
        let (p50, p99) = fleet.wake_percentiles().unwrap();
        assert_eq!(p50.round(), 51.0);
        assert_eq!(p99, 99.0);
    }
}
