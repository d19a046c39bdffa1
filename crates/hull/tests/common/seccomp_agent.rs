//! A small seccomp agent, as `linux.seccomp.listenerPath` expects one: it
//! takes one connection, receives the container process state and the
//! notify fd (SCM_RIGHTS), then answers every notification: syscalls in
//! `refuse` fail with `errno`, the others continue as if not filtered.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::Value;

/// What the agent saw: the state it was sent and the syscalls notified.
pub struct Seen {
    pub state: Value,
    pub syscalls: Vec<i32>,
}

/// Listens on `path`; the agent ends when the container's filter is gone
/// (every process using it exited) and then reports what it saw.
pub fn start(path: &Path, refuse: Vec<i32>, errno: i32) -> mpsc::Receiver<Seen> {
    let listener = UnixListener::bind(path).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let m = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for c in m.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: the kernel just installed this fd for us.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        let n = m.bytes;
        // One message: the runtime closes the connection after it.
        let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let fd = fd.expect("no fd in SCM_RIGHTS");
        let mut syscalls = Vec::new();
        while let Some((id, nr)) = receive(&fd) {
            syscalls.push(nr);
            let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
            resp.id = id;
            if refuse.contains(&nr) {
                resp.error = -errno;
            } else {
                resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
            }
            // SAFETY: resp is a valid seccomp_notif_resp.
            unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
        }
        let _ = tx.send(Seen { state, syscalls });
    });
    rx
}

/// The next notification (id, syscall nr); None once the filter is gone.
fn receive(fd: &OwnedFd) -> Option<(u64, i32)> {
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 10_000) } <= 0 || pfd.revents & libc::POLLHUP != 0 {
            return None;
        }
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: req is a zeroed seccomp_notif, as the ioctl requires.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
        if r == 0 {
            return Some((req.id, req.data.nr));
        }
        // ENOENT: the caller was killed meanwhile; try the next one.
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
            return None;
        }
    }
}
