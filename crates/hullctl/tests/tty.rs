//! `run -it` and `exec -it` under a real terminal: script(1) gives
//! hullctl a pty, and what we type goes to the container's shell.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `hullctl ARGS` under script(1), typing `input` after a moment;
/// (exit code, everything the terminal showed).
fn under_terminal(h: &common::Hullctl, args: &str, input: &str) -> (Option<i32>, String) {
    let cmd = format!(
        "{} --root {} --runroot {} {args}",
        env!("CARGO_BIN_EXE_hullctl"),
        h.root.display(),
        h.runroot.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from bsdutils");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    stdin.write_all(input.as_bytes()).unwrap();
    // Keep stdin open until the shell has read its exit.
    let out = std::thread::spawn(move || child.wait_with_output().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let out = out.join().unwrap();
    drop(stdin);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn run_it_gives_the_container_a_terminal() {
    let Some(h) = common::setup() else { return };
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no script(1)");
        return;
    }
    let (code, shown) = under_terminal(
        &h,
        "run -it --rm busybox sh",
        "[ -t 0 ] && echo in-a-tty; tty; echo $((6*7)); echo TERM=$TERM; exit 3\n",
    );
    assert_eq!(code, Some(3), "{shown}");
    assert!(shown.contains("in-a-tty"), "{shown}");
    assert!(shown.contains("/dev/pts/0"), "{shown}");
    assert!(shown.contains("\n42"), "{shown}");
    assert!(shown.contains("TERM=xterm"), "{shown}");
    assert_eq!(h.ok(&["ps", "-aq"]), "");

    h.ok(&["run", "-d", "--name", "t", "busybox", "sleep", "100"]);
    let (code, shown) = under_terminal(
        &h,
        "exec -it t sh",
        "[ -t 1 ] && echo exec-tty; echo $((7*6))x; exit 4\n",
    );
    assert_eq!(code, Some(4), "{shown}");
    assert!(
        shown.contains("exec-tty") && shown.contains("42x"),
        "{shown}"
    );
    h.ok(&["rm", "-f", "t"]);
}
