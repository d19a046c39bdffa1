//! `hull update`: a resources JSON (file or stdin) or runc's flags, as a
//! `linux.resources` object with only the fields asked for.

use std::io::Read;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::cli::UpdateArgs;

/// Bytes from "512", "64k", "100m", "1g", "2GiB" (binary units, as
/// Docker's RAMInBytes); -1 stays -1.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}: negative");
    }
    Ok((n * mult as f64) as i64)
}

fn set(obj: &mut Map<String, Value>, section: &str, key: &str, v: Value) {
    let sec = obj.entry(section).or_insert_with(|| json!({}));
    sec[key] = v;
}

pub fn resources(a: &UpdateArgs) -> Result<LinuxResources> {
    if let Some(path) = &a.resources {
        let mut text = Vec::new();
        if path.as_os_str() == "-" {
            std::io::stdin()
                .read_to_end(&mut text)
                .context("read resources from stdin")?;
        } else {
            text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        }
        return serde_json::from_slice(&text).context("parse resources JSON");
    }
    let mut o = Map::new();
    let sizes = [
        ("limit", &a.memory),
        ("reservation", &a.memory_reservation),
        ("swap", &a.memory_swap),
        ("kernel", &a.kernel_memory),
        ("kernelTCP", &a.kernel_memory_tcp),
    ];
    for (key, v) in sizes {
        if let Some(v) = v {
            set(
                &mut o,
                "memory",
                key,
                json!(parse_size(v).with_context(|| format!("--memory {key}"))?),
            );
        }
    }
    if let Some(v) = a.cpu_quota {
        set(&mut o, "cpu", "quota", json!(v));
    }
    if let Some(v) = a.cpu_period {
        set(&mut o, "cpu", "period", json!(v));
    }
    if let Some(v) = a.cpu_share {
        set(&mut o, "cpu", "shares", json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        set(&mut o, "cpu", "realtimePeriod", json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        set(&mut o, "cpu", "realtimeRuntime", json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        set(&mut o, "cpu", "cpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set(&mut o, "cpu", "mems", json!(v));
    }
    if let Some(v) = a.pids_limit {
        set(&mut o, "pids", "limit", json!(v));
    }
    if let Some(v) = a.blkio_weight {
        set(&mut o, "blockIO", "weight", json!(v));
    }
    serde_json::from_value(Value::Object(o)).context("build resources")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("100m").unwrap(), 100 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-5").is_err());
    }
}
