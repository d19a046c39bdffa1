//! Configs a runtime MUST refuse: `create` fails and no container is left.

use serde_json::{json, Value};

use super::{case, Case};
use crate::suite::{check, Bundle, Ctx};

fn refused(name: impl Into<String>, edit: impl Fn(&mut Ctx, &mut Bundle) + 'static) -> Case {
    case(name, move |ctx| {
        let mut b = ctx.bundle(&[]);
        b.set_args(&["true"]);
        edit(ctx, &mut b);
        let out = ctx.create(&b);
        check(!out.ok, || format!("create succeeded: {}", out.said()))?;
        let state = ctx.exec(&["state", &b.id]);
        check(!state.ok, || {
            format!("a container was left behind: {}", state.stdout.trim())
        })
    })
}

fn cfg(name: impl Into<String>, edit: impl Fn(&mut Value) + 'static) -> Case {
    refused(name, move |_, b| edit(&mut b.config))
}

fn ns_mut(c: &mut Value) -> &mut Vec<Value> {
    c["linux"]["namespaces"].as_array_mut().unwrap()
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        cfg("config.md ociVersion: REQUIRED", |c| {
            c.as_object_mut().unwrap().remove("ociVersion");
        }),
        cfg("config.md ociVersion: MUST be in SemVer v2.0.0 format", |c| c["ociVersion"] = json!("one.two")),
        cfg("config.md root.path: a directory MUST exist at the path", |c| c["root"]["path"] = json!("no-such-rootfs")),
        cfg("config.md root.path: REQUIRED", |c| {
            c["root"].as_object_mut().unwrap().remove("path");
        }),
        cfg("config.md process.cwd: MUST be an absolute path", |c| c["process"]["cwd"] = json!("tmp")),
        cfg("config.md process.args: at least one entry is REQUIRED", |c| c["process"]["args"] = json!([])),
        cfg("config.md process.args: an executable that does not exist MUST generate an error", |c| {
            c["process"]["args"] = json!(["/no/such/program"])
        }),
        cfg("config.md rlimits: duplicated entries with same type MUST generate an error", |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10},
                {"type": "RLIMIT_NOFILE", "soft": 20, "hard": 20}])
        }),
        cfg("config.md rlimits: a type that maps to no kernel interface MUST generate an error", |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOPE", "soft": 10, "hard": 10}])
        }),
        cfg("config.md rlimits: soft above hard cannot be applied", |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}])
        }),
        cfg("config.md hooks: path MUST be absolute", |c| {
            c["hooks"] = json!({"prestart": [{"path": "bin/true"}]})
        }),
        cfg("config.md hooks: timeout MUST be greater than zero", |c| {
            c["hooks"] = json!({"prestart": [{"path": "/bin/true", "timeout": 0}]})
        }),
        cfg("config.md annotations: keys MUST NOT be an empty string", |c| c["annotations"][""] = json!("x")),
        cfg("config.md mounts: a mount that cannot be made MUST generate an error (unknown type)", |c| {
            c["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/mnt/a", "type": "no-such-fs", "source": "none"}))
        }),
        cfg("config.md mounts: a bind source that does not exist MUST generate an error", |c| {
            c["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/mnt/a", "type": "bind", "source": "/no/such/dir", "options": ["bind"]}))
        }),
        cfg("config-linux.md namespaces: duplicated namespaces with same type MUST generate an error", |c| {
            ns_mut(c).push(json!({"type": "ipc"}))
        }),
        cfg("config-linux.md namespaces: an unknown type MUST generate an error", |c| {
            ns_mut(c).push(json!({"type": "nosuchns"}))
        }),
        cfg("config-linux.md namespaces: path not associated with a namespace of type MUST generate an error", |c| {
            for ns in ns_mut(c) {
                if ns["type"] == "network" {
                    ns["path"] = json!("/proc/self/ns/ipc");
                }
            }
        }),
        cfg("config-linux.md namespaces: a path that does not exist MUST generate an error", |c| {
            for ns in ns_mut(c) {
                if ns["type"] == "network" {
                    ns["path"] = json!("/proc/no-such/ns/net");
                }
            }
        }),
        cfg("config-linux.md namespaces: path MUST be absolute", |c| {
            for ns in ns_mut(c) {
                if ns["type"] == "network" {
                    ns["path"] = json!("proc/self/ns/net");
                }
            }
        }),
        cfg("config-linux.md user namespace mappings: uidMappings without a user namespace is an error", |c| {
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
        }),
        cfg("config.md uidMappings: MUST be specified along with gidMappings", |c| {
            ns_mut(c).push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        }),
        cfg("config-linux.md devices: an unknown type MUST generate an error", |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/rtt", "type": "x", "major": 1, "minor": 3}])
        }),
        refused("config-linux.md devices: a file already at path that does not match MUST generate an error", |_, b| {
            std::fs::write(b.rootfs().join("rtt/not-a-device"), "plain file").unwrap();
            b.config["linux"]["devices"] = json!([{"path": "/rtt/not-a-device", "type": "c", "major": 1, "minor": 3}]);
        }),
        cfg("config-linux.md sysctl: a key the kernel does not have cannot be applied", |c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.no_such_key": "1"})
        }),
        cfg("config-linux.md sysctl: a network key without a network namespace cannot be applied", |c| {
            ns_mut(c).retain(|n| n["type"] != "network");
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        }),
        cfg("config-linux.md seccomp: an unknown action MUST generate an error", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOPE"})
        }),
        cfg("config-linux.md seccomp: errnoRet on an action without an errno MUST print an error and fail", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]})
        }),
        cfg("config-linux.md seccomp: defaultErrnoRet on an action without an errno MUST print an error and fail", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})
        }),
        cfg("config-linux.md seccomp: names MUST contain at least one entry", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]})
        }),
        cfg("config-linux.md seccomp: listenerMetadata MUST NOT be set if listenerPath is not set", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"})
        }),
        cfg("config-linux.md rootfsPropagation: an unknown mode MUST generate an error", |c| {
            c["linux"]["rootfsPropagation"] = json!("sideways")
        }),
        cfg("config-linux.md personality: an unknown domain MUST generate an error", |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX64"})
        }),
        cfg("config.md scheduler: an unknown policy MUST generate an error", |c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_NOPE"})
        }),
        cfg("config.md ioPriority: an unknown class MUST generate an error", |c| {
            c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_NOPE", "priority": 1})
        }),
        cfg("config-linux.md memory: a limit that cannot be applied MUST generate an error", |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 1024})
        }),
        cfg("config-linux.md cpu: cpus naming a CPU the host does not have cannot be applied", |c| {
            c["linux"]["resources"]["cpu"] = json!({"cpus": "1000"})
        }),
        cfg("config-linux.md unified: a controller that is not present MUST generate an error", |c| {
            c["linux"]["resources"]["unified"] = json!({"nosuchcontroller.max": "1"})
        }),
    ];
    if !std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        v.push(cfg(
            "runtime.md create: a property that cannot be applied MUST generate an error (apparmorProfile without AppArmor)",
            |c| c["process"]["apparmorProfile"] = json!("rtt-profile"),
        ));
    }
    if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        v.push(cfg(
            "runtime.md create: a property that cannot be applied MUST generate an error (selinuxLabel without SELinux)",
            |c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"),
        ));
    }
    if !std::path::Path::new("/sys/fs/resctrl/info").exists() {
        v.push(cfg(
            "config-linux.md intelRdt: without a mounted resctrl the runtime MUST generate an error",
            |c| c["linux"]["intelRdt"] = json!({"closID": "rtt", "l3CacheSchema": "L3:0=f"}),
        ));
    }
    v
}
