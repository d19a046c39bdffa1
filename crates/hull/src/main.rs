//! `hull`: the runc-compatible command line over libcontainer.

mod cli;
mod commands;
mod default_spec;
mod features;
mod foreground;
mod logging;
mod update;

use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Parser;
use libcontainer::{CreateOpts, Runtime};

use cli::{Cli, Command, CreateArgs};
use commands::{events, exec_process, list, pretty, ps, spec};

fn print_version() {
    println!("hull version {}", env!("CARGO_PKG_VERSION"));
    println!("spec: {}", libcontainer::OCI_VERSION);
}

fn create_opts(a: &CreateArgs, systemd: bool) -> CreateOpts {
    CreateOpts {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        listen_fds: listen_fds(),
        systemd_cgroup: systemd,
        seal_exe: true,
        notify_socket: commands::notify_socket(),
    }
}

/// Socket activation fds meant for us (LISTEN_PID is our pid), as runc reads them.
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    match std::env::var("LISTEN_FDS") {
        Ok(n) if ours => n.parse().unwrap_or(0),
        _ => 0,
    }
}

fn dispatch(cli: &Cli, command: &Command) -> Result<i32> {
    let rt = Runtime::new(&cli.root);
    match command {
        Command::Create(a) => {
            let created = rt.create(&create_opts(a, cli.systemd_cgroup))?;
            if created.console.is_some() {
                let _ = rt.delete(&a.id, true);
                bail!("cannot allocate a tty without --console-socket when the runtime detaches");
            }
        }
        Command::Start { id } => commands::start(&rt, id)?,
        Command::Run {
            create,
            detach,
            keep,
        } => {
            return foreground::run(
                &rt,
                &create_opts(create, cli.systemd_cgroup),
                *detach,
                *keep,
            );
        }
        Command::Exec(a) => {
            use anyhow::Context;
            let opts = libcontainer::ExecOpts {
                id: a.id.clone(),
                process: exec_process(&rt, a).context("exec failed")?,
                console_socket: a.console_socket.clone(),
                pid_file: a.pid_file.clone(),
                preserve_fds: a.preserve_fds,
                ignore_paused: a.ignore_paused,
                seal_exe: true,
                sub_cgroups: a.cgroup.clone(),
            };
            return foreground::exec(&rt, &opts, a.detach).context("exec failed");
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&rt, id, format, ps_args)?,
        Command::Events {
            stats,
            interval,
            id,
        } => events(&rt, id, *stats, interval)?,
        Command::Pause { id } => rt.pause(id)?,
        Command::Resume { id } => rt.resume(id)?,
        Command::Update(a) => rt.update(&a.id, &update::resources(a)?)?,
        Command::State { id } => {
            let (st, status) = rt.load(id)?;
            println!("{}", pretty(&st.oci_json(status), b"  "));
        }
        Command::Kill { id, signal, all } => {
            let sig = libcontainer::signal::parse(signal)?;
            rt.kill(id, sig, *all)?;
        }
        Command::Delete { id, force } => match rt.delete(id, *force) {
            // runc: deleting a container that does not exist is an error,
            // except with --force.
            Err(libcontainer::Error::NotFound(_)) if *force => {}
            r => r?,
        },
        Command::List { format, quiet } => list(&rt, format, *quiet)?,
        Command::Spec { bundle, rootless } => spec(bundle, *rootless)?,
        Command::Features => println!("{}", pretty(&features::features(), b"    ")),
    }
    Ok(0)
}

/// The error and its causes on one line, skipping a cause whose text the
/// message already ends with (library errors often include their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        print_version();
        return ExitCode::SUCCESS;
    }
    let file = match &cli.log {
        Some(p) => match std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(p)
        {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("hull: open log file {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let logger: &'static logging::Logger = Box::leak(Box::new(logging::Logger::new(
        cli.log_format,
        cli.debug,
        file,
    )));
    let _ = tracing::subscriber::set_global_default(logger);
    let Some(command) = &cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    match dispatch(&cli, command) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            let msg = one_line(&e);
            if logger.has_file() {
                logger.write(&tracing::Level::ERROR, &msg);
            }
            eprintln!("hull: {msg}");
            if matches!(command, Command::Exec(_)) {
                // As runc: a failed exec exits 255, so callers (containerd,
                // conmon) tell it from the process's own exit status 1.
                return ExitCode::from(255);
            }
            ExitCode::FAILURE
        }
    }
}
