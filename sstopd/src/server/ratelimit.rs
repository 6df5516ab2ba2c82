//! Token bucket for per-session request limits (kill requests).

use std::time::{Duration, Instant};

/// `burst` requests at once, then `per_second` on average.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(burst: u32, per_second: f64) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second,
            last: Instant::now(),
        }
    }

    /// Kill requests: a burst of 20 (a few quick retries or a multi-select), then 5 per second.
    pub fn for_kills() -> Self {
        TokenBucket::new(20, 5.0)
    }

    /// Take one token if there is one.
    pub fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Time until the next token (for messages).
    pub fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, 5.0);
        b.last = t0;
        assert_eq!((0..25).filter(|_| b.take_at(t0)).count(), 20);
        assert!(b.wait() > Duration::ZERO);
        // One second later: five more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..10).filter(|_| b.take_at(t1)).count(), 5);
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..30).filter(|_| b.take_at(t2)).count(), 20);
    }
}
