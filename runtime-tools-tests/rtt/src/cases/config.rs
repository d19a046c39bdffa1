//! Config fields: the probe runs as the container process and checks that
//! what it sees matches the config it was started with.

use serde_json::{json, Value};

use super::{case, Case};
use crate::host;
use crate::suite::{skip, Bundle, Ctx, R};

/// A case that edits the default bundle, then runs the probe with `groups`.
fn probe(
    name: &'static str,
    groups: &'static [&'static str],
    edit: impl Fn(&mut Ctx, &mut Bundle) -> R + 'static,
) -> Case {
    case(name, move |ctx| {
        let mut b = ctx.bundle(groups);
        edit(ctx, &mut b)?;
        ctx.probe(&b)
    })
}

/// A probe case whose edit is a plain change of the config.
fn probe_cfg(
    name: &'static str,
    groups: &'static [&'static str],
    edit: impl Fn(&mut Value) + 'static,
) -> Case {
    probe(name, groups, move |_, b| {
        edit(&mut b.config);
        Ok(())
    })
}

fn add_ns(c: &mut Value, ns: Value) {
    c["linux"]["namespaces"].as_array_mut().unwrap().push(ns);
}

fn add_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

fn userns_maps(c: &mut Value) {
    add_ns(c, json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        probe_cfg(
            "config.md root: readonly true, the root filesystem MUST be read-only",
            &["root"],
            |c| c["root"]["readonly"] = json!(true),
        ),
        probe_cfg(
            "config.md root: readonly false leaves the root filesystem writable",
            &["root"],
            |_| {},
        ),
        probe_cfg(
            "config.md mounts: the runtime MUST mount entries in the listed order",
            &["mounts"],
            |_| {},
        ),
        probe_cfg(
            "config.md mounts: ro nosuid nodev noexec",
            &["mounts"],
            |c| {
                add_mount(
                    c,
                    json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
                "options": ["ro", "nosuid", "nodev", "noexec"]}),
                )
            },
        ),
        probe_cfg("config.md mounts: rw suid dev exec", &["mounts"], |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
                "options": ["rw", "suid", "dev", "exec"]}),
            )
        }),
        probe_cfg("config.md mounts: noatime nodiratime", &["mounts"], |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
                "options": ["noatime", "nodiratime"]}),
            )
        }),
        probe_cfg("config.md mounts: strictatime", &["mounts"], |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
                "options": ["strictatime"]}),
            )
        }),
        probe_cfg("config.md mounts: relatime", &["mounts"], |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
                "options": ["relatime"]}),
            )
        }),
        probe_cfg(
            "config.md mounts: filesystem data options (mode, size, uid, gid)",
            &["mounts"],
            |c| {
                add_mount(
                    c,
                    json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
                "options": ["mode=0700", "size=1024k", "uid=1000", "gid=1000"]}),
                )
            },
        ),
        probe_cfg(
            "config.md mounts: a destination that does not exist is created",
            &["mounts"],
            |c| {
                add_mount(
                    c,
                    json!({"destination": "/mnt/new/deeper", "type": "tmpfs", "source": "tmpfs"}),
                )
            },
        ),
        probe_cfg(
            "config.md mounts: a relative destination MUST be interpreted as relative to /",
            &["mounts"],
            |c| {
                add_mount(
                    c,
                    json!({"destination": "mnt/a", "type": "tmpfs", "source": "tmpfs"}),
                )
            },
        ),
        probe(
            "config.md mounts: bind of a host directory",
            &["mounts"],
            |ctx, b| {
                let src = ctx.dir.join("bind-src");
                std::fs::create_dir_all(&src).unwrap();
                std::fs::write(src.join("file"), "x").unwrap();
                add_mount(
                    &mut b.config,
                    json!({"destination": "/mnt/a", "type": "bind",
                "source": src, "options": ["bind", "ro"]}),
                );
                Ok(())
            },
        ),
        probe(
            "config.md mounts: bind of a host file",
            &["mounts"],
            |ctx, b| {
                let src = ctx.dir.join("bind-file");
                std::fs::write(&src, "x").unwrap();
                add_mount(
                    &mut b.config,
                    json!({"destination": "/mnt/file", "type": "none",
                "source": src, "options": ["bind"]}),
                );
                Ok(())
            },
        ),
        probe(
            "config.md mounts: rbind keeps submounts",
            &["mounts"],
            |ctx, b| {
                let src = ctx.dir.join("rbind-src");
                host::shared_mount(ctx, &src.join("sub")).or_else(skip)?;
                add_mount(
                    &mut b.config,
                    json!({"destination": "/mnt/a", "type": "bind",
                "source": src, "options": ["rbind"]}),
                );
                b.config["annotations"]["rtt/mountpoints"] = json!("/mnt/a/sub");
                Ok(())
            },
        ),
    ];
    for prop in [
        "shared",
        "rshared",
        "slave",
        "rslave",
        "private",
        "rprivate",
        "unbindable",
        "runbindable",
    ] {
        v.push(probe(
            Box::leak(format!("config.md mounts: propagation option {prop}").into_boxed_str()),
            &["mounts"],
            move |ctx, b| {
                let src = ctx.dir.join("prop-src");
                host::shared_mount(ctx, &src).or_else(skip)?;
                add_mount(
                    &mut b.config,
                    json!({"destination": "/mnt/a", "type": "bind",
                    "source": src, "options": ["rbind", prop]}),
                );
                Ok(())
            },
        ));
    }
    for prop in ["shared", "slave", "private", "unbindable"] {
        v.push(case(
            Box::leak(format!("config-linux.md rootfsPropagation: {prop}").into_boxed_str()),
            move |ctx| {
                let mut b = ctx.bundle_shared(&["root"])?;
                b.config["linux"]["rootfsPropagation"] = json!(prop);
                ctx.probe(&b)
            },
        ));
    }
    v.extend(namespace_cases());
    v.extend(process_cases());
    v.extend(linux_cases());
    v.extend(device_cases());
    v.extend(cgroup_cases());
    v
}

fn namespace_cases() -> Vec<Case> {
    let mut v = vec![probe_cfg(
        "config-linux.md namespaces: a type not in the array MUST be inherited from the runtime",
        &["namespaces"],
        |_| {},
    )];
    for kind in ["cgroup", "time", "user"] {
        v.push(probe_cfg(
            Box::leak(
                format!("config-linux.md namespaces: no path, the runtime MUST create a new {kind} namespace")
                    .into_boxed_str(),
            ),
            &["namespaces"],
            move |c| {
                if kind == "user" {
                    userns_maps(c);
                } else {
                    add_ns(c, json!({"type": kind}));
                }
            },
        ));
    }
    v.push(probe_cfg(
        "config-linux.md namespaces: pid network ipc uts mount created new",
        &["namespaces"],
        |_| {},
    ));
    for (kind, flag, proc_name) in [
        ("network", "--net", "net"),
        ("ipc", "--ipc", "ipc"),
        ("uts", "--uts", "uts"),
    ] {
        v.push(probe(
            Box::leak(
                format!("config-linux.md namespaces: path, the runtime MUST place the container in the {kind} namespace")
                    .into_boxed_str(),
            ),
            &["namespaces"],
            move |ctx, b| {
                let pid = host::ns_holder(ctx, &[flag]).or_else(skip)?;
                let path = format!("/proc/{pid}/ns/{proc_name}");
                let ino = host::ns_inode(&path).unwrap_or(0);
                b.config["annotations"][format!("rtt/ns/{kind}")] = json!(ino.to_string());
                for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
                    if ns["type"] == kind {
                        ns["path"] = json!(path);
                    }
                }
                if kind == "uts" {
                    b.config.as_object_mut().unwrap().remove("hostname");
                }
                Ok(())
            },
        ));
    }
    v.push(probe_cfg(
        "config-linux.md user namespace mappings: uidMappings and gidMappings applied",
        &["id_mappings", "namespaces"],
        userns_maps,
    ));
    v
}

fn process_cases() -> Vec<Case> {
    vec![
        probe_cfg("config.md hostname: the container's hostname", &["hostname"], |c| {
            c["hostname"] = json!("rtt-host")
        }),
        probe_cfg("config.md domainname: the container's NIS domain name", &["hostname"], |c| {
            c["domainname"] = json!("rtt.example")
        }),
        probe_cfg("config.md rlimits: rlim_cur and rlim_max MUST match the configured value", &["rlimits"], |c| {
            c["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
                {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
                {"type": "RLIMIT_MEMLOCK", "soft": 65536, "hard": 65536},
                {"type": "RLIMIT_STACK", "soft": 8388608, "hard": 16777216}
            ])
        }),
        probe_cfg("config.md capabilities: the five sets as configured", &["capabilities"], |_| {}),
        probe_cfg("config.md capabilities: different bounding, effective, permitted, inheritable, ambient", &["capabilities"], |c| {
            c["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SYS_ADMIN"],
                "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
                "effective": ["CAP_CHOWN", "CAP_KILL"],
                "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
                "ambient": ["CAP_KILL"]
            })
        }),
        probe_cfg("config.md capabilities: a non-root user keeps the ambient set through execve", &["capabilities"], |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            let set = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
            c["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"],
                "permitted": set, "effective": set, "inheritable": set, "ambient": set
            })
        }),
        probe_cfg("config.md capabilities: empty sets leave no capabilities", &["capabilities"], |c| {
            c["process"]["capabilities"] = json!({"bounding": [], "permitted": [], "effective": [],
                "inheritable": [], "ambient": []})
        }),
        probe_cfg("config.md user: uid, gid and additionalGids", &["user"], |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2001, 2002]})
        }),
        probe_cfg("config.md user: umask", &["user"], |c| {
            c["process"]["user"]["umask"] = json!(0o077)
        }),
        probe_cfg("config.md process: cwd is the working directory", &["cwd"], |c| {
            c["process"]["cwd"] = json!("/tmp")
        }),
        probe_cfg("config.md process: cwd that does not exist is created", &["cwd"], |c| {
            c["process"]["cwd"] = json!("/rtt/new/dir")
        }),
        probe_cfg("config.md process: env is the environment of the process", &["env"], |c| {
            c["process"]["env"] = json!(["PATH=/bin", "RTT_A=1", "RTT_B=with spaces", "RTT_EMPTY="])
        }),
        probe_cfg("config.md noNewPrivileges: true sets no_new_privs", &["no_new_privs"], |_| {}),
        probe_cfg("config.md noNewPrivileges: false leaves no_new_privs unset", &["no_new_privs"], |c| {
            c["process"]["noNewPrivileges"] = json!(false)
        }),
        probe_cfg("config.md oomScoreAdj: the runtime MUST set oom_score_adj", &["oom_score_adj"], |c| {
            c["process"]["oomScoreAdj"] = json!(500)
        }),
        probe_cfg("config.md oomScoreAdj: not set, the runtime MUST NOT change oom_score_adj", &["oom_score_adj"], |_| {}),
        probe_cfg("config.md process: consoleSize MUST be ignored if terminal is false", &["terminal"], |c| {
            c["process"]["consoleSize"] = json!({"height": 10, "width": 40})
        }),
        probe_cfg("config.md execCPUAffinity: final is the affinity of the process", &["cpu_affinity"], |c| {
            c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "0"})
        }),
        probe_cfg("config.md scheduler: policy and nice", &["scheduler"], |c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5})
        }),
        probe_cfg("config.md ioPriority: class and priority", &["io_priority"], |c| {
            c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6})
        }),
    ]
}

fn linux_cases() -> Vec<Case> {
    vec![
        probe_cfg("config-linux.md sysctl: net, ipc and mqueue values", &["sysctl"], |c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "2048",
                "kernel.msgmax": "4096", "fs.mqueue.msg_max": "20"})
        }),
        probe_cfg("config-linux.md maskedPaths: files and directories masked", &["masked_paths"], |c| {
            c["linux"]["maskedPaths"].as_array_mut().unwrap().extend([json!("/rtt/masked-file"), json!("/rtt/masked-dir")]);
        }),
        probe_cfg("config-linux.md readonlyPaths: made read-only", &["readonly_paths"], |c| {
            c["linux"]["readonlyPaths"].as_array_mut().unwrap().extend([json!("/tmp"), json!("/rtt/config.json")]);
        }),
        probe_cfg("config-linux.md seccomp: the process runs with the filter", &["seccomp"], |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})
        }),
        probe_cfg("config-linux.md seccomp: no filter when linux.seccomp is absent", &["seccomp"], |_| {}),
        case("config-linux.md seccomp: SCMP_ACT_NOTIFY sends the container process state to listenerPath", |ctx| {
            let mut b = ctx.bundle(&["seccomp"]);
            let sock = ctx.dir.join("seccomp.sock");
            let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
            let rx = host::accept_in_thread(listener);
            b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock, "listenerMetadata": "rtt",
                "syscalls": [{"names": ["mknodat"], "action": "SCMP_ACT_NOTIFY"}]});
            let out = ctx.run(&b);
            crate::suite::tap_result(&out)?;
            let (data, fd) = rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .or_else(|_| crate::suite::fail("nothing connected to listenerPath"))?
                .or_else(crate::suite::fail)?;
            let state: Value = serde_json::from_slice(&data).unwrap_or(Value::Null);
            crate::suite::check(fd.is_some() && state["metadata"] == "rtt" && state["fds"].is_array(), || {
                format!("seccomp state {state}, fd {fd:?}")
            })
        }),
        probe("config-linux.md netDevices: moved into the container, renamed, up, addresses kept", &["net_devices"], |ctx, b| {
            host::veth(ctx, "rttnd0", "10.213.7.1/24").or_else(skip)?;
            b.config["linux"]["netDevices"] = json!({"rttnd0": {"name": "rtteth1"}});
            b.config["annotations"]["rtt/netdev-addr/rttnd0"] = json!("10.213.7.1");
            Ok(())
        }),
        probe_cfg("config-linux.md personality: domain LINUX32", &["personality"], |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX32"})
        }),
        probe_cfg("config-linux.md memoryPolicy: mode applied", &["memory_policy"], |c| {
            c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_PREFERRED", "nodes": "0"})
        }),
        probe_cfg("config-linux.md timeOffsets: a time namespace with offsets", &["namespaces", "time_offsets"], |c| {
            add_ns(c, json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}});
        }),
    ]
}

fn device_cases() -> Vec<Case> {
    vec![
        probe_cfg("config-linux.md devices: the runtime MUST also supply the default devices", &["default_devices"], |_| {}),
        probe_cfg("runtime-linux.md: runtimes MUST create the /dev symlinks", &["default_symlinks"], |_| {}),
        probe_cfg("config-linux.md devices: type c with fileMode, uid, gid", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                "fileMode": 0o640, "uid": 1000, "gid": 2001}])
        }),
        probe_cfg("config-linux.md devices: type b", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/rtt-loop", "type": "b", "major": 7, "minor": 0,
                "fileMode": 0o660}])
        }),
        probe_cfg("config-linux.md devices: type u (unbuffered character device)", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/rtt-tun", "type": "u", "major": 10, "minor": 200,
                "fileMode": 0o666}])
        }),
        probe_cfg("config-linux.md devices: type p (FIFO)", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/rtt-fifo", "type": "p", "fileMode": 0o600}])
        }),
        probe_cfg("config-linux.md devices: the path MAY be anywhere in the container filesystem", &["devices"], |c| {
            c["linux"]["devices"] = json!([{"path": "/rtt/dev/null2", "type": "c", "major": 1, "minor": 3,
                "fileMode": 0o666}])
        }),
        probe("config-linux.md devices: an existing device file at path is replaced by the requested one", &["devices"], |_, b| {
            let p = b.rootfs().join("rtt/fuse");
            nix::sys::stat::mknod(&p, nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o600), nix::sys::stat::makedev(10, 229)).unwrap();
            b.config["linux"]["devices"] = json!([{"path": "/rtt/fuse", "type": "c", "major": 10, "minor": 229,
                "fileMode": 0o666, "uid": 1000, "gid": 1000}]);
            Ok(())
        }),
        probe_cfg("config-linux.md devices cgroup: allow inside deny, entries applied in the listed order", &["device_access"], |c| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
                {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666}]);
            c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]);
        }),
        probe_cfg("config-linux.md devices cgroup: deny inside allow, entries applied in the listed order", &["device_access"], |c| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
                {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666}]);
            // 10:237 is in no runtime's default allowlist.
            c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "access": "rwm"},
                {"allow": false, "type": "c", "major": 10, "minor": 237, "access": "rwm"}]);
        }),
    ]
}

fn cgroup_cases() -> Vec<Case> {
    let mut v = vec![
        probe_cfg(
            "config-linux.md memory: limit, reservation, swap, swappiness",
            &["cgroups"],
            |c| {
                c["linux"]["resources"]["memory"] = json!({"limit": 268435456, "reservation": 134217728,
                "swap": 536870912, "swappiness": 10});
            },
        ),
        probe_cfg(
            "config-linux.md memory: disableOOMKiller",
            &["cgroups"],
            |c| {
                c["linux"]["resources"]["memory"] =
                    json!({"limit": 268435456, "disableOOMKiller": true});
            },
        ),
        probe_cfg(
            "config-linux.md cpu: shares, quota, period",
            &["cgroups"],
            |c| {
                c["linux"]["resources"]["cpu"] =
                    json!({"shares": 512, "quota": 50000, "period": 100000});
            },
        ),
        probe_cfg("config-linux.md cpu: cpus and mems", &["cgroups"], |c| {
            c["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"});
        }),
        probe_cfg("config-linux.md cpu: burst and idle", &["cgroups"], |c| {
            c["linux"]["resources"]["cpu"] =
                json!({"quota": 50000, "period": 100000, "burst": 10000, "idle": 0});
        }),
        probe_cfg("config-linux.md memory: kernelTCP", &["cgroups"], |c| {
            c["linux"]["resources"]["memory"] = json!({"kernelTCP": 67108864});
        }),
        probe_cfg("config-linux.md pids: limit", &["cgroups"], |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 100});
        }),
    ];
    v.push(probe(
        "config-linux.md blockIO: weight",
        &["cgroups"],
        |_, b| {
            let has = |f: &str| {
                std::path::Path::new("/sys/fs/cgroup/blkio")
                    .join(f)
                    .exists()
            };
            if !has("blkio.weight") && !has("blkio.bfq.weight") {
                return skip("the host has no cgroup v1 blkio weight file (no CFQ/BFQ scheduler)");
            }
            b.config["linux"]["resources"]["blockIO"] = json!({"weight": 300});
            Ok(())
        },
    ));
    v.push(probe(
        "config-linux.md blockIO: throttle devices",
        &["cgroups"],
        |_, b| {
            let Some((major, minor)) = host::block_device() else {
                return skip("no block device on the host");
            };
            b.config["linux"]["resources"]["blockIO"] = json!({
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 300}]});
            Ok(())
        },
    ));
    v
}
