//! `run`: the process the container runs (identity, environment,
//! limits) and what the runtime passes through to its caller (output,
//! exit status, stdin, extra fds, pid file).

mod common;

use std::fs;

use common::*;

#[test]
fn prints_stdout() {
    let t = Ctx::new("prints_stdout");
    let mut b = t.bundle();
    b.args(&["echo", "hello from the container"]);
    let o = t.run(&b);
    o.ok();
    assert_eq!(o.stdout, "hello from the container\n");
    t.assert_nothing_left(&b);
}

#[test]
fn exit_code_passes_through() {
    let t = Ctx::new("exit_code");
    for code in [0, 1, 3, 42, 255] {
        let mut b = t.bundle();
        b.sh(&format!("exit {code}"));
        let o = t.run(&b);
        assert_eq!(o.status, code, "{o:#?}");
        t.assert_nothing_left(&b);
    }
}

#[test]
fn killed_by_signal_is_128_plus_n() {
    let t = Ctx::new("killed_by_signal");
    let mut b = t.bundle();
    b.args(&["sleep", "1000"]);
    b.write();
    let run =
        t.rt.spawn(&["run", "--bundle", b.path(), &b.id], Opts::default());
    t.wait_status(&b.id, "running");
    t.exec(&["kill", &b.id, "KILL"]).ok();
    let o = run.wait();
    assert_eq!(o.status, 128 + 9, "{o:#?}");
    t.assert_nothing_left(&b);
}

#[test]
fn stdin_passes_through() {
    let t = Ctx::new("stdin_passes");
    let mut b = t.bundle();
    b.args(&["cat"]);
    b.write();
    let o = t.rt.exec_with(
        &["run", "--bundle", b.path(), &b.id],
        Opts {
            stdin: Some(b"data\nmore data\n".to_vec()),
            ..Default::default()
        },
    );
    o.ok();
    assert_eq!(o.stdout, "data\nmore data\n");
    t.assert_nothing_left(&b);
}

#[test]
fn hostname_from_config() {
    let t = Ctx::new("hostname");
    let mut b = t.bundle();
    b.set("/hostname", json!("hull-host-name"));
    let out = run_sh(&t, &mut b, "hostname; cat /proc/sys/kernel/hostname");
    assert_eq!(out, "hull-host-name\nhull-host-name\n");
    let host = read("/proc/sys/kernel/hostname");
    assert_ne!(host.trim(), "hull-host-name", "the host's hostname changed");
}

#[test]
fn default_capabilities() {
    let t = Ctx::new("default_caps");
    let mut b = t.bundle();
    let out = run_sh(&t, &mut b, "cat /proc/self/status");
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29).
    for key in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(status_field(&out, key), "0000000020000420", "{key}");
    }
    // Ambient caps cannot be raised without being inheritable.
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000");
}

#[test]
fn custom_capabilities() {
    let t = Ctx::new("custom_caps");
    let mut b = t.bundle();
    let caps = json!(["CAP_CHOWN", "CAP_DAC_OVERRIDE"]);
    b.set(
        "/process/capabilities",
        json!({"bounding": caps, "effective": caps, "permitted": caps}),
    );
    let out = run_sh(&t, &mut b, "cat /proc/self/status");
    for key in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(status_field(&out, key), "0000000000000003", "{key}");
    }
}

#[test]
fn user_and_groups() {
    let t = Ctx::new("user_groups");
    let mut b = t.bundle();
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1000, "additionalGids": [2001, 2002]}),
    );
    let out = run_sh(&t, &mut b, "cat /proc/self/status; echo name=$(id -un)");
    assert_eq!(
        status_field(&out, "Uid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000"; 4]
    );
    assert_eq!(
        status_field(&out, "Gid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000"; 4]
    );
    let mut groups: Vec<_> = status_field(&out, "Groups").split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["2001", "2002"]);
    assert!(out.contains("name=user\n"), "{out}");
    // A non-root user ends up without effective capabilities.
    assert_eq!(status_field(&out, "CapEff"), "0000000000000000");
}

#[test]
fn env_and_cwd() {
    let t = Ctx::new("env_cwd");
    let mut b = t.bundle();
    b.set(
        "/process/env",
        json!(["PATH=/bin:/sbin", "FOO=bar baz", "EMPTY="]),
    );
    b.set("/process/cwd", json!("/etc"));
    let out = run_sh(&t, &mut b, "pwd; env");
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines[0], "/etc");
    for want in ["PATH=/bin:/sbin", "FOO=bar baz", "EMPTY="] {
        assert!(lines.contains(&want), "{want:?} missing from {out}");
    }
}

#[test]
fn rlimits() {
    let t = Ctx::new("rlimits");
    let mut b = t.bundle();
    assert_eq!(run_sh(&t, &mut b, "ulimit -n; ulimit -Hn"), "1024\n1024\n");
    let mut b = t.bundle();
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]),
    );
    assert_eq!(run_sh(&t, &mut b, "ulimit -n; ulimit -Hn"), "100\n200\n");
}

#[test]
fn oom_score_adj() {
    let t = Ctx::new("oom_score_adj");
    let mut b = t.bundle();
    b.set("/process/oomScoreAdj", json!(500));
    assert_eq!(run_sh(&t, &mut b, "cat /proc/self/oom_score_adj"), "500\n");
}

#[test]
fn umask() {
    let t = Ctx::new("umask");
    let mut b = t.bundle();
    assert_eq!(run_sh(&t, &mut b, "umask"), "0022\n");
    let mut b = t.bundle();
    b.set("/process/user/umask", json!(0o077));
    assert_eq!(run_sh(&t, &mut b, "umask"), "0077\n");
}

#[test]
fn no_new_privileges() {
    let t = Ctx::new("no_new_privs");
    let mut b = t.bundle();
    let out = run_sh(&t, &mut b, "grep NoNewPrivs /proc/self/status");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    if status_field(&read("/proc/self/status"), "NoNewPrivs") == "1" {
        return; // Inherited from the test's environment; cannot be cleared.
    }
    let mut b = t.bundle();
    b.set("/process/noNewPrivileges", json!(false));
    let out = run_sh(&t, &mut b, "grep NoNewPrivs /proc/self/status");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
}

#[test]
fn pid_file() {
    let t = Ctx::new("pid_file");
    let mut b = t.bundle();
    b.args(&["sleep", "1000"]);
    b.write();
    let pid_file = t.dir.join("container.pid");
    t.exec(&[
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &b.id,
    ])
    .ok();
    let pid: i32 = read(&pid_file).trim().parse().expect("a pid");
    assert_eq!(pid, t.pid(&b.id));
    assert!(alive(pid));
    t.exec(&["delete", "--force", &b.id]).ok();
    t.assert_nothing_left(&b);
    assert_gone(pid);
}

#[test]
fn preserve_fds() {
    let t = Ctx::new("preserve_fds");
    let extra = t.dir.join("fd3");
    let f = fs::File::create(&extra).unwrap();
    let mut b = t.bundle();
    b.sh("echo hi >&3");
    b.write();
    let o = t.rt.exec_with(
        &["run", "--preserve-fds", "1", "--bundle", b.path(), &b.id],
        Opts {
            fd3: Some(f),
            ..Default::default()
        },
    );
    o.ok();
    assert_eq!(read(&extra), "hi\n");
    t.assert_nothing_left(&b);

    // Without --preserve-fds the descriptor is not passed on.
    let f = fs::File::create(&extra).unwrap();
    let mut b = t.bundle();
    b.sh("echo hi >&3");
    b.write();
    let o = t.rt.exec_with(
        &["run", "--bundle", b.path(), &b.id],
        Opts {
            fd3: Some(f),
            ..Default::default()
        },
    );
    assert_ne!(o.status, 0, "fd 3 leaked into the container: {o:#?}");
    assert_eq!(read(&extra), "");
    t.assert_nothing_left(&b);
}

#[test]
fn scheduler_io_priority_and_cpu_affinity() {
    if is_runc() {
        // runc 1.1 predates these runtime-spec 1.2 fields and ignores them.
        return;
    }
    let t = Ctx::new("sched");
    let mut b = t.bundle();
    b.set(
        "/process/scheduler",
        json!({"policy": "SCHED_BATCH", "nice": 5}),
    );
    b.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_BE", "priority": 6}),
    );
    b.set(
        "/process/execCPUAffinity",
        json!({"initial": "0", "final": "0"}),
    );
    let out = run_sh(
        &t,
        &mut b,
        "grep '^policy' /proc/self/sched | tr -s ' '; cut -d' ' -f19 /proc/self/stat; ionice -p $$; grep Cpus_allowed_list /proc/self/status",
    );
    // SCHED_BATCH is policy 3; field 19 of stat is the nice value.
    assert_eq!(
        out,
        "policy : 3\n5\nbest-effort: prio 6\nCpus_allowed_list:\t0\n"
    );
}
