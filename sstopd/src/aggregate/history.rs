//! Fixed-length rate histories (sparklines) and the trend read from them.

use std::collections::VecDeque;

use proto::{HISTORY_LEN, RatePoint, Trend};

#[derive(Debug, Clone, Default)]
pub struct History {
    points: VecDeque<RatePoint>,
    /// Points in the window with any traffic: lets `to_vec_if_active` skip idle ones cheaply.
    active: usize,
}

impl History {
    pub fn push(&mut self, point: RatePoint) {
        if self.points.len() == HISTORY_LEN
            && let Some(old) = self.points.pop_front()
            && is_active(old)
        {
            self.active -= 1;
        }
        if is_active(point) {
            self.active += 1;
        }
        self.points.push_back(point);
    }

    pub fn to_vec(&self) -> Vec<RatePoint> {
        self.points.iter().copied().collect()
    }

    /// The history, or nothing when the window holds no traffic at all.
    pub fn to_vec_if_active(&self) -> Vec<RatePoint> {
        if self.active == 0 {
            Vec::new()
        } else {
            self.to_vec()
        }
    }

    /// Rising/falling when the latest total rate differs from the mean of the few points
    /// before it by more than 20 % and by at least 1 KiB/s (noise floor).
    pub fn trend(&self) -> Trend {
        const WINDOW: usize = 5;
        let n = self.points.len();
        if n < 2 {
            return Trend::Steady;
        }
        let total = |p: &RatePoint| f64::from(p.up) + f64::from(p.down);
        let now = total(&self.points[n - 1]);
        let start = n.saturating_sub(1 + WINDOW);
        let past: Vec<f64> = self.points.range(start..n - 1).map(total).collect();
        let mean = past.iter().sum::<f64>() / past.len() as f64;
        let diff = now - mean;
        if diff.abs() < 1024.0 {
            Trend::Steady
        } else if diff > 0.2 * mean {
            Trend::Rising
        } else if -diff > 0.2 * mean {
            Trend::Falling
        } else {
            Trend::Steady
        }
    }
}

fn is_active(p: RatePoint) -> bool {
    p.up > 0.0 || p.down > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(v: f32) -> RatePoint {
        RatePoint { up: v, down: 0.0 }
    }

    #[test]
    fn keeps_the_last_sixty_points_and_forgets_idle_windows() {
        let mut h = History::default();
        h.push(pt(5000.0));
        for _ in 0..HISTORY_LEN - 1 {
            h.push(pt(0.0));
        }
        assert_eq!(h.to_vec_if_active().len(), HISTORY_LEN);
        h.push(pt(0.0));
        assert_eq!(h.to_vec().len(), HISTORY_LEN);
        assert!(h.to_vec_if_active().is_empty());
    }

    #[test]
    fn trend_follows_the_latest_point() {
        let mut h = History::default();
        for _ in 0..5 {
            h.push(pt(10_000.0));
        }
        assert_eq!(h.trend(), Trend::Steady);
        h.push(pt(50_000.0));
        assert_eq!(h.trend(), Trend::Rising);
        let mut h = History::default();
        for _ in 0..5 {
            h.push(pt(10_000.0));
        }
        h.push(pt(1_000.0));
        assert_eq!(h.trend(), Trend::Falling);
        // Tiny rates never flap.
        let mut h = History::default();
        h.push(pt(10.0));
        h.push(pt(500.0));
        assert_eq!(h.trend(), Trend::Steady);
    }
}
