//! The process half of init: oom score, console, rlimits, identity and
//! capabilities, the exec barrier and execve.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

use super::rootfs::{fd_path, open_fd};
use super::{errno_ctx, InitPlan, StepResult};
use crate::channel::{Channel, Msg};
use crate::config::{last_cap, CapSets};
use crate::sys;

/// argv/envp prepared in the parent.
#[derive(Debug, Clone)]
pub struct ExecPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// Directories of the container's PATH, for resolving args[0].
    pub path: Vec<String>,
}

impl ExecPlan {
    pub fn new(process: &Process, listen_fds: u32) -> ExecPlan {
        let args: Vec<CString> = process
            .args()
            .iter()
            .flatten()
            .map(|a| super::cstring(a))
            .collect();
        let env_list = process.env().clone().unwrap_or_default();
        let path = env_list
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .split(':')
            .map(|s| {
                if s.is_empty() {
                    ".".to_string()
                } else {
                    s.to_string()
                }
            })
            .collect();
        let mut env: Vec<CString> = env_list.iter().map(|e| super::cstring(e)).collect();
        if listen_fds > 0 {
            env.push(super::cstring(&format!("LISTEN_FDS={listen_fds}")));
            env.push(super::cstring("LISTEN_PID=1"));
        }
        ExecPlan { args, env, path }
    }
}

/// Before the rootfs: oom_score_adj and the session keyring.
pub fn early(plan: &InitPlan, process: &Process) -> StepResult {
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("write oom_score_adj {adj}: {e}"))?;
    }
    if !plan.no_new_keyring {
        let name = super::cstring(&format!("_ses.{}", plan.container_id));
        // SAFETY: KEYCTL_JOIN_SESSION_KEYRING takes a NUL-terminated name.
        let r = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                1, /* KEYCTL_JOIN_SESSION_KEYRING */
                name.as_ptr(),
            )
        };
        match nix::errno::Errno::result(r) {
            Ok(_) | Err(nix::errno::Errno::ENOSYS) | Err(nix::errno::Errno::EPERM) => {}
            Err(e) => return Err(format!("join session keyring: {}", e.desc())),
        }
    }
    Ok(())
}

/// Open a pty in the container's devpts, make it the controlling terminal
/// and stdio, bind it over /dev/console; returns the master for the parent.
pub fn open_console(process: &Process) -> StepResult<OwnedFd> {
    let master = errno_ctx(
        open_fd("/dev/ptmx", OFlag::O_RDWR | OFlag::O_NOCTTY),
        || "open /dev/ptmx".into(),
    )?;
    errno_ctx(sys::pty_unlock(master.as_fd()), || "unlock pty".into())?;
    let peer = errno_ctx(sys::pty_peer(master.as_fd()), || "open pty peer".into())?;
    if let Some(size) = process.console_size() {
        let _ = sys::set_winsize(peer.as_fd(), size.height() as u16, size.width() as u16);
    }
    let flags = OFlag::O_CREAT | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    drop(nix::fcntl::open(
        "/dev/console",
        flags,
        Mode::from_bits_truncate(0o600),
    ));
    errno_ctx(
        mount(
            Some(fd_path(&peer).as_str()),
            "/dev/console",
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ),
        || "bind pty on /dev/console".into(),
    )?;
    errno_ctx(nix::unistd::setsid(), || "setsid".into())?;
    errno_ctx(sys::set_controlling_tty(peer.as_fd()), || {
        "set controlling tty".into()
    })?;
    errno_ctx(nix::unistd::dup2_stdin(&peer), || {
        "dup2 pty to stdin".into()
    })?;
    errno_ctx(nix::unistd::dup2_stdout(&peer), || {
        "dup2 pty to stdout".into()
    })?;
    errno_ctx(nix::unistd::dup2_stderr(&peer), || {
        "dup2 pty to stderr".into()
    })?;
    Ok(master)
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as R;
    match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn apply_rlimits(process: &Process) -> StepResult {
    for r in process.rlimits().iter().flatten() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: lim is a valid rlimit.
        let ret = unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) };
        errno_ctx(nix::errno::Errno::result(ret), || {
            format!(
                "setrlimit {:?} soft {} hard {}",
                r.typ(),
                r.soft(),
                r.hard()
            )
        })?;
    }
    Ok(())
}

/// Bounding set, then uid/gid (keeping caps), then the other four sets.
fn apply_identity(process: &Process, caps: &CapSets) -> StepResult {
    for cap in 0..=last_cap() {
        if caps.bounding & (1u64 << cap) == 0 {
            match sys::prctl(libc::PR_CAPBSET_DROP, cap as u64, 0) {
                Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
                Err(e) => {
                    return Err(format!(
                        "drop capability {cap} from the bounding set: {}",
                        e.desc()
                    ))
                }
            }
        }
    }
    errno_ctx(sys::prctl(libc::PR_SET_KEEPCAPS, 1, 0), || {
        "prctl(KEEPCAPS)".into()
    })?;
    let user = process.user();
    let gids: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    errno_ctx(nix::unistd::setgroups(&gids), || {
        format!("setgroups {gids:?}")
    })?;
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    errno_ctx(setresgid(gid, gid, gid), || format!("setresgid {gid}"))?;
    errno_ctx(setresuid(uid, uid, uid), || format!("setresuid {uid}"))?;
    errno_ctx(sys::prctl(libc::PR_SET_KEEPCAPS, 0, 0), || {
        "prctl(KEEPCAPS)".into()
    })?;
    errno_ctx(
        sys::capset(caps.effective, caps.permitted, caps.inheritable),
        || {
            format!(
                "capset effective {:#x} permitted {:#x} inheritable {:#x}",
                caps.effective, caps.permitted, caps.inheritable
            )
        },
    )?;
    let amb = libc::PR_CAP_AMBIENT;
    errno_ctx(
        sys::prctl(amb, libc::PR_CAP_AMBIENT_CLEAR_ALL as u64, 0),
        || "clear ambient capabilities".into(),
    )?;
    // As runc: a capability that is not also inheritable and permitted
    // cannot be ambient; the kernel refuses it and that is not an error.
    for cap in 0..64u64 {
        if caps.ambient & (1 << cap) != 0 {
            let _ = sys::prctl(amb, libc::PR_CAP_AMBIENT_RAISE as u64, cap);
        }
    }
    Ok(())
}

/// After the rootfs: rlimits, identity, umask, cwd, no_new_privs.
pub fn apply(plan: &InitPlan, process: &Process, chan: &Channel) -> StepResult {
    apply_rlimits(process)?;
    super::sched::apply(process)?;
    if let Some(p) = &plan.config.mempolicy {
        let mask = if p.nodemask.is_empty() {
            std::ptr::null()
        } else {
            p.nodemask.as_ptr()
        };
        // SAFETY: mask points at p.nodemask, maxnode bits long (or is null).
        let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, p.mode, mask, p.maxnode) };
        errno_ctx(nix::errno::Errno::result(r), || {
            "set_mempolicy (linux.memoryPolicy)".into()
        })?;
    }
    if let Some(p) = plan
        .config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref())
    {
        let domain: libc::c_ulong = match p.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
            _ => 0,
        };
        // SAFETY: personality takes a plain integer.
        let r = unsafe { libc::personality(domain) };
        errno_ctx(nix::errno::Errno::result(r), || "personality".into())?;
    }
    // Without no_new_privs loading a filter needs CAP_SYS_ADMIN: before the
    // capabilities go. With it, as late as possible (just before execve).
    if seccomp_early(plan, process) {
        load_seccomp(plan, Some(chan))?;
    }
    apply_identity(process, &plan.config.caps)?;
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(Mode::from_bits_truncate(umask));
    let cwd = process.cwd();
    errno_ctx(nix::unistd::chdir(cwd.as_path()), || {
        format!("chdir to cwd {:?}", cwd)
    })?;
    if !sys::cwd_is_reachable() {
        return Err(format!("cwd {:?} is outside the container root", cwd));
    }
    if process.no_new_privileges().unwrap_or(false) {
        errno_ctx(sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0), || {
            "prctl(NO_NEW_PRIVS)".into()
        })?;
    }
    Ok(())
}

fn executable(path: &str) -> bool {
    let Ok(c) = CString::new(path) else {
        return false;
    };
    let is_file = nix::sys::stat::stat(c.as_c_str())
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG);
    // SAFETY: c is NUL-terminated.
    is_file && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

/// Find args[0] the way execvp would, inside the container.
pub fn resolve(exec: &ExecPlan) -> StepResult<CString> {
    let arg0 = exec
        .args
        .first()
        .ok_or("process.args is empty")?
        .to_string_lossy()
        .into_owned();
    if arg0.contains('/') {
        if executable(&arg0) {
            return Ok(super::cstring(&arg0));
        }
        // runc's wording, which clients map to exit codes (Docker: "no such
        // file or directory" -> 127, "permission denied" -> 126).
        return Err(match nix::sys::stat::stat(arg0.as_str()) {
            Err(e) => format!("exec: {arg0:?}: stat {arg0}: {}", e.desc().to_lowercase()),
            Ok(_) => format!("exec: {arg0:?}: permission denied"),
        });
    }
    for dir in &exec.path {
        let candidate = format!("{}/{arg0}", dir.trim_end_matches('/'));
        if executable(&candidate) {
            return Ok(super::cstring(&candidate));
        }
    }
    Err(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    ))
}

/// Block until `start` opens exec.fifo, then tell it we are going. The fd
/// stays open (close-on-exec) until execve: `start` waits for its end, and
/// reads our error from it if we fail before.
pub fn wait_for_start(state_dir: &OwnedFd) -> StepResult<OwnedFd> {
    let r = nix::fcntl::openat(
        state_dir,
        crate::state::EXEC_FIFO,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let fd = errno_ctx(r, || "open exec fifo".into())?;
    let r = nix::unistd::write(&fd, b"0");
    errno_ctx(r, || "write exec fifo".into())?;
    Ok(fd)
}

fn reset_signals() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: installing SIG_DFL is always sound.
            let _ = unsafe { sigaction(sig, &dfl) };
        }
    }
}

/// Loads the filter; a notify fd goes to the parent, for the agent.
fn load_seccomp(plan: &InitPlan, chan: Option<&Channel>) -> StepResult {
    let Some(f) = &plan.config.seccomp else {
        return Ok(());
    };
    let listener = errno_ctx(crate::seccomp::load(f), || "load seccomp filter".into())?;
    if let (Some(fd), Some(chan)) = (listener, chan) {
        chan.send(&Msg::SeccompFd(fd))
            .map_err(|e| format!("send seccomp fd: {e}"))?;
    }
    Ok(())
}

/// A notifying filter is loaded while the parent still listens (before
/// Ready), whatever noNewPrivileges says.
fn seccomp_early(plan: &InitPlan, process: &Process) -> bool {
    !process.no_new_privileges().unwrap_or(false)
        || plan
            .config
            .seccomp
            .as_ref()
            .is_some_and(|f| f.listener.is_some())
}

/// The last step: mark leftover fds close-on-exec and execve.
pub fn exec(plan: &InitPlan, path: &CString) -> StepResult<super::Never> {
    reset_signals();
    errno_ctx(sys::cloexec_from(3 + plan.preserve_fds), || {
        "close_range".into()
    })?;
    let late = plan
        .config
        .process()
        .ok()
        .is_some_and(|p| !seccomp_early(plan, p));
    if late {
        load_seccomp(plan, None)?;
    }
    let argv: Vec<*const libc::c_char> = plan
        .exec
        .args
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let envp: Vec<*const libc::c_char> = plan
        .exec
        .env
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let err = sys::execve(path, &argv, &envp);
    Err(format!("exec {:?}: {}", path, err.desc()))
}
