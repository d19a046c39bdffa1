//! Output helpers: aligned tables, sizes, "5 minutes ago".

use std::time::{SystemTime, UNIX_EPOCH};

/// Columns padded to their widest cell plus three spaces.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, |r| r.len());
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
                + 3
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..=999 => format!("{bytes}B"),
        1_000..=999_999 => format!("{:.3}kB", b / 1e3),
        1_000_000..=999_999_999 => format!("{:.3}MB", b / 1e6),
        _ => format!("{:.3}GB", b / 1e9),
    }
    .replace(".000", "")
}

/// Binary units, as Docker prints memory: "1.5MiB", "32MiB".
pub fn human_binary(bytes: u64) -> String {
    let b = bytes as f64;
    let s = match bytes {
        0..=1023 => return format!("{bytes}B"),
        1024..=1_048_575 => format!("{:.2}KiB", b / 1024.0),
        1_048_576..=1_073_741_823 => format!("{:.2}MiB", b / 1_048_576.0),
        _ => format!("{:.2}GiB", b / 1_073_741_824.0),
    };
    s.replace(".00", "")
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.6Z`,
/// `...+01:00`).
pub fn parse_time(s: &str) -> Option<i64> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let rest = s.get(19..)?;
    let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest {
        "Z" | "z" | "" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let oh: i64 = o.get(1..3)?.parse().ok()?;
            let om: i64 = o.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A duration as Docker words it: "Less than a second", "5 minutes", "2 days".
pub fn duration_words(secs: i64) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        s if s < 1 => "Less than a second".into(),
        s if s < 60 => plural(s, "second"),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s if s < 86_400 * 14 => plural(s / 86_400, "day"),
        s if s < 86_400 * 60 => plural(s / (86_400 * 7), "week"),
        s if s < 86_400 * 730 => plural(s / (86_400 * 30), "month"),
        s => plural(s / (86_400 * 365), "year"),
    }
}

pub fn ago(time: &str) -> String {
    match parse_time(time) {
        Some(t) => format!("{} ago", duration_words(now() - t)),
        None => time.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2024-03-01T12:00:00.5Z"), Some(1_709_294_400));
        assert_eq!(parse_time("2024-03-01T13:00:00+01:00"), Some(1_709_294_400));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(duration_words(0), "Less than a second");
        assert_eq!(duration_words(61), "1 minute");
        assert_eq!(duration_words(7200), "2 hours");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_500_000), "1.500MB");
        assert_eq!(human_size(2_000_000), "2MB");
        assert_eq!(human_binary(32 << 20), "32MiB");
        assert_eq!(human_binary(1536), "1.50KiB");
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["A".to_string(), "B".to_string()],
            vec!["long".to_string(), "x".to_string()],
        ];
        assert_eq!(table(&rows), "A      B\nlong   x\n");
    }
}
