//! Layer tar streams -> a directory in overlayfs form.
//!
//! Every entry is hostile: its path is cleaned and refused if it climbs out
//! with `..`; parents are resolved with openat2(RESOLVE_IN_ROOT) so a
//! symlink the layer made earlier cannot lead outside the directory; hard
//! links must point at an entry inside it. Whiteouts become what overlayfs
//! reads: `.wh.NAME` a 0/0 character device `NAME`, `.wh..wh..opq` the
//! `trusted.overlay.opaque` xattr on its directory. Ownership, modes
//! (setuid included), device nodes, xattrs and mtimes are kept.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmodat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use crate::error::{Error, Result};
use crate::sys;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What one layer held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
}

/// Unpacks the tar stream `tar` into the empty directory `dest`.
pub fn unpack(layer: &str, tar: impl Read, dest: &Path) -> Result<UnpackStats> {
    let root: OwnedFd = nix::fcntl::open(
        dest,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open", dest)(e.into()))?;
    let mut u = Unpacker {
        layer,
        root,
        stats: UnpackStats::default(),
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| u.err(b"", format!("read tar: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| u.err(b"", format!("read tar: {e}")))?;
        u.entry(entry)?;
    }
    u.finish()?;
    Ok(u.stats)
}

struct Unpacker<'a> {
    layer: &'a str,
    root: OwnedFd,
    stats: UnpackStats,
    dir_times: Vec<(Vec<u8>, i64)>,
}

/// `path` split into its cleaned components; `None` if it climbs out.
pub fn clean_path(path: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    for comp in path.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

impl Unpacker<'_> {
    fn err(&self, entry: &[u8], reason: impl Into<String>) -> Error {
        Error::Unpack {
            layer: self.layer.to_string(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn sys_err(&self, entry: &[u8], op: &str) -> impl Fn(Errno) -> Error + '_ {
        let entry = entry.to_vec();
        let op = op.to_string();
        move |e| self.err(&entry, format!("{op}: {e}"))
    }

    /// Opens (creating as needed) the directory `comps` inside the root.
    fn open_dir(&self, entry: &[u8], comps: &[&[u8]]) -> Result<OwnedFd> {
        let how = || {
            OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
        };
        let path = join(comps);
        let rel = if path.is_empty() { b".".to_vec() } else { path };
        match openat2(self.root.as_fd(), OsStr::from_bytes(&rel), how()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) if !comps.is_empty() => {}
            Err(e) => return Err(self.err(entry, format!("open parent: {e}"))),
        }
        // Create the missing parents one by one, each resolved in the root.
        let mut dir = self.open_dir(entry, &comps[..comps.len() - 1])?;
        let last = OsStr::from_bytes(comps[comps.len() - 1]);
        match mkdirat(dir.as_fd(), last, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.err(entry, format!("mkdir parent: {e}"))),
        }
        dir = openat2(self.root.as_fd(), OsStr::from_bytes(&join(comps)), how())
            .map_err(self.sys_err(entry, "open parent"))?;
        Ok(dir)
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let comps = clean_path(&raw).ok_or_else(|| self.err(&raw, "path leaves the layer (..)"))?;
        self.stats.entries += 1;
        let kind = entry.header().entry_type();
        let Some((&name, parents)) = comps.split_last() else {
            // The layer's root directory itself.
            if kind.is_dir() {
                self.metadata(&raw, self.root.as_fd(), b"", &mut entry, true)?;
            }
            return Ok(());
        };
        let parent = self.open_dir(&raw, parents)?;
        let parent = parent.as_fd();
        if name == OPAQUE_MARKER.as_bytes() {
            self.stats.opaque_dirs += 1;
            return sys::lsetxattr_at(parent, b"", OPAQUE_XATTR.as_bytes(), b"y")
                .map_err(|e| self.err(&raw, format!("set {OPAQUE_XATTR}: {e}")));
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                return Ok(()); // aufs metadata (.wh..wh.plnk and the like)
            }
            self.stats.whiteouts += 1;
            self.remove_existing(&raw, parent, hidden, false)?;
            return mknodat(
                parent,
                OsStr::from_bytes(hidden),
                SFlag::S_IFCHR,
                Mode::empty(),
                0,
            )
            .map_err(self.sys_err(&raw, "mknod whiteout"));
        }
        let n = OsStr::from_bytes(name);
        match kind {
            EntryType::Directory => {
                self.remove_existing(&raw, parent, name, true)?;
                match mkdirat(parent, n, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(self.err(&raw, format!("mkdir: {e}"))),
                }
                self.metadata(&raw, parent, name, &mut entry, false)?;
                self.dir_times.push((join(&comps), mtime(&entry)));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.remove_existing(&raw, parent, name, false)?;
                let fd = openat(
                    parent,
                    n,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(self.sys_err(&raw, "create"))?;
                let mut file = File::from(fd);
                let n = io::copy(&mut entry, &mut file)
                    .map_err(|e| self.err(&raw, format!("write: {e}")))?;
                self.stats.bytes += n;
                self.metadata(&raw, parent, name, &mut entry, true)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.err(&raw, "symlink without a target"))?
                    .into_owned();
                self.remove_existing(&raw, parent, name, false)?;
                symlinkat(OsStr::from_bytes(&target), parent, n)
                    .map_err(self.sys_err(&raw, "symlink"))?;
                self.metadata(&raw, parent, name, &mut entry, true)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.err(&raw, "hard link without a target"))?
                    .into_owned();
                let tcomps = clean_path(&target)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| self.err(&raw, "hard link target leaves the layer"))?;
                let how = OpenHow::new()
                    .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
                    .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
                let src = openat2(self.root.as_fd(), OsStr::from_bytes(&join(&tcomps)), how)
                    .map_err(self.sys_err(&raw, "hard link target"))?;
                self.remove_existing(&raw, parent, name, false)?;
                linkat(src.as_fd(), "", parent, n, AtFlags::AT_EMPTY_PATH)
                    .map_err(self.sys_err(&raw, "link"))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                self.remove_existing(&raw, parent, name, false)?;
                let dev = libc::makedev(major, minor);
                mknodat(parent, n, sflag, Mode::from_bits_truncate(0o600), dev)
                    .map_err(self.sys_err(&raw, "mknod"))?;
                self.metadata(&raw, parent, name, &mut entry, true)?;
            }
            // PAX and GNU long-name headers are folded into entries by tar.
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
            other => return Err(self.err(&raw, format!("unsupported tar entry type {other:?}"))),
        }
        Ok(())
    }

    /// Clears the way for a new entry: a later entry replaces an earlier one,
    /// except that a directory stays a directory.
    fn remove_existing(
        &self,
        raw: &[u8],
        parent: BorrowedFd<'_>,
        name: &[u8],
        is_dir: bool,
    ) -> Result<()> {
        let n = OsStr::from_bytes(name);
        let st = match nix::sys::stat::fstatat(parent, n, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(self.err(raw, format!("stat: {e}"))),
        };
        let existing_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if existing_dir && is_dir {
            return Ok(());
        }
        if existing_dir {
            let path = format!(
                "/proc/self/fd/{}/",
                std::os::fd::AsRawFd::as_raw_fd(&parent)
            );
            let mut p = path.into_bytes();
            p.extend_from_slice(name);
            return std::fs::remove_dir_all(OsStr::from_bytes(&p))
                .map_err(|e| self.err(raw, format!("replace directory: {e}")));
        }
        unlinkat(parent, n, UnlinkatFlags::NoRemoveDir).map_err(self.sys_err(raw, "replace"))
    }

    /// Owner, mode, xattrs and (except for directories, set at the end) mtime.
    fn metadata<R: Read>(
        &self,
        raw: &[u8],
        parent: BorrowedFd<'_>,
        name: &[u8],
        entry: &mut tar::Entry<'_, R>,
        set_time: bool,
    ) -> Result<()> {
        let h = entry.header();
        let n: &OsStr = if name.is_empty() {
            OsStr::new(".")
        } else {
            OsStr::from_bytes(name)
        };
        let uid = h.uid().map_err(|e| self.err(raw, format!("uid: {e}")))? as u32;
        let gid = h.gid().map_err(|e| self.err(raw, format!("gid: {e}")))? as u32;
        fchownat(
            parent,
            n,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(self.sys_err(raw, "chown"))?;
        let symlink = h.entry_type().is_symlink();
        if !symlink {
            let mode = h.mode().map_err(|e| self.err(raw, format!("mode: {e}")))?;
            // After chown, which clears setuid/setgid bits.
            fchmodat(
                parent,
                n,
                Mode::from_bits_truncate(mode & 0o7777),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(self.sys_err(raw, "chmod"))?;
        }
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                let Some(key) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                    continue;
                };
                // The layer's own overlay xattrs would forge whiteouts.
                if key.starts_with(b"trusted.overlay.") {
                    continue;
                }
                sys::lsetxattr_at(parent, name, key, ext.value_bytes()).map_err(|e| {
                    self.err(raw, format!("xattr {}: {e}", String::from_utf8_lossy(key)))
                })?;
            }
        }
        if set_time {
            let t = TimeSpec::new(mtime(entry), 0);
            utimensat(parent, n, &t, &t, UtimensatFlags::NoFollowSymlink)
                .map_err(self.sys_err(raw, "utimes"))?;
        }
        Ok(())
    }

    /// Directory mtimes last, deepest first, so their children don't touch them.
    fn finish(&mut self) -> Result<()> {
        self.dir_times.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        for (path, t) in std::mem::take(&mut self.dir_times) {
            let t = TimeSpec::new(t, 0);
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
            // A directory replaced later in the stream is simply skipped.
            if let Ok(fd) = openat2(self.root.as_fd(), OsStr::from_bytes(&path), how) {
                let p = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
                utimensat(
                    nix::fcntl::AT_FDCWD,
                    p.as_str(),
                    &t,
                    &t,
                    UtimensatFlags::FollowSymlink,
                )
                .map_err(self.sys_err(&path, "utimes"))?;
            }
        }
        Ok(())
    }
}

fn mtime<R: Read>(entry: &tar::Entry<'_, R>) -> i64 {
    entry.header().mtime().unwrap_or(0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_paths_and_refuses_escapes() {
        let c = |p: &str| clean_path(p.as_bytes()).map(|v| String::from_utf8(join(&v)).unwrap());
        assert_eq!(c("./a/b/").as_deref(), Some("a/b"));
        assert_eq!(c("/etc//passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(c("./").as_deref(), Some(""));
        assert_eq!(c("a/../../b"), None);
        assert_eq!(c("../x"), None);
        assert_eq!(c("a/.."), None);
    }
}
