//! `tmpcopyup`: fill a fresh tmpfs with what the rootfs had under it.

use std::path::Path;

/// Copy a directory's contents (files, dirs, symlinks; modes and owners)
/// into another, for `tmpcopyup`; the destination root takes the source's mode.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(from)?;
    lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let m = std::fs::symlink_metadata(&src)?;
        let ft = m.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
            continue;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
            lchown(&dst, Some(m.uid()), Some(m.gid()))?;
            // After chown, which clears set-id bits.
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
            continue;
        } else {
            continue; // device nodes, fifos, sockets are not copied
        }
        lchown(&dst, Some(m.uid()), Some(m.gid()))?;
    }
    Ok(())
}
