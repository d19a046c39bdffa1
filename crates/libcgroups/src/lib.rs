//! cgroup managers for hull: one [`Manager`] over v1, v2 and hybrid hosts.
//!
//! A container's cgroup is a list of directories, one per mounted
//! hierarchy (a single one on a cgroup2 host). [`settings::settings`]
//! translates `linux.resources` once into writes for both versions; the
//! manager only picks the half that matches each directory.

mod bpf;
mod convert;
mod devices;
mod error;
mod fs;
pub mod mountinfo;
pub mod settings;
mod stats;
mod sub;
pub mod systemd;
mod validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use serde::{Deserialize, Serialize};

pub use error::CgroupError;
pub use fs::Cgroup;
pub use stats::Stats;
pub use sub::{parse_sub_cgroups, resolve as sub_cgroup, SubCgroups};
pub use validate::validate;

pub type Result<T> = std::result::Result<T, CgroupError>;

/// Where the cgroup hierarchies are mounted (normally `/sys/fs/cgroup`).
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    pub path: PathBuf,
}

impl Default for CgroupRoot {
    fn default() -> Self {
        CgroupRoot {
            path: PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

/// One directory of a container's cgroup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dir {
    pub path: PathBuf,
    /// Mount point of its hierarchy.
    pub mount_point: PathBuf,
    /// v1 controllers of the hierarchy; for cgroup2 the enabled ones.
    pub controllers: Vec<String>,
    pub v2: bool,
    /// Directories this container created (outermost first): only these
    /// are removed.
    #[serde(default)]
    pub created: Vec<PathBuf>,
}

/// What `state.json` keeps to re-open the manager later.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct CgroupState {
    /// True on a cgroup2-only host.
    pub v2_host: bool,
    pub dirs: Vec<Dir>,
    /// The systemd unit the cgroup is, with the systemd driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
}

/// A cgroup to show inside the container at its cgroup mount.
#[derive(Debug, Clone)]
pub struct CgroupMount {
    /// Directory name under the mount (e.g. "memory", "cpu,cpuacct", "systemd").
    pub name: String,
    pub host_dir: PathBuf,
    /// Where the hierarchy itself is mounted on the host.
    pub mount_point: PathBuf,
    pub fstype: &'static str,
    pub options: String,
}

/// Operations a runtime needs on one container's cgroup.
pub trait Manager: Send {
    /// Create the directories (recording which ones did not exist).
    fn create(&mut self) -> Result<()>;
    /// Move a process into every hierarchy.
    fn add_task(&self, pid: i32) -> Result<()>;
    /// Apply `linux.resources`; only the fields present are written.
    fn apply(&self, resources: &LinuxResources) -> Result<()>;
    fn pids(&self) -> Result<Vec<i32>>;
    /// Freeze or thaw, waiting until the state is reached.
    fn freeze(&self, frozen: bool) -> Result<()>;
    fn kill_all(&self, signal: i32) -> Result<()>;
    /// Remove the directories this container created, deepest first.
    fn destroy(&self) -> Result<()>;
    fn state(&self) -> CgroupState;
    /// The container's cgroup2 directory on a cgroup2 host.
    fn unified_dir(&self) -> Option<PathBuf>;
    /// The cgroup2 directory (v2 host, or the unified mount of a hybrid
    /// host) a process can be cloned into with CLONE_INTO_CGROUP.
    fn clone_into(&self) -> Option<PathBuf>;
    /// v1 `tasks` files a single-threaded process can write "0" to, moving
    /// itself without the global threadgroup lock (and its RCU wait).
    fn self_join_files(&self) -> Vec<PathBuf>;
    fn mount_sources(&self) -> Vec<CgroupMount>;
    fn stats(&self) -> Result<Stats>;
}

/// True when `root` is a cgroup2 mount (a v2-only host).
pub fn is_v2(root: &CgroupRoot) -> bool {
    root.path.join("cgroup.controllers").exists()
}

/// Manager for `cgroups_path` (absolute; relative to our own cgroup; or
/// `/<id>` when absent, as runc's cgroupfs driver). With `systemd`, the
/// path is systemd's `slice:prefix:name` and `annotations` may add unit
/// properties.
pub fn manager_for(
    root: &CgroupRoot,
    cgroups_path: Option<&Path>,
    id: &str,
    systemd: bool,
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Result<Box<dyn Manager>> {
    if systemd {
        if !systemd::running() {
            return Err(CgroupError::Systemd(
                "systemd is not running (PID 1 is not systemd)".into(),
            ));
        }
        if !is_v2(root) {
            return Err(CgroupError::Systemd(
                "needs a cgroup v2 host (this one has cgroup v1 controllers); use the cgroupfs driver"
                    .into(),
            ));
        }
        let unit = systemd::unit_for(cgroups_path, id)?;
        return Ok(Box::new(systemd::Systemd::new(
            root,
            unit,
            id,
            annotations,
        )?));
    }
    let path = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("/").join(id),
    };
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(CgroupError::invalid(
            "linux.cgroupsPath",
            format!("{} contains \"..\"", path.display()),
        ));
    }
    Ok(Box::new(Cgroup::discover(root, &path)?))
}

pub fn manager_from_state(_root: &CgroupRoot, state: &CgroupState) -> Result<Box<dyn Manager>> {
    if let Some(unit) = &state.systemd_unit {
        return Ok(Box::new(systemd::Systemd::from_state(unit, state.clone())));
    }
    Ok(Box::new(Cgroup::from_state(state.clone())))
}

fn rule(allow: bool, typ: &str, major: Option<i64>, minor: Option<i64>) -> LinuxDeviceCgroup {
    serde_json::from_value(serde_json::json!({
        "allow": allow, "type": typ, "major": major, "minor": minor, "access": "rwm"
    }))
    .expect("valid device rule")
}

/// runc's default allow list: mknod of anything, the standard devices,
/// ptys and tun.
pub fn default_allowed_devices() -> Vec<LinuxDeviceCgroup> {
    vec![
        rule(true, "c", None, None).with_access("m"),
        rule(true, "b", None, None).with_access("m"),
        rule(true, "c", Some(1), Some(3)),
        rule(true, "c", Some(1), Some(8)),
        rule(true, "c", Some(1), Some(7)),
        rule(true, "c", Some(5), Some(0)),
        rule(true, "c", Some(1), Some(5)),
        rule(true, "c", Some(1), Some(9)),
        rule(true, "c", Some(5), Some(2)),
        rule(true, "c", Some(136), None),
        rule(true, "c", Some(10), Some(200)),
    ]
}

trait WithAccess {
    fn with_access(self, access: &str) -> Self;
}

impl WithAccess for LinuxDeviceCgroup {
    fn with_access(mut self, access: &str) -> Self {
        self.set_access(Some(access.into()));
        self
    }
}
