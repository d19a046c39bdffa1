//! The monitor of a detached container, in the manner of conmon.
//!
//! ```text
//! hullctl start ─spawn─▶ hullctl monitor ID ─fork─▶ keeper (setsid, subreaper)
//!      ▲                  (exits at once)              │ fork
//!      │ "ok PID" / error on the sync pipe             ▼
//!      └──────────────────────────────────────── monitor: create + start the
//!                                                 container with stdout/stderr
//!                                                 on pipes, copy them to ctr.log,
//!                                                 reap the init, write exit.json
//! ```
//! The keeper holds the read ends of the pipes and waits on the monitor.
//! Should the monitor be killed, the container's init is reparented to the
//! keeper (a subreaper), which takes over: it copies the rest of the output
//! and records the exit code. Whoever reaps the init writes exit.json
//! (temp file + rename), then deletes the runtime state and unmounts the
//! rootfs (and removes the container with `--rm`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libcontainer::CreateOpts;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::ctx::{read_json, write_json, Ctx, Exit, MonitorInfo};
use crate::logs;
use crate::sys::{self, Forked};
use libcontainer::foreground::exit_code;

const SYNC_ENV: &str = "HULLCTL_SYNC_FD";
/// How long output is still read after the init exited.
const DRAIN: Duration = Duration::from_secs(2);

/// Starts the monitor of `id` (its bundle written) and waits until the
/// container runs; returns the init's pid.
pub fn launch(ctx: &Ctx, id: &str) -> Result<i32> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&w, FcntlArg::F_SETFD(FdFlag::empty()))?;
    let err_path = ctx.file(id, "monitor.err");
    let err = File::options()
        .create(true)
        .append(true)
        .open(&err_path)
        .with_context(|| format!("open {}", err_path.display()))?;
    let mut child = Command::new("/proc/self/exe")
        .arg("--root")
        .arg(&ctx.root)
        .arg("--runroot")
        .arg(&ctx.runroot)
        .arg("monitor")
        .arg(id)
        .env(SYNC_ENV, w.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .current_dir("/")
        .spawn()
        .context("start the monitor")?;
    drop(w);
    let mut msg = String::new();
    File::from(r).read_to_string(&mut msg)?;
    let _ = child.wait();
    match msg.trim().strip_prefix("ok ") {
        Some(pid) => Ok(pid.parse()?),
        None if msg.trim().is_empty() => {
            let log = std::fs::read_to_string(&err_path).unwrap_or_default();
            bail!(
                "the monitor exited without starting the container: {}",
                log.trim()
            )
        }
        None => bail!("{}", msg.trim()),
    }
}

fn signals() -> Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(SignalFd::with_flags(
        &set,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// `hullctl monitor ID`: what [`launch`] runs.
pub fn run(ctx: &Ctx, id: &str) -> Result<()> {
    let fd: i32 = std::env::var(SYNC_ENV)
        .context("the monitor is started by hullctl start")?
        .parse()?;
    let sync = sys::inherited_fd(fd)?;
    fcntl(&sync, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    if let Forked::Parent(_) = sys::fork()? {
        return Ok(());
    }
    nix::unistd::setsid()?;
    libcontainer::sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0)?;
    let sfd = signals()?;
    let rec = ctx.container(id)?;
    let id = rec.id.as_str();
    let tty = Ctx::meta(&rec).tty;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let keeper = nix::unistd::getpid().as_raw();
    match sys::fork()? {
        Forked::Child => {
            drop(sfd);
            let sfd = signals()?;
            let started = start(ctx, id, tty, keeper, [out_w, err_w]);
            let mut sync = File::from(sync);
            let (init, console) = match started {
                Ok(s) => s,
                Err(e) => {
                    let _ = write!(sync, "{e:#}");
                    std::process::exit(1);
                }
            };
            let _ = write!(sync, "ok {init}");
            drop(sync);
            let streams = match console {
                Some(m) => vec![(m, "stdout")],
                None => vec![(out_r, "stdout"), (err_r, "stderr")],
            };
            supervise(ctx, id, Some(init), None, streams, &sfd)
        }
        Forked::Parent(monitor) => {
            drop((out_w, err_w, sync));
            let streams = vec![(out_r, "stdout"), (err_r, "stderr")];
            supervise(ctx, id, None, Some(monitor), streams, &sfd)
        }
    }
}

/// Creates and starts the container with `pipes` as its stdout and
/// stderr (stdin: /dev/null); its init pid and pty master.
fn start(
    ctx: &Ctx,
    id: &str,
    tty: bool,
    keeper: i32,
    pipes: [OwnedFd; 2],
) -> Result<(i32, Option<OwnedFd>)> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    let saved_err = nix::unistd::dup(std::io::stderr())?;
    nix::unistd::dup2_stdin(&null)?;
    if !tty {
        nix::unistd::dup2_stdout(&pipes[0])?;
        nix::unistd::dup2_stderr(&pipes[1])?;
    }
    let opts = CreateOpts {
        id: id.to_string(),
        bundle: ctx.store.bundle_dir(id),
        ..Default::default()
    };
    let created = ctx.rt.create(&opts);
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&saved_err)?;
    drop(saved_err);
    drop(pipes);
    let created = created?;
    if let Err(e) = ctx.rt.start(id) {
        let _ = ctx.rt.delete(id, true);
        return Err(e.into());
    }
    write_json(
        &ctx.file(id, "monitor.json"),
        &MonitorInfo {
            monitor_pid: nix::unistd::getpid().as_raw(),
            keeper_pid: keeper,
            init_pid: created.pid,
            started_at: libcontainer::time::now_rfc3339(true),
        },
    )?;
    Ok((created.pid, created.console))
}

/// Copies the streams to the log and waits for the init. `standby` is the
/// monitor while the keeper waits on it: the keeper reads nothing until
/// the monitor is killed, and returns when it exits by itself.
struct Supervisor<'a> {
    ctx: &'a Ctx,
    id: &'a str,
    init: Option<i32>,
    standby: Option<i32>,
    keeper: bool,
    streams: Vec<(OwnedFd, &'static str)>,
    log: logs::Writer,
    /// Exit codes of children reaped before the init's pid was known.
    reaped: HashMap<i32, Option<i32>>,
    /// Set once the init is gone: its code, if it could be had.
    code: Option<Option<i32>>,
}

fn supervise(
    ctx: &Ctx,
    id: &str,
    init: Option<i32>,
    standby: Option<i32>,
    streams: Vec<(OwnedFd, &'static str)>,
    sfd: &SignalFd,
) -> Result<()> {
    Supervisor {
        ctx,
        id,
        init,
        standby,
        keeper: standby.is_some(),
        streams,
        log: logs::Writer::open(&ctx.file(id, "ctr.log"))?,
        reaped: HashMap::new(),
        code: None,
    }
    .run(sfd)
}

impl Supervisor<'_> {
    fn run(mut self, sfd: &SignalFd) -> Result<()> {
        let mut deadline: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let ready = self.poll(sfd)?;
            self.copy(&ready, &mut buf);
            while let Ok(Some(_)) = sfd.read_signal() {}
            if !self.reap() {
                // The monitor finished by itself: nothing for the keeper to do.
                return Ok(());
            }
            if self.standby.is_some() {
                continue;
            }
            self.check_init();
            if let Some(c) = self.code {
                if deadline.is_none() {
                    // Recorded at once: the drain below may be cut short.
                    record_exit(self.ctx, self.id, c)?;
                }
                let d = *deadline.get_or_insert_with(|| Instant::now() + DRAIN);
                if self.streams.is_empty() || Instant::now() > d {
                    return finish(self.ctx, self.id, c);
                }
            }
        }
    }

    /// Waits for a signal or output (none while on standby); which are ready.
    fn poll(&self, sfd: &SignalFd) -> Result<Vec<bool>> {
        let active = self.standby.is_none();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if active {
            fds.extend(
                self.streams
                    .iter()
                    .map(|(f, _)| PollFd::new(f.as_fd(), PollFlags::POLLIN)),
            );
        }
        let timeout = match (self.code, active) {
            (Some(_), _) => PollTimeout::from(100u16),
            (None, true) if self.init.is_none() => PollTimeout::from(0u8),
            (None, true) => PollTimeout::from(1000u16),
            (None, false) => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(e) => bail!("poll: {e}"),
        }
        Ok(fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect())
    }

    /// One read from each ready stream into the log; closed ones are dropped.
    fn copy(&mut self, ready: &[bool], buf: &mut [u8]) {
        let mut closed = Vec::new();
        for (i, (fd, name)) in self.streams.iter().enumerate() {
            if !ready.get(i + 1).copied().unwrap_or(false) {
                continue;
            }
            match nix::unistd::read(fd, buf) {
                Ok(0) => closed.push(i),
                Ok(n) => self.log.write(name, &buf[..n]),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            self.streams.remove(i);
        }
    }

    /// Reaps every exited child; false when the standby monitor exited
    /// by itself (rather than being killed).
    fn reap(&mut self) -> bool {
        loop {
            let st = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return true,
                Ok(st) => st,
            };
            let Some(pid) = st.pid().map(Pid::as_raw) else {
                return true;
            };
            if Some(pid) == self.standby {
                if !matches!(st, WaitStatus::Signaled(..)) {
                    return false;
                }
                self.standby = None;
            } else {
                self.reaped.insert(pid, exit_code(st));
            }
        }
    }

    /// Learns the init's pid (after a takeover) and whether it is gone.
    fn check_init(&mut self) {
        let (ctx, id) = (self.ctx, self.id);
        if self.init.is_none() {
            match ctx.rt.load(id) {
                Ok((st, _)) => self.init = Some(st.pid),
                Err(_) => self.code = self.code.or(Some(None)),
            }
        }
        let Some(i) = self.init else { return };
        if let Some(c) = self.reaped.remove(&i) {
            self.code = Some(c);
        } else if self.code.is_none() && self.keeper && ctx.init_pid(id).is_none() {
            // Reaped by the monitor just before it died, or not ours.
            match waitpid(Pid::from_raw(i), Some(WaitPidFlag::WNOHANG)) {
                Ok(st) if exit_code(st).is_some() => self.code = Some(exit_code(st)),
                Err(nix::errno::Errno::ECHILD) => self.code = Some(None),
                _ => {}
            }
        }
    }
}

/// Records the exit and releases what the container held.
fn finish(ctx: &Ctx, id: &str, code: Option<i32>) -> Result<()> {
    record_exit(ctx, id, code)?;
    release(ctx, id)
}

/// Writes exit.json, unless it holds a code already and `code` is none
/// (a keeper taking over after the monitor recorded the exit).
fn record_exit(ctx: &Ctx, id: &str, code: Option<i32>) -> Result<()> {
    let path = ctx.file(id, "exit.json");
    if code.is_none() && read_json::<Exit>(&path).is_some_and(|e| e.code.is_some()) {
        return Ok(());
    }
    write_json(
        &path,
        &Exit {
            code,
            finished_at: libcontainer::time::now_rfc3339(true),
        },
    )
}

/// Deletes the runtime state, unmounts the rootfs, and with `--rm`
/// removes the container.
pub fn release(ctx: &Ctx, id: &str) -> Result<()> {
    if ctx.rt.load(id).is_ok() {
        ctx.rt.delete(id, true)?;
    }
    let rec = ctx.container(id)?;
    ctx.store.unmount_rootfs(&rec)?;
    if Ctx::meta(&rec).autoremove {
        ctx.store.remove_container(id)?;
    }
    Ok(())
}
