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
    Step::new(dt).update(current, delta)
}

/// A rate after `elapsed` of idle steps: what [`Step::update`] with zero deltas over
/// intervals summing to `elapsed` gives, in one multiplication (rows not updated every
/// tick catch up when next touched).
pub fn decay(rate: f64, elapsed: Duration) -> f64 {
    if rate == 0.0 || elapsed.is_zero() {
        return rate;
    }
    let next = rate * (1.0 - ALPHA_PER_SECOND).powf(elapsed.as_secs_f64());
    if next < 1e-3 { 0.0 } else { next }
}

/// One tick's interval with its smoothing factor, computed once (a `powf`) and applied to
/// every row of the tick.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    secs: f64,
    alpha: f64,
}

impl Step {
    pub fn new(dt: Duration) -> Self {
        Step {
            secs: dt.as_secs_f64(),
            alpha: alpha_for(dt),
        }
    }

    /// Like [`update`], for this step's interval.
    pub fn update(&self, current: f64, delta: u64) -> f64 {
        if self.secs <= 0.0 {
            return current;
        }
        // An idle row (most sockets) stays at zero without any arithmetic.
        if delta == 0 && current == 0.0 {
            return 0.0;
        }
        let observed = delta as f64 / self.secs;
        let next = current + self.alpha * (observed - current);
        // Let idle rates reach zero instead of lingering as 1e-300.
        if next < 1e-3 { 0.0 } else { next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_equals_idle_steps() {
        let mut stepped = 5_000.0;
        for ms in [1000, 250, 750, 1000, 3000] {
            stepped = update(stepped, 0, Duration::from_millis(ms));
        }
        let once = decay(5_000.0, Duration::from_secs(6));
        assert!((stepped - once).abs() < 1e-6, "{stepped} vs {once}");
        assert_eq!(decay(0.0, Duration::from_secs(5)), 0.0);
        assert_eq!(decay(7.0, Duration::ZERO), 7.0);
        assert_eq!(decay(1.0, Duration::from_secs(60)), 0.0);
    }

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
    fn a_step_folds_like_update() {
        let step = Step::new(Duration::from_millis(250));
        for (cur, delta) in [(0.0, 0), (0.0, 500), (1234.5, 0), (1234.5, 99)] {
            assert_eq!(
                step.update(cur, delta),
                update(cur, delta, Duration::from_millis(250))
            );
        }
        let second = Step::new(Duration::from_secs(1));
        assert!((second.update(0.0, 1000) - 300.0).abs() < 1e-9);
        assert_eq!(second.update(0.0, 0), 0.0);
    }

    #[test]
    fn zero_interval_keeps_rate() {
        assert_eq!(update(42.0, 1000, Duration::ZERO), 42.0);
    }
}
