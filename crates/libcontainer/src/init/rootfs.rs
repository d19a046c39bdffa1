//! Building the container's filesystem: propagation, the mounts of
//! config.json resolved inside the rootfs, devices, pivot_root, and after it
//! the masked/readonly paths, sysctls, hostname and the read-only root.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::mkdirat;
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{chdir, chroot, fchdir};

use super::{devices, errno_ctx, InitPlan, StepResult};
use crate::channel::{Channel, Msg};
use crate::config::mounts::{MountKind, MountPlan};
use crate::sys;

/// open(2) returning an owned fd.
pub fn open_fd<P: ?Sized + nix::NixPath>(path: &P, flags: OFlag) -> nix::Result<OwnedFd> {
    open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
}

/// Path of an fd through procfs, for mounting onto what it refers to.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn rel(path: &Path) -> PathBuf {
    path.strip_prefix("/").unwrap_or(path).to_path_buf()
}

/// Open `path` inside `root` (O_PATH), never leaving it.
pub fn open_in_root(root: &OwnedFd, path: &Path) -> nix::Result<OwnedFd> {
    let rel = rel(path);
    let c =
        CString::new(rel.as_os_str().as_encoded_bytes()).map_err(|_| nix::errno::Errno::EINVAL)?;
    let c = if c.as_bytes().is_empty() {
        CString::from(c".")
    } else {
        c
    };
    sys::openat2(
        root.as_fd(),
        &c,
        libc::O_PATH,
        0,
        sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
    )
}

/// Create `path` inside `root` (directories along the way; the last
/// component a directory or an empty file) and return an O_PATH fd to it.
pub fn make_in_root(root: &OwnedFd, path: &Path, dir: bool) -> StepResult<OwnedFd> {
    make_in_root_depth(root, path, dir, 0)
}

fn make_in_root_depth(root: &OwnedFd, path: &Path, dir: bool, depth: u32) -> StepResult<OwnedFd> {
    if let Ok(fd) = open_in_root(root, path) {
        return Ok(fd);
    }
    if depth > 40 {
        return Err(format!(
            "{}: too many levels of symbolic links",
            path.display()
        ));
    }
    let rel = rel(path);
    let comps: Vec<_> = rel.components().collect();
    let mut cur = PathBuf::new();
    let mut parent = errno_ctx(open_in_root(root, Path::new("")), || "open rootfs".into())?;
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        if let Ok(fd) = open_in_root(root, &cur) {
            parent = fd;
            continue;
        }
        let last = i + 1 == comps.len();
        let name = c.as_os_str();
        // A dangling symlink: create its target instead, read as a path
        // inside the rootfs (absolute targets start at the rootfs).
        if let Ok(target) = nix::fcntl::readlinkat(&parent, name) {
            let base = Path::new("/").join(cur.parent().unwrap_or(Path::new("")));
            let mut next = base.join(&target);
            next.extend(&comps[i + 1..]);
            let next = crate::config::mounts::clean_abs(&next);
            return make_in_root_depth(root, &next, dir, depth + 1);
        }
        if last && !dir {
            let r = nix::fcntl::openat(
                &parent,
                name,
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            );
            errno_ctx(r, || format!("create {}", path.display()))?;
        } else {
            match mkdirat(&parent, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(format!("mkdir {} in rootfs: {}", cur.display(), e.desc())),
            }
        }
        parent = errno_ctx(open_in_root(root, &cur), || {
            format!("open {} in rootfs", cur.display())
        })?;
    }
    Ok(parent)
}

fn do_mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &Path,
) -> StepResult {
    errno_ctx(mount(src, target, fstype, flags, data), || {
        format!(
            "mount {} ({}) on {}",
            src.unwrap_or("none"),
            fstype.unwrap_or("bind"),
            what.display()
        )
    })
}

/// Flags of the mount at `fd` that a bind remount must keep (they may be
/// locked in a user namespace).
fn locked_flags(fd: &OwnedFd) -> MsFlags {
    let Ok(st) = statvfs(fd_path(fd).as_str()) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

/// Bind-remount the mount at `fd` with `flags` (plus the locked ones not cleared).
fn remount_bind(fd: &OwnedFd, flags: MsFlags, cleared: MsFlags, what: &Path) -> StepResult {
    let keep = locked_flags(fd) & !cleared;
    let flags = (flags & !MsFlags::MS_REC) | keep | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    do_mount(None, &fd_path(fd), None, flags, None, what)
}

fn after_mount(root: &OwnedFd, m: &MountPlan) -> StepResult {
    if m.propagation.is_empty() && m.attr_set == 0 && m.attr_clear == 0 {
        return Ok(());
    }
    let fd = errno_ctx(open_in_root(root, &m.dest), || {
        format!("reopen {}", m.dest.display())
    })?;
    for p in &m.propagation {
        do_mount(None, &fd_path(&fd), None, *p, None, &m.dest)?;
    }
    if m.attr_set != 0 || m.attr_clear != 0 {
        errno_ctx(
            sys::mount_setattr(fd.as_fd(), true, m.attr_set, m.attr_clear, 0),
            || format!("mount_setattr {}", m.dest.display()),
        )?;
    }
    Ok(())
}

fn mount_bind(root: &OwnedFd, m: &MountPlan) -> StepResult {
    let src = m.source.as_deref().expect("bind mounts have a source");
    let is_dir = std::fs::metadata(src)
        .map_err(|e| format!("bind source {}: {e}", src.display()))?
        .is_dir();
    let target = make_in_root(root, &m.dest, is_dir)?;
    let src_s = src.to_string_lossy();
    let bind = MsFlags::MS_BIND | (m.flags & MsFlags::MS_REC);
    do_mount(Some(&src_s), &fd_path(&target), None, bind, None, &m.dest)?;
    let extra = m.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    if !extra.is_empty() {
        let fd = errno_ctx(open_in_root(root, &m.dest), || {
            format!("reopen {}", m.dest.display())
        })?;
        remount_bind(&fd, m.flags, m.cleared, &m.dest)?;
    }
    after_mount(root, m)
}

fn mount_other(root: &OwnedFd, m: &MountPlan) -> StepResult {
    let target = make_in_root(root, &m.dest, true)?;
    let src = m.source.as_ref().map(|s| s.to_string_lossy().into_owned());
    let src = src.as_deref().or(Some(m.fstype.as_str()));
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    do_mount(
        src,
        &fd_path(&target),
        Some(&m.fstype),
        m.flags,
        data,
        &m.dest,
    )?;
    if m.copy_up && m.fstype == "tmpfs" {
        // `target` still names the directory under the new mount.
        let new = errno_ctx(open_in_root(root, &m.dest), || {
            format!("reopen {}", m.dest.display())
        })?;
        super::copy_up::copy_tree(Path::new(&fd_path(&target)), Path::new(&fd_path(&new)))
            .map_err(|e| format!("tmpcopyup {}: {e}", m.dest.display()))?;
    }
    after_mount(root, m)
}

/// A cgroup mount: cgroup2 is one bind of the container's cgroup; v1 is a
/// tmpfs with one bind per hierarchy (plus symlinks for co-mounted ones).
fn mount_cgroup(root: &OwnedFd, m: &MountPlan, plan: &InitPlan) -> StepResult {
    let v2 = plan.cgroup_mounts.len() == 1 && plan.cgroup_mounts[0].fstype == "cgroup2";
    if v2 {
        // With its own cgroup namespace the container sees its cgroup as the
        // root; without one it sees the whole hierarchy, as with runc.
        let cg = &plan.cgroup_mounts[0];
        let own_ns = plan
            .config
            .has_ns(oci_spec::runtime::LinuxNamespaceType::Cgroup);
        let source = if own_ns {
            &cg.host_dir
        } else {
            &cg.mount_point
        };
        let b = MountPlan {
            kind: MountKind::Bind,
            source: Some(source.clone()),
            flags: m.flags | MsFlags::MS_BIND | MsFlags::MS_REC,
            ..m.clone()
        };
        return mount_bind(root, &b);
    }
    let target = make_in_root(root, &m.dest, true)?;
    let tmpfs_flags = m.flags & !MsFlags::MS_RDONLY;
    do_mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
        &m.dest,
    )?;
    for cg in &plan.cgroup_mounts {
        let sub = cg.name.strip_prefix("name=").unwrap_or(&cg.name);
        let dest = m.dest.join(sub);
        let b = MountPlan {
            dest: dest.clone(),
            kind: MountKind::Bind,
            source: Some(cg.host_dir.clone()),
            flags: m.flags | MsFlags::MS_BIND | MsFlags::MS_REC,
            propagation: Vec::new(),
            ..m.clone()
        };
        mount_bind(root, &b)?;
        if sub.contains(',') {
            let dir = errno_ctx(open_in_root(root, &m.dest), || {
                format!("open {}", m.dest.display())
            })?;
            for part in sub.split(',') {
                match nix::unistd::symlinkat(sub, &dir, part) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(format!("symlink {}/{part}: {}", m.dest.display(), e.desc()))
                    }
                }
            }
        }
    }
    if m.flags.contains(MsFlags::MS_RDONLY) {
        let fd = errno_ctx(open_in_root(root, &m.dest), || {
            format!("reopen {}", m.dest.display())
        })?;
        let flags = tmpfs_flags | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT;
        do_mount(None, &fd_path(&fd), None, flags, None, &m.dest)?;
    }
    after_mount(root, m)
}

/// Everything up to and including pivot_root. Returns the state JSON for
/// in-container hooks when the parent ran hooks.
pub fn prepare(plan: &InitPlan, chan: &Channel) -> StepResult<Option<Vec<u8>>> {
    let cfg = plan.config;
    let rootfs = cfg.rootfs.to_string_lossy().into_owned();
    if cfg.new_ns.contains(nix::sched::CloneFlags::CLONE_NEWNS)
        || cfg.has_ns(oci_spec::runtime::LinuxNamespaceType::Mount)
    {
        super::propagation::before_rootfs(cfg)?;
    }
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    do_mount(Some(&rootfs), &rootfs, None, bind, None, &cfg.rootfs)?;
    let root = errno_ctx(
        open_fd(cfg.rootfs.as_path(), OFlag::O_PATH | OFlag::O_DIRECTORY),
        || format!("open rootfs {rootfs}"),
    )?;
    for m in &cfg.mounts {
        if m.dest == Path::new("/") {
            continue;
        }
        match m.kind {
            MountKind::Bind => mount_bind(&root, m)?,
            MountKind::Cgroup => mount_cgroup(&root, m, plan)?,
            MountKind::Other => mount_other(&root, m)?,
        }
    }
    let userns = cfg.has_ns(oci_spec::runtime::LinuxNamespaceType::User);
    devices::create(&root, cfg, userns)?;
    let cwd = cfg.process().map_err(|e| e.to_string())?.cwd();
    make_in_root(&root, cwd, true)?;
    super::wait_for_cgroup(plan, chan)?;
    let state = if plan.hooks {
        chan.send(&Msg::RunHooks)
            .map_err(|e| format!("send: {e}"))?;
        match chan.expect("HookState")? {
            Msg::HookState(s) => Some(s),
            _ => unreachable!("expect checked the kind"),
        }
    } else {
        None
    };
    if let Some(s) = &state {
        crate::hooks::run_in_container(cfg, "createContainer", s).map_err(|e| e.to_string())?;
    }
    drop(root);
    if plan.no_pivot {
        move_root(&cfg.rootfs)?;
    } else {
        pivot(&cfg.rootfs)?;
    }
    super::propagation::after_pivot(cfg)?;
    Ok(state)
}

fn pivot(rootfs: &Path) -> StepResult {
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY;
    let old = errno_ctx(open_fd("/", dir), || "open /".into())?;
    let new = errno_ctx(open_fd(rootfs, dir), || {
        format!("open {}", rootfs.display())
    })?;
    errno_ctx(fchdir(&new), || "fchdir(rootfs)".into())?;
    errno_ctx(sys::pivot_root(c".", c"."), || "pivot_root".into())?;
    errno_ctx(fchdir(&old), || "fchdir(old root)".into())?;
    let slave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
    do_mount(None, ".", None, slave, None, Path::new("old root"))?;
    errno_ctx(umount2(".", MntFlags::MNT_DETACH), || {
        "umount old root".into()
    })?;
    errno_ctx(chdir("/"), || "chdir /".into())
}

fn move_root(rootfs: &Path) -> StepResult {
    errno_ctx(chdir(rootfs), || format!("chdir {}", rootfs.display()))?;
    let r = rootfs.to_string_lossy();
    do_mount(Some(&r), "/", None, MsFlags::MS_MOVE, None, Path::new("/"))?;
    errno_ctx(chroot("."), || "chroot".into())?;
    errno_ctx(chdir("/"), || "chdir /".into())
}

fn exists(path: &str) -> bool {
    nix::sys::stat::lstat(path).is_ok()
}

/// After pivot_root: sysctl, readonly and masked paths, names, read-only root.
pub fn finalize(plan: &InitPlan) -> StepResult {
    let spec = &plan.config.spec;
    let linux = spec.linux().as_ref();
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (key, value) in sysctl {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            std::fs::write(&path, value).map_err(|e| format!("sysctl {key}={value}: {e}"))?;
        }
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        if !exists(p) {
            continue;
        }
        let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
        do_mount(Some(p), p, None, bind, None, Path::new(p))?;
        let fd = errno_ctx(open_fd(p.as_str(), OFlag::O_PATH), || format!("open {p}"))?;
        remount_bind(
            &fd,
            MsFlags::MS_RDONLY | MsFlags::MS_REC,
            MsFlags::empty(),
            Path::new(p),
        )?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        match nix::sys::stat::stat(p.as_str()) {
            Err(_) => continue,
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => do_mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
                Path::new(p),
            )?,
            Ok(_) => do_mount(
                Some("/dev/null"),
                p,
                None,
                MsFlags::MS_BIND,
                None,
                Path::new(p),
            )?,
        }
    }
    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        errno_ctx(nix::unistd::sethostname(h), || format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        // SAFETY: d points to d.len() valid bytes.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        errno_ctx(nix::errno::Errno::result(r), || {
            format!("setdomainname {d:?}")
        })?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let fd = errno_ctx(open_fd("/", OFlag::O_PATH), || "open /".into())?;
        remount_bind(&fd, MsFlags::MS_RDONLY, MsFlags::empty(), Path::new("/"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_root() {
        let dir = std::env::temp_dir().join(format!("hull-rootfs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../", dir.join("up")).unwrap();
        let root: OwnedFd = std::fs::File::open(&dir).unwrap().into();
        // An absolute symlink is resolved against the rootfs, not the host.
        let fd = make_in_root(&root, Path::new("/escape/newdir"), true).unwrap();
        drop(fd);
        assert!(dir.join("etc/newdir").is_dir());
        let fd = make_in_root(&root, Path::new("/up/x/file"), false).unwrap();
        drop(fd);
        assert!(dir.join("x/file").is_file());
        assert!(!Path::new("/x/file").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
