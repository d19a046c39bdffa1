//! The one protocol between the runtime (parent) and the container's
//! processes: a SOCK_SEQPACKET socketpair, one [`Msg`] per packet, fds sent
//! with SCM_RIGHTS together with the message that owns them.
//!
//! ```text
//!  parent (hull create)          stage-1 child               init (stage 2, PID 1)
//!  clone3 ───────────────────▶  waits
//!  (1) Proceed ──────────────▶  setns joins; unshare(USER)
//!                           ◀─── UserNsReady (only with a new user ns)
//!  (2) uid/gid maps, Proceed ─▶  unshare the rest (not cgroup), time offsets
//!                                clone3(CLONE_PARENT) ─────▶ init starts
//!                           ◀─── InitPid(pid); _exit
//!  (3) waitpid(stage 1), join the cgroup                     rootfs, mounts, devices
//!      Proceed ─────────────────────────────────────────────▶ unshare(cgroup)
//!                           ◀──────────────────────────────── RunHooks (only with hooks)
//!  (4) prestart/createRuntime hooks, HookState(json) ───────▶ createContainer hooks
//!                                                             pivot_root, console ...
//!                           ◀──────────────────────────────── SeccompFd(fd) (NOTIFY rules only)
//!      send it to the listenerPath agent
//!                           ◀──────────────────────────────── Console(fd) (terminal only)
//!                           ◀──────────────────────────────── Ready
//!  (5) state.json, pid file, exit                             blocks on exec.fifo
//!  Any child failure is Error(message), then _exit(1).
//! ```

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// Every message of the protocol.
#[derive(Debug)]
pub enum Msg {
    Proceed,
    UserNsReady,
    InitPid(i32),
    RunHooks,
    HookState(Vec<u8>),
    Console(OwnedFd),
    Ready,
    Error(String),
    /// The seccomp notify fd, for the agent at `listenerPath`.
    SeccompFd(OwnedFd),
}

const MAX_MSG: usize = 64 * 1024;

impl Msg {
    fn tag(&self) -> u8 {
        match self {
            Msg::Proceed => 1,
            Msg::UserNsReady => 2,
            Msg::InitPid(_) => 3,
            Msg::RunHooks => 4,
            Msg::HookState(_) => 5,
            Msg::Console(_) => 6,
            Msg::Ready => 7,
            Msg::Error(_) => 8,
            Msg::SeccompFd(_) => 9,
        }
    }

    fn name(tag: u8) -> &'static str {
        match tag {
            1 => "Proceed",
            2 => "UserNsReady",
            3 => "InitPid",
            4 => "RunHooks",
            5 => "HookState",
            6 => "Console",
            7 => "Ready",
            8 => "Error",
            9 => "SeccompFd",
            _ => "unknown",
        }
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Why a receive failed.
#[derive(Debug)]
pub enum RecvError {
    /// The other end closed (the child died).
    Closed,
    Sys(Errno),
    Malformed(&'static str),
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvError::Closed => write!(f, "the container process exited before it was ready"),
            RecvError::Sys(e) => write!(f, "recvmsg: {e}"),
            RecvError::Malformed(what) => write!(f, "malformed message: {what}"),
        }
    }
}

impl Channel {
    /// A connected pair; both ends close on exec.
    pub fn pair() -> nix::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> nix::Result<()> {
        let mut buf = vec![msg.tag()];
        let mut fds = Vec::new();
        match msg {
            Msg::InitPid(pid) => buf.extend_from_slice(&pid.to_le_bytes()),
            Msg::HookState(bytes) => buf.extend_from_slice(bytes),
            Msg::Error(text) => {
                buf.extend_from_slice(&text.as_bytes()[..text.len().min(MAX_MSG - 1)])
            }
            Msg::Console(fd) | Msg::SeccompFd(fd) => fds.push(fd.as_raw_fd()),
            Msg::Proceed | Msg::UserNsReady | Msg::RunHooks | Msg::Ready => {}
        }
        let iov = [IoSlice::new(&buf)];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Err(Errno::EINTR) => continue,
                r => return r.map(|_| ()),
            }
        }
    }

    pub fn recv(&self) -> Result<Msg, RecvError> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut reset_seen = false;
        let (len, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(Errno::EINTR) => continue,
                // A peer that exited with our message unread resets the
                // socket; the error is reported once, before what the peer
                // sent (its Error message) is read.
                Err(Errno::ECONNRESET) if !reset_seen => reset_seen = true,
                Err(e) => return Err(RecvError::Sys(e)),
                Ok(m) => {
                    let mut fd = None;
                    for c in m.cmsgs().map_err(RecvError::Sys)? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            // SAFETY: the kernel just installed these fds in our table.
                            fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
                        }
                    }
                    break (m.bytes, fd);
                }
            }
        };
        if len == 0 {
            return Err(RecvError::Closed);
        }
        let body = &buf[1..len];
        let msg = match buf[0] {
            1 => Msg::Proceed,
            2 => Msg::UserNsReady,
            3 => {
                let b: [u8; 4] = body
                    .try_into()
                    .map_err(|_| RecvError::Malformed("InitPid"))?;
                Msg::InitPid(i32::from_le_bytes(b))
            }
            4 => Msg::RunHooks,
            5 => Msg::HookState(body.to_vec()),
            6 => Msg::Console(fd.ok_or(RecvError::Malformed("Console without fd"))?),
            7 => Msg::Ready,
            8 => Msg::Error(String::from_utf8_lossy(body).into_owned()),
            9 => Msg::SeccompFd(fd.ok_or(RecvError::Malformed("SeccompFd without fd"))?),
            _ => return Err(RecvError::Malformed("unknown tag")),
        };
        Ok(msg)
    }

    /// Receive and insist on one kind of message; an `Error` from the child
    /// becomes `Err(text)`.
    pub fn expect(&self, want: &'static str) -> Result<Msg, String> {
        match self.recv() {
            Ok(Msg::Error(text)) => Err(text),
            Ok(m) if Msg::name(m.tag()) == want => Ok(m),
            Ok(m) => Err(format!(
                "protocol: expected {want}, got {}",
                Msg::name(m.tag())
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_every_message() {
        let (a, b) = Channel::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        let msgs = vec![
            Msg::Proceed,
            Msg::UserNsReady,
            Msg::InitPid(4242),
            Msg::RunHooks,
            Msg::HookState(b"{\"id\":\"x\"}".to_vec()),
            Msg::Console(file.into()),
            Msg::Ready,
            Msg::Error("mount /proc: EPERM".into()),
            Msg::SeccompFd(std::fs::File::open("/dev/null").unwrap().into()),
        ];
        for m in &msgs {
            a.send(m).unwrap();
            let got = b.recv().unwrap();
            assert_eq!(got.tag(), m.tag());
            match (m, &got) {
                (Msg::InitPid(x), Msg::InitPid(y)) => assert_eq!(x, y),
                (Msg::HookState(x), Msg::HookState(y)) => assert_eq!(x, y),
                (Msg::Error(x), Msg::Error(y)) => assert_eq!(x, y),
                (Msg::Console(_), Msg::Console(fd)) => assert!(fd.as_raw_fd() > 2),
                _ => {}
            }
        }
    }

    #[test]
    fn closed_peer_is_reported() {
        let (a, b) = Channel::pair().unwrap();
        drop(a);
        assert!(matches!(b.recv(), Err(RecvError::Closed)));
        assert!(b.expect("Ready").unwrap_err().contains("exited"));
    }
}
