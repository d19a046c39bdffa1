//! Handing the pty master to the caller's console socket (SCM_RIGHTS),
//! as runc's `--console-socket` does.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Error, Result};

pub fn send_to_socket(path: &Path, master: &OwnedFd) -> Result<()> {
    let sock =
        UnixStream::connect(path).map_err(|e| Error::io("connect console socket", path, e))?;
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::sys(format!("send pty to {}", path.display()), e))?;
    Ok(())
}
