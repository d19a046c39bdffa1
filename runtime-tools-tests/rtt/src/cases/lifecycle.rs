//! Operations of runtime.md: state, create, start, kill, delete; and the
//! runc command-line contract engines rely on: pid file, console socket,
//! preserve-fds.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::{case, Case};
use crate::host;
use crate::suite::{check, fail, skip, tap_result, Bundle, Ctx};

fn sleeper(ctx: &mut Ctx) -> Bundle {
    let mut b = ctx.bundle(&[]);
    b.set_args(&["sleep", "60"]);
    b
}

fn started(ctx: &mut Ctx) -> Result<Bundle, crate::suite::Outcome> {
    let b = sleeper(ctx);
    ctx.created(&b)?;
    let out = ctx.exec(&["start", &b.id]);
    check(out.ok, || format!("start: {}", out.said()))?;
    ctx.wait_status(&b.id, "running")?;
    Ok(b)
}

fn stopped(ctx: &mut Ctx) -> Result<Bundle, crate::suite::Outcome> {
    let mut b = ctx.bundle(&[]);
    b.set_args(&["true"]);
    ctx.created(&b)?;
    let out = ctx.exec(&["start", &b.id]);
    check(out.ok, || format!("start: {}", out.said()))?;
    ctx.wait_status(&b.id, "stopped")?;
    Ok(b)
}

fn pid_of(state: &Value) -> i64 {
    state["pid"].as_i64().unwrap_or(0)
}

fn alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// The host cgroup directory of `pid` for a v1 controller (or v2).
fn cgroup_dir(pid: i64, controller: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        if ctrls.split(',').any(|c| c == controller) {
            Some(format!("/sys/fs/cgroup/{controller}{path}"))
        } else if ctrls.is_empty() && controller == "unified" {
            Some(format!("/sys/fs/cgroup/unified{path}"))
        } else {
            None
        }
    })
}

pub fn cases() -> Vec<Case> {
    let mut v = state_cases();
    v.extend(start_cases());
    v.extend(kill_cases());
    v.extend(delete_cases());
    v.extend(cli_cases());
    v
}

fn state_cases() -> Vec<Case> {
    vec![
        case("runtime.md state: after create the status is created, with id, pid, bundle and ociVersion", |ctx| {
            let mut b = sleeper(ctx);
            b.config["annotations"]["org.example.rtt"] = json!("yes");
            ctx.created(&b)?;
            let s = ctx.state(&b.id)?;
            let bundle = b.dir.canonicalize().unwrap();
            let ok = s["status"] == "created"
                && s["id"] == b.id.as_str()
                && alive(pid_of(&s))
                && s["bundle"].as_str() == bundle.to_str()
                && s["ociVersion"].as_str().is_some_and(|v| !v.is_empty())
                && s["annotations"]["org.example.rtt"] == "yes";
            check(ok, || format!("state: {s}"))
        }),
        case("runtime.md state: the status is running after start", |ctx| {
            let b = started(ctx)?;
            let s = ctx.state(&b.id)?;
            check(s["status"] == "running" && alive(pid_of(&s)), || format!("state: {s}"))
        }),
        case("runtime.md state: the status is stopped after the process exits", |ctx| {
            stopped(ctx).map(|_| ())
        }),
        case("runtime.md state: querying a container that does not exist MUST generate an error", |ctx| {
            let out = ctx.exec(&["state", "rtt-does-not-exist"]);
            check(!out.ok, || format!("state succeeded: {}", out.said()))
        }),
        case("runtime.md state: MUST generate an error if not provided the ID of a container", |ctx| {
            let out = ctx.exec(&["state"]);
            check(!out.ok, || format!("state succeeded: {}", out.said()))
        }),
        case("runtime.md state: the JSON adheres to the state schema", |ctx| {
            let b = started(ctx)?;
            let s = ctx.state(&b.id)?;
            let statuses = ["creating", "created", "running", "stopped"];
            let ok = s["ociVersion"].is_string()
                && s["id"].is_string()
                && s["status"].as_str().is_some_and(|st| statuses.contains(&st))
                && s["pid"].as_i64().is_some_and(|p| p > 0)
                && s["bundle"].as_str().is_some_and(|p| p.starts_with('/'))
                && (s["annotations"].is_null() || s["annotations"].is_object());
            check(ok, || format!("state: {s}"))
        }),
    ]
}

fn start_cases() -> Vec<Case> {
    vec![
        case("runtime.md create: the user-specified program MUST NOT be run at this time", |ctx| {
            let mut b = ctx.bundle(&[]);
            b.set_args(&["sh", "-c", "echo ran > /rtt/ran; sleep 60"]);
            ctx.created(&b)?;
            std::thread::sleep(Duration::from_millis(300));
            let marker = b.rootfs().join("rtt/ran");
            check(!marker.exists(), || "the program ran before start".into())?;
            let out = ctx.exec(&["start", &b.id]);
            check(out.ok, || format!("start: {}", out.said()))?;
            for _ in 0..250 {
                if marker.exists() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            fail("the program did not run after start")
        }),
        case("runtime.md create: an ID that is not unique MUST generate an error and no new container", |ctx| {
            let b = sleeper(ctx);
            ctx.created(&b)?;
            let before = ctx.state(&b.id)?;
            let out = ctx.exec(&["create", "--bundle", b.path(), &b.id]);
            check(!out.ok, || format!("second create succeeded: {}", out.said()))?;
            let after = ctx.state(&b.id)?;
            check(pid_of(&before) == pid_of(&after) && after["status"] == "created", || {
                format!("state changed: {before} -> {after}")
            })
        }),
        case("runtime.md create: MUST generate an error if not provided the bundle and ID", |ctx| {
            let b = sleeper(ctx);
            b.write();
            let out = ctx.exec(&["create", "--bundle", b.path()]);
            check(!out.ok, || format!("create without an id succeeded: {}", out.said()))
        }),
        case("runtime.md create: updates to config.json after create MUST NOT affect the container", |ctx| {
            let mut b = ctx.bundle(&["hostname"]);
            b.config["hostname"] = json!("before");
            let created = ctx.create(&b);
            check(created.ok, || format!("create: {}", created.said()))?;
            let mut later = b.config.clone();
            later["hostname"] = json!("after");
            later["process"]["args"] = json!(["false"]);
            std::fs::write(b.dir.join("config.json"), later.to_string()).unwrap();
            let out = ctx.exec(&["start", &b.id]);
            check(out.ok, || format!("start: {}", out.said()))?;
            ctx.wait_status(&b.id, "stopped")?;
            let mut result = created;
            result.stdout = std::fs::read_to_string(&result.stdout_path).unwrap_or_default();
            tap_result(&result)
        }),
        case("runtime.md start: starting a running container MUST generate an error and have no effect", |ctx| {
            let b = started(ctx)?;
            let before = ctx.state(&b.id)?;
            let out = ctx.exec(&["start", &b.id]);
            check(!out.ok, || format!("second start succeeded: {}", out.said()))?;
            let after = ctx.state(&b.id)?;
            check(after["status"] == "running" && pid_of(&before) == pid_of(&after), || {
                format!("state changed: {before} -> {after}")
            })
        }),
        case("runtime.md start: starting a stopped container MUST generate an error", |ctx| {
            let b = stopped(ctx)?;
            let out = ctx.exec(&["start", &b.id]);
            check(!out.ok, || format!("start succeeded: {}", out.said()))?;
            check(ctx.status(&b.id)? == "stopped", || "status changed".into())
        }),
        case("runtime.md start: MUST generate an error if not provided the container ID", |ctx| {
            let out = ctx.exec(&["start"]);
            check(!out.ok, || format!("start succeeded: {}", out.said()))
        }),
        case("runtime.md start: MUST generate an error if process was not set", |ctx| {
            let mut b = sleeper(ctx);
            b.config.as_object_mut().unwrap().remove("process");
            let out = ctx.create(&b);
            if !out.ok {
                return Ok(());
            }
            let out = ctx.exec(&["start", &b.id]);
            check(!out.ok, || format!("start without process succeeded: {}", out.said()))
        }),
    ]
}

fn kill_cases() -> Vec<Case> {
    vec![
        case("runtime.md kill: MUST send the specified signal to the container process", |ctx| {
            let mut b = ctx.bundle(&[]);
            b.set_args(&["sh", "-c", "trap 'echo usr1 > /rtt/signal; exit 0' USR1; echo ready > /rtt/ready; while true; do sleep 0.05; done"]);
            ctx.created(&b)?;
            let out = ctx.exec(&["start", &b.id]);
            check(out.ok, || format!("start: {}", out.said()))?;
            for _ in 0..250 {
                if b.rootfs().join("rtt/ready").exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = ctx.exec(&["kill", &b.id, "USR1"]);
            check(out.ok, || format!("kill USR1: {}", out.said()))?;
            ctx.wait_status(&b.id, "stopped")?;
            let got = std::fs::read_to_string(b.rootfs().join("rtt/signal")).unwrap_or_default();
            check(got.trim() == "usr1", || "the trap for SIGUSR1 did not run".into())
        }),
        case("runtime.md kill: SIGKILL stops a running container", |ctx| {
            let b = started(ctx)?;
            let out = ctx.exec(&["kill", &b.id, "KILL"]);
            check(out.ok, || format!("kill: {}", out.said()))?;
            ctx.wait_status(&b.id, "stopped")
        }),
        case("runtime.md kill: a numeric signal (9)", |ctx| {
            let b = started(ctx)?;
            let out = ctx.exec(&["kill", &b.id, "9"]);
            check(out.ok, || format!("kill 9: {}", out.said()))?;
            ctx.wait_status(&b.id, "stopped")
        }),
        case("runtime.md kill: a created container can be signalled", |ctx| {
            let b = sleeper(ctx);
            ctx.created(&b)?;
            let out = ctx.exec(&["kill", &b.id, "SIGKILL"]);
            check(out.ok, || format!("kill: {}", out.said()))?;
            ctx.wait_status(&b.id, "stopped")
        }),
        case("runtime.md kill: a container that is neither created nor running MUST generate an error", |ctx| {
            let b = stopped(ctx)?;
            let out = ctx.exec(&["kill", &b.id, "KILL"]);
            check(!out.ok, || format!("kill of a stopped container succeeded: {}", out.said()))
        }),
        case("runtime.md kill: MUST generate an error if not provided the container ID", |ctx| {
            let out = ctx.exec(&["kill"]);
            check(!out.ok, || format!("kill succeeded: {}", out.said()))
        }),
        case("runtime.md kill: an unknown signal MUST generate an error and have no effect", |ctx| {
            let b = started(ctx)?;
            let out = ctx.exec(&["kill", &b.id, "SIGNOPE"]);
            check(!out.ok, || format!("kill SIGNOPE succeeded: {}", out.said()))?;
            check(ctx.status(&b.id)? == "running", || "status changed".into())
        }),
    ]
}

fn delete_cases() -> Vec<Case> {
    vec![
        case("runtime.md delete: deleting a running container MUST generate an error and have no effect", |ctx| {
            let b = started(ctx)?;
            let out = ctx.exec(&["delete", &b.id]);
            check(!out.ok, || format!("delete of a running container succeeded: {}", out.said()))?;
            check(ctx.status(&b.id)? == "running", || "status changed".into())
        }),
        case("runtime.md delete: deleting a created container MUST generate an error", |ctx| {
            let b = sleeper(ctx);
            ctx.created(&b)?;
            let out = ctx.exec(&["delete", &b.id]);
            check(!out.ok, || format!("delete of a created container succeeded: {}", out.said()))?;
            check(ctx.status(&b.id)? == "created", || "status changed".into())
        }),
        case("runtime.md delete: deleting a container MUST delete the resources created during create", |ctx| {
            let mut b = ctx.bundle(&[]);
            b.set_args(&["sleep", "60"]);
            ctx.created(&b)?;
            let pid = pid_of(&ctx.state(&b.id)?);
            let cg = cgroup_dir(pid, "memory").or_else(|| cgroup_dir(pid, "unified"));
            ctx.exec(&["kill", &b.id, "KILL"]);
            ctx.wait_status(&b.id, "stopped")?;
            let out = ctx.exec(&["delete", &b.id]);
            check(out.ok, || format!("delete: {}", out.said()))?;
            let out = ctx.exec(&["state", &b.id]);
            check(!out.ok, || "state still answers after delete".into())?;
            if let Some(cg) = cg {
                check(!Path::new(&cg).exists(), || format!("cgroup {cg} left behind"))?;
            }
            let out = ctx.exec(&["create", "--bundle", b.path(), &b.id]);
            check(out.ok, || format!("the id cannot be used again: {}", out.said()))
        }),
        case("runtime.md delete: resources not created by this container MUST NOT be deleted", |ctx| {
            let holder = host::ns_holder(ctx, &["--net"]).or_else(skip)?;
            let mut b = ctx.bundle(&[]);
            b.set_args(&["true"]);
            let src = ctx.dir.join("keep");
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join("file"), "x").unwrap();
            let net = format!("/proc/{holder}/ns/net");
            for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "network" {
                    ns["path"] = json!(net);
                }
            }
            b.config["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/mnt/a", "type": "bind", "source": src, "options": ["rbind"]}),
            );
            let out = ctx.run(&b);
            check(out.ok, || format!("run: {}", out.said()))?;
            ctx.exec(&["delete", &b.id]);
            check(src.join("file").exists() && Path::new(&net).exists(), || {
                "the bind source or the joined namespace is gone".into()
            })
        }),
        case("runtime.md delete: MUST generate an error if not provided the container ID", |ctx| {
            let out = ctx.exec(&["delete"]);
            check(!out.ok, || format!("delete succeeded: {}", out.said()))
        }),
        case("config-linux.md cgroupsPath: the container is attached to the cgroup at that path", |ctx| {
            let mut b = sleeper(ctx);
            let path = format!("/rtt/{}", b.id);
            b.config["linux"]["cgroupsPath"] = json!(path);
            // The runtime leaves the parent it made; remove it once empty.
            ctx.cleanups.push(Box::new(|| {
                let dirs = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten();
                for d in dirs {
                    let _ = std::fs::remove_dir(d.path().join("rtt"));
                }
                let _ = std::fs::remove_dir("/sys/fs/cgroup/rtt");
            }));
            ctx.created(&b)?;
            let pid = pid_of(&ctx.state(&b.id)?);
            let dir = cgroup_dir(pid, "memory").or_else(|| cgroup_dir(pid, "unified"));
            check(dir.as_deref().is_some_and(|d| d.ends_with(&path)), || {
                format!("the process is in {dir:?}, not {path}")
            })
        }),
    ]
}

fn cli_cases() -> Vec<Case> {
    vec![
        case("runc create --pid-file: the file holds the container's pid", |ctx| {
            let b = sleeper(ctx);
            b.write();
            let pid_file = ctx.dir.join("pid");
            let out = ctx.exec(&["create", "--bundle", b.path(), "--pid-file", pid_file.to_str().unwrap(), &b.id]);
            check(out.ok, || format!("create: {}", out.said()))?;
            let got = std::fs::read_to_string(&pid_file).unwrap_or_default();
            let want = pid_of(&ctx.state(&b.id)?);
            check(got.trim() == want.to_string(), || format!("pid file {got:?}, state pid {want}"))
        }),
        case("runc create --console-socket: the pty master is sent, the process has the pty as a terminal", |ctx| {
            let mut b = ctx.bundle(&["terminal"]);
            b.config["process"]["terminal"] = json!(true);
            b.config["process"]["consoleSize"] = json!({"height": 25, "width": 100});
            b.write();
            let sock = ctx.dir.join("console.sock");
            let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
            let rx = host::accept_in_thread(listener);
            let out = ctx.exec(&["create", "--bundle", b.path(), "--console-socket", sock.to_str().unwrap(), &b.id]);
            check(out.ok, || format!("create: {}", out.said()))?;
            let (_, fd) = rx
                .recv_timeout(Duration::from_secs(5))
                .or_else(|_| fail("nothing sent on the console socket"))?
                .or_else(fail)?;
            let Some(master) = fd else {
                return fail("no fd came with the console socket message");
            };
            let reader = std::thread::spawn(move || {
                let mut f = std::fs::File::from(master);
                let mut text = Vec::new();
                let _ = std::io::Read::read_to_end(&mut f, &mut text);
                String::from_utf8_lossy(&text).replace('\r', "")
            });
            let out = ctx.exec(&["start", &b.id]);
            check(out.ok, || format!("start: {}", out.said()))?;
            ctx.wait_status(&b.id, "stopped")?;
            let _ = ctx.exec(&["delete", &b.id]);
            let text = reader.join().unwrap_or_default();
            let mut result = out;
            result.stdout = text;
            tap_result(&result)
        }),
        case("runc run --preserve-fds: the extra fds are passed to the process", |ctx| {
            let mut b = ctx.bundle(&["preserved_fds"]);
            b.config["annotations"]["rtt/preserve-fds"] = json!("2");
            b.write();
            let f1 = std::fs::File::create(ctx.dir.join("fd3")).unwrap();
            let f2 = std::fs::File::create(ctx.dir.join("fd4")).unwrap();
            let (r1, r2) = (f1.as_raw_fd(), f2.as_raw_fd());
            let out = ctx.exec_with(&["run", "--preserve-fds", "2", "--bundle", b.path(), &b.id], |cmd| {
                use std::os::unix::process::CommandExt;
                // SAFETY: fcntl and dup2 are async-signal-safe; r1 and r2
                // stay open in the parent until the child has exec'd.
                unsafe {
                    cmd.pre_exec(move || {
                        // Copies above the targets first: r1 or r2 may
                        // already be 3 or 4, and dup2 onto itself would
                        // keep close-on-exec.
                        let a = libc::fcntl(r1, libc::F_DUPFD, 100);
                        let b = libc::fcntl(r2, libc::F_DUPFD, 100);
                        if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        libc::close(a);
                        libc::close(b);
                        Ok(())
                    });
                }
            });
            drop((f1, f2));
            tap_result(&out)
        }),
    ]
}
