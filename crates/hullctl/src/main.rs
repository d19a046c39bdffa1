//! hullctl: pull or import images and run containers from them, with the
//! hull runtime's libraries (libimage for images and bundles,
//! libcontainer for the container processes).

mod cli;
mod containers;
mod ctx;
mod exec;
mod images;
mod logs;
mod monitor;
mod ps;
mod save;
mod seccomp;
mod spec;
mod sys;
mod table;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser};

use cli::{Cli, Cmd};
use ctx::Ctx;

/// Absolute, so the monitor (started in /) finds the same directories.
fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(p).with_context(|| format!("create {}", p.display()))?;
    p.canonicalize()
        .with_context(|| format!("resolve {}", p.display()))
}

/// Runs `f` on each name, reporting each failure; fails if any did.
fn each(names: &[String], print: bool, f: impl Fn(&str) -> Result<()>) -> Result<i32> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) if print => println!("{n}"),
            Ok(()) => {}
            Err(e) => {
                eprintln!("hullctl: {n}: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn inspect(ctx: &Ctx, names: &[String], kind: Option<&str>) -> Result<i32> {
    let mut out = Vec::new();
    let mut failed = false;
    for n in names {
        let container = || -> Result<serde_json::Value> {
            let rec = ctx.container(n)?;
            containers::inspect(ctx, &rec)
        };
        let image = || -> Result<serde_json::Value> {
            let img = ctx.store.image(n)?;
            images::inspect(ctx, &img)
        };
        let found = match kind {
            Some("image") => image(),
            Some("container") => container(),
            _ => container().or_else(|ce| image().map_err(|_| ce)),
        };
        match found {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("hullctl: {n}: {e:#}");
                failed = true;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if failed { 1 } else { 0 })
}

fn version() {
    println!("hullctl version {}", env!("CARGO_PKG_VERSION"));
    println!("OCI runtime spec {}", libcontainer::OCI_VERSION);
}

fn info(ctx: &Ctx) -> Result<()> {
    let containers = ctx.store.containers()?;
    let running = containers
        .iter()
        .filter(|c| ctx.status(&c.id).is_live())
        .count();
    let cgroup = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else {
        "v1"
    };
    let uname = nix::sys::utsname::uname()?;
    let v = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "store": {"root": ctx.root, "driver": format!("{:?}", ctx.store.driver()).to_lowercase(),
                  "images": ctx.store.images()?.len(), "layers": ctx.store.layers()?.len()},
        "runroot": ctx.runroot,
        "containers": {"total": containers.len(), "running": running},
        "host": {"kernel": uname.release().to_string_lossy(), "arch": uname.machine().to_string_lossy(),
                 "cgroup": cgroup, "cpus": std::thread::available_parallelism().map_or(0, |n| n.get())},
        "security": {"seccomp": "default profile (Podman's)", "capabilities": spec::DEFAULT_CAPS},
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn completion(shell: &str) -> Result<()> {
    use clap_complete::Shell;
    let shell = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        s => bail!("no completion for {s}"),
    };
    let mut out = std::io::stdout();
    clap_complete::generate(shell, &mut Cli::command(), "hullctl", &mut out);
    out.flush()?;
    Ok(())
}

fn dispatch(cli: Cli) -> Result<i32> {
    if let Cmd::Completion { shell } = &cli.cmd {
        completion(shell)?;
        return Ok(0);
    }
    if let Cmd::Version = &cli.cmd {
        version();
        return Ok(0);
    }
    let ctx = Ctx::open(&absolute(&cli.root)?, &absolute(&cli.runroot)?)?;
    let ok = |r: Result<()>| r.map(|()| 0);
    match cli.cmd {
        Cmd::Pull {
            reference,
            platform,
            quiet,
            tls_verify,
        } => {
            let p = images::Pull {
                platform: platform.as_deref(),
                quiet,
                tls_verify,
            };
            ok(images::pull(&ctx, &reference, &p))
        }
        Cmd::Images { quiet } => ok(images::images(&ctx, quiet)),
        Cmd::Rmi { images } => ok(images::rmi(&ctx, &images)),
        Cmd::Tag { image, name } => ok(images::tag(&ctx, &image, &name)),
        Cmd::Import { path, name } => ok(images::import(&ctx, &path, name.as_deref())),
        Cmd::Save { image, output } => ok(save::save(&ctx, &image, &output)),
        Cmd::Inspect { names, kind } => inspect(&ctx, &names, kind.as_deref()),
        Cmd::History { image } => ok(images::history(&ctx, &image)),
        Cmd::Run(a) => containers::run(&ctx, &a.c, a.detach),
        Cmd::Create(a) => {
            let rec = containers::create(&ctx, &a)?;
            println!("{}", rec.id);
            Ok(0)
        }
        Cmd::Start { containers } => {
            each(&containers, true, |n| containers::start(&ctx, n).map(drop))
        }
        Cmd::Ps { all, quiet, format } => ok(ps::ps(&ctx, all, quiet, format.as_deref())),
        Cmd::Logs {
            container,
            follow,
            timestamps,
            tail,
        } => ok(ps::logs(&ctx, &container, follow, timestamps, tail)),
        Cmd::Exec(a) => exec::exec(&ctx, &a),
        Cmd::Stop { time, containers } => {
            each(&containers, true, |n| containers::stop(&ctx, n, time))
        }
        Cmd::Kill { signal, containers } => {
            each(&containers, true, |n| containers::kill(&ctx, n, &signal))
        }
        Cmd::Rm { force, containers } => {
            each(&containers, true, |n| containers::rm(&ctx, n, force))
        }
        Cmd::Pause { containers } => each(&containers, true, |n| containers::pause(&ctx, n, true)),
        Cmd::Unpause { containers } => {
            each(&containers, true, |n| containers::pause(&ctx, n, false))
        }
        Cmd::Stats {
            containers, json, ..
        } => ok(ps::stats(&ctx, &containers, json)),
        Cmd::Top { container, ps_args } => ok(ps::top(&ctx, &container, &ps_args)),
        Cmd::Wait { containers } => {
            let mut rc = 0;
            for c in &containers {
                match containers::wait(&ctx, c) {
                    Ok(code) => println!("{code}"),
                    Err(e) => {
                        eprintln!("hullctl: {c}: {e:#}");
                        rc = 1;
                    }
                }
            }
            Ok(rc)
        }
        Cmd::Info => ok(info(&ctx)),
        Cmd::Monitor { id } => ok(monitor::run(&ctx, &id)),
        Cmd::Version | Cmd::Completion { .. } => unreachable!("handled above"),
    }
}

fn main() {
    let cli = Cli::parse();
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hullctl: {e:#}");
            125
        }
    };
    std::process::exit(code);
}
