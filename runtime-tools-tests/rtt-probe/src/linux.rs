//! Checks on the kernel-side view of the process: namespaces, id
//! mappings, time offsets, sysctl, seccomp, personality, memory policy,
//! network devices.

use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use crate::{annotation, at, errno, procfs, Tap};

const NAMESPACES: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("mount", "mnt"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("user", "user"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

/// Created namespaces differ from the runtime's, joined ones are the one
/// named by `path`, unlisted ones are the runtime's.
pub fn namespaces(c: &Value, t: &mut Tap) {
    let listed = at(c, &["linux", "namespaces"]).as_array().cloned();
    for (kind, proc_name) in NAMESPACES {
        let Some(host) = annotation(c, &format!("rtt/host-ns/{kind}")) else {
            t.skip(format!("{kind} namespace: the runtime's inode is unknown"));
            continue;
        };
        let link = format!("/proc/self/ns/{proc_name}");
        let own = match std::fs::metadata(&link) {
            Ok(m) => m.ino().to_string(),
            Err(_) if !std::path::Path::new(&link).exists() => {
                t.skip(format!("{kind} namespace: kernel has no {link}"));
                continue;
            }
            Err(e) => {
                t.ok(false, format!("{kind} namespace: stat {link}: {e}"));
                continue;
            }
        };
        let entry = listed
            .iter()
            .flatten()
            .find(|n| n["type"].as_str() == Some(*kind));
        match entry {
            None => t.eq(
                &format!("{kind} namespace (not listed: the runtime's)"),
                host,
                own.as_str(),
            ),
            Some(n) if n["path"].as_str().is_some_and(|p| !p.is_empty()) => {
                let want = annotation(c, &format!("rtt/ns/{kind}")).unwrap_or("?");
                t.eq(&format!("{kind} namespace (joined by path)"), want, &own)
            }
            Some(_) => t.ok(
                own != host,
                format!("{kind} namespace is new (inode {own}, runtime's {host})"),
            ),
        }
    }
}

pub fn seccomp(c: &Value, t: &mut Tap) {
    let s = at(c, &["linux", "seccomp"]);
    let want = if s.is_object() { "2" } else { "0" };
    t.eq(
        "Seccomp mode in /proc/self/status",
        Some(want.to_string()),
        procfs::status("Seccomp"),
    );
    // A rule for mkdirat/mkdir with SCMP_ACT_ERRNO is checked by calling it.
    for r in s["syscalls"].as_array().into_iter().flatten() {
        let names = r["names"].as_array().cloned().unwrap_or_default();
        if r["action"] != "SCMP_ACT_ERRNO" || !names.iter().any(|n| n == "mkdirat") {
            continue;
        }
        let want = r["errnoRet"].as_i64().unwrap_or(libc::EPERM as i64) as i32;
        let p = c"/rtt-seccomp-dir";
        // SAFETY: p is NUL-terminated.
        let rc = unsafe { libc::mkdirat(libc::AT_FDCWD, p.as_ptr(), 0o755) };
        t.eq(
            "mkdirat fails with the rule's errnoRet",
            (-1, want),
            (rc, errno()),
        );
    }
}

pub fn personality(c: &Value, t: &mut Tap) {
    let p = at(c, &["linux", "personality"]);
    let Some(domain) = p["domain"].as_str() else {
        return;
    };
    // SAFETY: 0xffffffff queries without changing the persona.
    let got = unsafe { libc::personality(0xffff_ffff) };
    let want = if domain == "LINUX32" { 0x0008 } else { 0 };
    t.eq(&format!("personality domain {domain}"), want, got & 0xff);
}

pub fn sysctl(c: &Value, t: &mut Tap) {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for (k, v) in at(c, &["linux", "sysctl"])
        .as_object()
        .into_iter()
        .flatten()
    {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        let got = std::fs::read_to_string(&path).map(|s| norm(&s));
        t.eq(
            &format!("sysctl {k}"),
            Ok(norm(v.as_str().unwrap_or(""))),
            got.map_err(|e| e.to_string()),
        );
    }
}

/// uidMappings and gidMappings as /proc/self/{uid,gid}_map show them.
pub fn id_mappings(c: &Value, t: &mut Tap) {
    for (field, file) in [("uidMappings", "uid_map"), ("gidMappings", "gid_map")] {
        let want: Vec<(u64, u64, u64)> = at(c, &["linux", field])
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let n = |k: &str| m[k].as_u64().unwrap_or(u64::MAX);
                (n("containerID"), n("hostID"), n("size"))
            })
            .collect();
        let text = std::fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default();
        let got: Vec<(u64, u64, u64)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                (f.len() == 3).then(|| (f[0], f[1], f[2]))
            })
            .collect();
        t.eq(&format!("linux.{field} -> /proc/self/{file}"), want, got);
    }
}

/// linux.memoryPolicy through get_mempolicy(2).
pub fn memory_policy(c: &Value, t: &mut Tap) {
    let p = at(c, &["linux", "memoryPolicy"]);
    let Some(mode) = p["mode"].as_str() else {
        return;
    };
    let want = match mode {
        "MPOL_DEFAULT" => 0,
        "MPOL_PREFERRED" => 1,
        "MPOL_BIND" => 2,
        "MPOL_INTERLEAVE" => 3,
        "MPOL_LOCAL" => 4,
        "MPOL_PREFERRED_MANY" => 5,
        "MPOL_WEIGHTED_INTERLEAVE" => 6,
        _ => -1,
    };
    let mut got: libc::c_int = -1;
    let mut mask = [0 as libc::c_ulong; 16];
    // SAFETY: mode and mask point at buffers we own; maxnode fits the mask.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut got as *mut libc::c_int,
            mask.as_mut_ptr(),
            (mask.len() * 64) as libc::c_ulong,
            0usize,
            0usize,
        )
    };
    t.eq("get_mempolicy mode", (0, want), (rc, got));
}

/// linux.timeOffsets as /proc/self/timens_offsets shows them.
pub fn time_offsets(c: &Value, t: &mut Tap) {
    let text = std::fs::read_to_string("/proc/self/timens_offsets").unwrap_or_default();
    for (clock, off) in at(c, &["linux", "timeOffsets"])
        .as_object()
        .into_iter()
        .flatten()
    {
        let want = format!(
            "{clock} {} {}",
            off["secs"].as_i64().unwrap_or(0),
            off["nanosecs"].as_i64().unwrap_or(0)
        );
        let got = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .find(|l| l.starts_with(clock.as_str()));
        t.eq(&format!("timeOffsets.{clock}"), Some(want), got);
    }
}

/// linux.netDevices: each device is in the container under its new name,
/// up, with the address the runner gave it on the host (annotation
/// `rtt/netdev-addr/<host name>`).
pub fn net_devices(c: &Value, t: &mut Tap) {
    for (host, d) in at(c, &["linux", "netDevices"])
        .as_object()
        .into_iter()
        .flatten()
    {
        let name = d["name"].as_str().unwrap_or(host);
        let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok());
        t.ok(
            flags.is_some(),
            format!("netDevices {host:?} is {name:?} in the container"),
        );
        t.ok(
            flags.is_some_and(|f| f & libc::IFF_UP as u32 != 0),
            format!("{name} is up (flags {flags:?})"),
        );
        if let Some(want) = annotation(c, &format!("rtt/netdev-addr/{host}")) {
            t.eq(
                &format!("{name} keeps its address"),
                Some(want.to_string()),
                ipv4_of(name),
            );
        }
    }
}

fn ipv4_of(name: &str) -> Option<String> {
    // SAFETY: a socket for the ioctl, closed below; the ifreq is ours and
    // its name fits (checked).
    unsafe {
        if name.len() >= libc::IFNAMSIZ {
            return None;
        }
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if s < 0 {
            return None;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in name.bytes().enumerate() {
            req.ifr_name[i] = b as libc::c_char;
        }
        let rc = libc::ioctl(s, libc::SIOCGIFADDR, &mut req);
        libc::close(s);
        if rc != 0 {
            return None;
        }
        let sin = &*(&req.ifr_ifru.ifru_addr as *const libc::sockaddr as *const libc::sockaddr_in);
        Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).to_string())
    }
}
