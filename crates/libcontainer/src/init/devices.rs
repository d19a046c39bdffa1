//! /dev inside the container: the default devices, `linux.devices`, and the
//! standard symlinks. Nodes are made with mknod, or bind-mounted from the
//! host inside a user namespace (where mknod is not allowed).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

use super::rootfs::{fd_path, make_in_root, open_in_root};
use super::{errno_ctx, StepResult};
use crate::config::Config;

/// One device node to create.
struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    /// From linux.devices: a file already at the path must be the same
    /// device (config-linux.md); a default device replaces whatever is there.
    requested: bool,
}

const DEFAULTS: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

fn nodes(cfg: &Config) -> StepResult<Vec<Node>> {
    let dev_is_bind = cfg
        .mounts
        .iter()
        .any(|m| m.dest == Path::new("/dev") && m.kind == crate::config::mounts::MountKind::Bind);
    let mut out = Vec::new();
    if !dev_is_bind {
        for &(path, major, minor) in DEFAULTS {
            out.push(Node {
                path: path.into(),
                kind: SFlag::S_IFCHR,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
                requested: false,
            });
        }
    }
    for (i, d) in cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        use oci_spec::runtime::LinuxDeviceType as T;
        let kind = match d.typ() {
            T::C | T::U => SFlag::S_IFCHR,
            T::B => SFlag::S_IFBLK,
            T::P => SFlag::S_IFIFO,
            T::A => {
                return Err(format!(
                    "linux.devices[{i}].type: \"a\" is not a device node type"
                ))
            }
        };
        out.retain(|n: &Node| n.path != *d.path());
        out.push(Node {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            requested: true,
        });
    }
    Ok(out)
}

fn split(path: &Path) -> StepResult<(&Path, &std::ffi::OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(format!("device path {} has no file name", path.display())),
    }
}

fn make_node(root: &OwnedFd, n: &Node, userns: bool) -> StepResult {
    if userns {
        let target = make_in_root(root, &n.path, false)?;
        let src = n.path.to_string_lossy();
        return errno_ctx(
            mount(
                Some(src.as_ref()),
                fd_path(&target).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
            || format!("bind device {}", n.path.display()),
        );
    }
    let (parent, name) = split(&n.path)?;
    let dir = make_in_root(root, parent, true)?;
    let dirfd = &dir;
    let dev = nix::sys::stat::makedev(n.major, n.minor);
    let mode = Mode::from_bits_truncate(n.mode);
    let mut r = mknodat(dirfd, name, n.kind, mode, dev);
    if r == Err(nix::errno::Errno::EEXIST) {
        if n.requested && !same_device(dirfd, name, n) {
            return Err(format!(
                "linux.devices: {} already exists and is not the requested device",
                n.path.display()
            ));
        }
        // The same device with another mode or owner: made again as asked.
        let _ = nix::unistd::unlinkat(dirfd, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        r = mknodat(dirfd, name, n.kind, mode, dev);
    }
    errno_ctx(r, || format!("mknod {}", n.path.display()))?;
    errno_ctx(
        fchownat(
            dirfd,
            name,
            Some(Uid::from_raw(n.uid)),
            Some(Gid::from_raw(n.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ),
        || format!("chown {}", n.path.display()),
    )?;
    errno_ctx(
        nix::sys::stat::fchmodat(
            dirfd,
            name,
            mode,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        ),
        || format!("chmod {}", n.path.display()),
    )
}

/// True if `name` in `dir` is a node of `n`'s type (and numbers).
fn same_device(dir: &OwnedFd, name: &std::ffi::OsStr, n: &Node) -> bool {
    let Ok(st) = nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
    else {
        return false;
    };
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    kind == n.kind
        && (n.kind == SFlag::S_IFIFO || st.st_rdev == nix::sys::stat::makedev(n.major, n.minor))
}

/// Create the device nodes and /dev symlinks inside `root`.
pub fn create(root: &OwnedFd, cfg: &Config, userns: bool) -> StepResult {
    let old = nix::sys::stat::umask(Mode::empty());
    let r = (|| {
        for n in nodes(cfg)? {
            make_node(root, &n, userns)?;
        }
        let dev = make_in_root(root, Path::new("/dev"), true)?;
        let dirfd = &dev;
        let mut links: Vec<(&str, &str)> = SYMLINKS.to_vec();
        if Path::new("/proc/kcore").exists() {
            links.push(("/proc/kcore", "core"));
        }
        for (target, name) in links {
            match nix::unistd::symlinkat(target, dirfd, name) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(format!("symlink /dev/{name}: {}", e.desc())),
            }
        }
        if open_in_root(root, Path::new("/dev/pts/ptmx")).is_ok() {
            let _ = nix::unistd::unlinkat(dirfd, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
            errno_ctx(nix::unistd::symlinkat("pts/ptmx", dirfd, "ptmx"), || {
                "symlink /dev/ptmx".into()
            })?;
        }
        Ok(())
    })();
    nix::sys::stat::umask(old);
    r
}
