//! Exponential moving average of rates, normalised for the sample interval.

use std::time::Duration;

/// Smoothing per 1 s sample.
pub const ALPHA_PER_SECOND: f64 = 0.3;

/// α' = 1 − (1 − α)^(dt / 1 s): the same smoothing per unit of time whatever the interval.
pub fn alpha_for(dt: Duration) -> f64 {
    let secs = dt.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    1.0 - (1.0 - ALPHA_PER_SECOND).powf(secs)
}

/// Fold a new observation (`delta` bytes over `dt`) into `current` (bytes/s).
/// A zero-length interval leaves the rate as it was instead of dividing by zero.
pub fn update(current: f64, delta: u64, dt: Duration) -> f64 {
    let secs = dt.as_secs_f64();
    if secs <= 0.0 {
        return current;
    }
    let observed = delta as f64 / secs;
    let a = alpha_for(dt);
    let next = current + a * (observed - current);
    // Let idle rates reach zero instead of lingering as 1e-300.
    if next < 1e-3 { 0.0 } else { next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_alpha_is_point_three() {
        assert!((alpha_for(Duration::from_secs(1)) - 0.3).abs() < 1e-12);
    }

    #[test]
    fn ten_fast_samples_smooth_like_one_slow_one() {
        let mut fast = 0.0;
        for _ in 0..10 {
            fast = update(fast, 100, Duration::from_millis(100));
        }
        let slow = update(0.0, 1000, Duration::from_secs(1));
        assert!((fast - slow).abs() < 1e-9, "{fast} vs {slow}");
    }

    #[test]
    fn zero_interval_keeps_rate() {
        assert_eq!(update(42.0, 1000, Duration::ZERO), 42.0);
    }
}
