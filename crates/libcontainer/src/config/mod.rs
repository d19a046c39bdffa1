//! Bundle -> validated [`Config`]. The only code that reads config.json;
//! everything after works on `Config`.

pub mod caps;
pub mod mempolicy;
pub mod mounts;
mod validate;

use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde_json::Value;

pub use self::caps::{cap_bit, last_cap, CapSets};
use self::mounts::MountPlan;
use crate::error::{Error, Result};

/// A namespace to join: its kind and the path of an existing one.
#[derive(Debug, Clone)]
pub struct NsJoin {
    pub kind: LinuxNamespaceType,
    pub path: PathBuf,
}

/// A validated container configuration.
#[derive(Debug)]
pub struct Config {
    pub spec: Spec,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
    pub caps: CapSets,
    pub mounts: Vec<MountPlan>,
    /// Namespaces to create.
    pub new_ns: CloneFlags,
    /// Namespaces to join, user namespace first.
    pub join_ns: Vec<NsJoin>,
    /// The compiled `linux.seccomp` filter.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// `linux.memoryPolicy`, as set_mempolicy(2) takes it.
    pub mempolicy: Option<mempolicy::MemPolicy>,
    /// Things accepted with a warning (unknown capabilities, ...).
    pub warnings: Vec<String>,
}

pub fn ns_flag(kind: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(kind as i32)
}

pub fn ns_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

impl Config {
    /// Read `<bundle>/config.json` and validate it.
    pub fn load(bundle: &Path) -> Result<Config> {
        let (mut raw, bundle) = Config::read(bundle)?;
        Config::from_value(&mut raw, bundle)
    }

    /// Read `<bundle>/config.json` as JSON; also the absolute bundle path.
    pub fn read(bundle: &Path) -> Result<(Value, PathBuf)> {
        let bundle = std::path::absolute(bundle).map_err(|e| Error::io("resolve", bundle, e))?;
        let path = bundle.join("config.json");
        let text = std::fs::read(&path).map_err(|source| Error::ReadConfig {
            path: path.clone(),
            source,
        })?;
        let raw: Value = serde_json::from_slice(&text).map_err(|source| Error::ParseConfig {
            path: path.clone(),
            source,
        })?;
        Ok((raw, bundle))
    }

    /// Validate an already parsed config.json.
    pub fn from_value(raw: &mut Value, bundle: PathBuf) -> Result<Config> {
        validate::oci_version(raw)?;
        let mut warnings = Vec::new();
        let caps_raw = raw
            .get_mut("process")
            .and_then(|p| p.as_object_mut())
            .and_then(|p| p.remove("capabilities"));
        let caps = caps::parse(caps_raw.as_ref(), &mut warnings)
            .map_err(|reason| Error::config("process.capabilities", reason))?;
        let spec: Spec =
            serde_json::from_value(raw.take()).map_err(|source| Error::ParseConfig {
                path: bundle.join("config.json"),
                source,
            })?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::config("root", "missing"))?;
        if root.path().as_os_str().is_empty() {
            return Err(Error::config("root.path", "missing"));
        }
        let rootfs = bundle.join(root.path());
        if !rootfs.is_dir() {
            return Err(Error::config(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        let rootfs = rootfs
            .canonicalize()
            .map_err(|e| Error::io("resolve", &rootfs, e))?;
        let mounts = spec
            .mounts()
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, m)| MountPlan::from_spec(m, i, &bundle))
            .collect::<Result<Vec<_>>>()?;
        let (new_ns, join_ns) = namespaces(&spec)?;
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(crate::seccomp::compile(s)?),
            None => None,
        };
        let mempolicy = match spec
            .linux()
            .as_ref()
            .and_then(|l| l.memory_policy().as_ref())
        {
            Some(p) => Some(mempolicy::from_spec(p)?),
            None => None,
        };
        let config = Config {
            spec,
            bundle,
            rootfs,
            caps,
            mounts,
            new_ns,
            join_ns,
            seccomp,
            mempolicy,
            warnings,
        };
        validate::check(&config)?;
        Ok(config)
    }

    pub fn process(&self) -> Result<&Process> {
        self.spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "missing"))
    }

    /// True when the container gets (creates or joins) this namespace.
    pub fn has_ns(&self, kind: LinuxNamespaceType) -> bool {
        self.new_ns.contains(ns_flag(kind)) || self.join_ns.iter().any(|j| j.kind == kind)
    }
}

fn namespaces(spec: &Spec) -> Result<(CloneFlags, Vec<NsJoin>)> {
    let mut new = CloneFlags::empty();
    let mut joins: Vec<NsJoin> = Vec::new();
    let mut seen = Vec::new();
    let list = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    for (i, ns) in list.into_iter().flatten().enumerate() {
        let kind = ns.typ();
        if seen.contains(&kind) {
            return Err(Error::config(
                format!("linux.namespaces[{i}]"),
                format!("namespace {:?} listed twice", ns_name(kind)),
            ));
        }
        seen.push(kind);
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() => {
                if !p.is_absolute() {
                    return Err(Error::config(
                        format!("linux.namespaces[{i}].path"),
                        format!("{} must be an absolute path", p.display()),
                    ));
                }
                joins.push(NsJoin {
                    kind,
                    path: p.clone(),
                })
            }
            _ => new |= ns_flag(kind),
        }
    }
    joins.sort_by_key(|j| j.kind != LinuxNamespaceType::User);
    Ok((new, joins))
}
