//! Numbers for people: rates, byte counts, ages. Every output fits a fixed
//! column whatever the input (0, u64::MAX, NaN, infinity): bytes in at most
//! 8 characters (`1.09 TiB`), rates in at most 10 (`4.66 GiB/s`).

/// Binary units, far enough that even u64::MAX and absurd f64 rates have one.
const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Widest [`bytes`] output.
pub const BYTES_WIDTH: usize = 8;
/// Widest [`rate`] output.
pub const RATE_WIDTH: usize = 10;

/// `0 B`, `999 B`, `1.00 KiB`, `4.00 GiB`, `16.0 EiB`.
pub fn bytes(n: u64) -> String {
    // u64 → f64 loses precision only far below what three digits show.
    scaled(n as f64).unwrap_or_else(|| "—".to_string())
}

/// A rate in bytes per second: `0 B/s`, `4.66 GiB/s`; `—` when it is not a
/// number (a rate over a zero-length interval, a negative value).
pub fn rate(bps: f64) -> String {
    match scaled(bps) {
        Some(s) => format!("{s}/s"),
        None => "—".to_string(),
    }
}

/// Three significant digits and a binary unit; `None` for NaN, ±inf, negatives.
fn scaled(value: f64) -> Option<String> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    if value < 999.5 {
        return Some(format!("{} B", value.round() as u64));
    }
    let mut v = value;
    for unit in &UNITS[1..] {
        v /= 1024.0;
        // Thresholds account for rounding, so 9.996 never prints as "10.00".
        if v < 9.995 {
            return Some(format!("{v:.2} {unit}"));
        }
        if v < 99.95 {
            return Some(format!("{v:.1} {unit}"));
        }
        if v < 999.5 {
            return Some(format!("{v:.0} {unit}"));
        }
    }
    Some(format!("999+ {}", UNITS[UNITS.len() - 1]))
}

/// Age of a connection: `0s`, `59s`, `12m03s`, `5h07m`, `3d04h`, `12345d`.
pub fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ if s < 100 * 86_400 => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Refresh interval: `100ms`, `1s`, `2.5s`.
pub fn interval(ms: u32) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", f64::from(ms) / 1000.0)
    }
}

/// Local wall-clock time `HH:MM:SS` for milliseconds since the epoch.
pub fn clock(ms: u64) -> String {
    let secs = (ms / 1000) as libc::time_t;
    // SAFETY: localtime_r only writes into the zeroed `tm` we own; both pointers are valid.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return "--:--:--".to_string();
        }
        tm
    };
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B25: every value formats, fits its column, never panics.
    #[test]
    fn b25_values_fit_and_read_right() {
        let cases: [(u64, &str); 10] = [
            (0, "0 B"),
            (999, "999 B"),
            (1023, "1.00 KiB"),
            (1024, "1.00 KiB"),
            (4_294_967_295, "4.00 GiB"),
            (4_294_967_296, "4.00 GiB"),
            (5_368_709_120, "5.00 GiB"),
            (999_999_999_999, "931 GiB"),
            (1 << 63, "8.00 EiB"),
            (u64::MAX, "16.0 EiB"),
        ];
        for (n, want) in cases {
            let got = bytes(n);
            assert_eq!(got, want, "bytes({n})");
            assert!(got.chars().count() <= BYTES_WIDTH, "{got:?} too wide");
        }
        assert_eq!(bytes(1_200_000_000_000), "1.09 TiB");
        assert_eq!(rate(5e9), "4.66 GiB/s");
        assert_eq!(rate(1.2e12), "1.09 TiB/s");
        assert_eq!(rate(0.0), "0 B/s");
        assert_eq!(rate(999.0), "999 B/s");
    }

    #[test]
    fn zero_interval_and_garbage_rates_show_a_dash() {
        let zero_interval = 1000.0_f64 / 0.0;
        assert_eq!(rate(zero_interval), "—");
        assert_eq!(rate(f64::NAN), "—");
        assert_eq!(rate(f64::NEG_INFINITY), "—");
        assert_eq!(rate(-5.0), "—");
    }

    #[test]
    fn every_magnitude_fits() {
        let mut v = 0.5_f64;
        while v < 1e30 {
            let r = rate(v);
            assert!(r.chars().count() <= RATE_WIDTH, "{v} -> {r:?}");
            v *= 1.37;
        }
        assert_eq!(rate(1e40), "999+ YiB/s");
        for n in [
            9_995u64 * 1024 / 1000,
            10_234,
            102_348,
            1_023_999,
            1_048_575,
        ] {
            assert!(
                bytes(n).chars().count() <= BYTES_WIDTH,
                "{n} -> {}",
                bytes(n)
            );
        }
    }

    #[test]
    fn ages_and_intervals() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(59_999), "59s");
        assert_eq!(age(723_000), "12m03s");
        assert_eq!(age(5 * 3_600_000 + 7 * 60_000), "5h07m");
        assert_eq!(age(3 * 86_400_000 + 4 * 3_600_000), "3d04h");
        assert_eq!(age(u64::MAX), format!("{}d", u64::MAX / 1000 / 86_400));
        assert_eq!(interval(100), "100ms");
        assert_eq!(interval(1000), "1s");
        assert_eq!(interval(2500), "2.5s");
    }
}
