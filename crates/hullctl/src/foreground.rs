//! A process in the foreground (`run` without -d, `exec`): forward
//! signals, copy the terminal when there is one, wait for its status.

use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Puts the host terminal in raw mode; restores it when dropped.
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

/// Blocks the signals to forward (all that can be) and opens a signalfd.
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
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?)
}

fn sync_winsize(master: &OwnedFd) {
    if let Ok((rows, cols)) = libcontainer::sys::get_winsize(std::io::stdin().as_fd()) {
        let _ = libcontainer::sys::set_winsize(master.as_fd(), rows, cols);
    }
}

/// Forwards signals (and copies the pty, from stdin too if `input`)
/// until `pid` exits; its status.
pub fn supervise(pid: i32, sfd: &SignalFd, master: Option<&OwnedFd>, input: bool) -> Result<i32> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = master.is_some() && input;
    if let Some(m) = master {
        sync_winsize(m);
    }
    if let Ok(st) = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        if let Some(code) = exit_code(st) {
            return Ok(code);
        }
    }
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
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
        if let (Some(true), Some(m)) = (ready.get(2), master) {
            if !copy(&stdin, m) {
                stdin_open = false;
            }
        }
        if let (Some(true), Some(m)) = (ready.get(1), master) {
            // EIO once the container closed its side: keep waiting for the exit.
            let _ = copy(m, &stdout);
        }
        if !ready[0] {
            continue;
        }
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
            if let Some(m) = master {
                sync_winsize(m);
            }
        } else if let Ok(s) = Signal::try_from(sig) {
            let _ = kill(Pid::from_raw(pid), s);
        }
    }
}
