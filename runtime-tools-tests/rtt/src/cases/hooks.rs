//! config.md "POSIX-platform Hooks" and runtime.md "Lifecycle".
//!
//! Every hook appends a line `NAME NETNS STATE` to a log in the bundle's
//! rootfs: the hooks that run in the runtime namespace (and createContainer,
//! which runs before pivot_root) write it through its host path,
//! startContainer through the path inside the container.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{case, Case};
use crate::suite::{check, fail, Bundle, Ctx, Outcome, R};

const KINDS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

const ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The log path a hook of `kind` writes to.
fn log_for(b: &Bundle, kind: &str) -> String {
    if kind == "startContainer" {
        "/rtt/hooks.log".into()
    } else {
        b.rootfs()
            .join("rtt/hooks.log")
            .to_string_lossy()
            .into_owned()
    }
}

/// A hook that logs its name, its network namespace and its stdin.
fn logging_hook(b: &Bundle, kind: &str, name: &str) -> Value {
    let script = r#"s=$(cat); echo "$0 $(readlink /proc/self/ns/net) $s" >> "$1""#;
    json!({"path": "/bin/sh", "args": ["sh", "-c", script, name, log_for(b, kind)], "env": [ENV]})
}

/// A poststart hook that waits (up to 4s) for the container process to
/// have exec'd the user program, then logs whether it saw it.
fn exec_watching_hook(b: &Bundle) -> Value {
    let script = r#"s=$(cat)
pid=$(echo "$s" | sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p')
i=0
while [ $i -lt 200 ]; do
    if grep -aq rtt-user-program /proc/$pid/cmdline 2>/dev/null; then
        echo "poststart exec-seen" >> "$1"; exit 0
    fi
    i=$((i+1)); sleep 0.02
done
echo "poststart exec-not-seen" >> "$1""#;
    json!({"path": "/bin/sh", "args": ["sh", "-c", script, "poststart", log_for(b, "poststart")], "env": [ENV]})
}

fn failing_hook() -> Value {
    json!({"path": "/bin/false", "args": ["false"]})
}

struct Line {
    name: String,
    netns: String,
    state: Value,
}

fn read_log(b: &Bundle) -> Vec<Line> {
    let text = std::fs::read_to_string(b.rootfs().join("rtt/hooks.log")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut f = l.splitn(3, ' ');
            let name = f.next().unwrap_or("").to_string();
            let netns = f.next().unwrap_or("").to_string();
            let state = serde_json::from_str(f.next().unwrap_or("")).unwrap_or(Value::Null);
            Line { name, netns, state }
        })
        .collect()
}

/// A bundle whose process marks that it ran, then sleeps.
fn program(ctx: &mut Ctx) -> Bundle {
    let mut b = ctx.bundle(&[]);
    b.set_args(&[
        "sh",
        "-c",
        "echo ran > /rtt/ran; sleep 60; true",
        "rtt-user-program",
    ]);
    b
}

fn ran(b: &Bundle) -> bool {
    b.rootfs().join("rtt/ran").exists()
}

/// What a full lifecycle with every kind of logging hook produced.
struct Run {
    b: Bundle,
    lines: Vec<Line>,
    pid: i64,
    container_net: String,
}

fn full_lifecycle(ctx: &mut Ctx, watch_exec: bool) -> Result<Run, Outcome> {
    let mut b = program(ctx);
    let mut hooks = serde_json::Map::new();
    for kind in KINDS {
        let mut list = vec![logging_hook(&b, kind, kind)];
        if *kind == "prestart" {
            list.push(logging_hook(&b, kind, "prestart-2"));
        }
        if *kind == "poststart" && watch_exec {
            list = vec![exec_watching_hook(&b)];
        }
        hooks.insert(kind.to_string(), Value::Array(list));
    }
    b.config["hooks"] = Value::Object(hooks);
    ctx.created(&b)?;
    let pid = ctx.state(&b.id)?["pid"].as_i64().unwrap_or(0);
    let container_net = std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = ctx.exec(&["start", &b.id]);
    check(out.ok, || format!("start: {}", out.said()))?;
    ctx.exec(&["kill", &b.id, "KILL"]);
    ctx.wait_status(&b.id, "stopped")?;
    let out = ctx.exec(&["delete", &b.id]);
    check(out.ok, || format!("delete: {}", out.said()))?;
    let lines = read_log(&b);
    Ok(Run {
        b,
        lines,
        pid,
        container_net,
    })
}

fn names(lines: &[Line]) -> Vec<&str> {
    lines.iter().map(|l| l.name.as_str()).collect()
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        case("config.md hooks: MUST be called in the listed order, each kind at its lifecycle step", |ctx| {
            let r = full_lifecycle(ctx, false)?;
            let want = ["prestart", "prestart-2", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
            check(names(&r.lines) == want, || format!("hooks ran as {:?}", names(&r.lines)))
        }),
        case("config.md hooks: the state of the container MUST be passed to hooks over stdin", |ctx| {
            let r = full_lifecycle(ctx, false)?;
            check(r.lines.len() == 7, || format!("hooks ran as {:?}", names(&r.lines)))?;
            let bundle = r.b.dir.canonicalize().unwrap();
            for l in &r.lines {
                let s = &l.state;
                let pid_ok = l.name == "poststop" || s["pid"].as_i64() == Some(r.pid);
                let ok = s["id"] == r.b.id.as_str()
                    && s["ociVersion"].is_string()
                    && s["status"].is_string()
                    && s["bundle"].as_str() == bundle.to_str()
                    && pid_ok;
                check(ok, || format!("{} got state {s} (container pid {})", l.name, r.pid))?;
            }
            Ok(())
        }),
        case("config.md hooks: prestart, createRuntime, poststart, poststop run in the runtime namespace; createContainer, startContainer in the container namespace", |ctx| {
            let r = full_lifecycle(ctx, false)?;
            let host_net = std::fs::read_link("/proc/self/ns/net").unwrap().to_string_lossy().into_owned();
            for l in &r.lines {
                let want = if l.name == "createContainer" || l.name == "startContainer" {
                    &r.container_net
                } else {
                    &host_net
                };
                check(&l.netns == want, || format!("{} ran in {}, want {want}", l.name, l.netns))?;
            }
            check(r.lines.len() == 7, || format!("hooks ran as {:?}", names(&r.lines)))
        }),
        case("config.md poststart: MUST be called after the user-specified process is executed", |ctx| {
            let r = full_lifecycle(ctx, true)?;
            check(names(&r.lines).contains(&"poststart") && r.lines.iter().all(|l| l.name != "poststart" || l.netns == "exec-seen"), || {
                format!("poststart did not see the user program: {:?}", r.lines.iter().map(|l| format!("{} {}", l.name, l.netns)).collect::<Vec<_>>())
            })
        }),
        case("config.md hooks: path, args and env as configured", |ctx| {
            let mut b = program(ctx);
            let log = log_for(&b, "prestart");
            b.config["hooks"] = json!({"prestart": [{"path": "/bin/sh",
                "args": ["sh", "-c", r#"echo "$0 $RTT_HOOK" >> "$1""#, "argzero", log],
                "env": [ENV, "RTT_HOOK=from-env"]}]});
            ctx.created(&b)?;
            let text = std::fs::read_to_string(b.rootfs().join("rtt/hooks.log")).unwrap_or_default();
            check(text.trim() == "argzero from-env", || format!("the hook logged {text:?}"))
        }),
        case("config.md hooks: timeout, a hook running longer MUST be aborted and the operation fail", |ctx| {
            let mut b = program(ctx);
            b.config["hooks"] = json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
            let start = Instant::now();
            let out = ctx.create(&b);
            let took = start.elapsed();
            check(!out.ok && took < Duration::from_secs(15), || {
                format!("create took {took:?}: {}", out.said())
            })
        }),
    ];
    for kind in ["prestart", "createRuntime", "createContainer"] {
        v.push(case(
            format!("runtime.md lifecycle: if a {kind} hook fails, the runtime MUST generate an error, stop the container, and run poststop"),
            move |ctx| create_hook_fails(ctx, kind),
        ));
    }
    v.push(case(
        "runtime.md lifecycle: if a startContainer hook fails, the runtime MUST generate an error, stop the container, and run poststop",
        |ctx| start_hook_fails(ctx, "startContainer"),
    ));
    v.push(case(
        "runtime.md lifecycle: if a poststart hook fails, the runtime MUST generate an error, stop the container, and run poststop",
        |ctx| start_hook_fails(ctx, "poststart"),
    ));
    v.push(case(
        "runtime.md lifecycle: if a poststop hook fails, the runtime MUST log a warning and the remaining hooks and lifecycle continue",
        |ctx| {
            let mut b = program(ctx);
            b.config["hooks"] = json!({"poststop": [failing_hook(), logging_hook(&b, "poststop", "poststop-2")]});
            ctx.created(&b)?;
            ctx.exec(&["kill", &b.id, "KILL"]);
            ctx.wait_status(&b.id, "stopped")?;
            let out = ctx.exec(&["delete", &b.id]);
            check(out.ok, || format!("delete: {}", out.said()))?;
            let state = ctx.exec(&["state", &b.id]);
            check(!state.ok, || "the container is still there".into())?;
            check(names(&read_log(&b)) == ["poststop-2"], || "the poststop hook after the failing one did not run".into())
        },
    ));
    v
}

/// The container is gone or stopped, and not running the user program.
fn stopped_or_gone(ctx: &Ctx, b: &Bundle) -> R {
    let out = ctx.exec(&["state", &b.id]);
    if out.ok {
        let s: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        if s["status"] != "stopped" {
            // A runtime may take a moment to reap; give it a second.
            if ctx.wait_status(&b.id, "stopped").is_err() {
                return fail(format!("the container was not stopped: {s}"));
            }
        }
    }
    Ok(())
}

fn poststop_ran(b: &Bundle) -> R {
    // poststop runs when the container is destroyed; give it a moment.
    for _ in 0..100 {
        if names(&read_log(b)).contains(&"poststop") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    fail("the poststop hook did not run")
}

fn create_hook_fails(ctx: &mut Ctx, kind: &str) -> R {
    let mut b = program(ctx);
    b.config["hooks"] =
        json!({kind: [failing_hook()], "poststop": [logging_hook(&b, "poststop", "poststop")]});
    let out = ctx.create(&b);
    check(!out.ok, || format!("create succeeded: {}", out.said()))?;
    stopped_or_gone(ctx, &b)?;
    // Delete what is left, as an engine would, then poststop has run.
    let _ = ctx.exec(&["delete", "--force", &b.id]);
    check(!ran(&b), || "the user program ran".into())?;
    poststop_ran(&b)
}

fn start_hook_fails(ctx: &mut Ctx, kind: &str) -> R {
    let mut b = program(ctx);
    b.config["hooks"] =
        json!({kind: [failing_hook()], "poststop": [logging_hook(&b, "poststop", "poststop")]});
    ctx.created(&b)?;
    let out = ctx.exec(&["start", &b.id]);
    check(!out.ok, || format!("start succeeded: {}", out.said()))?;
    stopped_or_gone(ctx, &b)?;
    let _ = ctx.exec(&["delete", "--force", &b.id]);
    if kind == "startContainer" {
        check(!ran(&b), || "the user program ran".into())?;
    }
    poststop_ran(&b)
}
