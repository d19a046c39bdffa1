//! NOTIFY_SOCKET pass-through: a container's sd_notify READY reaches the
//! socket of whoever runs the runtime (systemd, conmon), through `start`,
//! `run -d` and a foreground `run`, with MAINPID naming the process to watch.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

/// A static sd-notify for the libc-less test rootfs, built once per run.
fn sd_notify() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sd_notify.rs");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sd-notify-{}", std::process::id()));
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let st = Command::new(rustc)
            .args([
                "--edition",
                "2021",
                "-O",
                "-C",
                "target-feature=+crt-static",
            ])
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .status()
            .expect("run rustc");
        assert!(st.success(), "building {} failed", src.display());
        out
    })
}

/// The caller's notify socket.
struct Listener {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Listener {
    fn new(t: &Ctx) -> Listener {
        let path = t.subdir("notify").join("host.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        Listener { socket, path }
    }

    fn env(&self) -> Opts {
        Opts {
            env: vec![("NOTIFY_SOCKET".into(), self.path.display().to_string())],
            ..Default::default()
        }
    }

    /// The next datagram within `timeout`; fds sent with it are closed
    /// (which answers a BARRIER=1).
    fn recv(&self, timeout: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// READY and MAINPID as relayed, then the barrier (hull always sends
    /// one; runc 1.1 may not).
    #[track_caller]
    fn expect_ready(&self, main_pid: u32) {
        assert_eq!(self.recv(TIMEOUT).as_deref(), Some("READY=1\n"));
        assert_eq!(self.recv(TIMEOUT), Some(format!("MAINPID={main_pid}\n")));
        let barrier = self.recv(Duration::from_secs(if is_hull() { 30 } else { 2 }));
        if is_hull() {
            assert_eq!(barrier.as_deref(), Some("BARRIER=1"));
        }
    }
}

/// A bundle whose process checks what it was given, notifies (STATUS
/// first, which is not relayed), then runs `then`.
fn notifying_bundle(t: &Ctx, then: &str) -> Bundle {
    let mut b = t.bundle();
    b.writable_rootfs();
    std::fs::copy(sd_notify(), b.rootfs_path().join("bin/sd-notify")).unwrap();
    b.sh(&format!(
        "test \"$NOTIFY_SOCKET\" = /run/notify/notify.sock && test -S \"$NOTIFY_SOCKET\" \
         && sd-notify STATUS=starting READY=1 && {then}"
    ));
    b
}

#[test]
fn create_then_start_relays_ready_with_the_init_pid() {
    let t = Ctx::new("notify_start");
    let host = Listener::new(&t);
    let b = notifying_bundle(&t, "sleep 1000");
    b.write();
    t.rt.exec_with(&["create", "--bundle", b.path(), &b.id], host.env())
        .ok();
    let pid = t.pid(&b.id);
    // runc waits for READY in `start`, not in `create`.
    assert_eq!(host.recv(Duration::from_millis(200)), None);
    let start = t.rt.spawn(&["start", &b.id], host.env());
    host.expect_ready(pid as u32);
    start.wait().ok();
    assert_eq!(t.status(&b.id), "running");
    t.exec(&["delete", "--force", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn detached_run_relays_ready_with_the_init_pid() {
    let t = Ctx::new("notify_run_d");
    let host = Listener::new(&t);
    let b = notifying_bundle(&t, "sleep 1000");
    b.write();
    let run =
        t.rt.spawn(&["run", "-d", "--bundle", b.path(), &b.id], host.env());
    assert_eq!(host.recv(TIMEOUT).as_deref(), Some("READY=1\n"));
    let pid = t.pid(&b.id);
    assert_eq!(host.recv(TIMEOUT), Some(format!("MAINPID={pid}\n")));
    let _ = host.recv(Duration::from_secs(if is_hull() { 30 } else { 2 }));
    run.wait().ok();
    t.exec(&["delete", "--force", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn foreground_run_relays_ready_with_its_own_pid() {
    let t = Ctx::new("notify_run");
    let host = Listener::new(&t);
    let b = notifying_bundle(&t, "echo done");
    b.write();
    let run =
        t.rt.spawn(&["run", "--bundle", b.path(), &b.id], host.env());
    // The runtime stays in the foreground: it is what the caller watches.
    host.expect_ready(run.pid());
    let out = run.wait();
    out.ok();
    assert_eq!(out.stdout, "done\n");
    t.assert_nothing_left(&b);
}

#[test]
fn without_notify_socket_the_container_gets_none() {
    let t = Ctx::new("notify_none");
    let mut b = t.bundle();
    let out = run_sh(
        &t,
        &mut b,
        "echo \"[$NOTIFY_SOCKET]\"; test -e /run/notify && echo mounted; true",
    );
    assert_eq!(out, "[]\n");
}
