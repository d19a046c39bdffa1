//! The one translation from `linux.resources` to cgroup file writes. Each
//! [`Setting`] says what to write on v1 and on v2; the backends only pick
//! their half (and the directory).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use crate::convert;

/// One file write: controller (v1 subsystem, or the v2 controller that
/// owns the file), file name, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
}

/// A value and where it lands on each version (None: no such knob there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The config field, for errors.
    pub field: &'static str,
    pub v1: Option<Write>,
    pub v2: Option<Write>,
}

fn w(controller: &'static str, file: impl Into<String>, value: impl Into<String>) -> Option<Write> {
    Some(Write {
        controller,
        file: file.into(),
        value: value.into(),
    })
}

fn both(
    field: &'static str,
    c: &'static str,
    v1: &str,
    v2: &str,
    v1v: String,
    v2v: String,
) -> Setting {
    Setting {
        field,
        v1: w(c, v1, v1v),
        v2: w(c, v2, v2v),
    }
}

fn dev(major: i64, minor: i64) -> String {
    format!("{major}:{minor}")
}

/// v1 devices rule line: "c 1:3 rwm", with * for wildcards.
pub fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let typ = d
        .typ()
        .map_or_else(|| "a".to_string(), |t| t.as_str().to_string());
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if typ == "a" {
        return "a".into();
    }
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

/// Translate resources into settings, in the order they must be written.
pub fn settings(r: &LinuxResources) -> Vec<Setting> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        // Raising: mem+swap first; the v1 backend retries the other order.
        if let Some(swap) = m.swap() {
            out.push(Setting {
                field: "linux.resources.memory.swap",
                v1: w("memory", "memory.memsw.limit_in_bytes", swap.to_string()),
                v2: w(
                    "memory",
                    "memory.swap.max",
                    convert::swap_to_v2(swap, m.limit()),
                ),
            });
        }
        if let Some(l) = m.limit() {
            out.push(both(
                "linux.resources.memory.limit",
                "memory",
                "memory.limit_in_bytes",
                "memory.max",
                l.to_string(),
                convert::limit_or_max(l),
            ));
        }
        if let Some(v) = m.reservation() {
            out.push(both(
                "linux.resources.memory.reservation",
                "memory",
                "memory.soft_limit_in_bytes",
                "memory.low",
                v.to_string(),
                convert::limit_or_max(v),
            ));
        }
        if let Some(v) = m.kernel_tcp() {
            out.push(Setting {
                field: "linux.resources.memory.kernelTCP",
                v1: w("memory", "memory.kmem.tcp.limit_in_bytes", v.to_string()),
                v2: None,
            });
        }
        if let Some(v) = m.swappiness() {
            out.push(Setting {
                field: "linux.resources.memory.swappiness",
                v1: w("memory", "memory.swappiness", v.to_string()),
                v2: None,
            });
        }
        if let Some(true) = m.disable_oom_killer() {
            out.push(Setting {
                field: "linux.resources.memory.disableOOMKiller",
                v1: w("memory", "memory.oom_control", "1"),
                v2: None,
            });
        }
        if let Some(v) = m.use_hierarchy() {
            out.push(Setting {
                field: "linux.resources.memory.useHierarchy",
                v1: w("memory", "memory.use_hierarchy", if v { "1" } else { "0" }),
                v2: None,
            });
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s > 0) {
            out.push(both(
                "linux.resources.cpu.shares",
                "cpu",
                "cpu.shares",
                "cpu.weight",
                s.to_string(),
                convert::shares_to_weight(s).to_string(),
            ));
        }
        if let Some(p) = c.period().filter(|p| *p > 0) {
            out.push(Setting {
                field: "linux.resources.cpu.period",
                v1: w("cpu", "cpu.cfs_period_us", p.to_string()),
                v2: None,
            });
        }
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            out.push(Setting {
                field: "linux.resources.cpu.quota",
                v1: w("cpu", "cpu.cfs_quota_us", q.to_string()),
                v2: None,
            });
        }
        if c.quota().is_some() || c.period().is_some() {
            out.push(Setting {
                field: "linux.resources.cpu.quota",
                v1: None,
                v2: w("cpu", "cpu.max", convert::cpu_max(c.quota(), c.period())),
            });
        }
        if let Some(b) = c.burst() {
            out.push(both(
                "linux.resources.cpu.burst",
                "cpu",
                "cpu.cfs_burst_us",
                "cpu.max.burst",
                b.to_string(),
                b.to_string(),
            ));
        }
        if let Some(i) = c.idle() {
            out.push(both(
                "linux.resources.cpu.idle",
                "cpu",
                "cpu.idle",
                "cpu.idle",
                i.to_string(),
                i.to_string(),
            ));
        }
        if let Some(p) = c.realtime_period().filter(|p| *p > 0) {
            out.push(Setting {
                field: "linux.resources.cpu.realtimePeriod",
                v1: w("cpu", "cpu.rt_period_us", p.to_string()),
                v2: None,
            });
        }
        if let Some(rt) = c.realtime_runtime().filter(|r| *r != 0) {
            out.push(Setting {
                field: "linux.resources.cpu.realtimeRuntime",
                v1: w("cpu", "cpu.rt_runtime_us", rt.to_string()),
                v2: None,
            });
        }
        if let Some(cpus) = c.cpus().as_ref().filter(|s| !s.is_empty()) {
            out.push(both(
                "linux.resources.cpu.cpus",
                "cpuset",
                "cpuset.cpus",
                "cpuset.cpus",
                cpus.clone(),
                cpus.clone(),
            ));
        }
        if let Some(mems) = c.mems().as_ref().filter(|s| !s.is_empty()) {
            out.push(both(
                "linux.resources.cpu.mems",
                "cpuset",
                "cpuset.mems",
                "cpuset.mems",
                mems.clone(),
                mems.clone(),
            ));
        }
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() <= 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        out.push(both(
            "linux.resources.pids.limit",
            "pids",
            "pids.max",
            "pids.max",
            v.clone(),
            v,
        ));
    }
    if let Some(b) = r.block_io() {
        if let Some(wt) = b.weight().filter(|w| *w > 0) {
            out.push(both(
                "linux.resources.blockIO.weight",
                "blkio",
                "blkio.weight",
                "io.weight",
                wt.to_string(),
                format!("default {}", convert::blkio_weight_to_io(wt)),
            ));
        }
        if let Some(wt) = b.leaf_weight().filter(|w| *w > 0) {
            out.push(Setting {
                field: "linux.resources.blockIO.leafWeight",
                v1: w("blkio", "blkio.leaf_weight", wt.to_string()),
                v2: None,
            });
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(wt) = d.weight() {
                let id = dev(d.major(), d.minor());
                out.push(both(
                    "linux.resources.blockIO.weightDevice",
                    "blkio",
                    "blkio.weight_device",
                    "io.weight",
                    format!("{id} {wt}"),
                    format!("{id} {}", convert::blkio_weight_to_io(wt)),
                ));
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
                "rbps",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
                "wbps",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
                "riops",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
                "wiops",
            ),
        ];
        for (list, v1file, key) in throttles {
            for t in list.iter().flatten() {
                let id = dev(t.major(), t.minor());
                out.push(both(
                    "linux.resources.blockIO.throttle",
                    "blkio",
                    v1file,
                    "io.max",
                    format!("{id} {}", t.rate()),
                    format!("{id} {key}={}", t.rate()),
                ));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        let size = h.page_size();
        out.push(both(
            "linux.resources.hugepageLimits",
            "hugetlb",
            &format!("hugetlb.{size}.limit_in_bytes"),
            &format!("hugetlb.{size}.max"),
            h.limit().to_string(),
            h.limit().to_string(),
        ));
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            out.push(Setting {
                field: "linux.resources.network.classID",
                v1: w("net_cls", "net_cls.classid", id.to_string()),
                v2: None,
            });
        }
        for p in n.priorities().iter().flatten() {
            out.push(Setting {
                field: "linux.resources.network.priorities",
                v1: w(
                    "net_prio",
                    "net_prio.ifpriomap",
                    format!("{} {}", p.name(), p.priority()),
                ),
                v2: None,
            });
        }
    }
    for (dev, limit) in r.rdma().iter().flatten() {
        let mut parts = vec![dev.clone()];
        if let Some(h) = limit.hca_handles() {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = limit.hca_objects() {
            parts.push(format!("hca_object={o}"));
        }
        let line = parts.join(" ");
        out.push(both(
            "linux.resources.rdma",
            "rdma",
            "rdma.max",
            "rdma.max",
            line.clone(),
            line,
        ));
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            let controller = match k.split('.').next().unwrap_or("") {
                "memory" => "memory",
                "cpu" => "cpu",
                "cpuset" => "cpuset",
                "io" => "io",
                "pids" => "pids",
                "hugetlb" => "hugetlb",
                "rdma" => "rdma",
                _ => "",
            };
            out.push(Setting {
                field: "linux.resources.unified",
                v1: None,
                v2: w(controller, k.clone(), v.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn files(r: &LinuxResources, v2: bool) -> Vec<(String, String)> {
        settings(r)
            .into_iter()
            .filter_map(|s| if v2 { s.v2 } else { s.v1 })
            .map(|w| (w.file, w.value))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn memory_cpu_pids_on_both_versions() {
        let r = res(serde_json::json!({
            "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 20}
        }));
        assert_eq!(
            files(&r, false),
            pairs(&[
                ("memory.memsw.limit_in_bytes", "134217728"),
                ("memory.limit_in_bytes", "67108864"),
                ("memory.soft_limit_in_bytes", "33554432"),
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpuset.cpus", "0"),
                ("pids.max", "20"),
            ])
        );
        assert_eq!(
            files(&r, true),
            pairs(&[
                ("memory.swap.max", "67108864"),
                ("memory.max", "67108864"),
                ("memory.low", "33554432"),
                ("cpu.weight", "100"),
                ("cpu.max", "50000 100000"),
                ("cpuset.cpus", "0"),
                ("pids.max", "20"),
            ])
        );
    }

    #[test]
    fn unlimited_values() {
        let r = res(
            serde_json::json!({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}),
        );
        assert_eq!(
            files(&r, true),
            pairs(&[
                ("memory.swap.max", "max"),
                ("memory.max", "max"),
                ("cpu.max", "max 100000"),
                ("pids.max", "max")
            ])
        );
    }

    #[test]
    fn blkio_and_hugetlb() {
        let r = res(serde_json::json!({
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
        }));
        assert_eq!(
            files(&r, false),
            pairs(&[
                ("blkio.weight", "500"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("hugetlb.2MB.limit_in_bytes", "4194304"),
            ])
        );
        assert_eq!(
            files(&r, true),
            pairs(&[
                ("io.weight", "default 4950"),
                ("io.max", "8:0 rbps=1048576"),
                ("hugetlb.2MB.max", "4194304"),
            ])
        );
    }

    #[test]
    fn kernel_memory_is_ignored_on_v2() {
        let r = res(serde_json::json!({"memory": {"kernel": 0}}));
        assert!(files(&r, true).is_empty());
    }

    #[test]
    fn device_rules() {
        let d: LinuxDeviceCgroup = serde_json::from_value(serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"})).unwrap();
        assert_eq!(device_rule(&d), "c 1:3 rwm");
        let d: LinuxDeviceCgroup = serde_json::from_value(
            serde_json::json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}),
        )
        .unwrap();
        assert_eq!(device_rule(&d), "c 136:* rwm");
        let d: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": false, "access": "rwm"})).unwrap();
        assert_eq!(device_rule(&d), "a");
    }
}
