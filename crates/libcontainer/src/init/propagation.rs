//! Mount propagation of the container's root (`linux.rootfsPropagation`).
//!
//! Before the rootfs is assembled, "/" of the new mount namespace becomes
//! rslave, so nothing mounted for the container reaches the host; a
//! shared or rshared rootfsPropagation is used there instead (as runc, for
//! bind mounts with bidirectional propagation). The mount holding the
//! rootfs is then made private if it is shared: pivot_root refuses a
//! shared parent, and the container's mounts must not propagate back into
//! the host's copy of the rootfs. After pivot_root, rootfsPropagation is
//! applied to the new "/", the mount it is about.

use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::{errno_ctx, StepResult};
use crate::config::Config;

fn configured(cfg: &Config) -> Option<MsFlags> {
    cfg.spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(crate::config::mounts::propagation_option)
}

fn set(target: &str, flags: MsFlags) -> StepResult {
    errno_ctx(
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>),
        || format!("mount propagation {flags:?} on {target}"),
    )
}

/// "/" before the rootfs bind mount, then the rootfs's own mount.
pub fn before_rootfs(cfg: &Config) -> StepResult {
    let initial = match configured(cfg) {
        Some(f) if f.contains(MsFlags::MS_SHARED) => f,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    set("/", initial)?;
    if let Some(mp) = shared_mount_holding(&cfg.rootfs) {
        set(&mp, MsFlags::MS_PRIVATE)?;
    }
    Ok(())
}

/// rootfsPropagation on the container's "/", once it is the root.
pub fn after_pivot(cfg: &Config) -> StepResult {
    match configured(cfg) {
        Some(f) => set("/", f),
        None => Ok(()),
    }
}

/// The mount point of the mount holding `path`, if that mount is shared.
fn shared_mount_holding(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String, bool)> = None;
    for line in info.lines() {
        let (left, _) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let mp = fields.get(4)?.replace("\\040", " ");
        if !path.starts_with(&mp) {
            continue;
        }
        let shared = fields[6..].iter().any(|f| f.starts_with("shared:"));
        // Later lines are mounted on top of earlier ones at the same point.
        if best.as_ref().is_none_or(|(len, _, _)| mp.len() >= *len) {
            best = Some((mp.len(), mp, shared));
        }
    }
    best.filter(|(_, _, shared)| *shared).map(|(_, mp, _)| mp)
}
