//! Bad bundles, ids and arguments: the runtime must fail with exit status 1
//! and an error message, and leave nothing behind.

mod common;

use std::fs;

use common::*;

/// `o` is a clean failure. For hull, stderr must also be exactly one line
/// naming the offending field, file or id (any of `names`).
#[track_caller]
fn assert_bad(o: &Output, names: &[&str]) {
    o.fails();
    if is_hull() {
        let err = o.stderr.trim_end();
        assert_eq!(err.lines().count(), 1, "expected a one-line error: {err:?}");
        assert!(
            names.iter().any(|n| err.contains(n)),
            "error does not name any of {names:?}: {err:?}"
        );
    }
}

/// Create a container from a bundle that should be rejected, check the
/// failure and the cleanup, and also that `run` rejects it the same way.
#[track_caller]
fn reject(t: &Ctx, b: &Bundle, names: &[&str]) {
    assert_bad(&t.exec(&["create", "--bundle", b.path(), &b.id]), names);
    t.assert_nothing_left(b);
    assert_bad(&t.exec(&["run", "--bundle", b.path(), &b.id]), names);
    t.assert_nothing_left(b);
}

#[test]
fn missing_config() {
    let t = Ctx::new("missing_config");
    let b = t.bundle();
    reject(&t, &b, &["config.json"]);
}

#[test]
fn malformed_config() {
    let t = Ctx::new("malformed_config");
    let b = t.bundle();
    fs::write(
        b.dir.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": {",
    )
    .unwrap();
    reject(&t, &b, &["config.json"]);
    fs::write(b.dir.join("config.json"), "[]").unwrap();
    reject(&t, &b, &["config.json"]);
}

#[test]
fn wrong_type_in_config() {
    let t = Ctx::new("wrong_type");
    let mut b = t.bundle();
    b.set("/process/args", json!("sh -c true"));
    b.write();
    reject(&t, &b, &["config.json", "args"]);
}

#[test]
fn missing_rootfs() {
    let t = Ctx::new("missing_rootfs");
    let mut b = t.bundle();
    b.set("/root/path", json!("no-such-rootfs"));
    b.args(&["true"]);
    b.write();
    reject(&t, &b, &["no-such-rootfs", "root.path"]);
}

#[test]
fn empty_args() {
    let t = Ctx::new("empty_args");
    let mut b = t.bundle();
    b.set("/process/args", json!([]));
    b.write();
    reject(&t, &b, &["process.args", "args"]);
}

#[test]
fn nonexistent_executable() {
    let t = Ctx::new("nonexistent_exe");
    let mut b = t.bundle();
    b.args(&["/nope"]);
    b.write();
    reject(&t, &b, &["/nope"]);
    // Also when found through PATH.
    let mut b = t.bundle();
    b.args(&["no-such-command"]);
    b.write();
    reject(&t, &b, &["no-such-command"]);
}

#[test]
fn relative_cwd() {
    let t = Ctx::new("relative_cwd");
    let mut b = t.bundle();
    b.args(&["true"]);
    b.set("/process/cwd", json!("etc"));
    b.write();
    reject(&t, &b, &["cwd"]);
}

/// config-linux.md: a file already at a device's path that does not
/// match the requested device MUST be an error.
#[test]
fn existing_file_at_device_path() {
    // runc 1.1 keeps whatever is there.
    if is_runc() {
        return;
    }
    let t = Ctx::new("existing_file_at_device");
    let mut b = t.bundle();
    b.writable_rootfs();
    b.args(&["true"]);
    fs::write(b.rootfs_path().join("mnt/notadevice"), "x").unwrap();
    b.push(
        "/linux/devices",
        json!({"path": "/mnt/notadevice", "type": "c", "major": 1, "minor": 3}),
    );
    b.write();
    reject(&t, &b, &["/mnt/notadevice"]);
}

#[test]
fn uid_mappings_without_user_namespace() {
    // runc 1.1 silently ignores id mappings when no user namespace is
    // requested.
    if is_runc() {
        return;
    }
    let t = Ctx::new("uidmap_no_userns");
    let mut b = t.bundle();
    b.args(&["true"]);
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.write();
    reject(&t, &b, &["uidMappings", "user namespace", "mappings"]);
}

#[test]
fn invalid_cgroup_value() {
    let t = Ctx::new("invalid_cgroup");
    let mut b = t.bundle();
    b.args(&["true"]);
    b.set("/linux/resources/cpu", json!({"cpus": "abc"}));
    b.write();
    reject(&t, &b, &["cpus", "abc"]);
}

#[test]
fn invalid_container_ids() {
    let t = Ctx::new("invalid_ids");
    let mut b = t.bundle();
    b.args(&["true"]);
    b.write();
    for id in ["../x", "a/b", "", ".", "..", "a b"] {
        let o = t.exec(&["create", "--bundle", b.path(), id]);
        let names: &[&str] = if id.is_empty() { &["id"] } else { &[id] };
        assert_bad(&o, names);
        assert!(!t.dir.join("x").exists());
        let entries: Vec<_> = fs::read_dir(&t.rt.root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            entries.is_empty(),
            "create {id:?} left {entries:?} in the state dir"
        );
    }
}

#[test]
fn duplicate_id() {
    let t = Ctx::new("duplicate_id");
    let ctl = t.subdir("ctl");
    let mut b = t.bundle();
    b.mount("/mnt/ctl", "bind", ctl.to_str().unwrap(), &["rbind"]);
    b.sh("echo started > /mnt/ctl/out");
    t.create(&b).ok();
    let pid = t.pid(&b.id);
    assert_bad(&t.exec(&["create", "--bundle", b.path(), &b.id]), &[&b.id]);
    assert_bad(&t.exec(&["run", "--bundle", b.path(), &b.id]), &[&b.id]);
    // The first container is untouched and still works.
    let st = t.state(&b.id);
    assert_eq!(
        (st["status"].as_str(), st["pid"].as_i64()),
        (Some("created"), Some(pid as i64))
    );
    assert!(alive(pid));
    t.exec(&["start", &b.id]).ok();
    t.wait_status(&b.id, "stopped");
    assert_eq!(read(ctl.join("out")), "started\n");
    t.exec(&["delete", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn unknown_id() {
    let t = Ctx::new("unknown_id");
    let id = t.id();
    for args in [
        vec!["state", &id],
        vec!["start", &id],
        vec!["kill", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
    ] {
        assert_bad(&t.exec(&args), &[&id]);
    }
}

#[test]
fn invalid_signal() {
    let t = Ctx::new("invalid_signal");
    let mut b = t.bundle();
    b.args(&["sleep", "1000"]);
    t.create(&b).ok();
    for sig in ["FOO", "SIGFOO", "-1", "1000", "9x"] {
        assert_bad(&t.exec(&["kill", &b.id, sig]), &[sig]);
    }
    assert_eq!(t.status(&b.id), "created");
    t.exec(&["delete", "--force", &b.id]).ok();
    t.assert_nothing_left(&b);
}

/// "a mount onto a symlink pointing outside the rootfs": the destination is
/// resolved inside the rootfs, so the host directory the symlink names is
/// never mounted on or created in.
#[test]
fn mount_through_symlink_stays_in_rootfs() {
    let t = Ctx::new("symlink_escape");
    let host = t.subdir("host-target");
    let mut b = t.bundle();
    b.writable_rootfs();
    let rootfs = b.rootfs_path();
    std::os::unix::fs::symlink(&host, rootfs.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", rootfs.join("up")).unwrap();
    b.mount("/escape/inner", "tmpfs", "tmpfs", &[]);
    b.mount("/up/etc/hull-escape", "tmpfs", "tmpfs", &[]);
    let out = run_sh(
        &t,
        &mut b,
        "grep -c hull-escape /proc/mounts; ls -d /etc/hull-escape",
    );
    assert!(out.contains("/etc/hull-escape"), "{out}");
    assert!(
        !host.join("inner").exists(),
        "created a directory outside the rootfs"
    );
    assert!(
        !std::path::Path::new("/etc/hull-escape").exists(),
        "escaped to the host's /etc"
    );
    assert!(rootfs
        .join(host.strip_prefix("/").unwrap())
        .join("inner")
        .is_dir());
    t.assert_nothing_left(&b);
}

/// Clients map these words to exit codes (Docker: 127 and 126).
#[test]
fn exec_errors_use_runc_words() {
    for (arg0, words) in [
        ("/no-such-binary", "no such file or directory"),
        ("/etc/passwd", "permission denied"),
    ] {
        let t = Ctx::new("exec_words");
        let mut b = t.bundle();
        b.args(&[arg0]);
        let out = t.create(&b);
        assert_eq!(out.status, 1, "{out:?}");
        assert!(out.stderr.contains(words), "{arg0}: {out:?}");
        t.assert_nothing_left(&b);
    }
}

/// The init's error reaches the user even when it exits while the runtime
/// is still sending to it (EPIPE, ECONNRESET on the socket): the failure is
/// timing-dependent, so create a few times.
#[test]
fn init_error_is_reported_whatever_the_timing() {
    let t = Ctx::new("init_error_timing");
    for _ in 0..25 {
        let mut b = t.bundle();
        b.args(&["true"]);
        b.mount("/mnt/a", "bind", "/no/such/source", &["bind"]);
        b.write();
        let o = t.exec(&["create", "--bundle", b.path(), &b.id]);
        o.fails();
        assert!(o.stderr.contains("/no/such/source"), "{}", o.stderr);
        t.assert_nothing_left(&b);
    }
}
