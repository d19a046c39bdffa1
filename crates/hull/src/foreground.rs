//! `hull run` in the foreground: start, forward signals, copy the terminal
//! if hull owns it, wait for the init and exit with its status.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{bail, Result};
use libcontainer::notify::NotifySocket;
use libcontainer::{CreateOpts, ExecOpts, Runtime};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Restores the host terminal's mode when dropped.
struct RawMode {
    saved: Option<termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), termios::SetArg::TCSANOW, s);
        }
    }
}

fn copy(from: &impl AsFd, to: &impl AsFd) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Forward signals (and copy the pty, relay the container's READY) until
/// the init exits; its status.
fn supervise(
    pid: i32,
    sfd: &SignalFd,
    master: Option<&OwnedFd>,
    notify: Option<&NotifySocket>,
) -> Result<i32> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = master.is_some();
    let mut notify = notify;
    if let Some(m) = master {
        if let Ok((rows, cols)) = libcontainer::sys::get_winsize(stdin.as_fd()) {
            let _ = libcontainer::sys::set_winsize(m.as_fd(), rows, cols);
        }
    }
    if let Ok(st) = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        if let Some(code) = exit_code(st) {
            return Ok(code);
        }
    }
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut add = |fd| {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            fds.len() - 1
        };
        let notify_at = notify.map(|n| add(n.fd()));
        let master_at = master.map(|m| add(m.as_fd()));
        let stdin_at = (master.is_some() && stdin_open).then(|| add(stdin.as_fd()));
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("poll: {e}"),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let is_ready = |at: Option<usize>| at.is_some_and(|i| ready[i]);
        if is_ready(stdin_at) && !copy(&stdin, master.expect("stdin is polled with a pty")) {
            stdin_open = false;
        }
        if is_ready(master_at) {
            // EIO once the container closed its side: drain and keep waiting for the exit.
            let _ = copy(master.expect("pty is polled"), &stdout);
        }
        if let (true, Some(n)) = (is_ready(notify_at), notify) {
            if let Some(line) = n.read_ready() {
                // We are the process the caller watches, as with runc.
                if let Err(e) = n.notify_host(&line, std::process::id() as i32) {
                    tracing::warn!("{e}");
                }
                notify = None;
            }
        }
        if ready[0] {
            let Ok(Some(info)) = sfd.read_signal() else {
                continue;
            };
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGCHLD {
                loop {
                    match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::StillAlive) | Err(_) => break,
                        Ok(st) if st.pid() == Some(Pid::from_raw(pid)) => {
                            if let Some(code) = exit_code(st) {
                                if let Some(m) = master {
                                    while copy(m, &stdout) {}
                                }
                                return Ok(code);
                            }
                        }
                        Ok(_) => {}
                    }
                }
            } else if sig == libc::SIGWINCH {
                if let (Some(m), Ok((r, c))) =
                    (master, libcontainer::sys::get_winsize(stdin.as_fd()))
                {
                    let _ = libcontainer::sys::set_winsize(m.as_fd(), r, c);
                }
            } else if let Ok(s) = Signal::try_from(sig) {
                let _ = kill(Pid::from_raw(pid), s);
            }
        }
    }
}

fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    set
}

/// Block the forwarded signals and open a signalfd for them.
fn catch_signals() -> Result<SignalFd> {
    let set = forwarded_signals();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?)
}

/// `hull exec`: spawn the process; in the foreground wait for its status.
pub fn exec(rt: &Runtime, opts: &ExecOpts, detach: bool) -> Result<i32> {
    if detach && opts.process["terminal"] == true && opts.console_socket.is_none() {
        bail!("cannot allocate a tty without --console-socket when the runtime detaches");
    }
    if detach {
        rt.exec(opts)?;
        return Ok(0);
    }
    // Blocked before the fork, so the exit of a short process is not missed.
    let sfd = catch_signals()?;
    let spawned = rt.exec(opts)?;
    let raw = spawned.console.as_ref().map(|_| RawMode::enter());
    let code = supervise(spawned.pid, &sfd, spawned.console.as_ref(), None);
    drop(raw);
    code
}

pub fn run(rt: &Runtime, opts: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
    let created = rt.create(opts)?;
    let notify = match &opts.notify_socket {
        Some(host) => match NotifySocket::bind(&rt.store.dir(&opts.id), host) {
            Ok(n) => n,
            Err(e) => {
                let _ = rt.delete(&opts.id, true);
                return Err(e.into());
            }
        },
        None => None,
    };
    if detach {
        if created.console.is_some() {
            let _ = rt.delete(&opts.id, true);
            bail!("cannot allocate a tty without --console-socket when the runtime detaches");
        }
        let init_start = libcontainer::state::process_start_time(created.pid).unwrap_or(0);
        rt.start(&opts.id)?;
        if let Some(n) = notify {
            n.relay(created.pid, init_start, created.pid)?;
        }
        return Ok(0);
    }
    let sfd = catch_signals()?;
    if let Err(e) = rt.start(&opts.id) {
        let _ = rt.delete(&opts.id, true);
        return Err(e.into());
    }
    let raw = created.console.as_ref().map(|_| RawMode::enter());
    let code = supervise(created.pid, &sfd, created.console.as_ref(), notify.as_ref());
    drop(raw);
    let _ = created.console.as_ref().map(|m| m.as_raw_fd());
    if !keep {
        if let Err(e) = rt.delete(&opts.id, true) {
            tracing::warn!("delete {}: {e}", opts.id);
        }
    }
    code
}
