//! A whole session: import -> run --rm -> run -d -> ps -> logs -> exec ->
//! stop -> ps -a -> rm -> rmi, with nothing left behind.

mod common;

#[test]
fn a_whole_session_leaves_nothing_behind() {
    let Some(h) = common::setup() else { return };
    let images = h.ok(&["images"]);
    assert!(
        images.contains("busybox") && images.contains("latest"),
        "{images}"
    );

    // Foreground: output and exit code.
    assert_eq!(
        h.ok(&["run", "--rm", "busybox", "echo", "hello"]),
        "hello\n"
    );
    let out = h.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(h.ok(&["ps", "-aq"]), "", "--rm left a container");
    // -i: stdin goes to the container; without it, the container reads nothing.
    for (flags, want) in [(&["-i"][..], "piped in\n"), (&[][..], "")] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "cat"]);
        let mut child = h
            .command(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"piped in\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{flags:?}");
    }

    // Detached, with a stop signal the shell handles.
    let script = "trap 'echo got TERM; exit 3' TERM; echo started; echo warn >&2; \
                  while true; do sleep 0.1; done";
    let id = h.ok(&["run", "-d", "--name", "web", "busybox", "sh", "-c", script]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let ps = h.ok(&["ps"]);
    assert!(
        ps.contains(&id[..12]) && ps.contains("web") && ps.contains("Up"),
        "{ps}"
    );
    let fmt = h.ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(fmt, "web running\n");
    h.eventually("the first output", || {
        h.ok(&["logs", "web"]).contains("started")
    });
    let logs = h.run(&["logs", "web"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "started\n");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "warn\n");
    // The log is json-lines with stream and time.
    let raw = std::fs::read_to_string(h.root.join("containers").join(id).join("ctr.log")).unwrap();
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "started\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));

    // exec: output, exit code, and by id prefix.
    let out = h.run(&[
        "exec",
        &id[..8],
        "sh",
        "-c",
        "echo from exec; hostname; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("from exec\n{}\n", &id[..12])
    );

    // stop sends SIGTERM (the default stop signal) and waits.
    h.ok(&["stop", "-t", "5", "web"]);
    let all = h.ok(&["ps", "-a"]);
    assert!(all.contains("Exited (3)"), "{all}");
    assert_eq!(h.ok(&["ps"]).lines().count(), 1, "only the header");
    assert_eq!(h.ok(&["ps", "-a", "--format", "{{.ExitCode}}"]), "3\n");
    assert_eq!(h.ok(&["wait", "web"]), "3\n");
    assert!(h.ok(&["logs", "web"]).contains("got TERM"));
    let state = &h.inspect("web")["State"];
    assert_eq!(state["Status"], "exited");
    assert_eq!(state["ExitCode"], 3);

    h.ok(&["rm", "web"]);
    assert_eq!(h.ok(&["ps", "-aq"]), "");
    h.ok(&["rmi", "busybox"]);
    assert_eq!(h.ok(&["images", "-q"]), "");

    for d in ["containers", "images", "layers"] {
        assert_eq!(h.entries(&h.root.join(d)), Vec::<String>::new(), "{d}");
    }
    assert_eq!(
        h.entries(&h.root.join("blobs/sha256")),
        Vec::<String>::new(),
        "blobs"
    );
    assert_eq!(
        h.entries(&h.runroot.join("runtime")),
        Vec::<String>::new(),
        "runtime root"
    );
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/memory/hullctl-{id}")).exists(),
        "cgroup left behind"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours = h.dir.path().to_str().unwrap();
    assert!(!mounts.contains(ours), "a mount left under {ours}");
}

#[test]
fn names_and_prefixes_have_clear_errors() {
    let Some(h) = common::setup() else { return };
    let err = h.fails(&["logs", "nosuch"]);
    assert!(err.contains("\"nosuch\": no such container"), "{err}");
    let err = h.fails(&["run", "--rm", "--pull", "never", "nosuchimage:1", "true"]);
    assert!(err.contains("\"nosuchimage:1\": no such image"), "{err}");

    h.ok(&["create", "--name", "one", "busybox", "true"]);
    let err = h.fails(&["create", "--name", "one", "busybox", "true"]);
    assert!(err.contains("name \"one\" is already used"), "{err}");

    // A second record whose id shares the first one's 6-digit prefix and
    // differs from it in the 7th digit.
    let id = h.ok(&["create", "busybox", "true"]).trim().to_string();
    let fill = if id.as_bytes()[6] == b'0' { "1" } else { "0" };
    let twin = format!("{}{}", &id[..6], fill.repeat(58));
    let dir = h.root.join("containers");
    let mut rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&id).join("container.json")).unwrap())
            .unwrap();
    rec["id"] = twin.clone().into();
    rec["names"] = serde_json::json!(["twin"]);
    std::fs::create_dir_all(dir.join(&twin)).unwrap();
    std::fs::write(dir.join(&twin).join("container.json"), rec.to_string()).unwrap();
    let err = h.fails(&["inspect", "--type", "container", &id[..6]]);
    assert!(err.contains("is ambiguous"), "{err}");
    assert_eq!(h.inspect(&id[..7])["Id"], id.as_str());
    h.ok(&["rm", "twin"]);

    let id = h.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "100"]);
    let err = h.fails(&["rm", "busy"]);
    assert!(
        err.contains("is running: stop it first, or use rm -f"),
        "{err}"
    );
    h.ok(&["rm", "-f", &id.trim()[..10]]);
    let err = h.fails(&["inspect", "busy"]);
    assert!(err.contains("no such container"), "{err}");
}
