//! Checks on a parsed config; each names the field that is wrong.

use std::path::Path;

use oci_spec::runtime::LinuxNamespaceType as Ns;

use super::Config;
use crate::error::{Error, Result};

type Check = fn(&Config) -> Result<()>;

const CHECKS: &[Check] = &[
    mount_namespace,
    process,
    hooks,
    annotations,
    hostname,
    id_mappings,
    sysctl,
    security,
    propagation,
    resources,
    net_devices,
    personality,
];

pub fn check(config: &Config) -> Result<()> {
    CHECKS.iter().try_for_each(|c| c(config))
}

/// config.md: `ociVersion` is REQUIRED and MUST be in SemVer v2.0.0
/// format. Checked on the raw JSON: the parsed spec fills in a default.
pub fn oci_version(raw: &serde_json::Value) -> Result<()> {
    match raw.get("ociVersion") {
        None => Err(Error::config("ociVersion", "missing")),
        Some(serde_json::Value::String(v)) if is_semver(v) => Ok(()),
        Some(v) => Err(Error::config(
            "ociVersion",
            format!("{v} is not a SemVer 2.0.0 version"),
        )),
    }
}

/// MAJOR.MINOR.PATCH, then an optional `-pre.release` and `+build`.
fn is_semver(v: &str) -> bool {
    let (v, build) = match v.split_once('+') {
        Some((v, b)) => (v, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let numeric = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let ident =
        |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| {
            p.split('.')
                .all(|i| ident(i) && (!i.bytes().all(|b| b.is_ascii_digit()) || numeric(i)))
        })
        && build.is_none_or(|b| b.split('.').all(ident))
}

/// config.md hooks: `path` MUST be absolute; `timeout`, if set, MUST be
/// greater than zero.
fn hooks(c: &Config) -> Result<()> {
    for kind in crate::hooks::KINDS {
        for (i, h) in crate::hooks::list(c.spec.hooks().as_ref(), kind)
            .iter()
            .enumerate()
        {
            if !h.path().is_absolute() {
                return Err(Error::config(
                    format!("hooks.{kind}[{i}].path"),
                    format!("{:?} must be an absolute path", h.path()),
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::config(
                    format!("hooks.{kind}[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }
    Ok(())
}

/// config.md annotations: keys MUST NOT be an empty string.
fn annotations(c: &Config) -> Result<()> {
    if c.spec
        .annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key(""))
    {
        return Err(Error::config("annotations", "a key is the empty string"));
    }
    Ok(())
}

/// The rootfs is assembled with mounts that must not reach the host.
fn mount_namespace(c: &Config) -> Result<()> {
    if !c.has_ns(Ns::Mount) {
        return Err(Error::config(
            "linux.namespaces",
            "a mount namespace is required",
        ));
    }
    Ok(())
}

fn process(c: &Config) -> Result<()> {
    let p = c.process()?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::config("process.args", "must not be empty"));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::config(
            "process.cwd",
            format!("{:?} must be an absolute path", p.cwd()),
        ));
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        if !e.contains('=') || e.contains('\0') {
            return Err(Error::config(
                format!("process.env[{i}]"),
                format!("{e:?} is not NAME=VALUE"),
            ));
        }
    }
    if p.args().iter().flatten().any(|a| a.contains('\0')) {
        return Err(Error::config("process.args", "contains a NUL byte"));
    }
    // config.md: duplicated rlimits of the same type MUST be an error.
    let rlimits = p.rlimits().as_deref().unwrap_or(&[]);
    for (i, r) in rlimits.iter().enumerate() {
        if rlimits[..i].iter().any(|o| o.typ() == r.typ()) {
            return Err(Error::config(
                format!("process.rlimits[{i}]"),
                format!("{:?} is listed twice", r.typ()),
            ));
        }
    }
    Ok(())
}

fn hostname(c: &Config) -> Result<()> {
    for (field, value) in [
        ("hostname", c.spec.hostname()),
        ("domainname", c.spec.domainname()),
    ] {
        if value.as_ref().is_some_and(|h| !h.is_empty()) && !c.has_ns(Ns::Uts) {
            return Err(Error::config(
                field,
                "cannot be set without a private UTS namespace",
            ));
        }
    }
    Ok(())
}

fn id_mappings(c: &Config) -> Result<()> {
    let linux = c.spec.linux().as_ref();
    let uid = linux.is_some_and(|l| l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()));
    let gid = linux.is_some_and(|l| l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()));
    // config.md: each MUST be specified along with the other.
    if uid != gid {
        let (field, other) = if uid {
            ("linux.gidMappings", "linux.uidMappings")
        } else {
            ("linux.uidMappings", "linux.gidMappings")
        };
        return Err(Error::config(
            field,
            format!("missing, while {other} is set"),
        ));
    }
    let has_maps = uid;
    let new_user = c.new_ns.contains(super::ns_flag(Ns::User));
    if has_maps && !new_user {
        return Err(Error::config(
            "linux.uidMappings",
            "id mappings need a new user namespace in linux.namespaces",
        ));
    }
    if new_user && !has_maps {
        return Err(Error::config(
            "linux.uidMappings",
            "a new user namespace needs uid and gid mappings",
        ));
    }
    Ok(())
}

fn sysctl(c: &Config) -> Result<()> {
    let Some(map) = c.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for key in map.keys() {
        let field = format!("linux.sysctl[{key:?}]");
        if key.contains('/') || key.split('.').any(|p| p.is_empty() || p == "..") {
            return Err(Error::config(field, "is not a sysctl name"));
        }
        let ipc = key.starts_with("kernel.msg")
            || key.starts_with("kernel.sem")
            || key.starts_with("kernel.shm")
            || key.starts_with("fs.mqueue.");
        let needed = if ipc {
            Some((Ns::Ipc, "an IPC"))
        } else if key.starts_with("net.") {
            Some((Ns::Network, "a network"))
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            Some((Ns::Uts, "a UTS"))
        } else {
            None
        };
        match needed {
            Some((ns, what)) if !c.has_ns(ns) => {
                return Err(Error::config(
                    field,
                    format!("needs {what} namespace of the container's own"),
                ))
            }
            Some(_) => {}
            None => {
                return Err(Error::config(
                    field,
                    "is not namespaced and cannot be set for a container",
                ))
            }
        }
        if !Path::new("/proc/sys").join(key.replace('.', "/")).exists() {
            return Err(Error::config(field, "does not exist on this kernel"));
        }
    }
    Ok(())
}

fn security(c: &Config) -> Result<()> {
    let p = c.process()?;
    if p.apparmor_profile().as_ref().is_some_and(|s| !s.is_empty())
        && !Path::new("/sys/kernel/security/apparmor").exists()
    {
        return Err(Error::config(
            "process.apparmorProfile",
            "apparmor profile specified but AppArmor is not enabled on this host",
        ));
    }
    let selinux = p.selinux_label().as_ref().is_some_and(|s| !s.is_empty())
        || c.spec
            .linux()
            .as_ref()
            .and_then(|l| l.mount_label().as_ref())
            .is_some_and(|s| !s.is_empty());
    if selinux && !Path::new("/sys/fs/selinux/enforce").exists() {
        return Err(Error::config(
            "process.selinuxLabel",
            "selinux label is specified but SELinux is disabled or not supported on this host",
        ));
    }
    let linux = c.spec.linux().as_ref();
    if linux.and_then(|l| l.intel_rdt().as_ref()).is_some()
        && !Path::new("/sys/fs/resctrl/info").exists()
    {
        return Err(Error::config(
            "linux.intelRdt",
            "the host has no resctrl filesystem mounted",
        ));
    }
    Ok(())
}

fn propagation(c: &Config) -> Result<()> {
    let Some(p) = c
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_ref())
    else {
        return Ok(());
    };
    if !p.is_empty() && super::mounts::propagation_option(p).is_none() {
        return Err(Error::config(
            "linux.rootfsPropagation",
            format!("{p:?} is not a propagation mode"),
        ));
    }
    Ok(())
}

/// Devices move into a network namespace of the container's own, under a
/// name the kernel can take.
fn net_devices(c: &Config) -> Result<()> {
    let Some(devs) = c
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
    else {
        return Ok(());
    };
    if !devs.is_empty() && !c.has_ns(Ns::Network) {
        return Err(Error::config(
            "linux.netDevices",
            "moving network devices needs a network namespace (the host's is not the container's)",
        ));
    }
    for (host, d) in devs {
        let field = format!("linux.netDevices[{host:?}]");
        for name in [Some(host), d.name().as_ref()].into_iter().flatten() {
            let bad = name.is_empty()
                || name.len() > 15
                || name == "."
                || name == ".."
                || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
            if bad {
                return Err(Error::config(
                    &field,
                    format!("{name:?} is not a network device name"),
                ));
            }
        }
    }
    Ok(())
}

/// The spec defines no personality flags (only the domain).
fn personality(c: &Config) -> Result<()> {
    let Some(p) = c
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref())
    else {
        return Ok(());
    };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::config(
            "linux.personality.flags",
            "no personality flags are supported (the spec defines none)",
        ));
    }
    Ok(())
}

fn resources(c: &Config) -> Result<()> {
    if let Some(r) = c.spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        libcgroups::validate(r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::config::Config;

    fn base() -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "/"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "env": ["PATH=/bin"]},
            "hostname": "h",
            "linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}, {"type": "pid"}]}
        })
    }

    /// The error for `base()` changed by `edit`, or None if it validates.
    fn error_with(edit: impl FnOnce(&mut Value)) -> Option<String> {
        let mut v = base();
        edit(&mut v);
        Config::from_value(&mut v, "/".into())
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn base_config_is_valid() {
        assert_eq!(error_with(|_| {}), None);
    }

    #[test]
    fn each_check_names_its_field() {
        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "process.args",
                Box::new(|v| v["process"]["args"] = json!([])),
            ),
            (
                "process.cwd",
                Box::new(|v| v["process"]["cwd"] = json!("rel")),
            ),
            (
                "process.env[0]",
                Box::new(|v| v["process"]["env"] = json!(["NOEQUALS"])),
            ),
            (
                "hostname",
                Box::new(|v| v["linux"]["namespaces"] = json!([{"type": "mount"}])),
            ),
            (
                "linux.namespaces",
                Box::new(|v| v["linux"]["namespaces"] = json!([])),
            ),
            (
                "linux.namespaces[1]",
                Box::new(|v| {
                    v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "mount"}])
                }),
            ),
            (
                "linux.namespaces[0].path",
                Box::new(|v| v["linux"]["namespaces"] = json!([{"type": "mount", "path": "rel"}])),
            ),
            (
                "linux.uidMappings",
                Box::new(|v| {
                    v["linux"]["uidMappings"] =
                        json!([{"containerID": 0, "hostID": 1000, "size": 1}])
                }),
            ),
            (
                "linux.uidMappings",
                Box::new(|v| {
                    v["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"type": "user"}));
                }),
            ),
            (
                "linux.sysctl[\"net.ipv4.ip_forward\"]",
                Box::new(|v| v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"})),
            ),
            (
                "linux.sysctl[\"vm.swappiness\"]",
                Box::new(|v| v["linux"]["sysctl"] = json!({"vm.swappiness": "1"})),
            ),
            (
                "linux.rootfsPropagation",
                Box::new(|v| v["linux"]["rootfsPropagation"] = json!("sideways")),
            ),
            (
                "linux.seccomp",
                Box::new(|v| {
                    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]})
                }),
            ),
            (
                "process.apparmorProfile",
                Box::new(|v| v["process"]["apparmorProfile"] = json!("docker-default")),
            ),
            (
                "linux.netDevices",
                Box::new(|v| v["linux"]["netDevices"] = json!({"eth0": {}})),
            ),
            (
                "linux.netDevices[\"eth0\"]",
                Box::new(|v| {
                    v["linux"]["namespaces"] =
                        json!([{"type": "mount"}, {"type": "uts"}, {"type": "network"}]);
                    v["linux"]["netDevices"] = json!({"eth0": {"name": "a/b"}});
                }),
            ),
            (
                "process.selinuxLabel",
                Box::new(|v| {
                    v["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")
                }),
            ),
            (
                "root.path",
                Box::new(|v| v["root"]["path"] = json!("/does/not/exist")),
            ),
            (
                "process.capabilities",
                Box::new(|v| v["process"]["capabilities"] = json!({"bounding": "CAP_KILL"})),
            ),
            (
                "ociVersion",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("ociVersion");
                }),
            ),
            ("ociVersion", Box::new(|v| v["ociVersion"] = json!("1.0"))),
            (
                "hooks.prestart[0].path",
                Box::new(|v| v["hooks"] = json!({"prestart": [{"path": "bin/true"}]})),
            ),
            (
                "hooks.poststop[0].timeout",
                Box::new(|v| {
                    v["hooks"] = json!({"poststop": [{"path": "/bin/true", "timeout": 0}]})
                }),
            ),
            (
                "annotations",
                Box::new(|v| v["annotations"] = json!({"": "x"})),
            ),
            (
                "linux.gidMappings",
                Box::new(|v| {
                    v["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"type": "user"}));
                    v["linux"]["uidMappings"] =
                        json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
                }),
            ),
            ("root.path", Box::new(|v| v["root"] = json!({}))),
            (
                "process.rlimits[1]",
                Box::new(|v| {
                    v["process"]["rlimits"] = json!([
                        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                        {"type": "RLIMIT_CORE", "soft": 1, "hard": 1}])
                }),
            ),
            (
                "linux.seccomp.syscalls[0].names",
                Box::new(|v| {
                    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]})
                }),
            ),
            (
                "linux.seccomp.syscalls[0].errnoRet",
                Box::new(|v| {
                    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]})
                }),
            ),
            (
                "linux.seccomp.defaultErrnoRet",
                Box::new(|v| {
                    v["linux"]["seccomp"] =
                        json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})
                }),
            ),
            (
                "linux.seccomp.listenerMetadata",
                Box::new(|v| {
                    v["linux"]["seccomp"] =
                        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"})
                }),
            ),
        ];
        for (field, edit) in cases {
            let err = error_with(edit).unwrap_or_else(|| panic!("{field}: accepted"));
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn semver() {
        for ok in [
            "1.0.2",
            "1.0.2-dev",
            "1.2.0-rc.1+build.5",
            "0.0.0",
            "10.20.30-alpha-1",
        ] {
            assert!(super::is_semver(ok), "{ok}");
        }
        for bad in [
            "1.0", "1.0.2.3", "01.0.0", "1.0.0-", "1.0.0-01", "v1.0.0", "", "1.0.0+",
        ] {
            assert!(!super::is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_capabilities_are_warnings() {
        let mut v = base();
        v["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_FUTURE"]});
        let c = Config::from_value(&mut v, "/".into()).unwrap();
        assert_eq!(c.caps.bounding, 1 << 5);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn joined_namespaces_come_user_first() {
        let mut v = base();
        v["linux"]["namespaces"] = json!([
            {"type": "mount"}, {"type": "network", "path": "/proc/1/ns/net"},
            {"type": "user", "path": "/proc/1/ns/user"}, {"type": "uts"}
        ]);
        v["hostname"] = json!("");
        let c = Config::from_value(&mut v, "/".into()).unwrap();
        let kinds: Vec<_> = c
            .join_ns
            .iter()
            .map(|j| super::super::ns_name(j.kind))
            .collect();
        assert_eq!(kinds, ["user", "net"]);
    }
}
