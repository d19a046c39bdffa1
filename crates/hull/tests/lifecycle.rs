//! create / start / state / kill / delete / list, hooks and the console
//! socket.

mod common;

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// A bundle whose process waits until the host creates `<ctl>/go` (the
/// directory `ctl` is bind-mounted at /mnt/ctl) and then exits 0.
fn waiting_bundle(t: &Ctx, ctl: &Path) -> Bundle {
    let mut b = t.bundle();
    b.mount("/mnt/ctl", "bind", ctl.to_str().unwrap(), &["rbind"]);
    b.sh("while [ ! -e /mnt/ctl/go ]; do sleep 0.05; done");
    b
}

fn cmdline(pid: i32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
    {
        return false;
    }
    if !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
    {
        return false;
    }
    let mut i = 19;
    if !digits(17..19) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &s[i..] {
        "Z" | "z" => true,
        tz => tz.len() == 6 && matches!(tz.as_bytes()[0], b'+' | b'-') && tz.as_bytes()[3] == b':',
    }
}

#[test]
fn full_lifecycle() {
    let t = Ctx::new("full_lifecycle");
    let ctl = t.subdir("ctl");
    let b = waiting_bundle(&t, &ctl);
    t.create(&b).ok();
    let st = t.state(&b.id);
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0);
    assert!(
        alive(pid),
        "the container process is not running after create"
    );
    // Created means the user process has not been executed yet.
    assert_ne!(
        cmdline(pid),
        ["sh", "-c", b.get("/process/args/2").as_str().unwrap()]
    );

    t.exec(&["start", &b.id]).ok();
    let st = t.state(&b.id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"], pid, "the pid changed on start");
    // start may return just before the process executes the program.
    wait_for_exec(pid, "sh");

    fs::write(ctl.join("go"), "").unwrap();
    t.wait_status(&b.id, "stopped");
    assert_gone(pid);

    t.exec(&["delete", &b.id]).ok();
    t.exec(&["state", &b.id]).fails();
    t.assert_nothing_left(&b);
}

#[test]
fn state_json() {
    let t = Ctx::new("state_json");
    let mut b = t.bundle();
    b.args(&["sleep", "1000"]);
    b.set(
        "/annotations",
        json!({"org.example.key": "value", "other": "x y"}),
    );
    b.write();
    // A relative --bundle is reported as an absolute path.
    let rel = b.dir.file_name().unwrap().to_str().unwrap();
    let o = t.rt.exec_with(
        &["create", "--bundle", rel, &b.id],
        Opts {
            cwd: Some(t.dir.clone()),
            ..Default::default()
        },
    );
    o.ok();
    let st = t.state(&b.id);
    for key in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(st.get(key).is_some(), "state has no {key}: {st}");
    }
    assert!(
        st["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{st}"
    );
    assert_eq!(st["id"], b.id.as_str());
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["status"], "created");
    assert_eq!(st["bundle"], b.path());
    assert_eq!(st["rootfs"], b.rootfs_path().to_str().unwrap());
    let created = st["created"].as_str().unwrap();
    assert!(is_rfc3339(created), "created is not RFC 3339: {created}");
    assert!(st["owner"].is_string(), "{st}");
    assert_eq!(
        st["annotations"],
        json!({"org.example.key": "value", "other": "x y"})
    );
    t.exec(&["delete", "--force", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn start_twice_fails() {
    let t = Ctx::new("start_twice");
    let mut b = t.bundle();
    b.args(&["sleep", "1000"]);
    t.create(&b).ok();
    t.exec(&["start", &b.id]).ok();
    t.exec(&["start", &b.id]).fails();
    assert_eq!(t.status(&b.id), "running");
    t.exec(&["delete", "--force", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn start_stopped_fails() {
    let t = Ctx::new("start_stopped");
    let mut b = t.bundle();
    b.args(&["true"]);
    t.create(&b).ok();
    t.exec(&["start", &b.id]).ok();
    t.wait_status(&b.id, "stopped");
    t.exec(&["start", &b.id]).fails();
    assert_eq!(t.status(&b.id), "stopped");
    t.exec(&["delete", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn kill_signal_forms() {
    let t = Ctx::new("kill_forms");
    let ctl = t.subdir("ctl");
    let mut b = t.bundle();
    b.mount("/mnt/ctl", "bind", ctl.to_str().unwrap(), &["rbind"]);
    b.sh(
        "trap 'echo term >> /mnt/ctl/log' TERM; touch /mnt/ctl/ready; while :; do sleep 0.05; done",
    );
    t.create(&b).ok();
    t.exec(&["start", &b.id]).ok();
    wait_for_file(&ctl.join("ready"), |_| true);
    let log = ctl.join("log");
    for (n, sig) in ["TERM", "SIGTERM", "15"].iter().enumerate() {
        t.exec(&["kill", &b.id, sig]).ok();
        wait_for_file(&log, |s| s.lines().count() == n + 1);
    }
    assert_eq!(t.status(&b.id), "running");
    // The default signal is SIGTERM.
    t.exec(&["kill", &b.id]).ok();
    wait_for_file(&log, |s| s.lines().count() == 4);
    t.exec(&["kill", &b.id, "KILL"]).ok();
    t.wait_status(&b.id, "stopped");
    t.exec(&["delete", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn kill_created_then_delete() {
    let t = Ctx::new("kill_created");
    let mut b = t.bundle();
    b.args(&["sleep", "1000"]);
    t.create(&b).ok();
    let pid = t.pid(&b.id);
    t.exec(&["kill", &b.id, "SIGKILL"]).ok();
    t.wait_status(&b.id, "stopped");
    assert_gone(pid);
    t.exec(&["delete", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn delete_running_needs_force() {
    let t = Ctx::new("delete_running");
    let mut b = t.bundle();
    b.args(&["sleep", "1000"]);
    t.create(&b).ok();
    t.exec(&["start", &b.id]).ok();
    let pid = t.pid(&b.id);
    t.exec(&["delete", &b.id]).fails();
    assert_eq!(t.status(&b.id), "running");
    assert!(alive(pid));
    t.exec(&["delete", "--force", &b.id]).ok();
    assert_gone(pid);
    t.assert_nothing_left(&b);
}

#[test]
fn delete_force_created() {
    let t = Ctx::new("delete_force_created");
    let mut b = t.bundle();
    b.args(&["sleep", "1000"]);
    t.create(&b).ok();
    let pid = t.pid(&b.id);
    t.exec(&["delete", "--force", &b.id]).ok();
    assert_gone(pid);
    t.assert_nothing_left(&b);
}

#[test]
fn run_detached() {
    let t = Ctx::new("run_detached");
    let mut b = t.bundle();
    b.args(&["sleep", "1000"]);
    b.write();
    t.exec(&["run", "--detach", "--bundle", b.path(), &b.id])
        .ok();
    assert_eq!(t.status(&b.id), "running");
    t.exec(&["delete", "--force", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn list() {
    let t = Ctx::new("list");
    let empty = t.exec(&["list", "-q"]);
    empty.ok();
    assert_eq!(empty.stdout, "");
    let mut bundles = vec![];
    for _ in 0..2 {
        let mut b = t.bundle();
        b.args(&["sleep", "1000"]);
        t.create(&b).ok();
        bundles.push(b);
    }
    t.exec(&["start", &bundles[1].id]).ok();
    let want_status = ["created", "running"];

    let o = t.exec(&["list"]);
    o.ok();
    let mut lines = o.stdout.lines();
    let header: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{}", o.stdout);
    for (b, status) in bundles.iter().zip(want_status) {
        let row = rows
            .iter()
            .find(|r| r[0] == b.id)
            .unwrap_or_else(|| panic!("{} not listed", b.id));
        assert_eq!(row[1], t.pid(&b.id).to_string());
        assert_eq!(row[2], status);
        assert_eq!(row[3], b.path());
        assert!(is_rfc3339(row[4]), "{}", row[4]);
    }

    let o = t.exec(&["list", "--format", "json"]);
    o.ok();
    let arr = o.json();
    let arr = arr.as_array().expect("an array");
    assert_eq!(arr.len(), 2);
    for (b, status) in bundles.iter().zip(want_status) {
        let c = arr.iter().find(|c| c["id"] == b.id.as_str()).unwrap();
        for key in ["id", "pid", "status", "bundle", "created", "owner"] {
            assert!(c.get(key).is_some(), "no {key} in {c}");
        }
        assert_eq!(c["pid"], t.pid(&b.id));
        assert_eq!(c["status"], status);
        assert_eq!(c["bundle"], b.path());
    }

    let o = t.exec(&["list", "-q"]);
    o.ok();
    let mut ids: Vec<_> = o.stdout.lines().collect();
    ids.sort();
    let mut want: Vec<_> = bundles.iter().map(|b| b.id.as_str()).collect();
    want.sort();
    assert_eq!(ids, want);

    for b in &bundles {
        t.exec(&["delete", "--force", &b.id]).ok();
        t.assert_nothing_left(b);
    }
}

/// Receive one file descriptor sent with SCM_RIGHTS.
fn recv_fd(sock: &impl AsRawFd) -> OwnedFd {
    let mut buf = [0u8; 512];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg = [0u64; 16];
    // SAFETY: msghdr is plain data; all pointers outlive the call.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cmsg) as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, 0);
        assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "no control message on the console socket");
        assert_eq!(
            ((*c).cmsg_level, (*c).cmsg_type),
            (libc::SOL_SOCKET, libc::SCM_RIGHTS)
        );
        let fd = (libc::CMSG_DATA(c) as *const i32).read_unaligned();
        OwnedFd::from_raw_fd(fd)
    }
}

/// Read from a pty master until the other side is gone (EIO) or `deadline`.
fn read_pty(fd: &OwnedFd, deadline: Instant) -> String {
    let mut out = Vec::new();
    while Instant::now() < deadline {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: p is a valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn console_socket() {
    let t = Ctx::new("console_socket");
    let sock = std::env::temp_dir().join(format!("hull-console-{}.sock", std::process::id()));
    let _ = fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut b = t.bundle();
    b.set("/process/terminal", json!(true));
    b.sh(
        "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; \
         [ \"$(stat -c %t:%T /dev/console)\" = \"$(stat -L -c %t:%T $(tty))\" ] && echo console; echo hello",
    );
    b.write();
    let create = t.rt.spawn(
        &[
            "create",
            "--console-socket",
            sock.to_str().unwrap(),
            "--bundle",
            b.path(),
            &b.id,
        ],
        Opts::default(),
    );
    let deadline = Instant::now() + TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("no connection on the console socket: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let master = recv_fd(&stream);
    let _ = fs::remove_file(&sock);
    create.wait().ok();
    t.exec(&["start", &b.id]).ok();
    let out = read_pty(&master, Instant::now() + TIMEOUT);
    let lines: Vec<_> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "{out:?}"
    );
    assert!(
        lines.contains(&"console"),
        "/dev/console is not the terminal: {out:?}"
    );
    assert!(lines.contains(&"all-ttys"), "{out:?}");
    assert!(lines.contains(&"hello"), "{out:?}");
    t.wait_status(&b.id, "stopped");
    t.exec(&["delete", &b.id]).ok();
    t.assert_nothing_left(&b);
}
