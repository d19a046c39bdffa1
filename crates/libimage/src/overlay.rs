//! The overlay rootfs of a container: the image's layers as lower
//! directories, the container's upper and work directories on top.
//!
//! Lower directories are passed one by one with fsconfig("lowerdir+")
//! where the kernel has it (6.8 and later), so the page-size limit of a
//! mount option string never applies; older kernels get the classic
//! `lowerdir=a:b:c` string, refused with a clear error when it is too long.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};
use crate::sys::FsContext;

/// A page, less room for the other options.
const MAX_OPTIONS: usize = 4096 - 1;

pub struct Overlay<'a> {
    /// Top layer first.
    pub lowers: &'a [PathBuf],
    pub upper: &'a Path,
    pub work: &'a Path,
}

impl Overlay<'_> {
    pub fn mount(&self, target: &Path) -> Result<()> {
        if self.lowers.is_empty() {
            return Err(Error::Mount {
                path: target.to_path_buf(),
                reason: "no lower layer".into(),
            });
        }
        if is_mounted(target) {
            return Ok(());
        }
        match self.mount_incremental(target) {
            Ok(()) => Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EINVAL)
                    || e.raw_os_error() == Some(libc::ENOSYS) =>
            {
                self.mount_classic(target)
            }
            Err(e) => Err(Error::Mount {
                path: target.to_path_buf(),
                reason: e.to_string(),
            }),
        }
    }

    fn mount_incremental(&self, target: &Path) -> std::io::Result<()> {
        let fc = FsContext::open("overlay")?;
        fc.set("source", b"overlay")?;
        for l in self.lowers {
            fc.set("lowerdir+", l.as_os_str().as_bytes())?;
        }
        fc.set("upperdir", self.upper.as_os_str().as_bytes())?;
        fc.set("workdir", self.work.as_os_str().as_bytes())?;
        fc.mount_at(target)
    }

    fn mount_classic(&self, target: &Path) -> Result<()> {
        let lowers: Vec<String> = self.lowers.iter().map(|p| escape(p)).collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            escape(self.upper),
            escape(self.work)
        );
        if data.len() > MAX_OPTIONS {
            return Err(Error::Mount {
                path: target.to_path_buf(),
                reason: format!(
                    "{} layers need {} bytes of mount options, over the kernel's {MAX_OPTIONS} \
                     (kernels from 6.8 take any number)",
                    self.lowers.len(),
                    data.len()
                ),
            });
        }
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| Error::Mount {
            path: target.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// Overlay's option syntax: ':' and ',' and '\' are escaped with '\'.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether something is mounted on `path` (its device differs from its parent's).
pub fn is_mounted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(m), Some(parent)) = (std::fs::symlink_metadata(path), path.parent()) else {
        return false;
    };
    std::fs::metadata(parent).is_ok_and(|p| p.dev() != m.dev())
}

/// Unmounts `path` if something is mounted there.
pub fn unmount(path: &Path) -> Result<()> {
    while is_mounted(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(|e| Error::Mount {
            path: path.to_path_buf(),
            reason: format!("umount: {e}"),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_option_separators() {
        assert_eq!(escape(Path::new("/a:b,c\\d")), "/a\\:b\\,c\\\\d");
    }
}
