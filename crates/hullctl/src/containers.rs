//! Container lifecycle commands: create, run, start, stop, kill, rm,
//! pause, unpause, wait.

use std::fs::File;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libcontainer::CreateOpts;
use libimage::store::ContainerRecord;
use serde_json::json;

use crate::cli::ContainerArgs;
use crate::ctx::{write_json, Ctx, Exit, Meta, MonitorInfo, Status};
use crate::monitor;
use libcontainer::foreground::{self, Foreground, RawMode};

fn check_name(name: &str) -> Result<()> {
    let ok = name
        .bytes()
        .enumerate()
        .all(|(i, b)| b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'_' | b'.' | b'-')));
    if name.is_empty() || !ok {
        bail!("invalid container name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*");
    }
    Ok(())
}

/// Finds the image, pulling it when it is not in the store (unless `never`).
fn image(ctx: &Ctx, name: &str, pull: &str) -> Result<libimage::store::ImageRecord> {
    match ctx.store.image(name) {
        Ok(i) => Ok(i),
        Err(libimage::Error::ImageUnknown(_))
            if pull != "never" && libimage::Reference::parse(name).is_ok() =>
        {
            eprintln!("hullctl: {name}: not in the store, pulling it");
            let quiet = crate::images::Pull {
                quiet: true,
                ..Default::default()
            };
            crate::images::pull(ctx, name, &quiet)
                .with_context(|| format!("{name:?}: no such image, and pulling it failed"))?;
            Ok(ctx.store.image(name)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the container record and its bundle (config.json + mounted rootfs).
pub fn create(ctx: &Ctx, a: &ContainerArgs) -> Result<ContainerRecord> {
    if let Some(n) = &a.name {
        check_name(n)?;
    }
    let img = image(ctx, &a.image, &a.pull)?;
    let config = ctx.store.image_config(&img)?;
    let mut meta = Meta {
        image_name: a.image.clone(),
        args: Vec::new(),
        stop_signal: config.config.stop_signal.clone(),
        autoremove: a.rm,
        tty: a.tty,
        interactive: a.interactive,
    };
    let mut rec = ctx
        .store
        .create_container(&img.id, a.name.as_deref(), Default::default())?;
    let built = crate::spec::build(&ctx.store, &img, &rec.id, a).and_then(|spec| {
        meta.args = serde_json::from_value(spec["process"]["args"].clone())?;
        rec.metadata
            .insert("hullctl".into(), serde_json::to_value(&meta)?);
        ctx.store.put_container(&rec)?;
        ctx.store.write_bundle(&rec, &spec)?;
        Ok(())
    });
    if let Err(e) = built {
        let _ = ctx.store.remove_container(&rec.id);
        return Err(e);
    }
    Ok(rec)
}

/// Makes an exited or created container startable again.
fn prepare(ctx: &Ctx, rec: &ContainerRecord) -> Result<()> {
    // The last run's monitor may still be releasing the rootfs.
    wait_monitor(ctx, &rec.id, Duration::from_secs(10));
    for f in ["exit.json", "monitor.json"] {
        let _ = std::fs::remove_file(ctx.file(&rec.id, f));
    }
    if ctx.rt.load(&rec.id).is_ok() {
        ctx.rt.delete(&rec.id, true)?;
    }
    ctx.store.mount_rootfs(rec)?;
    Ok(())
}

/// Starts a container in the background, under its monitor.
pub fn start(ctx: &Ctx, query: &str) -> Result<ContainerRecord> {
    let rec = ctx.container(query)?;
    match ctx.status(&rec.id) {
        s if s.is_live() => return Ok(rec),
        _ => {}
    }
    prepare(ctx, &rec)?;
    if let Err(e) = monitor::launch(ctx, &rec.id) {
        let _ = ctx.store.unmount_rootfs(&rec);
        if Ctx::meta(&rec).autoremove {
            let _ = ctx.store.remove_container(&rec.id);
        }
        return Err(e);
    }
    Ok(rec)
}

/// `run`: create, then start in the background (`-d`) or in the
/// foreground; returns the exit code to leave with.
pub fn run(ctx: &Ctx, a: &ContainerArgs, detach: bool) -> Result<i32> {
    if detach && a.interactive {
        bail!("-d with -i: stdin cannot be attached to a detached container");
    }
    let rec = create(ctx, a)?;
    if detach {
        start(ctx, &rec.id)?;
        println!("{}", rec.id);
        return Ok(0);
    }
    run_foreground(ctx, &rec, a)
}

fn run_foreground(ctx: &Ctx, rec: &ContainerRecord, a: &ContainerArgs) -> Result<i32> {
    let id = rec.id.as_str();
    let cleanup = |ctx: &Ctx| {
        let _ = monitor::release(ctx, id);
    };
    if !a.interactive {
        let null = File::open("/dev/null")?;
        nix::unistd::dup2_stdin(&null)?;
    }
    let opts = CreateOpts {
        id: id.to_string(),
        bundle: ctx.store.bundle_dir(id),
        ..Default::default()
    };
    let created = match ctx.rt.create(&opts) {
        Ok(c) => c,
        Err(e) => {
            cleanup(ctx);
            return Err(e.into());
        }
    };
    let sfd = foreground::catch_signals()?;
    if let Err(e) = ctx.rt.start(id) {
        cleanup(ctx);
        return Err(e.into());
    }
    let me = nix::unistd::getpid().as_raw();
    let info = MonitorInfo {
        monitor_pid: me,
        keeper_pid: me,
        init_pid: created.pid,
        started_at: libcontainer::time::now_rfc3339(true),
    };
    write_json(&ctx.file(id, "monitor.json"), &info)?;
    let raw = created.console.as_ref().map(|_| RawMode::enter());
    let code = foreground::supervise(
        &Foreground {
            pid: created.pid,
            signals: &sfd,
            master: created.console.as_ref(),
            input: a.interactive,
        },
        None,
    );
    drop(raw);
    let exit = Exit {
        code: code.as_ref().ok().copied(),
        finished_at: libcontainer::time::now_rfc3339(true),
    };
    write_json(&ctx.file(id, "exit.json"), &exit)?;
    cleanup(ctx);
    Ok(code?)
}

fn signal_of(meta: &Meta) -> i32 {
    meta.stop_signal
        .as_deref()
        .and_then(|s| libcontainer::signal::parse(s).ok())
        .unwrap_or(libc::SIGTERM)
}

/// Polls `done` every 50ms until it holds or `timeout` passes.
fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the monitor (and its keeper) to have finished with `id`.
fn wait_monitor(ctx: &Ctx, id: &str, timeout: Duration) {
    wait_until(timeout, || !ctx.monitor_alive(id));
}

pub fn stop(ctx: &Ctx, query: &str, secs: u64) -> Result<()> {
    let rec = ctx.container(query)?;
    let id = rec.id.as_str();
    if !ctx.status(id).is_live() {
        return Ok(());
    }
    if ctx.status(id) == Status::Paused {
        ctx.rt.resume(id)?;
    }
    let _ = ctx.rt.kill(id, signal_of(&Ctx::meta(&rec)), false);
    let stopped = || !ctx.status(id).is_live();
    if !wait_until(Duration::from_secs(secs), stopped) {
        let _ = ctx.rt.kill(id, libc::SIGKILL, true);
        if !wait_until(Duration::from_secs(10), stopped) {
            bail!("container {query}: still running after SIGKILL");
        }
    }
    wait_monitor(ctx, id, Duration::from_secs(10));
    Ok(())
}

pub fn kill(ctx: &Ctx, query: &str, signal: &str) -> Result<()> {
    let rec = ctx.container(query)?;
    if !ctx.status(&rec.id).is_live() {
        bail!("container {query} is not running");
    }
    let sig = libcontainer::signal::parse(signal)?;
    ctx.rt.kill(&rec.id, sig, false)?;
    Ok(())
}

pub fn rm(ctx: &Ctx, query: &str, force: bool) -> Result<()> {
    let rec = ctx.container(query)?;
    let id = rec.id.as_str();
    let status = ctx.status(id);
    if status.is_live() {
        if !force {
            bail!(
                "container {query} is {}: stop it first, or use rm -f",
                status.word()
            );
        }
        if status == Status::Paused {
            let _ = ctx.rt.resume(id);
        }
        let _ = ctx.rt.kill(id, libc::SIGKILL, true);
        wait_until(Duration::from_secs(10), || !ctx.status(id).is_live());
    }
    wait_monitor(ctx, id, Duration::from_secs(10));
    if ctx.rt.load(id).is_ok() {
        ctx.rt.delete(id, true)?;
    }
    match ctx.store.remove_container(id) {
        // Removed meanwhile by its monitor (--rm).
        Err(libimage::Error::ContainerUnknown(_)) => Ok(()),
        r => Ok(r?),
    }
}

pub fn pause(ctx: &Ctx, query: &str, pause: bool) -> Result<()> {
    let rec = ctx.container(query)?;
    match (ctx.status(&rec.id), pause) {
        (Status::Running, true) => ctx.rt.pause(&rec.id)?,
        (Status::Paused, false) => ctx.rt.resume(&rec.id)?,
        (s, true) => bail!("container {query} is {}, not running", s.word()),
        (s, false) => bail!("container {query} is {}, not paused", s.word()),
    }
    Ok(())
}

/// Waits for the exit; its code (-1 when it could not be collected).
pub fn wait(ctx: &Ctx, query: &str) -> Result<i32> {
    let rec = ctx.container(query)?;
    let id = rec.id.clone();
    loop {
        if let Status::Exited(code) = ctx.status(&id) {
            return Ok(code.unwrap_or(-1));
        }
        if ctx.store.container(&id).is_err() {
            bail!("container {query} was removed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `inspect` of a container, in the shape of Docker's main fields.
pub fn inspect(ctx: &Ctx, rec: &ContainerRecord) -> Result<serde_json::Value> {
    let id = rec.id.as_str();
    let meta = Ctx::meta(rec);
    let status = ctx.status(id);
    let exit = ctx.exit(id);
    let mon = ctx.monitor_info(id);
    let spec: serde_json::Value =
        crate::ctx::read_json(&ctx.store.bundle_dir(id).join("config.json")).unwrap_or_default();
    Ok(json!({
        "Id": id,
        "Name": rec.names.first(),
        "Created": rec.created,
        "Image": format!("sha256:{}", rec.image),
        "ImageName": meta.image_name,
        "Path": meta.args.first(),
        "Args": meta.args.get(1..).unwrap_or_default(),
        "State": {
            "Status": status.word(),
            "Running": status == Status::Running,
            "Paused": status == Status::Paused,
            "Pid": ctx.init_pid(id).unwrap_or(0),
            "ExitCode": exit.as_ref().and_then(|e| e.code),
            "StartedAt": mon.as_ref().map(|m| m.started_at.clone()),
            "FinishedAt": exit.as_ref().map(|e| e.finished_at.clone()),
            "MonitorPid": mon.as_ref().map(|m| m.monitor_pid),
        },
        "Config": {
            "Hostname": spec["hostname"],
            "Env": spec["process"]["env"],
            "Cmd": meta.args,
            "WorkingDir": spec["process"]["cwd"],
            "User": spec["process"]["user"],
            "Tty": meta.tty,
            "StopSignal": meta.stop_signal,
            "AutoRemove": meta.autoremove,
        },
        "Mounts": spec["mounts"],
        "HostConfig": {
            "Resources": spec["linux"]["resources"],
            "CapAdd": spec["process"]["capabilities"]["bounding"],
            "ReadonlyRootfs": spec["root"]["readonly"],
        },
        "LogPath": ctx.file(id, "ctr.log"),
        "BundlePath": ctx.store.bundle_dir(id),
    }))
}
