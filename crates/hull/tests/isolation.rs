//! What a container sees of the system: root filesystem, masked and
//! read-only paths, mounts, namespaces, devices, sysctls and cgroups.

mod common;

use std::fs;

use common::*;

#[test]
fn readonly_rootfs() {
    let t = Ctx::new("readonly_rootfs");
    let mut b = t.bundle();
    let out = run_sh(
        &t,
        &mut b,
        "touch /newfile 2>&1; echo rc=$?; grep ' / ' /proc/mounts",
    );
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!out.contains("rc=0"), "{out}");
    let root_line = out
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/"))
        .expect("a / mount");
    let opts = root_line.split(' ').nth(3).unwrap();
    assert!(opts.split(',').any(|o| o == "ro"), "{root_line}");
    assert!(!rootfs().join("newfile").exists());
}

#[test]
fn writable_rootfs() {
    let t = Ctx::new("writable_rootfs");
    let mut b = t.bundle();
    b.writable_rootfs();
    let out = run_sh(&t, &mut b, "echo written > /newfile && cat /newfile");
    assert_eq!(out, "written\n");
    assert_eq!(read(b.dir.join("rootfs/newfile")), "written\n");
}

#[test]
fn masked_paths() {
    let t = Ctx::new("masked_paths");
    let mut b = t.bundle();
    let masked: Vec<String> = b
        .get("/linux/maskedPaths")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    // Files are masked with /dev/null, directories with an empty tmpfs.
    // Paths the kernel does not provide are skipped.
    let script = format!(
        "for p in {}; do if [ -d $p ]; then echo $p dir $(ls -A $p | wc -l); \
         elif [ -e $p ]; then echo $p file $(stat -c %t:%T $p) $(wc -c < $p); fi; done",
        masked.join(" ")
    );
    let out = run_sh(&t, &mut b, &script);
    let (mut files, mut dirs) = (0, 0);
    for line in out.lines() {
        let f: Vec<_> = line.split(' ').collect();
        match f[1] {
            "dir" => {
                dirs += 1;
                assert_eq!(f[2], "0", "{line}");
            }
            _ => {
                files += 1;
                assert_eq!(&f[2..], ["1:3", "0"], "{line}");
            }
        }
    }
    assert!(files > 0 && dirs > 0, "nothing was checked: {out}");
}

#[test]
fn readonly_paths() {
    let t = Ctx::new("readonly_paths");
    let mut b = t.bundle();
    let paths: Vec<String> = b
        .get("/linux/readonlyPaths")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    // Paths the kernel does not provide are skipped.
    let script = format!(
        "echo x 2>&1 > /proc/sys/kernel/domainname; echo rc=$?; \
         for p in {}; do [ -e $p ] && echo \"$p $(grep \" $p \" /proc/mounts | tail -n 1)\"; done; true",
        paths.join(" ")
    );
    let out = run_sh(&t, &mut b, &script);
    let mut lines = out.lines();
    assert!(
        lines.next().unwrap().contains("Read-only file system"),
        "{out}"
    );
    assert_eq!(lines.next(), Some("rc=1"), "{out}");
    let mut checked = vec![];
    for line in lines {
        let f: Vec<_> = line.split(' ').collect();
        assert!(
            f.len() > 4 && f[0] == f[2],
            "{} is not a mount point: {out}",
            f[0]
        );
        assert!(f[4].split(',').any(|o| o == "ro"), "{line}");
        checked.push(f[0]);
    }
    assert!(checked.contains(&"/proc/sys"), "{out}");
}

#[test]
fn tmpfs_mount_with_options() {
    let t = Ctx::new("tmpfs_mount");
    let mut b = t.bundle();
    b.mount(
        "/mnt/a",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "size=1m", "mode=700"],
    );
    let out = run_sh(
        &t,
        &mut b,
        "grep ' /mnt/a ' /proc/mounts; echo ok > /mnt/a/f && cat /mnt/a/f",
    );
    let mut lines = out.lines();
    let fields: Vec<_> = lines.next().unwrap().split(' ').collect();
    assert_eq!(fields[2], "tmpfs", "{out}");
    let opts: Vec<_> = fields[3].split(',').collect();
    for want in ["rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=700"] {
        assert!(opts.contains(&want), "{want} missing: {out}");
    }
    assert_eq!(lines.next(), Some("ok"));
}

#[test]
fn relative_mount_destination_is_relative_to_root() {
    // config.md: a relative destination MUST be interpreted as relative to "/".
    let t = Ctx::new("relative_mount_dest");
    let mut b = t.bundle();
    b.mount("mnt/a", "tmpfs", "tmpfs", &[]);
    let out = run_sh(&t, &mut b, "grep ' /mnt/a ' /proc/mounts");
    assert!(out.contains(" /mnt/a tmpfs "), "{out}");
}

#[test]
fn bind_mount_host_dir() {
    let t = Ctx::new("bind_mount");
    let share = t.subdir("share");
    fs::write(share.join("in"), "from the host\n").unwrap();
    let mut b = t.bundle();
    b.mount("/mnt/b", "bind", share.to_str().unwrap(), &["rbind"]);
    let out = run_sh(
        &t,
        &mut b,
        "cat /mnt/b/in; echo from the container > /mnt/b/out",
    );
    assert_eq!(out, "from the host\n");
    assert_eq!(read(share.join("out")), "from the container\n");
}

#[test]
fn readonly_bind_mount() {
    let t = Ctx::new("ro_bind_mount");
    let share = t.subdir("share");
    fs::write(share.join("in"), "readable\n").unwrap();
    let mut b = t.bundle();
    b.mount("/mnt/b", "bind", share.to_str().unwrap(), &["rbind", "ro"]);
    let out = run_sh(
        &t,
        &mut b,
        "cat /mnt/b/in; echo x 2>&1 > /mnt/b/out; echo rc=$?",
    );
    assert!(out.starts_with("readable\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!share.join("out").exists());
}

#[test]
fn new_namespaces() {
    let t = Ctx::new("new_namespaces");
    let mut b = t.bundle();
    let kinds = ["pid", "net", "ipc", "uts", "mnt"];
    let script = format!(
        "echo $$; for n in {}; do readlink /proc/self/ns/$n; done",
        kinds.join(" ")
    );
    let out = run_sh(&t, &mut b, &script);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("1"),
        "the container process is not PID 1: {out}"
    );
    for (kind, inside) in kinds.iter().zip(lines) {
        let host = fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert_ne!(
            inside,
            host.to_str().unwrap(),
            "{kind} namespace is the host's"
        );
    }
}

#[test]
fn join_network_namespace_by_path() {
    let t = Ctx::new("join_netns");
    let mut a = t.bundle();
    a.args(&["sleep", "1000"]);
    t.create(&a).ok();
    let a_pid = t.pid(&a.id);
    let a_net = fs::read_link(format!("/proc/{a_pid}/ns/net")).unwrap();
    assert_ne!(a_net, fs::read_link("/proc/self/ns/net").unwrap());

    let mut b = t.bundle();
    b.set(
        "/linux/namespaces/1",
        json!({"type": "network", "path": format!("/proc/{a_pid}/ns/net")}),
    );
    let out = run_sh(
        &t,
        &mut b,
        "readlink /proc/self/ns/net; readlink /proc/self/ns/pid",
    );
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines[0], a_net.to_str().unwrap());
    let a_pidns = fs::read_link(format!("/proc/{a_pid}/ns/pid")).unwrap();
    assert_ne!(
        lines[1],
        a_pidns.to_str().unwrap(),
        "the pid namespace was joined too"
    );

    t.exec(&["delete", "--force", &a.id]).ok();
    t.assert_nothing_left(&a);
}

#[test]
fn default_devices() {
    let t = Ctx::new("default_devices");
    let mut b = t.bundle();
    let out = run_sh(
        &t,
        &mut b,
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; \
         for l in fd stdin stdout stderr; do readlink /dev/$l; done; \
         [ -c /dev/ptmx ] && [ \"$(stat -L -c %d:%i /dev/ptmx)\" = \"$(stat -c %d:%i /dev/pts/ptmx)\" ] && echo ptmx ok; \
         [ -d /dev/pts ] && [ -d /dev/shm ] && echo dirs ok; \
         echo x > /dev/null && head -c 3 /dev/zero | wc -c",
    );
    let want = "/dev/null character special file 1:3\n\
                /dev/zero character special file 1:5\n\
                /dev/full character special file 1:7\n\
                /dev/random character special file 1:8\n\
                /dev/urandom character special file 1:9\n\
                /dev/tty character special file 5:0\n\
                /proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n\
                ptmx ok\ndirs ok\n3\n";
    assert_eq!(out, want);
}

#[test]
fn custom_device() {
    let t = Ctx::new("custom_device");
    let mut b = t.bundle();
    b.push(
        "/linux/devices",
        json!({"path": "/dev/hulltest", "type": "c", "major": 1, "minor": 3,
               "fileMode": 0o666, "uid": 0, "gid": 0}),
    );
    let out = run_sh(
        &t,
        &mut b,
        "stat -c '%F %t:%T %a %u:%g' /dev/hulltest; echo x > /dev/hulltest && echo written",
    );
    assert_eq!(out, "character special file 1:3 666 0:0\nwritten\n");
}

#[test]
fn fifo_and_unbuffered_devices() {
    let t = Ctx::new("fifo_device");
    let mut b = t.bundle();
    b.push(
        "/linux/devices",
        json!({"path": "/dev/hullfifo", "type": "p", "fileMode": 0o600}),
    );
    b.push(
        "/linux/devices",
        json!({"path": "/dev/hullu", "type": "u", "major": 1, "minor": 3, "fileMode": 0o666}),
    );
    let out = run_sh(
        &t,
        &mut b,
        "stat -c '%F %a' /dev/hullfifo; stat -c '%F %t:%T' /dev/hullu",
    );
    assert_eq!(out, "fifo 600\ncharacter special file 1:3\n");
}

/// A device listed in linux.devices is opened only if the devices cgroup
/// rules allow it, as with runc: no rule is added for it.
#[test]
fn listed_device_follows_the_cgroup_rules() {
    let t = Ctx::new("listed_device_rules");
    let mut b = t.bundle();
    b.push(
        "/linux/devices",
        json!({"path": "/dev/hullloop", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666}),
    );
    let out = run_sh(
        &t,
        &mut b,
        "cat /dev/hullloop 2>&1 | grep -c 'Operation not permitted'",
    );
    assert_eq!(out.trim(), "1", "{out}");
}

/// config-linux.md: the device rules apply in their order, so a deny after
/// a wider allow takes that device out of it (on cgroup v1 too).
#[test]
fn device_deny_inside_allow() {
    // runc 1.1 refuses the config on cgroup v1 ("cannot punch hole").
    if is_runc() && !cgroup2() {
        return;
    }
    let t = Ctx::new("device_deny_inside_allow");
    let mut b = t.bundle();
    for (path, minor) in [("/dev/hullloop", 237), ("/dev/hullfuse", 229)] {
        b.push(
            "/linux/devices",
            json!({"path": path, "type": "c", "major": 10, "minor": minor, "fileMode": 0o666}),
        );
    }
    b.set(
        "/linux/resources/devices",
        json!([{"allow": false, "access": "rwm"},
               {"allow": true, "type": "c", "major": 10, "access": "rwm"},
               {"allow": false, "type": "c", "major": 10, "minor": 237, "access": "rwm"}]),
    );
    let out = run_sh(
        &t,
        &mut b,
        ": < /dev/hullfuse && echo fuse-ok; (: < /dev/hullloop) 2>&1 | grep -c 'not permitted'",
    );
    assert_eq!(out, "fuse-ok\n1\n");
}

/// An existing node of the requested device is made again with the
/// requested mode and owner.
#[test]
fn existing_device_node_is_replaced() {
    // runc 1.1 keeps the existing node, mode and owner unchanged.
    if is_runc() {
        return;
    }
    let t = Ctx::new("existing_device");
    let mut b = t.bundle();
    b.writable_rootfs();
    let node = b.rootfs_path().join("mnt/hullnull");
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    b.push(
        "/linux/devices",
        json!({"path": "/mnt/hullnull", "type": "c", "major": 1, "minor": 3,
               "fileMode": 0o640, "uid": 1000, "gid": 1000}),
    );
    let out = run_sh(&t, &mut b, "stat -c '%a %u:%g' /mnt/hullnull");
    assert_eq!(out, "640 1000:1000\n");
}

#[test]
fn sysctl_in_new_netns() {
    let t = Ctx::new("sysctl");
    let host_before = read("/proc/sys/net/ipv4/ip_forward");
    let mut b = t.bundle();
    let want = if host_before.trim() == "1" { "0" } else { "1" };
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": want}));
    let out = run_sh(&t, &mut b, "cat /proc/sys/net/ipv4/ip_forward");
    assert_eq!(out.trim(), want);
    assert_eq!(
        read("/proc/sys/net/ipv4/ip_forward"),
        host_before,
        "the host's sysctl changed"
    );
}

#[test]
fn cgroup_limits() {
    let t = Ctx::new("cgroup_limits");
    let ctl = t.subdir("ctl");
    let mut b = t.bundle();
    b.set("/linux/resources/memory", json!({"limit": 64 << 20}));
    b.set("/linux/resources/pids", json!({"limit": 50}));
    b.mount("/mnt/ctl", "bind", ctl.to_str().unwrap(), &["rbind"]);
    // With cgroup v1 the container's own cgroups are mounted at
    // /sys/fs/cgroup/<controller>. With v2 the mount shows the hierarchy
    // from the container's cgroup namespace root, which (without a cgroup
    // namespace) is the host's root: find the container's cgroup in it.
    let read_limits = if cgroup2() {
        "p=$(sed -n 's/^0:://p' /proc/self/cgroup); cat /sys/fs/cgroup$p/memory.max /sys/fs/cgroup$p/pids.max"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    };
    b.sh(&format!(
        "{{ {read_limits}; }} > /mnt/ctl/out.tmp 2>&1; mv /mnt/ctl/out.tmp /mnt/ctl/out; exec sleep 1000"
    ));
    t.create(&b).ok();
    let cg = b.cgroups_path();
    let mem = cgroup_file(&cg, "memory", "memory.limit_in_bytes", "memory.max");
    let pids = cgroup_file(&cg, "pids", "pids.max", "pids.max");
    assert_eq!(read(&mem).trim(), "67108864", "{}", mem.display());
    assert_eq!(read(&pids).trim(), "50", "{}", pids.display());
    // The container process is in that cgroup.
    let pid = t.pid(&b.id);
    let procs = read(mem.with_file_name("cgroup.procs"));
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "{pid} not in {procs:?}"
    );

    t.exec(&["start", &b.id]).ok();
    let out = wait_for_file(&ctl.join("out"), |s| !s.is_empty());
    assert_eq!(out, "67108864\n50\n", "limits seen inside the container");
    t.exec(&["delete", "--force", &b.id]).ok();
    t.assert_nothing_left(&b);
}

#[test]
fn tmpfs_copy_up_keeps_the_rootfs_content() {
    let t = Ctx::new("tmpcopyup");
    let mut b = t.bundle();
    b.mount(
        "/etc",
        "tmpfs",
        "tmpfs",
        &["rw", "nosuid", "nodev", "tmpcopyup"],
    );
    let out = run_sh(
        &t,
        &mut b,
        "grep -c '^root:' /etc/passwd; echo changed >> /etc/passwd && echo writable; grep ' /etc ' /proc/mounts | cut -d' ' -f3",
    );
    assert_eq!(out, "1\nwritable\ntmpfs\n");
    assert!(!read(rootfs().join("etc/passwd")).contains("changed"));
}

/// The devices cgroup (v1 lists, v2 eBPF filter) refuses a device the
/// rules do not allow, even when its node is bind-mounted in.
#[test]
fn device_cgroup_denies_unlisted_devices() {
    let t = Ctx::new("devcg");
    let mut b = t.bundle();
    b.mount("/dev/hostkmsg", "bind", "/dev/kmsg", &["bind"]);
    let out = run_sh(&t, &mut b, "head -c1 /dev/hostkmsg >/dev/null 2>/dev/shm/e; cat /dev/shm/e; echo x > /dev/null && echo null-ok");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("null-ok"), "{out}");
}

/// linux.rootfsPropagation is the propagation of the container's root
/// mount. The rootfs sits on a shared mount of its own, so that a slave
/// root has a master and mounts made for the container could leak back.
#[test]
fn rootfs_propagation() {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    if is_runc() {
        // runc 1.1 leaves the root mount private whatever is asked.
        return;
    }
    let t = Ctx::new("rootfs_propagation");
    for (mode, want) in [
        ("shared", "shared:"),
        ("slave", "master:"),
        ("private", ""),
        ("unbindable", "unbindable"),
    ] {
        let mut b = t.bundle();
        let dir = b.dir.join("rootfs");
        fs::create_dir_all(&dir).unwrap();
        mount(
            Some("tmpfs"),
            &dir,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        mount(
            None::<&str>,
            &dir,
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .unwrap();
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(rootfs().join("."))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        b.set("/root", json!({"path": "rootfs", "readonly": false}));
        b.set("/linux/rootfsPropagation", json!(mode));
        b.sh("grep ' / / ' /proc/self/mountinfo");
        let o = t.run(&b);
        let host_mounts = read("/proc/self/mountinfo")
            .lines()
            .filter(|l| l.contains(dir.to_str().unwrap()))
            .count();
        let _ = umount2(&dir, MntFlags::MNT_DETACH);
        o.ok();
        let line = o.stdout.trim();
        let fields: Vec<&str> = line
            .split(" - ")
            .next()
            .unwrap()
            .split(' ')
            .skip(6)
            .collect();
        match want {
            "" => assert!(fields.is_empty(), "{mode}: {line}"),
            w => assert!(fields.iter().any(|f| f.starts_with(w)), "{mode}: {line}"),
        }
        assert_eq!(host_mounts, 1, "{mode}: container mounts reached the host");
    }
}

/// A veth pair on the host (this kernel may have no dummy driver), the
/// first end with a permanent global address; removed on drop if it is
/// still there.
struct Dummy(String);

impl Dummy {
    /// None (the test is skipped, with the reason printed) when this
    /// kernel cannot make veth devices.
    fn new(name: &str, addr: &str) -> Option<Dummy> {
        let ip = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .output()
                .unwrap()
        };
        let _ = ip(&["link", "del", name]);
        let peer = format!("{name}p");
        let o = ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
        if !o.status.success() {
            eprintln!(
                "skipped: no veth here: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        let d = Dummy(name.into());
        let o = ip(&["addr", "add", addr, "brd", "+", "dev", name]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Some(d)
    }

    fn on_host(&self) -> bool {
        std::process::Command::new("ip")
            .args(["link", "show", &self.0])
            .output()
            .unwrap()
            .status
            .success()
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .output();
    }
}

#[test]
fn net_devices_move_with_their_addresses_and_come_up() {
    if is_runc() {
        return; // runc 1.1 predates linux.netDevices
    }
    let t = Ctx::new("netdev");
    let Some(dummy) = Dummy::new("hulltd0", "10.213.7.1/24") else {
        return;
    };
    let Some(templated) = Dummy::new("hulltd2", "10.213.9.1/24") else {
        return;
    };
    let mut b = t.bundle();
    b.set(
        "/linux/netDevices",
        json!({"hulltd0": {"name": "ctr7"}, "hulltd2": {"name": "tpl%d"}}),
    );
    let out = run_sh(
        &t,
        &mut b,
        "ip addr show ctr7; ip link show hulltd0 2>&1 || echo nohostname; ip addr show tpl0",
    );
    // A %d template: the kernel picks the name, the address follows.
    assert!(
        out.contains("tpl0") && out.contains("10.213.9.1/24"),
        "{out}"
    );
    assert!(!templated.on_host());
    assert!(out.contains("10.213.7.1/24"), "address kept: {out}");
    assert!(out.contains("brd 10.213.7.255"), "broadcast kept: {out}");
    assert!(out.contains(",UP") || out.contains("<UP"), "set up: {out}");
    assert!(out.contains("nohostname"), "renamed: {out}");
    // A virtual device dies with the namespace, its peer with it (the
    // spec: the runtime does not move it back).
    assert!(!dummy.on_host(), "the device came back to the host");
}

#[test]
fn net_device_errors_name_the_device_and_leave_nothing() {
    if is_runc() {
        return; // runc 1.1 predates linux.netDevices
    }
    let t = Ctx::new("netdev_err");
    let mut b = t.bundle();
    b.set("/linux/netDevices", json!({"hull-missing0": {}}));
    b.args(&["true"]);
    let o = t.run(&b);
    o.fails();
    assert!(o.stderr.contains("hull-missing0"), "{}", o.stderr);
    t.assert_nothing_left(&b);

    // A name the container has already (its loopback).
    let Some(dummy) = Dummy::new("hulltd1", "10.213.8.1/24") else {
        return;
    };
    let mut b = t.bundle();
    b.set("/linux/netDevices", json!({"hulltd1": {"name": "lo"}}));
    b.args(&["true"]);
    let o = t.run(&b);
    o.fails();
    assert!(o.stderr.contains("exists in the container"), "{}", o.stderr);
    t.assert_nothing_left(&b);
    assert!(
        dummy.on_host(),
        "a device that could not move stays on the host"
    );

    // One good device and one missing (sorted after it): all are checked
    // before anything moves.
    let mut b = t.bundle();
    b.set(
        "/linux/netDevices",
        json!({"hulltd1": {"name": "ctr1"}, "hullzzz9": {}}),
    );
    b.args(&["true"]);
    let o = t.run(&b);
    o.fails();
    assert!(o.stderr.contains("hullzzz9"), "{}", o.stderr);
    t.assert_nothing_left(&b);
    assert!(dummy.on_host(), "the good device did not move");
}

#[test]
fn memory_policy_is_the_process_policy() {
    if is_runc() {
        return; // runc 1.1 predates linux.memoryPolicy
    }
    for (policy, want) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            "interleave:0",
        ),
        (json!({"mode": "MPOL_PREFERRED", "nodes": "0"}), "prefer:0"),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "bind=static:0",
        ),
    ] {
        let t = Ctx::new("mempolicy");
        let mut b = t.bundle();
        b.set("/linux/memoryPolicy", policy.clone());
        // numa_maps shows the policy in force for each mapping.
        let out = run_sh(&t, &mut b, "head -1 /proc/self/numa_maps");
        let got = out.split_whitespace().nth(1).unwrap_or_default();
        assert_eq!(got, want, "{policy}: {out}");
    }
    // A node this host does not have: the kernel refuses, create fails.
    let t = Ctx::new("mempolicy_bad");
    let mut b = t.bundle();
    b.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_BIND", "nodes": "1000"}),
    );
    b.args(&["true"]);
    let o = t.run(&b);
    o.fails();
    assert!(o.stderr.contains("linux.memoryPolicy"), "{}", o.stderr);
    t.assert_nothing_left(&b);
}
