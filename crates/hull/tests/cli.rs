//! The command line outside the container lifecycle: --version, --help,
//! spec, features, logging and usage errors.

mod common;

use std::fs;

use common::*;

fn bare(t: &Ctx, args: &[&str]) -> Output {
    t.rt.exec_with(
        args,
        Opts {
            no_root: true,
            ..Default::default()
        },
    )
}

fn runtime_name() -> String {
    runtime()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn version() {
    let t = Ctx::new("version");
    for flag in ["--version", "-v"] {
        let o = bare(&t, &[flag]);
        o.ok();
        let mut lines = o.stdout.lines();
        let first = lines.next().unwrap_or_default();
        let prefix = format!("{} version ", runtime_name());
        let v = first
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{first:?} does not start with {prefix:?}"));
        assert!(
            v.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "{first:?}"
        );
        assert!(
            o.stdout
                .lines()
                .any(|l| l.strip_prefix("spec: 1.").is_some_and(|r| !r.is_empty())),
            "no spec version line: {:?}",
            o.stdout
        );
    }
}

#[test]
fn help() {
    let t = Ctx::new("help");
    for flag in ["--help", "-h"] {
        let o = bare(&t, &[flag]);
        o.ok();
        for cmd in [
            "create", "start", "state", "kill", "delete", "run", "list", "spec",
        ] {
            assert!(
                o.stdout.contains(cmd),
                "{cmd} missing from help: {}",
                o.stdout
            );
        }
    }
}

#[test]
fn usage_errors() {
    let t = Ctx::new("usage_errors");
    for args in [
        &["no-such-command"][..],
        &["--no-such-flag"],
        &["state"],
        &["start"],
        &["create"],
    ] {
        let o = t.exec(args);
        assert_ne!(o.status, 0, "{args:?}: {o:#?}");
        assert!(!o.stderr.trim().is_empty(), "{args:?}: no error message");
        assert!(
            fs::read_dir(&t.rt.root).unwrap().next().is_none(),
            "{args:?} left state behind"
        );
    }
}

/// The spec as written, without the fields a runtime fills in itself.
/// On cgroup v2 hosts runc adds a cgroup namespace; that is allowed too.
fn comparable(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("ociVersion");
    if cgroup2() {
        if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n != &json!({"type": "cgroup"}));
        }
    }
    v
}

#[test]
fn spec_writes_default_config() {
    let t = Ctx::new("spec_default");
    let dir = t.subdir("bundle");
    bare(&t, &["spec", "--bundle", dir.to_str().unwrap()]).ok();
    let spec: Value =
        serde_json::from_str(&read(dir.join("config.json"))).expect("config.json is JSON");
    assert!(
        spec["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{spec}"
    );
    let mut want = default_config();
    want["process"]["terminal"] = json!(true);
    assert_eq!(comparable(spec.clone()), comparable(want));

    // Refuses to overwrite an existing config.
    fs::write(dir.join("config.json"), "{}").unwrap();
    let o = bare(&t, &["spec", "--bundle", dir.to_str().unwrap()]);
    o.fails();
    assert!(o.stderr.contains("config.json"), "{o:#?}");
    assert_eq!(read(dir.join("config.json")), "{}");
}

#[test]
fn spec_in_current_directory() {
    let t = Ctx::new("spec_cwd");
    let dir = t.subdir("bundle");
    t.rt.exec_with(
        &["spec"],
        Opts {
            no_root: true,
            cwd: Some(dir.clone()),
            ..Default::default()
        },
    )
    .ok();
    let spec: Value = serde_json::from_str(&read(dir.join("config.json"))).unwrap();
    assert_eq!(spec["process"]["args"], json!(["sh"]));
}

#[test]
fn spec_output_runs() {
    let t = Ctx::new("spec_runs");
    let mut b = t.bundle();
    bare(&t, &["spec", "--bundle", b.path()]).ok();
    let cgroups_path = b.cgroups_path();
    b.config = serde_json::from_str(&read(b.dir.join("config.json"))).unwrap();
    b.set("/root/path", json!(rootfs().to_str().unwrap()));
    b.set("/process/terminal", json!(false));
    b.set("/linux/cgroupsPath", json!(cgroups_path));
    b.args(&["echo", "spec works"]);
    let o = t.run(&b);
    o.ok();
    assert_eq!(o.stdout, "spec works\n");
    t.assert_nothing_left(&b);
}

#[test]
fn spec_rootless() {
    let t = Ctx::new("spec_rootless");
    let dir = t.subdir("bundle");
    bare(
        &t,
        &["spec", "--rootless", "--bundle", dir.to_str().unwrap()],
    )
    .ok();
    let spec: Value = serde_json::from_str(&read(dir.join("config.json"))).unwrap();
    let linux = &spec["linux"];
    let mut ns: Vec<_> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    ns.sort();
    // On cgroup v2 hosts runc adds a cgroup namespace; that is allowed too.
    if cgroup2() {
        ns.retain(|n| *n != "cgroup");
    }
    assert_eq!(ns, ["ipc", "mount", "pid", "user", "uts"]);
    // SAFETY: geteuid and getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!(
        linux["uidMappings"],
        json!([{"containerID": 0, "hostID": uid, "size": 1}])
    );
    assert_eq!(
        linux["gidMappings"],
        json!([{"containerID": 0, "hostID": gid, "size": 1}])
    );
    assert!(linux.get("resources").is_none(), "{spec}");
    let mounts = spec["mounts"].as_array().unwrap();
    let sys = mounts.iter().find(|m| m["destination"] == "/sys").unwrap();
    assert_eq!(sys["source"], "/sys");
    assert!(
        sys["options"].as_array().unwrap().contains(&json!("rbind")),
        "{sys}"
    );
    for m in mounts {
        for o in m["options"].as_array().into_iter().flatten() {
            assert!(!o.as_str().unwrap().starts_with("gid="), "{m}");
        }
    }
}

#[test]
fn features() {
    let t = Ctx::new("features");
    let o = bare(&t, &["features"]);
    o.ok();
    let f = o.json();
    for key in ["ociVersionMin", "ociVersionMax"] {
        assert!(
            f[key].as_str().is_some_and(|v| v.starts_with("1.")),
            "{key}: {f}"
        );
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let hooks = strings(&f["hooks"]);
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.iter().any(|x| x == h), "hook {h} missing: {hooks:?}");
    }
    let opts = strings(&f["mountOptions"]);
    for o in [
        "bind",
        "rbind",
        "ro",
        "rw",
        "nosuid",
        "nodev",
        "noexec",
        "relatime",
        "strictatime",
    ] {
        assert!(
            opts.iter().any(|x| x == o),
            "mount option {o} missing: {opts:?}"
        );
    }
    let ns = strings(&f["linux"]["namespaces"]);
    for n in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(ns.iter().any(|x| x == n), "namespace {n} missing: {ns:?}");
    }
    if let Some(caps) = f["linux"].get("capabilities") {
        let caps = strings(caps);
        for c in [
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_AUDIT_WRITE",
            "CAP_SYS_ADMIN",
        ] {
            assert!(caps.iter().any(|x| x == c), "capability {c} missing");
        }
    }
}

#[test]
fn log_json() {
    let t = Ctx::new("log_json");
    let log = t.dir.join("log.json");
    let id = t.id();
    let o = t.exec(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        &id,
    ]);
    assert_eq!(o.status, 1, "{o:#?}");
    let text = read(&log);
    let entries: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l:?}"))
        })
        .collect();
    assert!(!entries.is_empty(), "nothing was logged");
    for e in &entries {
        for key in ["level", "msg", "time"] {
            assert!(e[key].is_string(), "{key} missing: {e}");
        }
    }
    let err = entries
        .iter()
        .find(|e| e["level"] == "error")
        .unwrap_or_else(|| panic!("no error logged: {text}"));
    assert!(!err["msg"].as_str().unwrap().is_empty());
    if is_hull() {
        assert!(err["msg"].as_str().unwrap().contains(&id), "{err}");
    }

    // The log is appended to, not truncated.
    let id2 = t.id();
    t.exec(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        &id2,
    ]);
    let text2 = read(&log);
    assert!(
        text2.starts_with(&text) && text2.len() > text.len(),
        "{text2}"
    );
}
