//! The Features structure printed by `hull features`.
//!
//! See the runtime specification's `features.md` and `features-linux.md`.
//! The content describes what hull implements, independently of what the
//! host supports, so it is fixed at compile time.

use serde_json::{json, Value};

/// The oldest runtime specification version accepted in `config.json`.
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// The newest runtime specification version accepted in `config.json`.
pub const OCI_VERSION_MAX: &str = "1.2.0";

/// Mount option names recognized in `mounts[].options` (flags and
/// propagation types; filesystem-specific data options are passed through
/// and not listed).
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "runbindable",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Namespace types recognized in `linux.namespaces`.
const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// Returns the Features structure.
pub fn features() -> Value {
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": libcontainer::hooks::KINDS,
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": libcontainer::config::caps::known_names(),
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": true,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                    "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": ["SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ],
                "supportedFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ]
            },
            "apparmor": {
                "enabled": false
            },
            "selinux": {
                "enabled": false
            },
            "intelRdt": {
                "enabled": false
            },
            "mountExtensions": {
                "idmap": {
                    "enabled": false
                }
            }
        },
        "annotations": {
            "io.github.hull.version": env!("CARGO_PKG_VERSION")
        }
    })
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

    /// Parses "MAJOR.MINOR.PATCH[-PRE]" into comparable numbers (the
    /// pre-release suffix is ignored).
    fn version(v: &str) -> (u64, u64, u64) {
        let core = v.split(['-', '+']).next().unwrap();
        let mut parts = core.split('.').map(|p| p.parse::<u64>().expect("number"));
        let mut next = || parts.next().expect("component");
        (next(), next(), next())
    }

    #[test]
    fn top_level_keys() {
        let f = features();
        let obj = f.as_object().expect("object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "annotations",
                "hooks",
                "linux",
                "mountOptions",
                "ociVersionMax",
                "ociVersionMin"
            ]
        );
    }

    #[test]
    fn versions() {
        let f = features();
        let min = f["ociVersionMin"].as_str().expect("ociVersionMin");
        let max = f["ociVersionMax"].as_str().expect("ociVersionMax");
        assert_eq!(min, "1.0.0");
        assert_eq!(max, "1.2.0");
        assert!(version(min) <= version(max));
    }

    #[test]
    fn hooks() {
        assert_eq!(
            strings(&features()["hooks"]),
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ]
        );
    }

    #[test]
    fn mount_options() {
        let f = features();
        let opts = strings(&f["mountOptions"]);
        for o in [
            "ro",
            "rw",
            "bind",
            "rbind",
            "rprivate",
            "rro",
            "rnosuid",
            "remount",
            "strictatime",
            "nostrictatime",
        ] {
            assert!(opts.contains(&o), "missing {o}");
        }
        for unsupported in ["idmap", "ridmap"] {
            assert!(
                !opts.contains(&unsupported),
                "{unsupported} is not supported"
            );
        }
        let mut sorted = opts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, opts, "sorted and without duplicates");
    }

    #[test]
    fn linux() {
        let f = features();
        let linux = f["linux"].as_object().expect("linux object");
        for key in [
            "namespaces",
            "capabilities",
            "cgroup",
            "seccomp",
            "apparmor",
            "selinux",
            "intelRdt",
            "mountExtensions",
        ] {
            assert!(linux.contains_key(key), "missing linux.{key}");
        }
        assert_eq!(
            strings(&f["linux"]["namespaces"]),
            ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
        );
        let caps = strings(&f["linux"]["capabilities"]);
        assert_eq!(caps.len(), 41);
        assert_eq!(caps.first(), Some(&"CAP_CHOWN"));
        assert_eq!(caps.last(), Some(&"CAP_CHECKPOINT_RESTORE"));
        assert!(caps.iter().all(|c| c.starts_with("CAP_")));
        assert_eq!(
            f["linux"]["cgroup"],
            json!({ "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false })
        );
        assert_eq!(f["linux"]["seccomp"]["enabled"], true);
        for key in ["apparmor", "selinux", "intelRdt"] {
            assert_eq!(f["linux"][key]["enabled"], false, "linux.{key}.enabled");
        }
        assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], false);
    }

    #[test]
    fn annotations() {
        let f = features();
        let annotations = f["annotations"].as_object().expect("annotations object");
        assert_eq!(
            annotations["io.github.hull.version"],
            env!("CARGO_PKG_VERSION")
        );
        assert!(annotations.values().all(Value::is_string));
    }
}
