//! linux.* fields other than namespaces: sysctl, masked and read-only
//! paths, seccomp, personality, memory policy, network devices, time
//! offsets, devices and the device cgroup, cgroup resources.

use serde_json::{json, Value};

use super::config::{add_ns, probe, probe_cfg};
use super::{case, Case};
use crate::host;
use crate::suite::{check, fail, skip};

pub fn cases() -> Vec<Case> {
    let mut v = linux_cases();
    v.extend(device_cases());
    v.extend(cgroup_cases());
    v
}

fn linux_cases() -> Vec<Case> {
    vec![
        probe_cfg("config-linux.md sysctl: net, ipc and mqueue values", &["sysctl"], |c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "2048",
                "kernel.msgmax": "4096", "fs.mqueue.msg_max": "20"})
        }),
        probe_cfg("config-linux.md maskedPaths: files and directories masked", &["masked_paths"], |c| {
            c["linux"]["maskedPaths"].as_array_mut().unwrap().extend([json!("/rtt/masked-file"), json!("/rtt/masked-dir")]);
        }),
        probe_cfg("config-linux.md readonlyPaths: made read-only", &["readonly_paths"], |c| {
            c["linux"]["readonlyPaths"].as_array_mut().unwrap().extend([json!("/tmp"), json!("/rtt/config.json")]);
        }),
        probe_cfg("config-linux.md seccomp: the process runs with the filter", &["seccomp"], |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})
        }),
        probe_cfg("config-linux.md seccomp: a rule with argument conditions", &["seccomp"], |c| {
            // The probe calls mkdirat with mode 0o755 (493).
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 39,
                    "args": [{"index": 2, "value": 493, "op": "SCMP_CMP_EQ"}]}]})
        }),
        probe_cfg("config-linux.md seccomp: no filter when linux.seccomp is absent", &["seccomp"], |_| {}),
        case("config-linux.md seccomp: SCMP_ACT_NOTIFY sends the container process state to listenerPath", |ctx| {
            let mut b = ctx.bundle(&["seccomp"]);
            let sock = ctx.dir.join("seccomp.sock");
            let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
            let rx = host::accept_in_thread(listener);
            b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock, "listenerMetadata": "rtt",
                "syscalls": [{"names": ["mknodat"], "action": "SCMP_ACT_NOTIFY"}]});
            let out = ctx.run(&b);
            crate::suite::tap_result(&out)?;
            let (data, fd) = rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .or_else(|_| crate::suite::fail("nothing connected to listenerPath"))?
                .or_else(crate::suite::fail)?;
            let state: Value = serde_json::from_slice(&data).unwrap_or(Value::Null);
            crate::suite::check(fd.is_some() && state["metadata"] == "rtt" && state["fds"].is_array(), || {
                format!("seccomp state {state}, fd {fd:?}")
            })
        }),
        probe("config-linux.md netDevices: moved into the container, renamed, up, addresses kept", &["net_devices"], |ctx, b| {
            host::veth(ctx, "rttnd0", "10.213.7.1/24").or_else(skip)?;
            b.config["linux"]["netDevices"] = json!({"rttnd0": {"name": "rtteth1"}});
            b.config["annotations"]["rtt/netdev-addr/rttnd0"] = json!("10.213.7.1");
            Ok(())
        }),
        probe_cfg("config-linux.md personality: domain LINUX32", &["personality"], |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX32"})
        }),
        probe_cfg("config-linux.md memoryPolicy: mode applied", &["memory_policy"], |c| {
            c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_PREFERRED", "nodes": "0"})
        }),
        probe_cfg("config-linux.md timeOffsets: a time namespace with offsets", &["namespaces", "time_offsets"], |c| {
            add_ns(c, json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}});
        }),
    ]
}

fn device_cases() -> Vec<Case> {
    vec![
        probe_cfg("config-linux.md devices: the runtime MUST also supply the default devices", &["default_devices"], |_| {}),
        probe_cfg("runtime-linux.md: runtimes MUST create the /dev symlinks", &["default_symlinks"], |_| {}),
        probe_cfg("config-linux.md devices: type c with fileMode, uid, gid", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                "fileMode": 0o640, "uid": 1000, "gid": 2001}])
        }),
        probe_cfg("config-linux.md devices: type b", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/rtt-loop", "type": "b", "major": 7, "minor": 0,
                "fileMode": 0o660}])
        }),
        probe_cfg("config-linux.md devices: type u (unbuffered character device)", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/rtt-tun", "type": "u", "major": 10, "minor": 200,
                "fileMode": 0o666}])
        }),
        probe_cfg("config-linux.md devices: type p (FIFO)", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/rtt-fifo", "type": "p", "fileMode": 0o600}])
        }),
        probe_cfg("config-linux.md devices: the path MAY be anywhere in the container filesystem", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/rtt/dev/null2", "type": "c", "major": 1, "minor": 3,
                "fileMode": 0o666}])
        }),
        probe("config-linux.md devices: an existing device file at path is replaced by the requested one", &["devices"], |_, b| {
            let p = b.rootfs().join("rtt/fuse");
            nix::sys::stat::mknod(&p, nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o600), nix::sys::stat::makedev(10, 229)).unwrap();
            b.config["linux"]["devices"] = json!([{"path": "/rtt/fuse", "type": "c", "major": 10, "minor": 229,
                "fileMode": 0o666, "uid": 1000, "gid": 1000}]);
            Ok(())
        }),
        probe_cfg("config-linux.md devices cgroup: allow inside deny, entries applied in the listed order", &["device_access"], |c| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
                {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666}]);
            c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]);
        }),
        probe_cfg("config-linux.md devices cgroup: deny inside allow, entries applied in the listed order", &["device_access"], |c| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
                {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666}]);
            // 10:237 is in no runtime's default allowlist.
            c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "access": "rwm"},
                {"allow": false, "type": "c", "major": 10, "minor": 237, "access": "rwm"}]);
        }),
    ]
}

fn cgroup_cases() -> Vec<Case> {
    let mut v = vec![
        probe_cfg(
            "config-linux.md memory: limit, reservation, swap, swappiness",
            &["cgroups"],
            |c| {
                c["linux"]["resources"]["memory"] = json!({"limit": 268435456, "reservation": 134217728,
                "swap": 536870912, "swappiness": 10});
            },
        ),
        probe_cfg(
            "config-linux.md memory: disableOOMKiller",
            &["cgroups"],
            |c| {
                c["linux"]["resources"]["memory"] =
                    json!({"limit": 268435456, "disableOOMKiller": true});
            },
        ),
        probe_cfg(
            "config-linux.md cpu: shares, quota, period",
            &["cgroups"],
            |c| {
                c["linux"]["resources"]["cpu"] =
                    json!({"shares": 512, "quota": 50000, "period": 100000});
            },
        ),
        probe_cfg("config-linux.md cpu: cpus and mems", &["cgroups"], |c| {
            c["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"});
        }),
        probe_cfg("config-linux.md cpu: burst and idle", &["cgroups"], |c| {
            c["linux"]["resources"]["cpu"] =
                json!({"quota": 50000, "period": 100000, "burst": 10000, "idle": 0});
        }),
        probe(
            "config-linux.md cpu: realtimePeriod and realtimeRuntime",
            &["cgroups"],
            |_, b| {
                if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
                    || !std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists()
                {
                    return skip("no cgroup v1 realtime group scheduling on this host");
                }
                // Directly under the root: a realtime budget needs one in every
                // ancestor, and only the root has one by default.
                b.config["linux"]["cgroupsPath"] = json!(format!("/rtt-rt-{}", b.id));
                b.config["linux"]["resources"]["cpu"] =
                    json!({"realtimePeriod": 1000000, "realtimeRuntime": 1000});
                Ok(())
            },
        ),
        probe_cfg("config-linux.md pids: limit", &["cgroups"], |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 100});
        }),
    ];
    v.push(case(
        "config-linux.md hugepageLimits: the hugetlb limit of the container's cgroup",
        |ctx| {
            if !std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
                return skip("the host has no 2MB huge pages");
            }
            let mut b = ctx.bundle(&[]);
            b.set_args(&["sleep", "60"]);
            b.config["linux"]["resources"]["hugepageLimits"] =
                json!([{"pageSize": "2MB", "limit": 4194304}]);
            ctx.created(&b)?;
            let pid = ctx.state(&b.id)?["pid"].as_i64().unwrap_or(0);
            let Some(file) = hugetlb_file(pid) else {
                return fail(format!("no hugetlb cgroup for pid {pid}"));
            };
            let got = std::fs::read_to_string(&file).unwrap_or_default();
            check(got.trim() == "4194304", || format!("{file}: {got:?}"))
        },
    ));
    v.push(probe(
        "config-linux.md network: classID and priorities",
        &["cgroups"],
        |_, b| {
            let v1 = |c: &str| std::path::Path::new("/sys/fs/cgroup").join(c).exists();
            if !v1("net_cls") || !v1("net_prio") || v1("cgroup.controllers") {
                return skip("the host has no cgroup v1 net_cls and net_prio hierarchy mounted");
            }
            b.config["linux"]["resources"]["network"] = json!({"classID": 1048577,
            "priorities": [{"name": "lo", "priority": 5}]});
            Ok(())
        },
    ));
    v.push(probe(
        "config-linux.md blockIO: weight",
        &["cgroups"],
        |_, b| {
            let has = |f: &str| {
                std::path::Path::new("/sys/fs/cgroup/blkio")
                    .join(f)
                    .exists()
            };
            if !has("blkio.weight") && !has("blkio.bfq.weight") {
                return skip("the host has no cgroup v1 blkio weight file (no CFQ/BFQ scheduler)");
            }
            b.config["linux"]["resources"]["blockIO"] = json!({"weight": 300});
            Ok(())
        },
    ));
    v.push(probe(
        "config-linux.md blockIO: throttle devices",
        &["cgroups"],
        |_, b| {
            let Some((major, minor)) = host::block_device() else {
                return skip("no block device on the host");
            };
            b.config["linux"]["resources"]["blockIO"] = json!({
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 300}]});
            Ok(())
        },
    ));
    v
}

/// The 2MB hugetlb limit file of `pid`'s cgroup: a v1 hugetlb hierarchy,
/// else the unified one (of a hybrid host, or the only one).
fn hugetlb_file(pid: i64) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut unified = None;
    for l in text.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        if ctrls.split(',').any(|c| c == "hugetlb") {
            return Some(format!(
                "/sys/fs/cgroup/hugetlb{path}/hugetlb.2MB.limit_in_bytes"
            ));
        }
        if ctrls.is_empty() {
            unified = Some(path.to_string());
        }
    }
    let path = unified?;
    let base = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/unified"
    };
    Some(format!("{base}{path}/hugetlb.2MB.max"))
}
