//! Typed wrappers for the syscalls that neither libc nor nix wrap
//! (clone3, openat2, mount_setattr, pivot_root, close_range, capset, raw
//! getcwd, pidfd_open).
//!
//! This is the only module of the crate with `unsafe` code besides the fork
//! points in `spawn`. Each wrapper returns `nix::Result` with the raw errno.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What a fork point returned.
pub enum Forked {
    Parent(i32),
    Child,
}

/// clone3(2) without a new stack: fork semantics plus `flags` (namespaces,
/// CLONE_PARENT, CLONE_INTO_CGROUP). Falls back to clone(2) where clone3 is
/// missing (ENOSYS) and no cgroup fd was asked for.
///
/// # Safety
/// The caller must be single-threaded (checked by `spawn`), and the child may
/// only do work that is safe after fork until it calls execve or `_exit`.
pub unsafe fn clone3(flags: u64, cgroup: Option<RawFd>) -> nix::Result<Forked> {
    // With CLONE_PARENT the kernel takes the caller's exit signal and
    // insists on 0 here.
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: args is a valid clone_args of the size passed; stack 0 gives fork semantics.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let ret = if ret == -1 && Errno::last() == Errno::ENOSYS && cgroup.is_none() {
        // SAFETY: raw clone with a null stack behaves like fork(2).
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags | libc::SIGCHLD as u64,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        }
    } else {
        ret
    };
    match Errno::result(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2) with `resolve` flags.
pub fn openat2(
    dir: BorrowedFd,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> nix::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: path is NUL-terminated, how is a valid open_how of the size passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match Errno::result(ret) {
            // SAFETY: the kernel returned a new fd that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const AT_RECURSIVE: u32 = 0x8000;

/// mount_setattr(2) on the mount at `fd` (AT_EMPTY_PATH), recursively if asked.
pub fn mount_setattr(
    fd: BorrowedFd,
    recursive: bool,
    set: u64,
    clear: u64,
    propagation: u64,
) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: empty NUL-terminated path, attr is a valid mount_attr of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// pivot_root(2).
pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> nix::Result<()> {
    // SAFETY: both paths are NUL-terminated.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    Errno::result(ret).map(drop)
}

pub const CLOSE_RANGE_CLOEXEC: u32 = 4;

/// Mark every fd from `first` up as close-on-exec.
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes fd flags in this process.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    Errno::result(ret).map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// capset(2) for this thread, with 64-bit masks.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> nix::Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs as the v3 ABI requires.
    let ret =
        unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// prctl(2) with integer arguments.
pub fn prctl(option: i32, arg2: u64, arg3: u64) -> nix::Result<()> {
    // SAFETY: integer-only prctl options, no pointers passed.
    let ret = unsafe { libc::prctl(option, arg2, arg3, 0u64, 0u64) };
    Errno::result(ret).map(drop)
}

/// The raw getcwd syscall: unlike glibc it reports a cwd outside the root as
/// a path starting with "(unreachable)", which is what we check for.
pub fn cwd_is_reachable() -> bool {
    let mut buf = [0u8; 4096];
    // SAFETY: buf is writable for its whole length.
    let ret = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    ret > 0 && buf[0] == b'/'
}

/// Open the peer (slave) end of a pty master: ioctl(TIOCGPTPEER).
pub fn pty_peer(master: BorrowedFd) -> nix::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER as _,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a new fd that nothing else owns.
    Errno::result(ret).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Unlock a pty master (TIOCSPTLCK 0).
pub fn pty_unlock(master: BorrowedFd) -> nix::Result<()> {
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK as _, &mut unlock) };
    Errno::result(ret).map(drop)
}

/// Make `fd` the controlling terminal of this (session leader) process.
pub fn set_controlling_tty(fd: BorrowedFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY as _, 0) };
    Errno::result(ret).map(drop)
}

/// Set a terminal's window size.
pub fn set_winsize(fd: BorrowedFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ as _, &ws) };
    Errno::result(ret).map(drop)
}

/// Read a terminal's window size.
pub fn get_winsize(fd: BorrowedFd) -> nix::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize struct.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ as _, &mut ws) };
    Errno::result(ret).map(|_| (ws.ws_row, ws.ws_col))
}

/// execve(2); returns only on failure.
pub fn execve(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> Errno {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into live CStrings.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// pidfd_open(2): an fd for process `pid` that keeps naming that process
/// (never a later one with the same pid). Always close-on-exec.
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: integer arguments only; the kernel returns a new fd.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a new fd that nothing else owns.
    Errno::result(ret).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether setns(2) takes a pidfd and several namespace flags at once
/// (Linux 5.8). Probed by re-joining our own UTS namespace through our own
/// pidfd, which changes nothing; older kernels answer EINVAL.
pub fn pidfd_setns_supported() -> bool {
    let Ok(fd) = pidfd_open(std::process::id() as i32) else {
        return false;
    };
    nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWUTS).is_ok()
}

/// `_exit(2)`: leave a forked child without running any destructor or atexit handler.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Number of threads of this process, from /proc/self/stat field 20.
pub fn thread_count() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split(' ').nth(17)?.parse().ok()
}

const F_SEAL_ALL: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when this process runs from a sealed memfd copy of its binary.
pub fn running_sealed() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS only reads the seals of an fd we own.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & F_SEAL_ALL == F_SEAL_ALL
}

/// Copy /proc/self/exe into a sealed memfd and re-execute it with the same
/// argv and environment, so that nothing that reaches /proc/PID/exe of a
/// runtime process (CVE-2019-5736) can write to the binary on disk.
/// Returns only on failure.
pub fn reexec_sealed() -> nix::Result<std::convert::Infallible> {
    let src = std::fs::File::open("/proc/self/exe").map_err(|_| Errno::ENOENT)?;
    let len = src.metadata().map_err(|_| Errno::EIO)?.len() as usize;
    // SAFETY: the name is NUL-terminated; the kernel returns a new fd.
    let fd = unsafe {
        libc::memfd_create(
            c"hull".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: a new fd that nothing else owns.
    let mem = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut done = 0usize;
    while done < len {
        // SAFETY: both fds are open; a null offset uses src's file position.
        let n = unsafe {
            libc::sendfile(
                mem.as_raw_fd(),
                src.as_raw_fd(),
                std::ptr::null_mut(),
                len - done,
            )
        };
        match Errno::result(n) {
            Ok(0) => break,
            Ok(n) => done += n as usize,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    // SAFETY: F_ADD_SEALS on a memfd we own.
    Errno::result(unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, F_SEAL_ALL) })?;
    let args: Vec<std::ffi::CString> = std::env::args_os()
        .map(|a| std::ffi::CString::new(a.into_encoded_bytes()).unwrap_or_default())
        .collect();
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: argv is NULL-terminated and backed by `args`; environ is the process environment.
    unsafe { libc::fexecve(mem.as_raw_fd(), argv.as_ptr(), environ) };
    Err(Errno::last())
}

#[cfg(test)]
mod tests {
    /// (major, minor) of the running kernel.
    fn kernel_version() -> (u32, u32) {
        let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = rel
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    #[test]
    fn pidfd_setns_is_found_from_linux_5_8_on() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: setns needs CAP_SYS_ADMIN");
            return;
        }
        assert_eq!(super::pidfd_setns_supported(), kernel_version() >= (5, 8));
    }
}
