//! linux.resources as the container's own cgroup files show them.
//!
//! The config mounts cgroup at /sys/fs/cgroup; on v1 each controller's
//! directory there is the container's cgroup, on v2 the root of the mount
//! is.

use std::path::Path;

use serde_json::Value;

use crate::{at, errno, Tap};

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The container's own directory below the mount: on v1 the runtime
/// mounts each controller's cgroup there; on v2 the mount shows the
/// hierarchy from the cgroup namespace's root, which without a namespace
/// of the container's own is the host's, so /proc/self/cgroup says where.
fn own_dir() -> String {
    if !v2() {
        return String::new();
    }
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        })
        .map(|p| p.trim_end_matches('/').to_string())
        .unwrap_or_default()
}

fn read(file: &str) -> Result<String, String> {
    std::fs::read_to_string(format!("/sys/fs/cgroup{}/{file}", own_dir()))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{file}: {e}"))
}

/// Compare a cgroup file with the value config-linux.md says it gets.
fn file(t: &mut Tap, field: &str, file: &str, want: String) {
    t.eq(&format!("{field} -> {file}"), Ok(want), read(file));
}

fn num(v: &Value) -> Option<i64> {
    v.as_i64()
}

pub fn resources(c: &Value, t: &mut Tap) {
    let r = at(c, &["linux", "resources"]);
    if v2() {
        return resources_v2(r, t);
    }
    let m = &r["memory"];
    if let Some(v) = num(&m["limit"]) {
        file(
            t,
            "memory.limit",
            "memory/memory.limit_in_bytes",
            v.to_string(),
        );
    }
    if let Some(v) = num(&m["reservation"]) {
        let f = "memory/memory.soft_limit_in_bytes";
        file(t, "memory.reservation", f, v.to_string());
    }
    if let Some(v) = num(&m["swap"]) {
        let f = "memory/memory.memsw.limit_in_bytes";
        file(t, "memory.swap", f, v.to_string());
    }
    if let Some(v) = num(&m["swappiness"]) {
        file(
            t,
            "memory.swappiness",
            "memory/memory.swappiness",
            v.to_string(),
        );
    }
    if m["disableOOMKiller"].as_bool() == Some(true) {
        let got = read("memory/memory.oom_control").map(|s| s.contains("oom_kill_disable 1"));
        t.eq(
            "memory.disableOOMKiller -> memory.oom_control",
            Ok(true),
            got,
        );
    }
    let cpu = &r["cpu"];
    for (field, f) in [
        ("shares", "cpu/cpu.shares"),
        ("quota", "cpu/cpu.cfs_quota_us"),
        ("period", "cpu/cpu.cfs_period_us"),
        ("realtimeRuntime", "cpu/cpu.rt_runtime_us"),
        ("realtimePeriod", "cpu/cpu.rt_period_us"),
    ] {
        if let Some(v) = num(&cpu[field]) {
            file(t, &format!("cpu.{field}"), f, v.to_string());
        }
    }
    if let Some(v) = num(&cpu["burst"]) {
        file(t, "cpu.burst", "cpu/cpu.cfs_burst_us", v.to_string());
    }
    if let Some(v) = num(&cpu["idle"]) {
        file(t, "cpu.idle", "cpu/cpu.idle", v.to_string());
    }
    if let Some(v) = num(&m["kernelTCP"]) {
        let f = "memory/memory.kmem.tcp.limit_in_bytes";
        file(t, "memory.kernelTCP", f, v.to_string());
    }
    cpuset_and_pids(r, "cpuset/", "pids/", t);
    blkio_v1(&r["blockIO"], t);
    network_v1(&r["network"], t);
}

/// net_cls and net_prio, mounted together or apart.
fn network_v1(n: &Value, t: &mut Tap) {
    let dir = |c: &str| {
        [c, "net_cls,net_prio"]
            .into_iter()
            .find(|d| Path::new("/sys/fs/cgroup").join(d).is_dir())
            .unwrap_or(c)
            .to_string()
    };
    if let Some(id) = num(&n["classID"]) {
        let f = format!("{}/net_cls.classid", dir("net_cls"));
        file(t, "network.classID", &f, id.to_string());
    }
    for p in n["priorities"].as_array().into_iter().flatten() {
        let line = format!("{} {}", p["name"].as_str().unwrap_or(""), p["priority"]);
        let f = format!("{}/net_prio.ifpriomap", dir("net_prio"));
        let got = read(&f).map(|s| s.lines().any(|l| l == line));
        t.eq(&format!("network.priorities {line} -> {f}"), Ok(true), got);
    }
}

fn blkio_v1(b: &Value, t: &mut Tap) {
    if let Some(w) = num(&b["weight"]) {
        let f = if Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists() {
            "blkio/blkio.weight"
        } else {
            "blkio/blkio.bfq.weight"
        };
        let got = read(f).map(|s| {
            s.lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("default ")
                .to_string()
        });
        t.eq(&format!("blockIO.weight -> {f}"), Ok(w.to_string()), got);
    }
    for (field, f) in [
        (
            "throttleReadBpsDevice",
            "blkio/blkio.throttle.read_bps_device",
        ),
        (
            "throttleWriteBpsDevice",
            "blkio/blkio.throttle.write_bps_device",
        ),
        (
            "throttleReadIOPSDevice",
            "blkio/blkio.throttle.read_iops_device",
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio/blkio.throttle.write_iops_device",
        ),
    ] {
        for d in b[field].as_array().into_iter().flatten() {
            let line = format!("{}:{} {}", d["major"], d["minor"], d["rate"]);
            let got = read(f).map(|s| s.lines().any(|l| l == line));
            t.eq(&format!("blockIO.{field} {line} -> {f}"), Ok(true), got);
        }
    }
}

fn resources_v2(r: &Value, t: &mut Tap) {
    let m = &r["memory"];
    if let Some(v) = num(&m["limit"]) {
        file(t, "memory.limit", "memory.max", v.to_string());
    }
    if let Some(v) = num(&m["reservation"]) {
        file(t, "memory.reservation", "memory.low", v.to_string());
    }
    if let (Some(s), Some(l)) = (num(&m["swap"]), num(&m["limit"])) {
        file(t, "memory.swap", "memory.swap.max", (s - l).to_string());
    }
    let cpu = &r["cpu"];
    if let Some(q) = num(&cpu["quota"]) {
        let p = num(&cpu["period"]).unwrap_or(100_000);
        file(t, "cpu.quota", "cpu.max", format!("{q} {p}"));
    }
    if let Some(s) = num(&cpu["shares"]).filter(|s| *s >= 2) {
        // The spec leaves the conversion to the runtime: take the linear
        // one of runc 1.1/1.2 and the quadratic one of crun and later runc.
        let linear = 1 + ((s - 2) * 9999) / 262_142;
        let l = (s as f64).log2();
        let quadratic = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as i64;
        let got = read("cpu.weight").ok().and_then(|w| w.parse::<i64>().ok());
        t.ok(
            got == Some(linear) || got == Some(quadratic),
            format!("cpu.shares {s} -> cpu.weight {got:?} (runc {linear} or crun {quadratic})"),
        );
    }
    if let Some(v) = num(&cpu["burst"]) {
        file(t, "cpu.burst", "cpu.max.burst", v.to_string());
    }
    if let Some(v) = num(&cpu["idle"]) {
        file(t, "cpu.idle", "cpu.idle", v.to_string());
    }
    cpuset_and_pids(r, "", "", t);
}

/// cpu.cpus, cpu.mems and pids.limit: the same files on both versions,
/// under the controller's directory on v1 (`cpuset_dir`, `pids_dir`).
fn cpuset_and_pids(r: &Value, cpuset_dir: &str, pids_dir: &str, t: &mut Tap) {
    for field in ["cpus", "mems"] {
        if let Some(v) = r["cpu"][field].as_str() {
            let f = format!("{cpuset_dir}cpuset.{field}");
            file(t, &format!("cpu.{field}"), &f, v.to_string());
        }
    }
    if let Some(v) = num(&r["pids"]["limit"]) {
        let want = if v <= 0 {
            "max".to_string()
        } else {
            v.to_string()
        };
        file(t, "pids.limit", &format!("{pids_dir}pids.max"), want);
    }
}

/// The device allowlist: for each device node the container has, open it
/// and compare with what the rules (last match wins) allow for reading.
/// Only devices from linux.devices are tried (runtimes add allow rules
/// for the default devices of their own).
pub fn device_access(c: &Value, t: &mut Tap) {
    let rules = at(c, &["linux", "resources", "devices"]);
    for d in at(c, &["linux", "devices"])
        .as_array()
        .into_iter()
        .flatten()
    {
        let path = d["path"].as_str().unwrap_or("");
        let kind = d["type"].as_str().unwrap_or("");
        let (ma, mi) = (d["major"].as_i64(), d["minor"].as_i64());
        let mut allowed = false;
        for r in rules.as_array().into_iter().flatten() {
            let rk = r["type"].as_str().unwrap_or("a");
            let type_ok = rk == "a" || rk == kind;
            let ma_ok = r["major"].as_i64().is_none_or(|m| m == -1 || Some(m) == ma);
            let mi_ok = r["minor"].as_i64().is_none_or(|m| m == -1 || Some(m) == mi);
            let access = r["access"].as_str().unwrap_or("rwm");
            if type_ok && ma_ok && mi_ok && access.contains('r') {
                allowed = r["allow"].as_bool() == Some(true);
            }
        }
        let p = std::ffi::CString::new(path).unwrap_or_default();
        // SAFETY: p is NUL-terminated; the fd is closed right away.
        let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
        let err = errno();
        if fd >= 0 {
            // SAFETY: fd is ours.
            unsafe { libc::close(fd) };
        }
        let denied = fd < 0 && err == libc::EPERM;
        t.eq(
            &format!("open({path}) allowed by the device rules"),
            allowed,
            !denied,
        );
    }
}
