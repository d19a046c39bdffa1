//! The few calls that need `unsafe`, each behind a typed wrapper.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Which side of a fork this is.
pub enum Forked {
    Parent(i32),
    Child,
}

/// fork(2). Callers are single-threaded (the monitor checks before it
/// forks), so the child may allocate and run ordinary code.
pub fn fork() -> anyhow::Result<Forked> {
    match libcontainer::sys::thread_count() {
        Some(1) => {}
        n => anyhow::bail!("fork: the process must be single-threaded, it has {n:?} threads"),
    }
    // SAFETY: single-threaded (checked above), so no lock is held by another thread.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Takes ownership of an inherited descriptor whose number was passed in
/// the environment; refuses numbers that are not open.
pub fn inherited_fd(fd: RawFd) -> anyhow::Result<OwnedFd> {
    if fd < 3 || std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_err() {
        anyhow::bail!("inherited descriptor {fd} is not open");
    }
    // SAFETY: the descriptor is open (checked above) and nothing else in
    // this process owns it: it was inherited for this purpose alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The value of the extended attribute `name` of `path` (not following a
/// symlink), or None when it has none.
pub fn lgetxattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and live across the call;
    // the buffer is valid for the length passed.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}
