//! Readers for /proc/self files.

use std::path::{Component, Path, PathBuf};

/// One line of /proc/self/mountinfo.
pub struct MountInfo {
    pub mount_point: String,
    /// Per-mount options (ro, nosuid, relatime...).
    pub options: Vec<String>,
    /// Optional fields (shared:N, master:N, unbindable).
    pub optional: Vec<String>,
    pub fstype: String,
    /// Superblock options (mode=755, size=...).
    pub super_options: Vec<String>,
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(n as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

pub fn mountinfo() -> Vec<MountInfo> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if f.len() < 6 || r.len() < 3 {
                return None;
            }
            Some(MountInfo {
                mount_point: unescape(f[4]),
                options: f[5].split(',').map(str::to_string).collect(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: r[0].to_string(),
                super_options: r[2].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// A field of /proc/self/status.
pub fn status(field: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == field).then(|| v.trim().to_string())
    })
}

/// `p` made absolute (relative to "/") and lexically cleaned.
pub fn clean(p: &str) -> String {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// (st_mode, st_rdev, st_uid, st_gid) of `path`, not following a last symlink.
pub fn lstat(path: &str) -> Option<(u32, u64, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.mode(), m.rdev(), m.uid(), m.gid()))
}

pub fn major(rdev: u64) -> u64 {
    libc::major(rdev) as u64
}

pub fn minor(rdev: u64) -> u64 {
    libc::minor(rdev) as u64
}

/// True if the filesystem holding `path` is mounted read-only.
pub fn read_only(path: &str) -> Option<bool> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; c is NUL-terminated.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return None;
        }
        Some(s.f_flag & libc::ST_RDONLY != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_makes_absolute_and_resolves_dots() {
        assert_eq!(clean("mnt/a"), "/mnt/a");
        assert_eq!(clean("/x/../mnt/./b/"), "/mnt/b");
        assert_eq!(clean("../.."), "/");
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape(r"/plain\"), "/plain\\");
    }
}
