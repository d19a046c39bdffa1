//! `run` flags, each read back from inside the container: environment,
//! volumes, tmpfs, user, workdir, entrypoint, hostname, resources (from
//! the container's cgroup files), capabilities, seccomp, read-only root,
//! network.

mod common;

use common::Hullctl;

/// `run --rm FLAGS busybox sh -c SCRIPT`'s stdout.
fn sh(h: &Hullctl, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    h.ok(&args)
}

/// A field of /proc/self/status inside the container.
fn status_field(h: &Hullctl, flags: &[&str], field: &str) -> String {
    sh(h, flags, &format!("grep '^{field}:' /proc/self/status"))
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn environment_and_process_overrides() {
    let Some(h) = common::setup() else { return };
    let env_file = h.dir.path().join("env");
    std::fs::write(&env_file, "# a comment\nC=from-file\n\nA=overridden\n").unwrap();
    let out = h
        .command(&[
            "run",
            "--rm",
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            "A=1",
            "-e",
            "FROM_HOST",
            "busybox",
            "sh",
            "-c",
            "echo $A $C $FROM_HOST $HOSTNAME",
        ])
        .env("FROM_HOST", "hostval")
        .output()
        .unwrap();
    assert!(out.status.success());
    let words: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(&words[..3], ["1", "from-file", "hostval"]);
    assert_eq!(words[3].len(), 12, "HOSTNAME is the short id: {words:?}");

    assert_eq!(
        sh(&h, &["-u", "app"], "id -u; id -g; id -G; echo $HOME"),
        "1000\n1000\n1000 2000\n/home/app\n"
    );
    assert_eq!(sh(&h, &["-u", "1234:5678"], "id -u; id -g"), "1234\n5678\n");
    let err = h.fails(&["run", "--rm", "-u", "nobody-here", "busybox", "true"]);
    assert!(err.contains("unable to find user nobody-here"), "{err}");
    assert_eq!(sh(&h, &["-w", "/tmp"], "pwd"), "/tmp\n");
    assert_eq!(sh(&h, &["--hostname", "box"], "hostname"), "box\n");
    assert_eq!(
        h.ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/echo",
            "busybox",
            "a",
            "b"
        ]),
        "a b\n"
    );
    assert_eq!(
        h.ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "",
            "busybox",
            "echo",
            "cleared"
        ]),
        "cleared\n"
    );
}

#[test]
fn volumes_tmpfs_and_read_only_root() {
    let Some(h) = common::setup() else { return };
    let data = h.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("in"), "from host\n").unwrap();
    let rw = format!("{}:/data", data.display());
    let ro = format!("{}:/ro:ro", data.display());
    let out = sh(
        &h,
        &["-v", &rw, "-v", &ro],
        "cat /data/in; echo from container > /data/out; \
         touch /ro/nope 2>/dev/null || echo ro-refused",
    );
    assert_eq!(out, "from host\nro-refused\n");
    assert_eq!(
        std::fs::read_to_string(data.join("out")).unwrap(),
        "from container\n"
    );
    assert!(!data.join("nope").exists());
    let err = h.fails(&["run", "--rm", "-v", "relative:/x", "busybox", "true"]);
    assert!(err.contains("must be absolute"), "{err}");

    let out = sh(
        &h,
        &["--read-only", "--tmpfs", "/scratch:size=1m"],
        "touch /x 2>/dev/null || echo root-ro; touch /scratch/ok && echo scratch-rw; \
         grep ' /scratch ' /proc/mounts | cut -d' ' -f3",
    );
    assert_eq!(out, "root-ro\nscratch-rw\ntmpfs\n");
    // A flag's mount replaces a default one at the same place.
    let out = sh(
        &h,
        &["--tmpfs", "/dev/shm:size=1m"],
        "grep ' /dev/shm ' /proc/mounts",
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("size=1024k"), "{out}");
}

#[test]
fn resource_flags_land_in_the_cgroup() {
    let Some(h) = common::setup() else { return };
    let out = sh(
        &h,
        &["--memory", "64m", "--pids-limit", "42", "--cpus", "1.5"],
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
         /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us",
    );
    assert_eq!(out, format!("{}\n42\n150000\n100000\n", 64 << 20));
    // Forks stop at the limit.
    let out = sh(
        &h,
        &["--pids-limit", "5"],
        "sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done' 2>/dev/null || echo fork-refused",
    );
    assert_eq!(out, "fork-refused\n");
    let err = h.fails(&["run", "--rm", "--memory", "lots", "busybox", "true"]);
    assert!(err.contains("invalid size"), "{err}");
}

#[test]
fn capabilities_seccomp_and_privileges() {
    let Some(h) = common::setup() else { return };
    // Podman's 11: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
    // SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP.
    assert_eq!(status_field(&h, &[], "CapBnd"), "00000000800405fb");
    assert_eq!(status_field(&h, &[], "CapEff"), "00000000800405fb");
    let with = status_field(
        &h,
        &["--cap-add", "NET_ADMIN", "--cap-drop", "chown"],
        "CapBnd",
    );
    assert_eq!(with, format!("{:016x}", 0x8004_05fbu64 - 1 + (1 << 12)));
    assert_eq!(
        status_field(&h, &["--cap-drop", "ALL"], "CapBnd"),
        "0000000000000000"
    );
    let out = sh(
        &h,
        &["--cap-drop", "CHOWN"],
        "chown 1 /tmp 2>/dev/null || echo refused",
    );
    assert_eq!(out, "refused\n");

    assert_eq!(status_field(&h, &[], "Seccomp"), "2");
    assert_eq!(status_field(&h, &[], "NoNewPrivs"), "0");
    let unconfined = ["--security-opt", "seccomp=unconfined"];
    assert_eq!(status_field(&h, &unconfined, "Seccomp"), "0");
    let nnp = ["--security-opt", "no-new-privileges"];
    assert_eq!(status_field(&h, &nnp, "NoNewPrivs"), "1");

    let profile = h.dir.path().join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = sh(
        &h,
        &["--security-opt", &opt],
        "mkdir /tmp/d 2>&1 || echo refused",
    );
    assert!(
        out.contains("Permission denied") && out.contains("refused"),
        "{out}"
    );

    let privileged = ["--privileged"];
    assert_eq!(status_field(&h, &privileged, "Seccomp"), "0");
    let bnd = u64::from_str_radix(&status_field(&h, &privileged, "CapBnd"), 16).unwrap();
    assert!(bnd & (1 << 21) != 0, "CAP_SYS_ADMIN in {bnd:x}");
}

#[test]
fn network_none_or_host() {
    let Some(h) = common::setup() else { return };
    assert_eq!(sh(&h, &[], "ls /sys/class/net"), "lo\n");
    let mut host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    let inside = sh(&h, &["--network", "host"], "ls /sys/class/net");
    assert_eq!(inside.split_whitespace().collect::<Vec<_>>(), host);
}
