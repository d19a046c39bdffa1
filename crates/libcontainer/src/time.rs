//! RFC 3339 timestamps (UTC, nanoseconds) without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Format seconds + nanoseconds since the epoch; `nanos` digits as Go's RFC3339Nano.
pub fn format(secs: i64, nanos: u32, with_nanos: bool) -> String {
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if with_nanos && nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Now, as RFC 3339 with nanoseconds.
pub fn now_rfc3339(with_nanos: bool) -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format(d.as_secs() as i64, d.subsec_nanos(), with_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format(0, 0, true), "1970-01-01T00:00:00Z");
        assert_eq!(format(951_782_400, 0, true), "2000-02-29T00:00:00Z");
        assert_eq!(
            format(1_700_000_000, 120_000_000, true),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            format(1_700_000_000, 120_000_000, false),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            format(4_102_444_799, 999_999_999, true),
            "2099-12-31T23:59:59.999999999Z"
        );
    }
}
