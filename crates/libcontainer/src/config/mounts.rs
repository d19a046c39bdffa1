//! The mount plan: each `mounts[]` entry of config.json parsed into flags,
//! propagation changes, recursive attributes and filesystem data, once, in
//! the parent.

use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::error::{Error, Result};

/// `MOUNT_ATTR_*` of mount_setattr(2).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const ATIME_MASK: u64 = 0x70;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Cgroup,
    Other,
}

/// One mount, ready to perform.
#[derive(Debug, Clone)]
pub struct MountPlan {
    /// Absolute, lexically cleaned path inside the container.
    pub dest: PathBuf,
    pub kind: MountKind,
    pub fstype: String,
    /// Absolute source for binds (relative sources are relative to the bundle).
    pub source: Option<PathBuf>,
    pub flags: MsFlags,
    /// Flags cleared explicitly (`rw`, `suid`, ...), needed for bind remounts.
    pub cleared: MsFlags,
    pub data: String,
    pub propagation: Vec<MsFlags>,
    pub attr_set: u64,
    pub attr_clear: u64,
    /// `tmpcopyup`: fill a new tmpfs with what the rootfs had there.
    pub copy_up: bool,
}

/// Lexically clean an absolute path: drop `.`, resolve `..` without leaving `/`.
pub fn clean_abs(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn flag_option(opt: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    let v = match opt {
        "async" => (false, F::MS_SYNCHRONOUS),
        "atime" => (false, F::MS_NOATIME),
        "bind" => (true, F::MS_BIND),
        "defaults" => (true, F::empty()),
        "dev" => (false, F::MS_NODEV),
        "diratime" => (false, F::MS_NODIRATIME),
        "dirsync" => (true, F::MS_DIRSYNC),
        "exec" => (false, F::MS_NOEXEC),
        "iversion" => (true, F::MS_I_VERSION),
        "lazytime" => (true, F::MS_LAZYTIME),
        "loud" => (false, F::MS_SILENT),
        "mand" => (true, F::MS_MANDLOCK),
        "noatime" => (true, F::MS_NOATIME),
        "nodev" => (true, F::MS_NODEV),
        "nodiratime" => (true, F::MS_NODIRATIME),
        "noexec" => (true, F::MS_NOEXEC),
        "noiversion" => (false, F::MS_I_VERSION),
        "nolazytime" => (false, F::MS_LAZYTIME),
        "nomand" => (false, F::MS_MANDLOCK),
        "norelatime" => (false, F::MS_RELATIME),
        "nostrictatime" => (false, F::MS_STRICTATIME),
        "nosuid" => (true, F::MS_NOSUID),
        "rbind" => (true, F::MS_BIND | F::MS_REC),
        "relatime" => (true, F::MS_RELATIME),
        "remount" => (true, F::MS_REMOUNT),
        "ro" => (true, F::MS_RDONLY),
        "rw" => (false, F::MS_RDONLY),
        "silent" => (true, F::MS_SILENT),
        "strictatime" => (true, F::MS_STRICTATIME),
        "suid" => (false, F::MS_NOSUID),
        "sync" => (true, F::MS_SYNCHRONOUS),
        _ => return None,
    };
    Some(v)
}

pub fn propagation_option(opt: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match opt {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

/// Recursive mount attributes: (set?, attribute bits, atime bits to clear).
fn recursive_option(opt: &str) -> Option<(bool, u64)> {
    use attr::*;
    Some(match opt {
        "rro" => (true, RDONLY),
        "rrw" => (false, RDONLY),
        "rnosuid" => (true, NOSUID),
        "rsuid" => (false, NOSUID),
        "rnodev" => (true, NODEV),
        "rdev" => (false, NODEV),
        "rnoexec" => (true, NOEXEC),
        "rexec" => (false, NOEXEC),
        "rnodiratime" => (true, NODIRATIME),
        "rdiratime" => (false, NODIRATIME),
        "rrelatime" => (true, 0),
        "rnoatime" => (true, NOATIME),
        "rstrictatime" => (true, STRICTATIME),
        "rnosymfollow" => (true, NOSYMFOLLOW),
        "rsymfollow" => (false, NOSYMFOLLOW),
        _ => return None,
    })
}

impl MountPlan {
    pub fn from_spec(m: &Mount, index: usize, bundle: &Path) -> Result<MountPlan> {
        let field = format!("mounts[{index}]");
        // config.md: a relative destination MUST be interpreted as
        // relative to "/" (runc accepts it the same way).
        let dest = Path::new("/").join(m.destination());
        let fstype = m.typ().clone().unwrap_or_default();
        let mut flags = MsFlags::empty();
        let mut cleared = MsFlags::empty();
        let mut data = Vec::new();
        let mut propagation = Vec::new();
        let (mut attr_set, mut attr_clear) = (0, 0);
        let mut copy_up = false;
        for opt in m.options().iter().flatten() {
            if let Some((set, f)) = flag_option(opt) {
                if set {
                    flags |= f;
                    cleared &= !f;
                } else {
                    flags &= !f;
                    cleared |= f;
                }
            } else if let Some(p) = propagation_option(opt) {
                propagation.push(p);
            } else if let Some((set, a)) = recursive_option(opt) {
                if a & attr::ATIME_MASK != 0 || opt == "rrelatime" {
                    attr_clear |= attr::ATIME_MASK;
                }
                if set {
                    attr_set |= a;
                } else {
                    attr_clear |= a;
                }
            } else if opt == "tmpcopyup" {
                copy_up = true;
            } else if opt == "idmap" || opt == "ridmap" {
                return Err(Error::config(
                    format!("{field}.options"),
                    format!("option {opt:?} is not supported"),
                ));
            } else {
                data.push(opt.as_str());
            }
        }
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(Error::config(
                format!("{field}.uidMappings"),
                "id-mapped mounts are not supported",
            ));
        }
        let kind = if fstype == "bind" || flags.contains(MsFlags::MS_BIND) {
            flags |= MsFlags::MS_BIND;
            MountKind::Bind
        } else if fstype == "cgroup" || fstype == "cgroup2" {
            MountKind::Cgroup
        } else {
            MountKind::Other
        };
        let source = match (&kind, m.source()) {
            (MountKind::Bind, None) => {
                return Err(Error::config(
                    format!("{field}.source"),
                    "a bind mount needs a source",
                ))
            }
            (MountKind::Bind, Some(s)) if s.is_relative() => Some(bundle.join(s)),
            (_, s) => s.clone(),
        };
        Ok(MountPlan {
            dest: clean_abs(&dest),
            kind,
            fstype,
            source,
            flags,
            cleared,
            data: data.join(","),
            propagation,
            attr_set,
            attr_clear,
            copy_up,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<MountPlan> {
        let m: Mount = serde_json::from_str(json).unwrap();
        MountPlan::from_spec(&m, 0, Path::new("/b"))
    }

    #[test]
    fn tmpfs_options_split_into_flags_and_data() {
        let p = plan(r#"{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}"#).unwrap();
        assert_eq!(p.kind, MountKind::Other);
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
    }

    #[test]
    fn bind_with_relative_source_is_under_bundle() {
        let p = plan(r#"{"destination":"/x/../data","type":"none","source":"vol","options":["rbind","ro","rprivate"]}"#).unwrap();
        assert_eq!(p.kind, MountKind::Bind);
        assert_eq!(p.dest, PathBuf::from("/data"));
        assert_eq!(p.source, Some(PathBuf::from("/b/vol")));
        assert!(p
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(p.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_option_wins() {
        let p =
            plan(r#"{"destination":"/m","type":"tmpfs","options":["ro","rw","nosuid","suid"]}"#)
                .unwrap();
        assert!(p.flags.is_empty());
        assert!(p.cleared.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
    }

    #[test]
    fn recursive_attributes() {
        let p = plan(r#"{"destination":"/m","type":"bind","source":"/s","options":["rbind","rro","rnoatime"]}"#).unwrap();
        assert_eq!(p.attr_set, attr::RDONLY | attr::NOATIME);
        assert_eq!(p.attr_clear, attr::ATIME_MASK);
    }

    #[test]
    fn relative_destination_is_relative_to_root() {
        let p = plan(r#"{"destination":"data/../mnt/x","type":"tmpfs"}"#).unwrap();
        assert_eq!(p.dest, Path::new("/mnt/x"));
    }

    #[test]
    fn bind_without_source_is_refused() {
        assert!(plan(r#"{"destination":"/d","type":"bind"}"#).is_err());
    }
}
