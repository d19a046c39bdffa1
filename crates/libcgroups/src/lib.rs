//! cgroup managers for hull (interface; backends land separately).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use serde::{Deserialize, Serialize};

mod error;
pub use error::CgroupError;

pub type Result<T> = std::result::Result<T, CgroupError>;

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

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CgroupState {
    pub dirs: Vec<PathBuf>,
}

pub struct CgroupMount {
    pub name: String,
    pub host_dir: PathBuf,
    pub fstype: &'static str,
    pub options: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {}

pub trait Manager: Send {
    fn create(&mut self) -> Result<()>;
    fn add_task(&self, pid: i32) -> Result<()>;
    fn apply(&self, resources: &LinuxResources) -> Result<()>;
    fn pids(&self) -> Result<Vec<i32>>;
    fn freeze(&self, frozen: bool) -> Result<()>;
    fn kill_all(&self, signal: i32) -> Result<()>;
    fn destroy(&self) -> Result<()>;
    fn state(&self) -> CgroupState;
    fn unified_dir(&self) -> Option<PathBuf>;
    fn mount_sources(&self) -> Vec<CgroupMount>;
    fn stats(&self) -> Result<Stats>;
}

pub fn validate(_resources: &LinuxResources) -> Result<()> {
    Ok(())
}

struct Noop;
impl Manager for Noop {
    fn create(&mut self) -> Result<()> {
        Ok(())
    }
    fn add_task(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    fn apply(&self, _r: &LinuxResources) -> Result<()> {
        Ok(())
    }
    fn pids(&self) -> Result<Vec<i32>> {
        Ok(vec![])
    }
    fn freeze(&self, _f: bool) -> Result<()> {
        Ok(())
    }
    fn kill_all(&self, _s: i32) -> Result<()> {
        Ok(())
    }
    fn destroy(&self) -> Result<()> {
        Ok(())
    }
    fn state(&self) -> CgroupState {
        CgroupState::default()
    }
    fn unified_dir(&self) -> Option<PathBuf> {
        None
    }
    fn mount_sources(&self) -> Vec<CgroupMount> {
        vec![]
    }
    fn stats(&self) -> Result<Stats> {
        Ok(Stats::default())
    }
}

pub fn manager_for(
    _root: &CgroupRoot,
    _cgroups_path: Option<&Path>,
    _id: &str,
    _systemd: bool,
) -> Result<Box<dyn Manager>> {
    Ok(Box::new(Noop))
}

pub fn manager_from_state(_root: &CgroupRoot, _state: &CgroupState) -> Result<Box<dyn Manager>> {
    Ok(Box::new(Noop))
}

pub fn default_allowed_devices() -> Vec<LinuxDeviceCgroup> {
    Vec::new()
}

pub fn is_v2(root: &CgroupRoot) -> bool {
    root.path.join("cgroup.controllers").exists()
}
