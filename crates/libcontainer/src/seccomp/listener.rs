//! Hands a seccomp notify fd to the agent at `listenerPath`: one connection
//! per container process, the container process state (config-linux.md,
//! "The Container Process State") as JSON with the fd in SCM_RIGHTS of the
//! same sendmsg, then the connection is closed.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde_json::{json, Value};

use super::Listener;
use crate::error::{Error, Result};

/// The container process state for `pid`, around the container `state`.
pub fn process_state(listener: &Listener, pid: i32, state: Value) -> Value {
    let mut v = json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = &listener.metadata {
        v["metadata"] = json!(m);
    }
    v
}

/// Sends `fd` with the process state to the agent. An agent that cannot
/// be reached or does not take the message fails the operation.
pub fn send(listener: &Listener, fd: &OwnedFd, process_state: &Value) -> Result<()> {
    let path = &listener.path;
    let what = || format!("seccomp listener {}", path.display());
    let sock = UnixStream::connect(path)
        .map_err(|e| Error::io("connect to the seccomp listener", path, e))?;
    let data = serde_json::to_vec(process_state).expect("state serializes");
    let fds = [fd.as_raw_fd()];
    let mut sent = 0;
    while sent < data.len() {
        let iov = [IoSlice::new(&data[sent..])];
        // The fd goes with the first sendmsg only.
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if sent == 0 { &cmsg } else { &[] };
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys(format!("sendmsg to {}", what()), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSliceMut;
    use std::os::fd::{FromRawFd, RawFd};
    use std::os::unix::net::UnixListener;

    #[test]
    fn sends_state_and_fd_then_closes() {
        let dir = std::env::temp_dir().join(format!("hull-listener-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.sock");
        let agent = UnixListener::bind(&path).unwrap();
        let l = Listener {
            path: path.clone(),
            metadata: Some("k=v".into()),
        };
        let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let state = process_state(&l, 42, json!({"id": "c1", "status": "creating"}));
        send(&l, &file, &state).unwrap();

        let (conn, _) = agent.accept().unwrap();
        let mut buf = vec![0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let m = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut got_fd = None;
        for c in m.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: just received.
                got_fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        let n = m.bytes;
        let v: Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(v["fds"], json!(["seccompFd"]));
        assert_eq!(v["pid"], 42);
        assert_eq!(v["metadata"], "k=v");
        assert_eq!(v["state"]["id"], "c1");
        assert!(got_fd.is_some(), "no fd in SCM_RIGHTS");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreachable_listener_is_an_error_naming_it() {
        let l = Listener {
            path: "/nonexistent/agent.sock".into(),
            metadata: None,
        };
        let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let err = send(&l, &file, &json!({})).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/agent.sock"), "{err}");
    }
}
