//! Tiny graphics made of text: sparklines and rate bars.

use ratatui::style::{Color, Style};
use ratatui::text::Span;

use crate::theme;

const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` values as a sparkline scaled to their own maximum,
/// right-aligned (newest at the right edge) and always exactly `width` columns.
pub fn sparkline(values: &[f64], width: usize) -> String {
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let mut out = " ".repeat(width - tail.len());
    for &v in tail {
        let level = if max > 0.0 && v.is_finite() && v > 0.0 {
            // Anything non-zero shows at least the lowest bar.
            ((v / max) * 8.0).ceil().clamp(1.0, 8.0) as usize
        } else {
            0
        };
        out.push(LEVELS[level]);
    }
    out
}

/// Below this a bar's scale does not shrink: when everything idles (an EMA tail of a few
/// B/s), a trickle must not draw full bars.
const MIN_SCALE: f64 = 1024.0;

/// Share of `max` on a log scale, so 1 KB/s next to 1 GB/s is still visible. A rate that
/// prints as "0 B/s" (< 1) has no bar.
pub fn share(rate: f64, max: f64) -> f64 {
    if !(rate.is_finite() && max.is_finite()) || rate < 1.0 || max <= 0.0 {
        return 0.0;
    }
    let max = max.max(MIN_SCALE);
    ((1.0 + rate).ln() / (1.0 + max).ln()).clamp(0.0, 1.0)
}

/// A bar `width` columns wide filled by `share`, its colour more intense the higher the share.
pub fn bar(share: f64, width: usize, color: Color, bg: Color) -> Span<'static> {
    const EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];
    let share = if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (share * (width * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(EIGHTHS[eighths % 8 - 1]);
    }
    let pad = width.saturating_sub(s.chars().count());
    s.push_str(&" ".repeat(pad));
    Span::styled(s, Style::new().fg(theme::intensity(color, share)).bg(bg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_is_fixed_width_and_right_aligned() {
        assert_eq!(sparkline(&[], 4), "    ");
        assert_eq!(sparkline(&[0.0, 8.0], 4), "   █");
        assert_eq!(sparkline(&[1.0, 2.0, 4.0, 8.0, 0.0], 3), "▄█ ");
        assert_eq!(sparkline(&[f64::NAN, 1.0], 2), " █");
    }

    #[test]
    fn bars_fill_by_share() {
        assert_eq!(bar(0.0, 3, Color::Red, Color::Black).content, "   ");
        assert_eq!(bar(1.0, 3, Color::Red, Color::Black).content, "███");
        assert_eq!(bar(f64::NAN, 2, Color::Red, Color::Black).content, "  ");
        assert!(share(5e9, 5e9) > 0.99);
        assert!(share(1e3, 5e9) > 0.2);
        assert_eq!(share(1.0, 0.0), 0.0);
        // Idle screens: what prints as "0 B/s" has no bar, a trickle no full bar.
        assert_eq!(share(0.4, 0.4), 0.0);
        assert!(share(11.0, 11.0) < 0.4);
        assert!(share(2048.0, 2048.0) > 0.99);
    }
}
