//! The parent side of process creation: fork stage 1 and serve the
//! protocol of [`crate::channel`] until the init reports Ready.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::channel::{Channel, Msg};
use crate::error::{Error, Result};
use crate::init::{self, InitPlan};
use crate::sys;

/// The container's init, waiting at the exec barrier.
pub struct Spawned {
    pub pid: i32,
    pub console: Option<OwnedFd>,
}

/// What the parent does for the init at the protocol's sync points.
pub struct Parent<'a> {
    /// Put the init (by pid) into the container's cgroup, when neither
    /// CLONE_INTO_CGROUP nor stage 1 did.
    pub join_cgroup: &'a dyn Fn(i32) -> Result<()>,
    /// With the init's namespaces made, before it goes on: network devices.
    pub setup: &'a mut dyn FnMut(i32) -> Result<()>,
    /// Runs the runtime-namespace hooks and returns the state JSON.
    pub on_hooks: &'a mut dyn FnMut(i32) -> Result<Vec<u8>>,
    /// Hands a seccomp notify fd to the agent.
    pub on_seccomp: &'a mut dyn FnMut(i32, OwnedFd) -> Result<()>,
}

/// uid_map/gid_map contents for a new user namespace.
pub struct IdMaps {
    pub uid: String,
    pub gid: String,
}

/// Kills and reaps the children unless disarmed.
struct ChildGuard {
    pids: Vec<i32>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        for &pid in self.pids.iter().rev() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
    }
}

/// Send to the children. When they have gone (EPIPE), the error they sent
/// before exiting is still queued on the socket: report that, not EPIPE.
fn send(ours: &Channel, msg: &Msg) -> Result<()> {
    match ours.send(msg) {
        Ok(()) => Ok(()),
        Err(e @ (nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET)) => match ours.recv() {
            Ok(Msg::Error(text)) => Err(Error::Init(text)),
            _ => Err(Error::sys("send", e)),
        },
        Err(e) => Err(Error::sys("send", e)),
    }
}

fn init_err(e: impl std::fmt::Display) -> Error {
    Error::Init(e.to_string())
}

/// Fork the container's processes and run the protocol until Ready.
/// `cgroup_fd` is the container's cgroup2 dir for CLONE_INTO_CGROUP; stage 1
/// joins the v1 hierarchies itself (`plan.cgroup_tasks`); with neither,
/// `parent.join_cgroup` is called with the init's pid while it builds the
/// rootfs.
pub fn spawn(
    plan: &InitPlan,
    cgroup_fd: Option<&OwnedFd>,
    maps: Option<&IdMaps>,
    parent: &mut Parent,
) -> Result<Spawned> {
    match sys::thread_count() {
        Some(1) => {}
        n => {
            return Err(Error::Init(format!(
                "the runtime must be single-threaded to fork, it has {n:?} threads"
            )))
        }
    }
    let (ours, theirs) = Channel::pair().map_err(|e| Error::sys("socketpair", e))?;
    // SAFETY: single-threaded (checked above); the child only runs init code and _exits.
    let forked = unsafe { sys::clone3(0, cgroup_fd.map(|f| f.as_raw_fd())) };
    let pid1 = match forked.map_err(|e| Error::sys("clone3", e))? {
        sys::Forked::Child => {
            drop(ours);
            init::stage1(plan, &theirs)
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(theirs);
    let mut guard = ChildGuard { pids: vec![pid1] };
    send(&ours, &Msg::Proceed)?;
    if plan.new_user {
        ours.expect("UserNsReady").map_err(init_err)?;
        if let Some(m) = maps {
            write_map(pid1, "uid_map", &m.uid)?;
            write_map(pid1, "gid_map", &m.gid)?;
        }
        send(&ours, &Msg::Proceed)?;
    }
    let pid = match ours.expect("InitPid").map_err(init_err)? {
        Msg::InitPid(p) => p,
        _ => unreachable!("expect checked the kind"),
    };
    guard.pids.push(pid);
    match waitpid(Pid::from_raw(pid1), None) {
        Ok(WaitStatus::Exited(_, 0)) => {}
        other => return Err(Error::Init(format!("stage 1 ended with {other:?}"))),
    }
    guard.pids.remove(0);
    // A migration by pid takes the global threadgroup lock and waits for an
    // RCU grace period (milliseconds): the init builds its rootfs meanwhile
    // and waits for this Proceed only before hooks, cgroupns and exec.
    if cgroup_fd.is_none() && plan.cgroup_tasks.is_empty() {
        (parent.join_cgroup)(pid)?;
    }
    (parent.setup)(pid)?;
    send(&ours, &Msg::Proceed)?;
    let mut console = None;
    loop {
        match ours.recv() {
            Ok(Msg::RunHooks) => {
                let state = (parent.on_hooks)(pid)?;
                send(&ours, &Msg::HookState(state))?;
            }
            Ok(Msg::Console(fd)) => console = Some(fd),
            Ok(Msg::SeccompFd(fd)) => (parent.on_seccomp)(pid, fd)?,
            Ok(Msg::Ready) => break,
            Ok(Msg::Error(text)) => return Err(Error::Init(text)),
            Ok(other) => return Err(Error::Init(format!("protocol: unexpected {other:?}"))),
            Err(e) => return Err(init_err(e)),
        }
    }
    guard.pids.clear();
    Ok(Spawned { pid, console })
}

fn write_map(pid: i32, file: &str, contents: &str) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, contents).map_err(|e| Error::io("write", path, e))
}
