//! create/start (and start again), pause/unpause, kill, stats, top,
//! logs -f, wait, run -d --rm, exec -e/-u/-w.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn create_start_restart_and_autoremove() {
    let Some(h) = common::setup() else { return };
    let id = h.ok(&[
        "create",
        "--name",
        "c",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 2",
    ]);
    let fmt = [
        "ps",
        "-a",
        "--format",
        "{{.Names}} {{.State}} {{.ExitCode}}",
    ];
    assert_eq!(h.ok(&fmt), "c created \n");
    assert_eq!(h.ok(&["start", "c"]), "c\n");
    assert_eq!(h.ok(&["wait", &id.trim()[..12]]), "2\n");
    assert_eq!(h.ok(&fmt), "c exited 2\n");
    h.ok(&["start", "c"]);
    assert_eq!(h.ok(&["wait", "c"]), "2\n");
    assert_eq!(h.ok(&["logs", "c"]), "run\nrun\n");
    assert_eq!(h.ok(&["logs", "--tail", "1", "c"]), "run\n");

    h.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "gone",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    h.eventually("--rm to remove it", || {
        !h.ok(&["ps", "-a"]).contains("gone")
    });
    h.ok(&["rm", "c"]);

    // A detached terminal: its output is logged; exec -d leaves a process behind.
    h.ok(&[
        "run",
        "-dt",
        "--name",
        "t",
        "busybox",
        "sh",
        "-c",
        "tty; sleep 100",
    ]);
    h.eventually("the tty's output", || {
        h.ok(&["logs", "t"]) == "/dev/pts/0\r\n"
    });
    h.ok(&["exec", "-d", "t", "sh", "-c", "echo bg > /tmp/mark"]);
    h.eventually("exec -d", || {
        h.run(&["exec", "t", "cat", "/tmp/mark"]).stdout == b"bg\n"
    });
    h.ok(&["rm", "-f", "t"]);
    assert_eq!(h.entries(&h.root.join("containers")), Vec::<String>::new());
}

#[test]
fn pause_kill_stats_top_and_follow() {
    let Some(h) = common::setup() else { return };
    let script =
        "i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); sleep 0.1; done; sleep 1000";
    h.ok(&[
        "run", "-d", "--name", "p", "--memory", "32m", "busybox", "sh", "-c", script,
    ]);

    // logs -f prints as lines come, and ends when the container does.
    let mut follow = h
        .command(&["logs", "-f", "p"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    h.ok(&["pause", "p"]);
    assert_eq!(h.ok(&["ps", "--format", "{{.State}}"]), "paused\n");
    assert!(h.ok(&["ps"]).contains("(Paused)"));
    let err = h.fails(&["exec", "p", "true"]);
    assert!(err.contains("is paused, not running"), "{err}");
    h.ok(&["unpause", "p"]);
    assert_eq!(h.ok(&["ps", "--format", "{{.State}}"]), "running\n");

    let stats = h.ok(&["stats", "--json", "p"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats[0]["memory_limit"], 32 << 20);
    assert!(stats[0]["pids"].as_u64().unwrap() >= 1);
    let table = h.ok(&["stats", "p"]);
    assert!(
        table.contains("MEM USAGE / LIMIT") && table.contains("/ 32MiB"),
        "{table}"
    );
    let top = h.ok(&["top", "p"]);
    assert!(top.contains("PID") && top.contains("sh -c"), "{top}");

    let env = h.ok(&[
        "exec",
        "-e",
        "X=1",
        "-u",
        "app",
        "-w",
        "/home",
        "p",
        "sh",
        "-c",
        "echo $X $(id -u) $(pwd)",
    ]);
    assert_eq!(env, "1 1000 /home\n");

    h.eventually("the 30 lines", || h.ok(&["logs", "p"]).contains("line 29"));
    h.ok(&["kill", "-s", "KILL", "p"]);
    assert_eq!(h.ok(&["wait", "p"]), "137\n");
    let mut seen = String::new();
    follow
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    assert!(follow.wait().unwrap().success());
    assert!(
        seen.starts_with("line 0\n") && seen.contains("line 29\n"),
        "{seen}"
    );
    let err = h.fails(&["kill", "p"]);
    assert!(err.contains("is not running"), "{err}");
    std::thread::sleep(Duration::from_millis(10));
    h.ok(&["rm", "p"]);
}

#[test]
fn cli_help_version_info_and_completions() {
    let Some(h) = common::setup() else { return };
    let help = h.ok(&["--help"]);
    assert!(
        help.contains("Examples:") && help.contains("hullctl run -it --rm busybox sh"),
        "{help}"
    );
    let run_help = h.ok(&["run", "--help"]);
    assert!(
        run_help.contains("--pids-limit") && run_help.contains("Examples:"),
        "{run_help}"
    );
    assert!(h.ok(&["version"]).starts_with("hullctl version "));
    let info: serde_json::Value = serde_json::from_str(&h.ok(&["info"])).unwrap();
    assert_eq!(info["store"]["images"], 1);
    assert_eq!(info["store"]["root"], h.root.to_str().unwrap());
    for shell in ["bash", "zsh", "fish"] {
        let script = h.ok(&["completion", shell]);
        assert!(
            script.contains("hullctl") && script.contains("pids-limit"),
            "{shell}"
        );
    }
    let err = h.fails(&["completion", "tcsh"]);
    assert!(err.contains("invalid value"), "{err}");
}

#[test]
fn init_reaps_and_forwards_the_stop_signal() {
    let Some(h) = common::setup() else { return };
    let have = [
        "/usr/libexec/podman/catatonit",
        "/usr/bin/catatonit",
        "/usr/bin/tini-static",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists());
    if !have {
        eprintln!("skipped: no catatonit or tini-static (apt-get install tini)");
        return;
    }
    let out = h.run(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "echo $$; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\n",
        "sh is not PID 1"
    );
    // sh as PID 1 would ignore SIGTERM; under the init it dies of it.
    h.ok(&[
        "run", "-d", "--init", "--name", "i", "busybox", "sleep", "1000",
    ]);
    let started = std::time::Instant::now();
    h.ok(&["stop", "-t", "20", "i"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(h.ok(&["wait", "i"]), "143\n");
    h.ok(&["rm", "i"]);
}
