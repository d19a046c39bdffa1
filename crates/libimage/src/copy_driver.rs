//! The copy driver: where overlayfs is unavailable, a container's rootfs is
//! a real directory built by copying the layers bottom up and applying
//! each layer's whiteouts and opaque directories as it goes.

use std::fs;
use std::os::unix::fs::{chown, lchown, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{mknod, Mode, SFlag};

use crate::error::{Error, Result};
use crate::unpack::OPAQUE_XATTR;

/// Copies the layer tree `src` onto `dest`.
pub fn apply_layer(src: &Path, dest: &Path) -> Result<()> {
    for e in fs::read_dir(src).map_err(Error::io("read", src))?.flatten() {
        let from = e.path();
        let to = dest.join(e.file_name());
        let m = fs::symlink_metadata(&from).map_err(Error::io("stat", &from))?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            remove(&to)?;
            continue;
        }
        if ft.is_dir() {
            let opaque = crate::sys::lgetxattr(&from, OPAQUE_XATTR)
                .ok()
                .flatten()
                .as_deref()
                == Some(b"y");
            let existing = fs::symlink_metadata(&to).ok();
            if opaque || existing.as_ref().is_some_and(|x| !x.is_dir()) {
                remove(&to)?;
            }
            if !to.exists() {
                fs::create_dir(&to).map_err(Error::io("create", &to))?;
            }
            apply_layer(&from, &to)?;
            copy_owner_mode(&m, &to)?;
            continue;
        }
        remove(&to)?;
        if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(Error::io("readlink", &from))?;
            std::os::unix::fs::symlink(&target, &to).map_err(Error::io("symlink", &to))?;
            lchown(&to, Some(m.uid()), Some(m.gid())).map_err(Error::io("chown", &to))?;
        } else if ft.is_file() {
            fs::copy(&from, &to).map_err(Error::io("copy", &to))?;
            copy_owner_mode(&m, &to)?;
        } else {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else if ft.is_fifo() {
                SFlag::S_IFIFO
            } else {
                continue; // sockets are not layer content
            };
            mknod(&to, kind, Mode::from_bits_truncate(0o600), m.rdev())
                .map_err(|e| Error::io("mknod", &to)(e.into()))?;
            copy_owner_mode(&m, &to)?;
        }
    }
    Ok(())
}

fn copy_owner_mode(m: &fs::Metadata, to: &Path) -> Result<()> {
    chown(to, Some(m.uid()), Some(m.gid())).map_err(Error::io("chown", to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777))
        .map_err(Error::io("chmod", to))
}

fn remove(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).map_err(Error::io("remove", p)),
        Ok(_) => fs::remove_file(p).map_err(Error::io("remove", p)),
        Err(_) => Ok(()),
    }
}
