//! A container process in the caller's foreground (`run`, `exec` without
//! detaching): signals forwarded, the pty copied to and from the caller's
//! terminal, the exit status waited for. Shared by hull and hullctl.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Puts the caller's terminal in raw mode; restores it when dropped.
pub struct RawMode {
    saved: Option<termios::Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
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

/// Copies one read's worth; false at EOF or error.
pub fn copy(from: &impl AsFd, to: &impl AsFd) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => write_all(to, &buf[..n]),
    }
}

/// Writes all of `data`; false on an error.
pub fn write_all(to: &impl AsFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(w) => data = &data[w..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// The shell's convention: the code, or 128 + the signal.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Blocks every signal that can be forwarded and opens a signalfd for
/// them. Call before the fork, so the exit of a short process is not missed.
pub fn catch_signals() -> Result<SignalFd> {
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
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| Error::sys("sigprocmask", e))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(|e| Error::sys("signalfd", e))
}

/// One more fd to watch; `on_ready` runs when it is readable and says
/// whether to keep watching it.
pub struct Watch<'a> {
    pub fd: BorrowedFd<'a>,
    pub on_ready: &'a mut dyn FnMut() -> bool,
}

/// What to supervise: the process, its pty, whether the caller's stdin
/// goes to the pty.
pub struct Foreground<'a> {
    pub pid: i32,
    pub signals: &'a SignalFd,
    pub master: Option<&'a OwnedFd>,
    pub input: bool,
}

fn sync_winsize(master: &OwnedFd) {
    if let Ok((rows, cols)) = crate::sys::get_winsize(std::io::stdin().as_fd()) {
        let _ = crate::sys::set_winsize(master.as_fd(), rows, cols);
    }
}

/// Forwards signals (and copies the pty, and serves `watch`) until the
/// process exits; its status in the shell's convention.
pub fn supervise(f: &Foreground, mut watch: Option<Watch>) -> Result<i32> {
    let (pid, master) = (f.pid, f.master);
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = master.is_some() && f.input;
    // Polled until the container's side of the pty is gone (EIO, HUP).
    let mut master_open = master.is_some();
    if let Some(m) = master {
        sync_winsize(m);
    }
    if let Ok(st) = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        if let Some(code) = exit_code(st) {
            return Ok(code);
        }
    }
    loop {
        let mut fds = vec![PollFd::new(f.signals.as_fd(), PollFlags::POLLIN)];
        let mut add = |fd| {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            fds.len() - 1
        };
        let watch_at = watch.as_ref().map(|w| add(w.fd));
        let master_at = master.filter(|_| master_open).map(|m| add(m.as_fd()));
        let stdin_at = (master.is_some() && stdin_open).then(|| add(stdin.as_fd()));
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", e)),
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
        if is_ready(master_at) && !copy(master.expect("the pty is polled"), &stdout) {
            // EIO once the container closed its side: wait for the exit.
            master_open = false;
        }
        if is_ready(watch_at) && !watch.as_mut().is_some_and(|w| (w.on_ready)()) {
            watch = None;
        }
        if !ready[0] {
            continue;
        }
        let Ok(Some(info)) = f.signals.read_signal() else {
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
            if let Some(m) = master {
                sync_winsize(m);
            }
        } else if let Ok(s) = Signal::try_from(sig) {
            let _ = kill(Pid::from_raw(pid), s);
        }
    }
}
