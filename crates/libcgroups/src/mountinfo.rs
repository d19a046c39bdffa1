//! Where the cgroup hierarchies are mounted (/proc/self/mountinfo) and
//! which cgroup this process is in (/proc/self/cgroup).

use std::path::{Path, PathBuf};

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// v1 controllers (and "name=..." for named hierarchies); empty for cgroup2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// Cgroup mounts under `root` from mountinfo text.
pub fn parse_mountinfo(text: &str, root: &Path) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let mount_point = PathBuf::from(l[4].replace("\\040", " "));
        if !mount_point.starts_with(root) {
            continue;
        }
        match r[0] {
            "cgroup2" => out.push(Hierarchy {
                mount_point,
                controllers: Vec::new(),
                v2: true,
            }),
            "cgroup" => {
                let known = [
                    "cpu",
                    "cpuacct",
                    "cpuset",
                    "memory",
                    "devices",
                    "freezer",
                    "net_cls",
                    "net_prio",
                    "blkio",
                    "perf_event",
                    "hugetlb",
                    "pids",
                    "rdma",
                    "misc",
                ];
                let controllers = r[2]
                    .split(',')
                    .filter(|o| known.contains(o) || o.starts_with("name="))
                    .map(String::from)
                    .collect();
                out.push(Hierarchy {
                    mount_point,
                    controllers,
                    v2: false,
                })
            }
            _ => {}
        }
    }
    // A later mount on the same point hides the earlier one.
    let mut seen = Vec::new();
    out.reverse();
    out.retain(|h| {
        let fresh = !seen.contains(&h.mount_point);
        seen.push(h.mount_point.clone());
        fresh
    });
    out.reverse();
    out
}

/// This process's cgroup path in a hierarchy, from /proc/self/cgroup text.
pub fn own_path(text: &str, h: &Hierarchy) -> PathBuf {
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        let matches = if h.v2 {
            ctrls.is_empty()
        } else {
            let set: Vec<&str> = ctrls.split(',').collect();
            h.controllers.iter().all(|c| set.contains(&c.as_str())) && !set.is_empty()
        };
        if matches {
            return PathBuf::from(path);
        }
    }
    PathBuf::from("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_host() {
        let h = parse_mountinfo(HYBRID, Path::new("/sys/fs/cgroup"));
        assert_eq!(h.len(), 5);
        assert!(h[0].v2);
        assert_eq!(h[1].controllers, ["name=systemd"]);
        assert_eq!(h[3].controllers, ["cpu", "cpuacct"]);
        assert_eq!(h[4].mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn own_cgroup() {
        let h = parse_mountinfo(HYBRID, Path::new("/sys/fs/cgroup"));
        let cg = "12:memory:/user/a\n11:cpu,cpuacct:/b\n1:name=systemd:/s\n0::/u\n";
        assert_eq!(own_path(cg, &h[4]), PathBuf::from("/user/a"));
        assert_eq!(own_path(cg, &h[3]), PathBuf::from("/b"));
        assert_eq!(own_path(cg, &h[1]), PathBuf::from("/s"));
        assert_eq!(own_path(cg, &h[0]), PathBuf::from("/u"));
    }
}
