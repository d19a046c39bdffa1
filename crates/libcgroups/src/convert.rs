//! The v1 -> v2 value conversions, written once.

/// cpu.shares -> cpu.weight with the formula of current crun and runc:
/// a quadratic in log2(shares) that maps 2 -> 1, 1024 -> 100, 262144 -> 10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// blkio.weight (10..1000) -> io.weight (1..10000).
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// OCI memory.swap is memory+swap; v2's memory.swap.max is swap alone.
pub fn swap_to_v2(swap: i64, limit: Option<i64>) -> String {
    match (swap, limit) {
        (-1, _) => "max".into(),
        (s, Some(l)) if l > 0 => (s - l).max(0).to_string(),
        (s, _) => s.to_string(),
    }
}

/// A limit where -1 (or, for pids, 0) means unlimited.
pub fn limit_or_max(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// cpu.max from quota and period.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> String {
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".into(),
    };
    format!("{q} {}", period.unwrap_or(100_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        for (shares, weight) in [
            (0, 0),
            (1, 1),
            (2, 1),
            (512, 59),
            (1024, 100),
            (2048, 174),
            (262_144, 10_000),
            (500_000, 10_000),
        ] {
            assert_eq!(shares_to_weight(shares), weight, "shares {shares}");
        }
    }

    #[test]
    fn blkio() {
        for (w, io) in [(10, 1), (500, 4950), (1000, 10000), (0, 0)] {
            assert_eq!(blkio_weight_to_io(w), io, "weight {w}");
        }
    }

    #[test]
    fn swap() {
        assert_eq!(swap_to_v2(-1, Some(100)), "max");
        assert_eq!(swap_to_v2(300, Some(100)), "200");
        assert_eq!(swap_to_v2(100, Some(100)), "0");
        assert_eq!(swap_to_v2(300, None), "300");
    }

    #[test]
    fn cpu() {
        assert_eq!(cpu_max(Some(50_000), Some(100_000)), "50000 100000");
        assert_eq!(cpu_max(Some(-1), None), "max 100000");
        assert_eq!(cpu_max(None, Some(20_000)), "max 20000");
        assert_eq!(limit_or_max(-1), "max");
        assert_eq!(limit_or_max(64), "64");
    }
}
