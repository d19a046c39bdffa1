//! `hull run` in the foreground: start, forward signals, copy the terminal
//! if hull owns it, wait for the init and exit with its status.

use std::os::fd::AsRawFd;

use anyhow::{bail, Result};
use libcontainer::foreground::{catch_signals, supervise, Foreground, RawMode, Watch};
use libcontainer::notify::NotifySocket;
use libcontainer::{CreateOpts, ExecOpts, Runtime};

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
    let fg = Foreground {
        pid: spawned.pid,
        signals: &sfd,
        master: spawned.console.as_ref(),
        input: true,
    };
    let code = supervise(&fg, None);
    drop(raw);
    Ok(code?)
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
        if let Err(e) = rt.start(&opts.id) {
            let _ = rt.delete(&opts.id, true);
            return Err(e.into());
        }
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
    let fg = Foreground {
        pid: created.pid,
        signals: &sfd,
        master: created.console.as_ref(),
        input: true,
    };
    // The container's READY goes to the caller; we are the process the
    // caller watches, as with runc.
    // After READY the socket stays bound: later messages (STATUS=,
    // WATCHDOG=) are read and dropped, so a sender never blocks on a full
    // queue.
    let mut relayed = false;
    let mut relay = |n: &NotifySocket| {
        // Reads every waiting datagram (up to a READY= line).
        let line = n.read_ready();
        if let (false, Some(line)) = (relayed, line) {
            if let Err(e) = n.notify_host(&line, std::process::id() as i32) {
                tracing::warn!("{e}");
            }
            relayed = true;
        }
        true
    };
    let mut on_ready = || notify.as_ref().is_some_and(&mut relay);
    let watch = notify.as_ref().map(|n| Watch {
        fd: n.fd(),
        on_ready: &mut on_ready,
    });
    let code = supervise(&fg, watch);
    drop(raw);
    let _ = created.console.as_ref().map(|m| m.as_raw_fd());
    if !keep {
        if let Err(e) = rt.delete(&opts.id, true) {
            tracing::warn!("delete {}: {e}", opts.id);
        }
    }
    Ok(code?)
}
