//! The monitor of a detached container: killed with SIGKILL, the exit
//! code and the logs survive; with nothing left to supervise, ps still
//! tells the container's real state.

mod common;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn sigkill(pid: i64) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
}

#[test]
fn killing_the_monitor_loses_neither_exit_code_nor_logs() {
    let Some(h) = common::setup() else { return };
    let shared = h.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let vol = format!("{}:/shared", shared.display());
    let script = "echo before; echo oops >&2; while [ ! -e /shared/go ]; do sleep 0.05; done; \
                  echo after; exit 42";
    h.ok(&[
        "run", "-d", "--name", "m", "-v", &vol, "busybox", "sh", "-c", script,
    ]);
    h.eventually("the first lines", || {
        let out = h.run(&["logs", "m"]);
        String::from_utf8_lossy(&out.stdout).contains("before")
            && String::from_utf8_lossy(&out.stderr).contains("oops")
    });
    let state = h.inspect("m")["State"].clone();
    let monitor = state["MonitorPid"].as_i64().unwrap();
    assert!(alive(monitor));
    sigkill(monitor);
    h.eventually("the monitor's end", || !alive(monitor));
    assert_eq!(
        h.ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "m running\n"
    );

    std::fs::write(shared.join("go"), b"").unwrap();
    assert_eq!(h.ok(&["wait", "m"]), "42\n");
    let out = h.run(&["logs", "m"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "before\nafter\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let ps = h.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (42)"), "{ps}");
    h.ok(&["rm", "m"]);
    assert_eq!(h.entries(&h.runroot.join("runtime")), Vec::<String>::new());
}

#[test]
fn without_any_monitor_ps_shows_the_real_state() {
    let Some(h) = common::setup() else { return };
    let id = h.ok(&["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"]);
    let id = id.trim();
    let info: serde_json::Value = serde_json::from_slice(
        &std::fs::read(h.root.join("containers").join(id).join("monitor.json")).unwrap(),
    )
    .unwrap();
    let (monitor, keeper) = (
        info["monitor_pid"].as_i64().unwrap(),
        info["keeper_pid"].as_i64().unwrap(),
    );
    let init = info["init_pid"].as_i64().unwrap();
    sigkill(keeper);
    sigkill(monitor);
    h.eventually("both monitors' end", || !alive(monitor) && !alive(keeper));
    assert_eq!(
        h.ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "orphan running\n"
    );
    // The init dies with nobody of ours to see it: ps must not say running.
    sigkill(init);
    h.eventually("the exit to show", || {
        h.ok(&["ps", "-a", "--format", "{{.State}}"]) == "exited\n"
    });
    assert_eq!(h.ok(&["ps", "-q"]), "");
    h.ok(&["rm", "orphan"]);
    assert_eq!(h.entries(&h.runroot.join("runtime")), Vec::<String>::new());
}
