//! seccomp: actions and operators probed with busybox, and Podman's default
//! profile (Debian's containers-common seccomp.json, resolved for the
//! container's capabilities the way Podman does).

mod common;

use common::*;

fn with_filter(b: &mut Bundle, syscalls: Value) {
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": syscalls}),
    );
}

#[test]
fn errno_action_returns_the_configured_errno() {
    let t = Ctx::new("sc_errno");
    let mut b = t.bundle();
    with_filter(
        &mut b,
        json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]),
    );
    let out = run_sh(
        &t,
        &mut b,
        "mkdir /dev/shm/x 2>&1; echo rc=$?; touch /dev/shm/y && echo touched",
    );
    assert!(out.contains("Permission denied"), "EACCES expected: {out}");
    assert!(out.contains("rc=1") && out.contains("touched"), "{out}");
}

#[test]
fn kill_process_and_trap_end_the_caller() {
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
        let t = Ctx::new("sc_kill");
        let mut b = t.bundle();
        with_filter(
            &mut b,
            json!([{"names": ["mkdir", "mkdirat"], "action": action}]),
        );
        let out = run_sh(&t, &mut b, "sh -c 'mkdir /dev/shm/x'; echo rc=$?");
        // SIGSYS (31): the shell reports 128+31.
        assert_eq!(out.trim(), "rc=159", "{action}: {out}");
    }
}

#[test]
fn log_and_allow_let_the_call_through() {
    let t = Ctx::new("sc_log");
    let mut b = t.bundle();
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_LOG", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}),
    );
    let out = run_sh(&t, &mut b, "mkdir /dev/shm/x && echo made");
    assert_eq!(out, "made\n");
}

#[test]
fn argument_operators() {
    let t = Ctx::new("sc_args");
    let mut b = t.bundle();
    // kill(pid, sig): deny signals above 15, and signal 0 to pid 1 only
    // when the masked pid bits match.
    with_filter(
        &mut b,
        json!([
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 15, "op": "SCMP_CMP_GT"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "value": 255, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"},
                      {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}
        ]),
    );
    let out = run_sh(
        &t,
        &mut b,
        "kill -0 1 && echo sig0-ok; kill -CONT 1 2>/dev/null || echo cont-denied; kill -0 263 2>/dev/null || echo masked-denied; kill -HUP 1 && echo hup-ok",
    );
    assert_eq!(out, "sig0-ok\ncont-denied\nmasked-denied\nhup-ok\n");
}

/// Podman's profile as Podman hands it to the runtime for `caps`.
fn podman_profile(caps: &[&str]) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/podman-seccomp.json"
    ))
    .unwrap();
    let p: Value = serde_json::from_str(&text).unwrap();
    let has = |list: &Value| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|c| caps.contains(&c.as_str().unwrap())))
    };
    let all = |list: &Value| {
        list.as_array()
            .is_none_or(|l| l.iter().all(|c| caps.contains(&c.as_str().unwrap())))
    };
    let arch_ok = |list: &Value| {
        list.as_array()
            .is_none_or(|l| l.is_empty() || l.iter().any(|a| a == "amd64"))
    };
    let arch_excluded = |list: &Value| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|a| a == "amd64"))
    };
    let mut syscalls = Vec::new();
    for s in p["syscalls"].as_array().unwrap() {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        if !all(&inc["caps"])
            || !arch_ok(&inc["arches"])
            || has(&exc["caps"])
            || arch_excluded(&exc["arches"])
        {
            continue;
        }
        let mut e = json!({"names": s["names"], "action": s["action"]});
        if let Some(r) = s.get("errnoRet") {
            e["errnoRet"] = r.clone();
        }
        if s["args"].as_array().is_some_and(|a| !a.is_empty()) {
            e["args"] = s["args"].clone();
        }
        syscalls.push(e);
    }
    json!({
        "defaultAction": p["defaultAction"],
        "defaultErrnoRet": p["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })
}

#[test]
fn podman_default_profile() {
    let t = Ctx::new("sc_podman");
    let mut b = t.bundle();
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    b.set("/linux/seccomp", podman_profile(&caps));
    let out = run_sh(
        &t,
        &mut b,
        "echo hi | cat; ls / >/dev/null && echo ls-ok; ps >/dev/null && echo ps-ok; \
         (sleep 0.1 &) ; wait; mkdir /dev/shm/d && echo mkdir-ok; \
         chroot / true 2>&1 | grep -o 'Operation not permitted'; \
         hostname other 2>&1 | grep -o 'Operation not permitted'; \
         grep '^Seccomp:' /proc/self/status",
    );
    assert_eq!(
        out,
        "hi\nls-ok\nps-ok\nmkdir-ok\nOperation not permitted\nOperation not permitted\nSeccomp:\t2\n"
    );
}

#[path = "common/seccomp_agent.rs"]
mod seccomp_agent;

#[test]
fn notify_hands_the_fd_to_the_listener_and_the_agent_answers() {
    let t = Ctx::new("sc_notify");
    let agent_dir = t.subdir("agent");
    let sock = agent_dir.join("agent.sock");
    let seen = seccomp_agent::start(
        &sock,
        vec![libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32],
        libc::EXDEV,
    );
    let mut b = t.bundle();
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "listenerPath": sock,
            "listenerMetadata": "answer=EXDEV",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"},
            ],
        }),
    );
    let out = run_sh(
        &t,
        &mut b,
        "mkdir /dev/shm/x 2>&1; echo rc=$?; test -d /dev/shm/x || echo absent; cd /dev/shm && pwd",
    );
    // The agent's answer reached the container: EXDEV, and nothing made;
    // getcwd went on as if unfiltered.
    assert!(out.contains("Invalid cross-device link"), "{out}");
    assert!(out.contains("rc=1") && out.contains("absent"), "{out}");
    assert!(out.trim_end().ends_with("/dev/shm"), "{out}");
    let seen = seen
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("agent report");
    let s = &seen.state;
    assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
    assert_eq!(s["metadata"], "answer=EXDEV");
    assert_eq!(s["state"]["id"], b.id.as_str());
    assert_eq!(s["state"]["status"], "creating");
    assert!(s["pid"].as_i64().unwrap() > 1);
    assert_eq!(s["pid"], s["state"]["pid"]);
    assert!(
        seen.syscalls.contains(&(libc::SYS_getcwd as i32)),
        "{:?}",
        seen.syscalls
    );
}

#[test]
fn notify_without_a_reachable_listener_fails_create() {
    let t = Ctx::new("sc_notify_none");
    let mut b = t.bundle();
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    b.args(&["true"]);
    let o = t.run(&b);
    o.fails();
    assert!(o.stderr.contains("/nonexistent/agent.sock"), "{}", o.stderr);
    t.assert_nothing_left(&b);
}
