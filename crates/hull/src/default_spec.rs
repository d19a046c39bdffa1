//! The example configuration written by `hull spec`.
//!
//! The content matches what `runc spec` writes (and `runc spec --rootless`
//! when `rootless` is set), except for `ociVersion`, which names the runtime
//! specification version hull implements.

use serde_json::{json, Value};

/// The runtime specification version written into generated configs.
pub const OCI_VERSION: &str = "1.2.0";

/// Returns the default `config.json` content.
///
/// With `rootless`, the config is adjusted the way `runc spec --rootless`
/// does it: no network namespace, a user namespace mapping container root to
/// the caller's effective uid/gid, `/sys` bind-mounted instead of a new sysfs,
/// no `gid=` option on `/dev/pts`, and no cgroup resources.
pub fn default_spec(rootless: bool) -> Value {
    let mut spec = base_spec();
    if rootless {
        let (uid, gid) = effective_ids();
        make_rootless(&mut spec, uid, gid);
    }
    spec
}

fn base_spec() -> Value {
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {
                "uid": 0,
                "gid": 0
            },
            "args": [
                "sh"
            ],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": [
                    "CAP_AUDIT_WRITE",
                    "CAP_KILL",
                    "CAP_NET_BIND_SERVICE"
                ],
                "effective": [
                    "CAP_AUDIT_WRITE",
                    "CAP_KILL",
                    "CAP_NET_BIND_SERVICE"
                ],
                "permitted": [
                    "CAP_AUDIT_WRITE",
                    "CAP_KILL",
                    "CAP_NET_BIND_SERVICE"
                ],
                "ambient": [
                    "CAP_AUDIT_WRITE",
                    "CAP_KILL",
                    "CAP_NET_BIND_SERVICE"
                ]
            },
            "rlimits": [
                {
                    "type": "RLIMIT_NOFILE",
                    "hard": 1024,
                    "soft": 1024
                }
            ],
            "noNewPrivileges": true
        },
        "root": {
            "path": "rootfs",
            "readonly": true
        },
        "hostname": "runc",
        "mounts": [
            {
                "destination": "/proc",
                "type": "proc",
                "source": "proc"
            },
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": [
                    "nosuid",
                    "strictatime",
                    "mode=755",
                    "size=65536k"
                ]
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5"
                ]
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": [
                    "nosuid",
                    "noexec",
                    "nodev",
                    "mode=1777",
                    "size=65536k"
                ]
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": [
                    "nosuid",
                    "noexec",
                    "nodev"
                ]
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": [
                    "nosuid",
                    "noexec",
                    "nodev",
                    "ro"
                ]
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": [
                    "nosuid",
                    "noexec",
                    "nodev",
                    "relatime",
                    "ro"
                ]
            }
        ],
        "linux": {
            "resources": {
                "devices": [
                    {
                        "allow": false,
                        "access": "rwm"
                    }
                ]
            },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Applies the rootless adjustments to a spec produced by [`base_spec`].
fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];

    // Drop the network namespace (an unprivileged user cannot set up
    // networking for it) and add a user namespace.
    if let Some(namespaces) = linux["namespaces"].as_array_mut() {
        namespaces.retain(|ns| ns["type"] != "network");
        namespaces.push(json!({ "type": "user" }));
    }

    // Map container root to the calling user.
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);

    // No cgroup settings: they usually cannot be applied without privileges.
    if let Some(linux) = linux.as_object_mut() {
        linux.remove("resources");
    }

    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for mount in mounts.iter_mut() {
            if mount["type"] == "sysfs" && mount["destination"] == "/sys" {
                // A new sysfs cannot be mounted without owning the network
                // namespace: bind-mount the host's instead.
                let mut options = vec![json!("rbind")];
                if let Some(old) = mount["options"].as_array() {
                    options.extend(old.iter().cloned());
                }
                *mount = json!({
                    "destination": "/sys",
                    "type": "none",
                    "source": "/sys",
                    "options": options
                });
            } else if let Some(options) = mount.get_mut("options").and_then(Value::as_array_mut) {
                // The tty group may not be mapped into the user namespace.
                options.retain(|opt| !opt.as_str().is_some_and(|o| o.starts_with("gid=")));
            }
        }
    }
}

/// The effective uid and gid of the calling process, read from
/// `/proc/self/status`; `(0, 0)` when it cannot be read.
fn effective_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u32 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            // Fields: real, effective, saved set, filesystem.
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok())
            .unwrap_or(0)
    };
    (field("Uid:"), field("Gid:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(value: &Value) -> Vec<&str> {
        value
            .as_array()
            .expect("array")
            .iter()
            .map(|v| v.as_str().expect("string"))
            .collect()
    }

    fn namespace_types(spec: &Value) -> Vec<&str> {
        spec["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .iter()
            .map(|ns| ns["type"].as_str().expect("type"))
            .collect()
    }

    fn mount<'a>(spec: &'a Value, destination: &str) -> &'a Value {
        spec["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["destination"] == destination)
            .expect("mount present")
    }

    #[test]
    fn version_and_process() {
        let spec = default_spec(false);
        assert_eq!(spec["ociVersion"], "1.2.0");
        let process = &spec["process"];
        assert_eq!(process["terminal"], true);
        assert_eq!(strings(&process["args"]), ["sh"]);
        assert_eq!(process["cwd"], "/");
        assert_eq!(process["user"], json!({ "uid": 0, "gid": 0 }));
        assert_eq!(process["noNewPrivileges"], true);
        assert_eq!(
            strings(&process["env"]),
            [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ]
        );
        let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        for set in ["bounding", "effective", "permitted", "ambient"] {
            assert_eq!(strings(&process["capabilities"][set]), caps, "{set}");
        }
        assert!(process["capabilities"].get("inheritable").is_none());
        assert_eq!(
            process["rlimits"],
            json!([{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }])
        );
    }

    #[test]
    fn root_hostname_and_mounts() {
        let spec = default_spec(false);
        assert_eq!(spec["root"], json!({ "path": "rootfs", "readonly": true }));
        assert_eq!(spec["hostname"], "runc");
        let destinations: Vec<&str> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        assert!(mount(&spec, "/proc").get("options").is_none());
        assert!(strings(&mount(&spec, "/dev/pts")["options"]).contains(&"gid=5"));
        let sys = mount(&spec, "/sys");
        assert_eq!(sys["type"], "sysfs");
        assert_eq!(
            strings(&sys["options"]),
            ["nosuid", "noexec", "nodev", "ro"]
        );
    }

    #[test]
    fn linux_section() {
        let spec = default_spec(false);
        assert_eq!(
            namespace_types(&spec),
            ["pid", "network", "ipc", "uts", "mount"]
        );
        assert_eq!(
            spec["linux"]["resources"],
            json!({ "devices": [{ "allow": false, "access": "rwm" }] })
        );
        assert!(spec["linux"].get("uidMappings").is_none());
        assert!(spec["linux"].get("gidMappings").is_none());
        assert_eq!(
            strings(&spec["linux"]["maskedPaths"]),
            [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ]
        );
        assert_eq!(
            strings(&spec["linux"]["readonlyPaths"]),
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        );
    }

    #[test]
    fn rootless_adjustments() {
        let mut spec = base_spec();
        make_rootless(&mut spec, 1000, 1001);

        assert_eq!(
            namespace_types(&spec),
            ["pid", "ipc", "uts", "mount", "user"]
        );
        assert_eq!(
            spec["linux"]["uidMappings"],
            json!([{ "containerID": 0, "hostID": 1000, "size": 1 }])
        );
        assert_eq!(
            spec["linux"]["gidMappings"],
            json!([{ "containerID": 0, "hostID": 1001, "size": 1 }])
        );
        assert!(spec["linux"].get("resources").is_none());

        assert_eq!(
            *mount(&spec, "/sys"),
            json!({
                "destination": "/sys",
                "type": "none",
                "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
            })
        );
        assert_eq!(
            strings(&mount(&spec, "/dev/pts")["options"]),
            [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620"
            ]
        );
        // Everything else is unchanged.
        assert_eq!(spec["process"], base_spec()["process"]);
        assert_eq!(
            spec["linux"]["maskedPaths"],
            base_spec()["linux"]["maskedPaths"]
        );
        assert_eq!(
            spec["linux"]["readonlyPaths"],
            base_spec()["linux"]["readonlyPaths"]
        );
        assert_eq!(spec["mounts"].as_array().unwrap().len(), 7);
        assert!(mount(&spec, "/proc").get("options").is_none());
    }

    #[test]
    fn rootless_maps_the_caller() {
        let (uid, gid) = effective_ids();
        let spec = default_spec(true);
        assert_eq!(spec["ociVersion"], "1.2.0");
        assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], uid);
        assert_eq!(spec["linux"]["gidMappings"][0]["hostID"], gid);
        assert_eq!(spec["linux"]["uidMappings"][0]["containerID"], 0);
        assert_eq!(spec["linux"]["uidMappings"][0]["size"], 1);
        assert!(!namespace_types(&spec).contains(&"network"));
    }
}
