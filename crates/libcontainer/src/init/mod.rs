//! Code that runs in the container's processes, between clone and execve.
//!
//! Stage 1 enters the namespaces and forks the init (stage 2), which
//! becomes PID 1 of the new pid namespace, builds the rootfs, applies the
//! process settings and waits at the exec barrier. Everything it needs was
//! prepared by the parent in an [`InitPlan`]; the process is single-threaded
//! here (checked before the fork), errors travel back as `Msg::Error`.

mod copy_up;
mod devices;
mod process;
mod propagation;
mod rootfs;
mod sched;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{setresgid, setresuid, Gid, Uid};

use crate::channel::{Channel, Msg};
use crate::config::Config;
use crate::sys;

/// Everything the children need, computed in the parent before the fork.
pub struct InitPlan<'a> {
    pub config: &'a Config,
    /// Namespaces to join (user first), already opened.
    pub join: Vec<(CloneFlags, OwnedFd)>,
    /// A pidfd of a process and the namespaces of it to join in one
    /// setns(2) (Linux 5.8), before `join`.
    pub join_pidfd: Option<(OwnedFd, CloneFlags)>,
    pub new_user: bool,
    /// Namespaces to unshare after the user namespace.
    pub unshare: CloneFlags,
    /// Contents for /proc/self/timens_offsets.
    pub time_offsets: Option<String>,
    /// O_PATH fd of the state dir, for opening exec.fifo at the barrier;
    /// None for `exec`, whose process runs at once in a built container.
    pub state_dir: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub container_id: String,
    pub cgroup_mounts: Vec<libcgroups::CgroupMount>,
    /// v1 `tasks` files stage 1 writes "0" to, joining the cgroup itself.
    pub cgroup_tasks: Vec<std::path::PathBuf>,
    /// Config has hooks: the init asks the parent to run its hooks and for the state JSON.
    pub hooks: bool,
    pub exec: process::ExecPlan,
}

pub use process::ExecPlan;

/// Result of a step in the child; the message goes back to the parent.
pub type StepResult<T = ()> = Result<T, String>;

pub fn errno_ctx<T>(r: nix::Result<T>, what: impl FnOnce() -> String) -> StepResult<T> {
    r.map_err(|e| format!("{}: {}", what(), e.desc()))
}

/// Stage 1. Never returns.
pub fn stage1(plan: &InitPlan, chan: &Channel) -> ! {
    match run_stage1(plan, chan) {
        Ok(()) => sys::exit_now(0),
        Err(msg) => {
            let _ = chan.send(&Msg::Error(msg));
            sys::exit_now(1)
        }
    }
}

fn run_stage1(plan: &InitPlan, chan: &Channel) -> StepResult {
    errno_ctx(
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64, 0),
        || "prctl(PDEATHSIG)".into(),
    )?;
    // Non-dumpable until execve: no process of the container can open our
    // /proc/PID/exe (the runtime binary) or ptrace us (CVE-2019-5736).
    errno_ctx(sys::prctl(libc::PR_SET_DUMPABLE, 0, 0), || {
        "prctl(DUMPABLE)".into()
    })?;
    chan.expect("Proceed")?;
    // Moving only ourselves ("0" to tasks) skips the kernel's global
    // threadgroup lock, whose RCU wait costs milliseconds per container.
    for f in &plan.cgroup_tasks {
        std::fs::write(f, "0").map_err(|e| format!("join cgroup {}: {e}", f.display()))?;
    }
    let mut joined_user = false;
    if let Some((pidfd, flags)) = &plan.join_pidfd {
        errno_ctx(setns(pidfd.as_fd(), *flags), || {
            format!("setns(pidfd, {flags:?})")
        })?;
        joined_user = flags.contains(CloneFlags::CLONE_NEWUSER);
    }
    for (flag, fd) in &plan.join {
        errno_ctx(setns(fd.as_fd(), *flag), || {
            format!("setns({})", ns_label(*flag))
        })?;
        joined_user |= *flag == CloneFlags::CLONE_NEWUSER;
    }
    if plan.new_user {
        errno_ctx(unshare(CloneFlags::CLONE_NEWUSER), || {
            "unshare(user)".into()
        })?;
        chan.send(&Msg::UserNsReady)
            .map_err(|e| format!("send: {e}"))?;
        chan.expect("Proceed")?;
    }
    if plan.new_user || joined_user {
        errno_ctx(
            setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)),
            || "setresgid(0) in the user namespace".into(),
        )?;
        errno_ctx(
            setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)),
            || "setresuid(0) in the user namespace".into(),
        )?;
        // The uid change made us non-dumpable, which leaves our own /proc
        // files (timens_offsets) owned by a uid we cannot write as.
        errno_ctx(sys::prctl(libc::PR_SET_DUMPABLE, 1, 0), || {
            "prctl(DUMPABLE)".into()
        })?;
    }
    let early = plan.unshare - CloneFlags::CLONE_NEWCGROUP;
    errno_ctx(unshare(early), || format!("unshare({early:?})"))?;
    if let Some(offsets) = &plan.time_offsets {
        std::fs::write("/proc/self/timens_offsets", offsets)
            .map_err(|e| format!("write /proc/self/timens_offsets: {e}"))?;
    }
    errno_ctx(sys::prctl(libc::PR_SET_DUMPABLE, 0, 0), || {
        "prctl(DUMPABLE)".into()
    })?;
    // SAFETY: single-threaded (checked by the parent before the first fork).
    let forked = unsafe { sys::clone3(libc::CLONE_PARENT as u64, None) };
    match errno_ctx(forked, || "clone3(init)".into())? {
        sys::Forked::Child => stage2(plan, chan),
        sys::Forked::Parent(pid) => {
            chan.send(&Msg::InitPid(pid))
                .map_err(|e| format!("send: {e}"))?;
            Ok(())
        }
    }
}

fn ns_label(flag: CloneFlags) -> &'static str {
    use oci_spec::runtime::LinuxNamespaceType as N;
    for kind in [
        N::Mount,
        N::Cgroup,
        N::Uts,
        N::Ipc,
        N::User,
        N::Pid,
        N::Network,
        N::Time,
    ] {
        if crate::config::ns_flag(kind) == flag {
            return crate::config::ns_name(kind);
        }
    }
    "?"
}

/// Stage 2, the container's init. Never returns.
fn stage2(plan: &InitPlan, chan: &Channel) -> ! {
    let err = match run_stage2(plan, chan) {
        Ok(never) => match never {},
        Err(msg) => msg,
    };
    if chan.send(&Msg::Error(err.clone())).is_err() {
        // After Ready the parent is gone: the container's stderr is all we have.
        let line = format!("hull init: {err}\n");
        let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
    }
    sys::exit_now(1)
}

pub enum Never {}

/// Wait until the parent has put us in the container's cgroup, then
/// unshare the cgroup namespace (rooted there) if the config asks for one.
pub fn wait_for_cgroup(plan: &InitPlan, chan: &Channel) -> StepResult {
    chan.expect("Proceed")?;
    let cgroup_ns = plan.unshare & CloneFlags::CLONE_NEWCGROUP;
    errno_ctx(unshare(cgroup_ns), || "unshare(cgroup)".into())
}

fn run_stage2(plan: &InitPlan, chan: &Channel) -> StepResult<Never> {
    errno_ctx(
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64, 0),
        || "prctl(PDEATHSIG)".into(),
    )?;
    let cfg = plan.config;
    let process = cfg.process().map_err(|e| e.to_string())?;
    let build_rootfs = plan.state_dir.is_some();
    sched::initial_affinity(process)?;
    process::early(plan, process)?;
    let hook_state = if build_rootfs {
        rootfs::prepare(plan, chan)?
    } else {
        wait_for_cgroup(plan, chan)?;
        None
    };
    let console = if process.terminal().unwrap_or(false) {
        Some(process::open_console(process)?)
    } else {
        None
    };
    if build_rootfs {
        rootfs::finalize(plan)?;
    }
    if let Some(master) = console {
        chan.send(&Msg::Console(master))
            .map_err(|e| format!("send console: {e}"))?;
    }
    process::apply(plan, process, chan)?;
    let exec = process::resolve(&plan.exec)?;
    errno_ctx(sys::prctl(libc::PR_SET_PDEATHSIG, 0, 0), || {
        "prctl(PDEATHSIG)".into()
    })?;
    chan.send(&Msg::Ready).map_err(|e| format!("send: {e}"))?;
    let fifo = match &plan.state_dir {
        Some(dir) => Some(process::wait_for_start(dir)?),
        None => None,
    };
    let err = match start_container(plan, hook_state.as_deref()) {
        Ok(()) => match process::exec(plan, &exec) {
            Ok(never) => match never {},
            Err(e) => e,
        },
        Err(e) => e,
    };
    if let Some(fd) = &fifo {
        // `start` is reading: it reports this as the error of the start.
        let _ = nix::unistd::write(fd, err.as_bytes());
    }
    Err(err)
}

/// startContainer hooks, in the container once it is started.
fn start_container(plan: &InitPlan, hook_state: Option<&[u8]>) -> StepResult {
    let Some(state) = hook_state else {
        return Ok(());
    };
    // The parent sent the state while creating; by now the container
    // is created, as startContainer hooks expect.
    let mut v: serde_json::Value =
        serde_json::from_slice(state).map_err(|e| format!("hook state: {e}"))?;
    v["status"] = "created".into();
    let state = serde_json::to_vec(&v).map_err(|e| format!("hook state: {e}"))?;
    crate::hooks::run_in_container(plan.config, "startContainer", &state).map_err(|e| e.to_string())
}

/// NUL-terminated copy of a Rust string prepared before use in the child.
pub fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

pub fn raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}
