//! The commands that print or read more than one call into libcontainer:
//! list, ps, events, spec, start with NOTIFY_SOCKET, and building exec's
//! process.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libcontainer::notify::NotifySocket;
use libcontainer::state::Status;
use libcontainer::Runtime;

use crate::cli::ExecArgs;
use crate::default_spec;

/// The caller's sd_notify socket (NOTIFY_SOCKET), as runc reads it.
pub fn notify_socket() -> Option<PathBuf> {
    std::env::var_os("NOTIFY_SOCKET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// `start`; with NOTIFY_SOCKET set (and the container created with one),
/// wait for the container's READY and relay it there with the init's pid,
/// as runc does.
pub fn start(rt: &Runtime, id: &str) -> Result<()> {
    libcontainer::state::check_id(id)?;
    let notify = match notify_socket() {
        Some(host) if rt.load(id)?.1 == Status::Created => {
            NotifySocket::bind(&rt.store.dir(id), &host)?
        }
        _ => None,
    };
    rt.start(id)?;
    if let Some(n) = notify {
        let (st, _) = rt.load(id)?;
        n.relay(st.pid, st.pid_start, st.pid)?;
    }
    Ok(())
}

/// The exec process: `--process FILE` as is, or the container's process
/// with the command line's changes, as runc builds it.
pub fn exec_process(rt: &Runtime, a: &ExecArgs) -> Result<serde_json::Value> {
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

pub fn pretty(v: &serde_json::Value, indent: &[u8]) -> String {
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

pub fn list(rt: &Runtime, format: &str, quiet: bool) -> Result<()> {
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
pub fn ps(rt: &Runtime, id: &str, format: &str, args: &[String]) -> Result<()> {
    let pids = rt.pids(id)?;
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            print!("{}", libcontainer::ps::table(&pids, args)?);
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
pub fn events(rt: &Runtime, id: &str, once: bool, interval: &str) -> Result<()> {
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

pub fn spec(bundle: &Path, rootless: bool) -> Result<()> {
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
