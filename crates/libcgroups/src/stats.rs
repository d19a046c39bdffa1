//! Stats in the shape of runc's `events --stats` data.

use std::path::Path;

use serde::Serialize;
use serde_json::{json, Value};

/// The `data` object of a runc stats event.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Stats(pub Value);

fn read_u64(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// "key value" lines as a JSON object of numbers.
fn flat_keyed(p: &Path) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for line in std::fs::read_to_string(p).unwrap_or_default().lines() {
        if let Some((k, v)) = line.split_once(' ') {
            if let Ok(n) = v.trim().parse::<u64>() {
                m.insert(k.to_string(), json!(n));
            }
        }
    }
    m
}

pub fn v1(memory: Option<&Path>, cpuacct: Option<&Path>, pids: Option<&Path>) -> Stats {
    let mut data = json!({"cpu": {"usage": {}, "throttling": {}}, "memory": {}, "pids": {}, "blkio": {}, "hugetlb": {}});
    if let Some(d) = cpuacct {
        let percpu: Vec<u64> = std::fs::read_to_string(d.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        let st = flat_keyed(&d.join("cpuacct.stat"));
        let tick = 10_000_000u64; // USER_HZ 100 -> ns
        data["cpu"]["usage"] = json!({
            "total": read_u64(&d.join("cpuacct.usage")),
            "percpu": percpu,
            "user": st.get("user").and_then(Value::as_u64).unwrap_or(0) * tick,
            "kernel": st.get("system").and_then(Value::as_u64).unwrap_or(0) * tick,
        });
    }
    if let Some(d) = memory {
        let entry = |prefix: &str| {
            json!({
                "usage": read_u64(&d.join(format!("{prefix}usage_in_bytes"))),
                "max": read_u64(&d.join(format!("{prefix}max_usage_in_bytes"))),
                "limit": read_u64(&d.join(format!("{prefix}limit_in_bytes"))),
                "failcnt": read_u64(&d.join(format!("{prefix}failcnt"))),
            })
        };
        let raw = flat_keyed(&d.join("memory.stat"));
        let oom = flat_keyed(&d.join("memory.oom_control"));
        data["memory"] = json!({
            "cache": raw.get("total_cache").cloned().unwrap_or(json!(0)),
            "usage": entry("memory."),
            "swap": entry("memory.memsw."),
            "kernel": entry("memory.kmem."),
            "kernelTCP": entry("memory.kmem.tcp."),
            "raw": raw,
            "oom_kill": oom.get("oom_kill").cloned().unwrap_or(json!(0)),
        });
    }
    if let Some(d) = pids {
        data["pids"] = json!({"current": read_u64(&d.join("pids.current")), "limit": read_u64(&d.join("pids.max"))});
    }
    Stats(data)
}

pub fn v2(dir: &Path) -> Stats {
    let cpu = flat_keyed(&dir.join("cpu.stat"));
    let us = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
    let raw = flat_keyed(&dir.join("memory.stat"));
    let events = flat_keyed(&dir.join("memory.events"));
    Stats(json!({
        "cpu": {
            "usage": {"total": us("usage_usec"), "user": us("user_usec"), "kernel": us("system_usec"), "percpu": []},
            "throttling": {"periods": cpu.get("nr_periods"), "throttled_periods": cpu.get("nr_throttled"), "throttled_time": us("throttled_usec")},
        },
        "memory": {
            "cache": raw.get("file").cloned().unwrap_or(json!(0)),
            "usage": {"usage": read_u64(&dir.join("memory.current")), "max": read_u64(&dir.join("memory.peak")), "limit": read_u64(&dir.join("memory.max")), "failcnt": events.get("max").cloned().unwrap_or(json!(0))},
            "swap": {"usage": read_u64(&dir.join("memory.swap.current")), "limit": read_u64(&dir.join("memory.swap.max"))},
            "raw": raw,
            "oom_kill": events.get("oom_kill").cloned().unwrap_or(json!(0)),
        },
        "pids": {"current": read_u64(&dir.join("pids.current")), "limit": read_u64(&dir.join("pids.max"))},
        "blkio": {},
        "hugetlb": {},
    }))
}
