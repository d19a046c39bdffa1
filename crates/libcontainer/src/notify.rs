//! sd_notify pass-through, as runc does it when the caller (systemd,
//! conmon) sets NOTIFY_SOCKET.
//!
//! The container cannot reach the caller's socket, so it gets one of ours:
//! `create` adds a read-only bind mount of `<state dir>/notify` at
//! `/run/notify` and `NOTIFY_SOCKET=/run/notify/notify.sock` to the process
//! environment. Whoever starts the process (`start`, or `run`) binds
//! `notify.sock` there first, then relays the container's `READY=` line to
//! the caller's socket followed by `MAINPID=` (the pid the caller should
//! watch) and a `BARRIER=1` handshake, so that the caller has read both
//! before the runtime exits.

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::state::process_start_time;

/// The socket's path inside the container.
pub const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";
const CONTAINER_DIR: &str = "/run/notify";
/// The directory under the state dir that is mounted at [`CONTAINER_DIR`].
const DIR: &str = "notify";
const SOCKET: &str = "notify.sock";
/// How long the caller may take to answer the barrier.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(30);

/// Add the socket's mount and NOTIFY_SOCKET to a config.json (runc appends
/// both, after the bundle's own).
pub(crate) fn add_to_spec(raw: &mut Value, state_dir: &Path) {
    let mount = json!({
        "destination": CONTAINER_DIR,
        "source": state_dir.join(DIR),
        "type": "bind",
        "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
    });
    let Some(spec) = raw.as_object_mut() else {
        return; // not an object: validation reports it
    };
    match spec.get_mut("mounts").and_then(Value::as_array_mut) {
        Some(m) => m.push(mount),
        None => {
            spec.insert("mounts".into(), json!([mount]));
        }
    }
    if let Some(p) = spec.get_mut("process").and_then(Value::as_object_mut) {
        let env = format!("NOTIFY_SOCKET={CONTAINER_SOCKET}");
        match p.get_mut("env").and_then(Value::as_array_mut) {
            Some(e) => e.push(env.into()),
            None => {
                p.insert("env".into(), json!([env]));
            }
        }
    }
}

/// Make the directory the container's mount shows.
pub(crate) fn make_dir(state_dir: &Path) -> Result<()> {
    let dir = state_dir.join(DIR);
    std::fs::create_dir(&dir).map_err(|e| Error::io("mkdir", &dir, e))
}

/// The container's socket, bound, and where its messages go.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    host: PathBuf,
}

impl NotifySocket {
    /// Bind the container's socket in `state_dir`, to relay to `host` (a
    /// path, or `@name` for an abstract socket). None when the container
    /// was created without one.
    pub fn bind(state_dir: &Path, host: &Path) -> Result<Option<NotifySocket>> {
        let dir = state_dir.join(DIR);
        if !dir.is_dir() {
            return Ok(None);
        }
        let path = dir.join(SOCKET);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(Error::io("remove", &path, e));
            }
            _ => {}
        }
        let socket = UnixDatagram::bind(&path).map_err(|e| Error::io("bind", &path, e))?;
        // Any user of the container may notify.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .map_err(|e| Error::io("chmod", &path, e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::io("set non-blocking", &path, e))?;
        Ok(Some(NotifySocket {
            socket,
            host: host.to_path_buf(),
        }))
    }

    /// For polling alongside other fds.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Read the waiting datagrams; the first `READY=` line among them.
    pub fn read_ready(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(line) = ready_line(&buf[..n]) {
                        return Some(line.to_vec());
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// Wait until the container reports READY (relayed with
    /// `MAINPID=main_pid`) or until `pid`, started at `start`, is gone.
    pub fn relay(&self, pid: i32, start: u64, main_pid: i32) -> Result<()> {
        while process_start_time(pid) == Some(start) {
            let mut fds = [PollFd::new(self.fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u8)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(Error::sys("poll the notify socket", e)),
            }
            if let Some(line) = self.read_ready() {
                return self.notify_host(&line, main_pid);
            }
        }
        Ok(())
    }

    /// Tell the caller: the READY line, MAINPID, then wait for its barrier.
    pub fn notify_host(&self, ready: &[u8], main_pid: i32) -> Result<()> {
        let client = UnixDatagram::unbound().map_err(|e| Error::io("socket", &self.host, e))?;
        let addr = host_addr(&self.host).map_err(|e| Error::io("address", &self.host, e))?;
        client
            .connect_addr(&addr)
            .map_err(|e| Error::io("connect", &self.host, e))?;
        let send = |msg: &[u8]| {
            client
                .send(msg)
                .map(drop)
                .map_err(|e| Error::io("send to", &self.host, e))
        };
        send(&[ready, b"\n"].concat())?;
        send(format!("MAINPID={main_pid}\n").as_bytes())?;
        self.barrier(&client)
    }

    /// sd_notify_barrier: send BARRIER=1 with a pipe's write end; the
    /// caller closes it once it has read everything before.
    fn barrier(&self, client: &UnixDatagram) -> Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
        let iov = [std::io::IoSlice::new(b"BARRIER=1")];
        let fds = [w.as_raw_fd()];
        sendmsg::<()>(
            client.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::sys(format!("send BARRIER=1 to {}", self.host.display()), e))?;
        drop(w);
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(BARRIER_TIMEOUT).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) => {
                tracing::warn!(
                    "{}: no answer to BARRIER=1 in {BARRIER_TIMEOUT:?}, going on",
                    self.host.display()
                );
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(Error::sys("wait for the barrier", e)),
        }
    }
}

/// The first line of a datagram that starts with `READY=`.
fn ready_line(msg: &[u8]) -> Option<&[u8]> {
    msg.split(|&c| c == b'\n')
        .find(|l| l.starts_with(b"READY="))
}

fn host_addr(host: &Path) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match host.as_os_str().as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_is_found_in_a_datagram() {
        assert_eq!(ready_line(b"READY=1"), Some(&b"READY=1"[..]));
        assert_eq!(
            ready_line(b"STATUS=up\nREADY=1\nX=y"),
            Some(&b"READY=1"[..])
        );
        assert_eq!(ready_line(b"STATUS=starting"), None);
        assert_eq!(ready_line(b"NOTREADY=1"), None);
    }

    #[test]
    fn spec_gets_the_mount_and_the_variable_last() {
        let mut raw = json!({
            "process": {"env": ["PATH=/bin"]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        });
        add_to_spec(&mut raw, Path::new("/run/hull/c1"));
        assert_eq!(
            raw["process"]["env"],
            json!(["PATH=/bin", "NOTIFY_SOCKET=/run/notify/notify.sock"])
        );
        assert_eq!(raw["mounts"][1]["destination"], "/run/notify");
        assert_eq!(raw["mounts"][1]["source"], "/run/hull/c1/notify");
        assert_eq!(raw["mounts"][1]["options"][4], "ro");
        let mut bare = json!({"process": {}});
        add_to_spec(&mut bare, Path::new("/s"));
        assert_eq!(bare["mounts"].as_array().unwrap().len(), 1);
        assert_eq!(bare["process"]["env"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn relays_ready_mainpid_and_waits_for_the_barrier() {
        let dir = std::env::temp_dir().join(format!("hull-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        make_dir(&dir).unwrap();
        let host_path = dir.join("host.sock");
        let host = UnixDatagram::bind(&host_path).unwrap();
        host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let ours = NotifySocket::bind(&dir, &host_path).unwrap().unwrap();
        let container = UnixDatagram::unbound().unwrap();
        container
            .send_to(b"STATUS=x\nREADY=1", dir.join("notify/notify.sock"))
            .unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut got = Vec::new();
            for _ in 0..3 {
                // Receiving without room for fds closes the barrier's pipe.
                let n = host.recv(&mut buf).unwrap();
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            got
        });
        let me = std::process::id() as i32;
        let start = process_start_time(me).unwrap();
        let t0 = std::time::Instant::now();
        ours.relay(me, start, 42).unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the barrier was answered"
        );
        let got = reader.join().unwrap();
        assert_eq!(got, ["READY=1\n", "MAINPID=42\n", "BARRIER=1"]);
        assert!(NotifySocket::bind(&dir.join("nosuch"), &host_path)
            .unwrap()
            .is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
