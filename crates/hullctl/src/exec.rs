//! `exec`: another process in a running container, in the foreground.

use std::fs::File;

use anyhow::{bail, Result};
use libcontainer::ExecOpts;
use libimage::imagefs::ImageFs;
use serde_json::{json, Value};

use crate::cli::ExecArgs;
use crate::ctx::{Ctx, Status};
use libcontainer::foreground::{self, Foreground, RawMode};

/// The container's process with the exec's command, terminal, env, cwd and user.
fn process(ctx: &Ctx, id: &str, image: &str, a: &ExecArgs) -> Result<Value> {
    let mut p = ctx.rt.container_config(id)?["process"].take();
    p["args"] = json!(a.command);
    p["terminal"] = json!(a.tty);
    let mut env: Vec<String> = serde_json::from_value(p["env"].clone()).unwrap_or_default();
    for e in &a.env {
        let e = if e.contains('=') {
            e.clone()
        } else {
            match std::env::var(e) {
                Ok(v) => format!("{e}={v}"),
                Err(_) => continue,
            }
        };
        let key = e.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(&key));
        env.push(e);
    }
    if a.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p["env"] = json!(env);
    if let Some(w) = &a.workdir {
        p["cwd"] = json!(w);
    }
    if let Some(u) = &a.user {
        let fs = ImageFs::open(&ctx.store, image)?;
        let user = libimage::bundle::resolve_user(&fs, u)?;
        p["user"] = json!({"uid": user.uid, "gid": user.gid});
        if !user.additional_gids.is_empty() {
            p["user"]["additionalGids"] = json!(user.additional_gids);
        }
    }
    Ok(p)
}

pub fn exec(ctx: &Ctx, a: &ExecArgs) -> Result<i32> {
    let rec = ctx.container(&a.container)?;
    let id = rec.id.as_str();
    match ctx.status(id) {
        Status::Running => {}
        s => bail!("container {} is {}, not running", a.container, s.word()),
    }
    if a.detach && a.tty {
        bail!("exec -d with -t: a detached process cannot keep a terminal");
    }
    let opts = ExecOpts {
        id: id.to_string(),
        process: process(ctx, id, &rec.image, a)?,
        console_socket: None,
        pid_file: None,
        preserve_fds: 0,
        ignore_paused: false,
        seal_exe: false,
        sub_cgroups: Vec::new(),
    };
    if !a.interactive {
        let null = File::open("/dev/null")?;
        nix::unistd::dup2_stdin(&null)?;
    }
    if a.detach {
        ctx.rt.exec(&opts)?;
        return Ok(0);
    }
    // Blocked before the fork, so the exit of a short process is not missed.
    let sfd = foreground::catch_signals()?;
    let spawned = ctx.rt.exec(&opts)?;
    let raw = spawned.console.as_ref().map(|_| RawMode::enter());
    let code = foreground::supervise(
        &Foreground {
            pid: spawned.pid,
            signals: &sfd,
            master: spawned.console.as_ref(),
            input: a.interactive,
        },
        None,
    );
    drop(raw);
    Ok(code?)
}
