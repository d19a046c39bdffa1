//! Checks on the filesystem the process sees: mounts, paths, devices.

use serde_json::Value;

use crate::procfs::{self, clean, lstat, major, minor, MountInfo};
use crate::{at, Tap};

/// Per-mount flags as /proc/self/mountinfo shows them: (option, present
/// flag, absent flags).
const FLAGS: &[(&str, &[&str], &[&str])] = &[
    ("ro", &["ro"], &[]),
    ("rw", &["rw"], &[]),
    ("nosuid", &["nosuid"], &[]),
    ("suid", &[], &["nosuid"]),
    ("nodev", &["nodev"], &[]),
    ("dev", &[], &["nodev"]),
    ("noexec", &["noexec"], &[]),
    ("exec", &[], &["noexec"]),
    ("noatime", &["noatime"], &[]),
    ("nodiratime", &["nodiratime"], &[]),
    ("relatime", &["relatime"], &[]),
    ("strictatime", &[], &["relatime", "noatime"]),
];

/// Flags of the superblock, shown in its options: (option, present, absent).
const SB_FLAGS: &[(&str, &[&str], &[&str])] = &[
    ("sync", &["sync"], &[]),
    ("async", &[], &["sync"]),
    ("dirsync", &["dirsync"], &[]),
];

/// Options that undo each other: a later one of a group wins.
const OPPOSITES: &[&[&str]] = &[
    &["ro", "rw"],
    &["nosuid", "suid"],
    &["nodev", "dev"],
    &["noexec", "exec"],
    &["sync", "async"],
    &["noatime", "relatime", "strictatime"],
];

/// True when an option after `opts[i]` undoes it.
fn overridden(opts: &[&str], i: usize) -> bool {
    OPPOSITES
        .iter()
        .find(|g| g.contains(&opts[i]))
        .is_some_and(|g| opts[i + 1..].iter().any(|o| g.contains(o)))
}

/// Filesystem options the kernel echoes back in the superblock options,
/// octal values without leading zeros.
const DATA_KEYS: &[&str] = &["mode", "uid", "gid", "ptmxmode", "size"];

fn norm_data(opt: &str) -> String {
    match opt.split_once('=') {
        Some((k, v)) if k.ends_with("mode") => {
            let v = v.trim_start_matches('0');
            format!("{k}={}", if v.is_empty() { "0" } else { v })
        }
        _ => opt.to_string(),
    }
}

fn last_at<'a>(info: &'a [MountInfo], dest: &str) -> Option<(usize, &'a MountInfo)> {
    info.iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.mount_point == dest)
}

pub fn mounts(c: &Value, t: &mut Tap) {
    let info = procfs::mountinfo();
    let mut last_pos = 0;
    for m in c["mounts"].as_array().into_iter().flatten() {
        let dest = clean(m["destination"].as_str().unwrap_or(""));
        if dest.starts_with("/rtt") {
            continue;
        }
        let opts: Vec<&str> = m["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let Some((pos, mi)) = last_at(&info, &dest) else {
            t.ok(false, format!("{dest} is a mount point"));
            continue;
        };
        t.ok(true, format!("{dest} is a mount point"));
        // Entries are mounted in the listed order; nested mounts in
        // mountinfo come after their parents in mount order.
        t.ok(
            pos >= last_pos,
            format!("{dest} mounted after the mounts listed before it"),
        );
        last_pos = pos;
        let bind = opts.iter().any(|o| *o == "bind" || *o == "rbind");
        let kind = m["type"].as_str().unwrap_or("");
        if !bind && !kind.is_empty() && kind != "cgroup" && kind != "bind" {
            t.eq(&format!("{dest} type"), kind, &mi.fstype);
        }
        // cgroup v1 at dest is a tmpfs with a cgroup mount per hierarchy
        // below it: the flags apply to those.
        let flag_mounts: Vec<&MountInfo> = if kind == "cgroup" && mi.fstype == "tmpfs" {
            let below = format!("{dest}/");
            info.iter()
                .filter(|m| m.mount_point.starts_with(&below) && m.fstype.starts_with("cgroup"))
                .collect()
        } else {
            vec![mi]
        };
        for (i, o) in opts.iter().enumerate() {
            if overridden(&opts, i) {
                continue;
            }
            if let Some((_, present, absent)) = SB_FLAGS.iter().find(|f| f.0 == *o) {
                let sb = &mi.super_options;
                let ok = present.iter().all(|p| sb.iter().any(|x| x == p))
                    && absent.iter().all(|a| !sb.iter().any(|x| x == a));
                t.ok(ok, format!("{dest} option {o}: superblock has {sb:?}"));
            } else if let Some((_, present, absent)) = FLAGS.iter().find(|f| f.0 == *o) {
                for mi in &flag_mounts {
                    let ok = present.iter().all(|p| mi.options.iter().any(|x| x == p))
                        && absent.iter().all(|a| !mi.options.iter().any(|x| x == a));
                    let at = &mi.mount_point;
                    t.ok(ok, format!("{at} option {o}: mount has {:?}", mi.options));
                }
            } else if let Some((_, present, absent)) = o
                .strip_prefix('r')
                .and_then(|f| FLAGS.iter().find(|x| x.0 == f))
            {
                // A recursive attribute: the mount and every mount below it.
                let below = format!("{dest}/");
                for mi in info
                    .iter()
                    .filter(|m| m.mount_point == dest || m.mount_point.starts_with(&below))
                {
                    let ok = present.iter().all(|p| mi.options.iter().any(|x| x == p))
                        && absent.iter().all(|a| !mi.options.iter().any(|x| x == a));
                    let at = &mi.mount_point;
                    t.ok(ok, format!("{at} option {o}: mount has {:?}", mi.options));
                }
            } else if *o == "tmpcopyup" {
                let n = std::fs::read_dir(&dest).map(|d| d.count()).unwrap_or(0);
                t.ok(
                    n > 0,
                    format!("{dest} option tmpcopyup: the tmpfs has the directory's {n} entries"),
                );
            } else if let Some(want) = propagation(o) {
                let got = propagation_of(mi);
                t.eq(&format!("{dest} propagation {o}"), want, got);
            } else if let (Some((k, v)), "tmpfs") = (o.split_once('='), mi.fstype.as_str()) {
                // tmpfs shows mode, uid and gid only when not the default:
                // compare with the root directory of the mount instead.
                let Some((mode, _, uid, gid)) = lstat(&dest) else {
                    continue;
                };
                let got = match k {
                    "mode" => format!("{:o}", mode & 0o7777),
                    "uid" => uid.to_string(),
                    "gid" => gid.to_string(),
                    _ => {
                        let have = &mi.super_options;
                        t.ok(
                            have.iter().any(|s| s == o),
                            format!("{dest} option {o}: superblock has {have:?}"),
                        );
                        continue;
                    }
                };
                let want = if k == "mode" {
                    format!("{:o}", u32::from_str_radix(v, 8).unwrap_or(0))
                } else {
                    v.to_string()
                };
                t.eq(&format!("{dest} option {k}"), want, got);
            } else if o
                .split_once('=')
                .is_some_and(|(k, _)| DATA_KEYS.contains(&k))
            {
                let want = norm_data(o);
                let have: Vec<String> = mi.super_options.iter().map(|s| norm_data(s)).collect();
                t.ok(
                    have.contains(&want),
                    format!("{dest} option {o}: superblock has {have:?}"),
                );
            }
        }
    }
    // Mount points the runner expects beyond the config's own (submounts
    // an rbind carries along).
    for p in crate::annotation(c, "rtt/mountpoints")
        .unwrap_or("")
        .split(',')
    {
        if !p.is_empty() {
            t.ok(last_at(&info, p).is_some(), format!("{p} is a mount point"));
        }
    }
}

fn propagation(opt: &str) -> Option<&'static str> {
    Some(match opt.trim_start_matches('r') {
        "shared" => "shared",
        "slave" => "slave",
        "private" => "private",
        "unbindable" => "unbindable",
        _ => return None,
    })
}

fn propagation_of(m: &MountInfo) -> &'static str {
    let has = |p: &str| m.optional.iter().any(|o| o.starts_with(p));
    if has("shared:") {
        "shared"
    } else if has("master:") {
        "slave"
    } else if has("unbindable") {
        "unbindable"
    } else {
        "private"
    }
}

/// root.readonly, and linux.rootfsPropagation on the root mount.
pub fn root(c: &Value, t: &mut Tap) {
    let ro = at(c, &["root", "readonly"]).as_bool() == Some(true);
    t.eq(
        "root filesystem read-only",
        Some(ro),
        procfs::read_only("/"),
    );
    if let Some(p) = at(c, &["linux", "rootfsPropagation"]).as_str() {
        let info = procfs::mountinfo();
        if let (Some(want), Some((_, mi))) = (propagation(p), last_at(&info, "/")) {
            t.eq(&format!("rootfsPropagation {p}"), want, propagation_of(mi));
        }
    }
}

pub fn masked_paths(c: &Value, t: &mut Tap) {
    for p in at(c, &["linux", "maskedPaths"])
        .as_array()
        .into_iter()
        .flatten()
    {
        let p = p.as_str().unwrap_or("");
        let Some((mode, rdev, _, _)) = lstat(p) else {
            t.ok(true, format!("{p} masked (does not exist)"));
            continue;
        };
        if mode & libc::S_IFMT == libc::S_IFDIR {
            let n = std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
            let ro = procfs::read_only(p) == Some(true);
            t.ok(
                n == 0 && ro,
                format!("{p} masked: empty ({n} entries) and read-only ({ro})"),
            );
        } else {
            let null = mode & libc::S_IFMT == libc::S_IFCHR && rdev == libc::makedev(1, 3);
            let empty = std::fs::read(p).map(|b| b.is_empty()).unwrap_or(false);
            t.ok(null || empty, format!("{p} masked: /dev/null or empty"));
        }
    }
}

pub fn readonly_paths(c: &Value, t: &mut Tap) {
    for p in at(c, &["linux", "readonlyPaths"])
        .as_array()
        .into_iter()
        .flatten()
    {
        let p = p.as_str().unwrap_or("");
        match procfs::read_only(p) {
            None => t.ok(true, format!("{p} read-only (does not exist)")),
            Some(ro) => t.ok(ro, format!("{p} is on a read-only mount")),
        }
    }
}

fn device_type(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFCHR => "c",
        libc::S_IFBLK => "b",
        libc::S_IFIFO => "p",
        libc::S_IFREG => "file",
        libc::S_IFDIR => "dir",
        libc::S_IFLNK => "symlink",
        _ => "other",
    }
}

pub fn devices(c: &Value, t: &mut Tap) {
    for d in at(c, &["linux", "devices"])
        .as_array()
        .into_iter()
        .flatten()
    {
        let path = d["path"].as_str().unwrap_or("");
        let Some((mode, rdev, uid, gid)) = lstat(path) else {
            t.ok(false, format!("{path} exists"));
            continue;
        };
        let kind = d["type"].as_str().unwrap_or("");
        let want_kind = if kind == "u" { "c" } else { kind };
        t.eq(&format!("{path} type"), want_kind, device_type(mode));
        if kind != "p" {
            t.eq(
                &format!("{path} major:minor"),
                (d["major"].as_u64(), d["minor"].as_u64()),
                (Some(major(rdev)), Some(minor(rdev))),
            );
        }
        if let Some(m) = d["fileMode"].as_u64() {
            t.eq(
                &format!("{path} mode"),
                format!("{m:o}"),
                format!("{:o}", mode & 0o7777),
            );
        }
        t.eq(
            &format!("{path} owner"),
            (
                d["uid"].as_u64().unwrap_or(0) as u32,
                d["gid"].as_u64().unwrap_or(0) as u32,
            ),
            (uid, gid),
        );
    }
}

/// config-linux.md "Default Devices".
pub fn default_devices(_: &Value, t: &mut Tap) {
    for (path, ma, mi) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        match lstat(path) {
            Some((mode, rdev, _, _)) => t.eq(
                path,
                ("c", ma, mi),
                (device_type(mode), major(rdev), minor(rdev)),
            ),
            None => t.ok(false, format!("{path} exists")),
        }
    }
    let ptmx = std::fs::read_link("/dev/ptmx");
    let ok = match &ptmx {
        Ok(target) => target.as_os_str() == "pts/ptmx" || target.as_os_str() == "/dev/pts/ptmx",
        // A bind mount of /dev/pts/ptmx is also a ptmx of the container's devpts.
        Err(_) => lstat("/dev/ptmx").is_some_and(|(_, rdev, _, _)| rdev == libc::makedev(5, 2)),
    };
    t.ok(
        ok,
        format!("/dev/ptmx is the container's devpts ptmx: {ptmx:?}"),
    );
}

/// runtime-linux.md "Dev symbolic links".
pub fn default_symlinks(_: &Value, t: &mut Tap) {
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let got = std::fs::read_link(link).map(|p| p.to_string_lossy().into_owned());
        t.eq(
            &format!("symlink {link}"),
            Ok(target.to_string()),
            got.map_err(|e| e.to_string()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_option_undoes_an_earlier_one() {
        let opts = [
            "ro",
            "nosuid",
            "rw",
            "sync",
            "async",
            "noatime",
            "strictatime",
        ];
        let undone: Vec<&str> = (0..opts.len())
            .filter(|&i| overridden(&opts, i))
            .map(|i| opts[i])
            .collect();
        assert_eq!(undone, ["ro", "sync", "noatime"]);
    }

    #[test]
    fn mode_options_compare_without_leading_zeros() {
        assert_eq!(norm_data("ptmxmode=0666"), "ptmxmode=666");
        assert_eq!(norm_data("mode=0"), "mode=0");
        assert_eq!(norm_data("size=65536k"), "size=65536k");
    }
}
