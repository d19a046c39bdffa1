//! The few system calls nix does not wrap: extended attributes and the new
//! mount API (fsopen/fsconfig/fsmount/move_mount). Every `unsafe` block of
//! the crate lives here.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `lsetxattr` on `name` inside the directory `dir` (the entry itself,
/// never a symlink's target); with an empty `name`, on `dir` itself.
pub fn lsetxattr_at(dir: BorrowedFd<'_>, name: &[u8], key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if !name.is_empty() {
        path.push(b'/');
        path.extend_from_slice(name);
    }
    let path = cstring(&path)?;
    let key = cstring(key)?;
    // The bare /proc/self/fd/N must be followed (it is the directory);
    // a name below it must not.
    let set = if name.is_empty() {
        libc::setxattr
    } else {
        libc::lsetxattr
    };
    // SAFETY: both strings are NUL-terminated and live across the call;
    // value points to value.len() readable bytes.
    let ret = unsafe {
        set(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(ret as libc::c_long).map(drop)
}

/// `lgetxattr` of `key` on `path`: `None` when the attribute is not set.
pub fn lgetxattr(path: &Path, key: &str) -> io::Result<Option<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let p = cstring(path.as_os_str().as_bytes())?;
    let k = cstring(key.as_bytes())?;
    let mut buf = vec![0u8; 256];
    // SAFETY: buf has buf.len() writable bytes; the strings are NUL-terminated.
    let ret =
        unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENODATA) => Ok(None),
            _ => Err(err),
        };
    }
    buf.truncate(ret as usize);
    Ok(Some(buf))
}

const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A filesystem context from `fsopen`, configured key by key.
pub struct FsContext(OwnedFd);

impl FsContext {
    pub fn open(fstype: &str) -> io::Result<FsContext> {
        let t = cstring(fstype.as_bytes())?;
        // SAFETY: t is NUL-terminated; FSOPEN_CLOEXEC is a valid flag.
        let fd = check(unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), 1 as libc::c_uint) })?;
        // SAFETY: fsopen returned a new fd that nothing else owns.
        Ok(FsContext(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    pub fn set(&self, key: &str, value: &[u8]) -> io::Result<()> {
        let k = cstring(key.as_bytes())?;
        let v = cstring(value)?;
        // SAFETY: the fd is an fs context; key and value are NUL-terminated.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.0.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        })
        .map(drop)
    }

    /// Creates the superblock and attaches the mount at `target`.
    pub fn mount_at(self, target: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: a null key and value are what FSCONFIG_CMD_CREATE takes.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.0.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        })?;
        // SAFETY: fsmount on a created context with FSMOUNT_CLOEXEC.
        let mfd = check(unsafe {
            libc::syscall(libc::SYS_fsmount, self.0.as_raw_fd(), 1 as libc::c_uint, 0)
        })?;
        // SAFETY: fsmount returned a new fd that nothing else owns.
        let mfd = unsafe { OwnedFd::from_raw_fd(mfd as RawFd) };
        let empty: &CStr = c"";
        let t = cstring(target.as_os_str().as_bytes())?;
        // SAFETY: mfd is a detached mount; the paths are NUL-terminated.
        check(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                mfd.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        })
        .map(drop)
    }
}

/// `n` bytes from the kernel's random generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        // SAFETY: buf[filled..] is writable for n - filled bytes.
        let r = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), n - filled, 0) };
        if r > 0 {
            filled += r as usize;
        }
    }
    buf
}
