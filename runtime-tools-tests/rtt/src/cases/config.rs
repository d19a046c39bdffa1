//! Config fields: the probe runs as the container process and checks that
//! what it sees matches the config it was started with. This file: root,
//! mounts, namespaces and process; `linux` has the rest of linux.*.

use serde_json::{json, Value};

use super::{case, Case};
use crate::host;
use crate::suite::{skip, Bundle, Ctx, R};

/// A case that edits the default bundle, then runs the probe with `groups`.
pub(super) fn probe(
    name: impl Into<String>,
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
pub(super) fn probe_cfg(
    name: impl Into<String>,
    groups: &'static [&'static str],
    edit: impl Fn(&mut Value) + 'static,
) -> Case {
    probe(name, groups, move |_, b| {
        edit(&mut b.config);
        Ok(())
    })
}

pub(super) fn add_ns(c: &mut Value, ns: Value) {
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
        probe_cfg("config.md mounts: sync dirsync", &["mounts"], |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
                "options": ["sync", "dirsync"]}),
            )
        }),
        probe_cfg("config.md mounts: async", &["mounts"], |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
                "options": ["sync", "async"]}),
            )
        }),
        probe_cfg(
            "config.md mounts: remount changes the flags of the mount at the destination",
            &["mounts"],
            |c| {
                add_mount(
                    c,
                    json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs"}),
                );
                add_mount(
                    c,
                    json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
                "options": ["remount", "ro", "nosuid"]}),
                );
            },
        ),
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
            format!("config.md mounts: propagation option {prop}"),
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
            format!("config-linux.md rootfsPropagation: {prop}"),
            move |ctx| {
                let mut b = ctx.bundle_shared(&["root"])?;
                b.config["linux"]["rootfsPropagation"] = json!(prop);
                ctx.probe(&b)
            },
        ));
    }
    v.extend(namespace_cases());
    v.extend(process_cases());
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
            format!("config-linux.md namespaces: no path, the runtime MUST create a new {kind} namespace"),
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
            format!("config-linux.md namespaces: path, the runtime MUST place the container in the {kind} namespace"),
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
