//! Checks on `linux.resources` before anything is created; each error
//! names the field.

use oci_spec::runtime::LinuxResources;

use crate::{CgroupError, Result};

/// "0-3,5": comma-separated numbers or ranges.
fn is_list(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            let a = ends.next().unwrap_or("");
            let num = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
            match ends.next() {
                None => num(a),
                Some(b) => num(a) && num(b) && a.parse::<u64>().ok() <= b.parse::<u64>().ok(),
            }
        })
}

fn bad(field: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::invalid(format!("linux.resources.{field}"), reason)
}

pub fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(c) = r.cpu() {
        for (field, v) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
            if let Some(s) = v.as_ref().filter(|s| !s.is_empty()) {
                if !is_list(s.trim()) {
                    return Err(bad(field, format!("{s:?} is not a list like \"0-3,5\"")));
                }
            }
        }
        if let Some(q) = c.quota().filter(|q| *q < -1) {
            return Err(bad(
                "cpu.quota",
                format!("{q} is negative (use -1 for no limit)"),
            ));
        }
        if let Some(p) = c
            .period()
            .filter(|p| *p != 0 && (*p < 1000 || *p > 1_000_000))
        {
            return Err(bad(
                "cpu.period",
                format!("{p} is outside 1000..1000000 microseconds"),
            ));
        }
        if let Some(rt) = c.realtime_runtime().filter(|r| *r < -1) {
            return Err(bad("cpu.realtimeRuntime", format!("{rt} is negative")));
        }
    }
    if let Some(m) = r.memory() {
        for (field, v) in [
            ("memory.limit", m.limit()),
            ("memory.swap", m.swap()),
            ("memory.reservation", m.reservation()),
        ] {
            if let Some(v) = v.filter(|v| *v < -1) {
                return Err(bad(field, format!("{v} is negative (use -1 for no limit)")));
            }
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(bad(
                    "memory.swap",
                    format!("memory+swap {s} is below the memory limit {l}"),
                ));
            }
        }
        if let Some(s) = m.swappiness().filter(|s| *s > 100) {
            return Err(bad("memory.swappiness", format!("{s} is above 100")));
        }
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight().filter(|w| *w != 0 && !(10..=1000).contains(w)) {
            return Err(bad("blockIO.weight", format!("{w} is outside 10..1000")));
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        let s = h.page_size();
        let digits = s.trim_end_matches(['K', 'M', 'G', 'B']);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !s.ends_with('B') {
            return Err(bad(
                "hugepageLimits.pageSize",
                format!("{s:?} is not a size like \"2MB\""),
            ));
        }
    }
    for k in r.unified().iter().flat_map(|u| u.keys()) {
        if k.contains('/') || k.starts_with('.') || !k.contains('.') {
            return Err(bad("unified", format!("{k:?} is not a cgroup file name")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: serde_json::Value) -> std::result::Result<(), String> {
        let r: LinuxResources = serde_json::from_value(v).unwrap();
        validate(&r).map_err(|e| e.to_string())
    }

    #[test]
    fn cases() {
        assert!(check(serde_json::json!({"cpu": {"cpus": "0-1,3", "quota": -1}, "memory": {"limit": 100, "swap": 200}})).is_ok());
        for (v, field) in [
            (serde_json::json!({"cpu": {"cpus": "abc"}}), "cpu.cpus"),
            (serde_json::json!({"cpu": {"mems": "3-1"}}), "cpu.mems"),
            (serde_json::json!({"cpu": {"quota": -5}}), "cpu.quota"),
            (serde_json::json!({"cpu": {"period": 10}}), "cpu.period"),
            (serde_json::json!({"memory": {"limit": -7}}), "memory.limit"),
            (
                serde_json::json!({"memory": {"limit": 200, "swap": 100}}),
                "memory.swap",
            ),
            (
                serde_json::json!({"blockIO": {"weight": 5000}}),
                "blockIO.weight",
            ),
            (
                serde_json::json!({"hugepageLimits": [{"pageSize": "huge", "limit": 1}]}),
                "hugepageLimits",
            ),
            (serde_json::json!({"unified": {"../x": "1"}}), "unified"),
        ] {
            let e = check(v).unwrap_err();
            assert!(e.contains(field), "{field}: {e}");
        }
    }
}
