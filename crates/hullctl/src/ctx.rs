//! What every command works on: the image store, the runtime, and a
//! container's files and status.
//!
//! ```text
//! <root>/containers/<id>/container.json   libimage's record; metadata["hullctl"] = Meta
//! <root>/containers/<id>/ctr.log           json-lines {"log","stream","time"}
//! <root>/containers/<id>/monitor.json      pids of the monitor and the init, start time
//! <root>/containers/<id>/exit.json         exit code and time, written once by whoever reaped the init
//! <runroot>/runtime/<id>/                  libcontainer's state while the container runs
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libcontainer::state::Status as RtStatus;
use libcontainer::Runtime;
use libimage::store::ContainerRecord;
use libimage::Store;
use serde::{Deserialize, Serialize};

pub struct Ctx {
    pub store: Store,
    pub rt: Runtime,
    pub root: PathBuf,
    pub runroot: PathBuf,
}

/// What hullctl keeps about a container beside libimage's record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    pub image_name: String,
    pub args: Vec<String>,
    pub stop_signal: Option<String>,
    pub autoremove: bool,
    pub tty: bool,
    pub interactive: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exit {
    /// None when the init's status could not be collected.
    pub code: Option<i32>,
    pub finished_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorInfo {
    pub monitor_pid: i32,
    pub keeper_pid: i32,
    pub init_pid: i32,
    pub started_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Never started (or started and not yet running).
    Created,
    Running,
    Paused,
    /// Exited; the code when it is known.
    Exited(Option<i32>),
}

impl Status {
    pub fn word(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited(_) => "exited",
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: i32) -> bool {
    pid > 0 && libcontainer::state::process_start_time(pid).is_some()
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    fs::read(path)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
}

/// Temp file + rename, so a reader sees the old file or the whole new one.
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec(v)?).with_context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}

impl Ctx {
    pub fn open(root: &Path, runroot: &Path) -> Result<Ctx> {
        let store = Store::open(root)?;
        let rt_root = runroot.join("runtime");
        fs::create_dir_all(&rt_root).with_context(|| format!("create {}", rt_root.display()))?;
        Ok(Ctx {
            store,
            rt: Runtime::new(rt_root),
            root: root.to_path_buf(),
            runroot: runroot.to_path_buf(),
        })
    }

    /// A container by id, unique id prefix or name.
    pub fn container(&self, query: &str) -> Result<ContainerRecord> {
        Ok(self.store.container(query)?)
    }

    pub fn meta(rec: &ContainerRecord) -> Meta {
        rec.metadata
            .get("hullctl")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    pub fn file(&self, id: &str, name: &str) -> PathBuf {
        self.store.container_dir(id).join(name)
    }

    pub fn exit(&self, id: &str) -> Option<Exit> {
        read_json(&self.file(id, "exit.json"))
    }

    pub fn monitor_info(&self, id: &str) -> Option<MonitorInfo> {
        read_json(&self.file(id, "monitor.json"))
    }

    /// The live status: the recorded exit if there is one, else what the
    /// runtime sees of the init process (so a dead monitor leaves no
    /// stale "running").
    pub fn status(&self, id: &str) -> Status {
        if let Some(e) = self.exit(id) {
            return Status::Exited(e.code);
        }
        match self.rt.load(id) {
            Ok((_, RtStatus::Running)) => Status::Running,
            Ok((_, RtStatus::Paused)) => Status::Paused,
            Ok((_, RtStatus::Created | RtStatus::Creating)) => Status::Created,
            // Dead, and its monitor about to record how: still running to us.
            Ok((_, RtStatus::Stopped)) if self.monitor_alive(id) => Status::Running,
            Ok((_, RtStatus::Stopped)) => Status::Exited(None),
            Err(_) if self.monitor_info(id).is_some() => Status::Exited(None),
            Err(_) => Status::Created,
        }
    }

    /// Whether the monitor (or its keeper) of `id` still runs.
    pub fn monitor_alive(&self, id: &str) -> bool {
        self.monitor_info(id)
            .is_some_and(|m| alive(m.monitor_pid) || alive(m.keeper_pid))
    }

    /// The container's init pid while it runs.
    pub fn init_pid(&self, id: &str) -> Option<i32> {
        match self.rt.load(id) {
            Ok((st, RtStatus::Running | RtStatus::Paused)) => Some(st.pid),
            _ => None,
        }
    }
}
