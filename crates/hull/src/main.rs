//! `hull`: the runc-compatible command line over libcontainer.

mod cli;
mod default_spec;
mod features;
mod foreground;
mod logging;
mod update;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use libcontainer::state::Status;
use libcontainer::{CreateOpts, Runtime};

use cli::{Cli, Command, CreateArgs, ExecArgs};

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

/// The exec process: `--process FILE` as is, or the container's process
/// with the command line's changes, as runc builds it.
fn exec_process(rt: &Runtime, a: &ExecArgs) -> Result<serde_json::Value> {
    use serde_json::{json, Value};
    if let Some(path) = &a.process {
        let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        return serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()));
    }
    if a.command.is_empty() {
        bail!("exec: no command given (and no --process)");
    }
    let mut p = rt.container_config(&a.id)?["process"].take();
    if !p.is_object() {
        p = json!({"cwd": "/", "user": {"uid": 0, "gid": 0}});
    }
    p["args"] = json!(a.command);
    p["terminal"] = json!(a.tty);
    if !a.env.is_empty() {
        let mut env = p["env"].as_array().cloned().unwrap_or_default();
        env.extend(a.env.iter().map(|e| json!(e)));
        p["env"] = Value::Array(env);
    }
    if let Some(cwd) = &a.cwd {
        p["cwd"] = json!(cwd);
    }
    if let Some(user) = &a.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let uid: u32 = uid
            .parse()
            .with_context(|| format!("--user {user:?}: uid is not a number"))?;
        let gid: u32 = gid
            .parse()
            .with_context(|| format!("--user {user:?}: gid is not a number"))?;
        p["user"]["uid"] = json!(uid);
        p["user"]["gid"] = json!(gid);
    }
    if !a.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(a.additional_gids);
    }
    if !a.cap.is_empty() {
        let has_inheritable = p["capabilities"]["inheritable"].is_array();
        let mut sets = vec!["bounding", "effective", "permitted"];
        if has_inheritable {
            sets.push("ambient");
        }
        for set in sets {
            let mut list = p["capabilities"][set]
                .as_array()
                .cloned()
                .unwrap_or_default();
            list.extend(a.cap.iter().map(|c| json!(c)));
            p["capabilities"][set] = Value::Array(list);
        }
    }
    if a.no_new_privs {
        p["noNewPrivileges"] = json!(true);
    }
    if let Some(aa) = &a.apparmor {
        p["apparmorProfile"] = json!(aa);
    }
    if let Some(label) = &a.process_label {
        p["selinuxLabel"] = json!(label);
    }
    Ok(p)
}

fn pretty(v: &serde_json::Value, indent: &[u8]) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("json value serializes");
    String::from_utf8(out).expect("json is utf-8")
}

/// runc's list table: tabwriter with min width 12 and padding 3.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, |r| r.len());
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> Result<()> {
    let items = rt.list()?;
    if quiet {
        for (s, _) in &items {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match format {
        "table" => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for (s, status) in &items {
                let pid = if *status == Status::Stopped { 0 } else { s.pid };
                rows.push(vec![
                    s.id.clone(),
                    pid.to_string(),
                    status.as_str().into(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            print!("{}", table(&rows));
        }
        "json" => {
            let v: Vec<serde_json::Value> = items.iter().map(|(s, st)| s.oci_json(*st)).collect();
            let v = if v.is_empty() {
                serde_json::Value::Null
            } else {
                v.into()
            };
            println!("{v}");
        }
        other => bail!("invalid format option {other:?}: use table or json"),
    }
    Ok(())
}

/// runc's ps: JSON is the pid list; a table runs ps(1) and keeps the
/// header plus the container's rows.
fn ps(rt: &Runtime, id: &str, format: &str, args: &[String]) -> Result<()> {
    let pids = rt.pids(id)?;
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let args: Vec<String> = if args.is_empty() {
                vec!["-ef".into()]
            } else {
                args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            println!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{line}");
                }
            }
        }
        other => bail!("invalid format {other:?}: use table or json"),
    }
    Ok(())
}

/// A Go-style duration: "5s", "500ms", "1m".
fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid interval {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => bail!("invalid interval {s:?}: use ms, s or m"),
    };
    if secs <= 0.0 {
        bail!("invalid interval {s:?}: must be positive");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// runc's event stream: {"type":"stats"|"oom","id":..,"data":..} lines.
fn events(rt: &Runtime, id: &str, once: bool, interval: &str) -> Result<()> {
    let interval = parse_duration(interval)?;
    let event = |kind: &str, data: Option<serde_json::Value>| {
        let mut v = serde_json::json!({"type": kind, "id": id});
        if let Some(d) = data {
            v["data"] = d;
        }
        println!("{v}");
    };
    let oom_count = |s: &libcgroups::Stats| s.0["memory"]["oom_kill"].as_u64().unwrap_or(0);
    let first = rt.stats(id)?;
    if once {
        event("stats", Some(first.0));
        return Ok(());
    }
    let mut ooms = oom_count(&first);
    let mut last = std::time::Instant::now() - interval;
    loop {
        let Ok(stats) = rt.stats(id) else {
            return Ok(());
        };
        if oom_count(&stats) > ooms {
            ooms = oom_count(&stats);
            event("oom", None);
        }
        if last.elapsed() >= interval {
            event("stats", Some(stats.0));
            last = std::time::Instant::now();
        }
        std::thread::sleep(interval.min(std::time::Duration::from_millis(200)));
    }
}

fn spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    let body = pretty(&default_spec::default_spec(rootless), b"\t");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                anyhow::anyhow!("{} exists: remove it first", path.display())
            }
            _ => anyhow::anyhow!("create {}: {e}", path.display()),
        })?;
    f.write_all(body.as_bytes())
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
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
        Command::Start { id } => rt.start(id)?,
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
            let opts = libcontainer::ExecOpts {
                id: a.id.clone(),
                process: exec_process(&rt, a)?,
                console_socket: a.console_socket.clone(),
                pid_file: a.pid_file.clone(),
                preserve_fds: a.preserve_fds,
                ignore_paused: a.ignore_paused,
                seal_exe: true,
            };
            return foreground::exec(&rt, &opts, a.detach);
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
            ExitCode::FAILURE
        }
    }
}
