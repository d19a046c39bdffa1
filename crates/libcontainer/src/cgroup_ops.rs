//! Operations backed by the container's cgroup: ps, pause/resume, update,
//! stats.

use oci_spec::runtime::LinuxResources;

use crate::container::Runtime;
use crate::error::{Error, Result};
use crate::state::Status;

impl Runtime {
    fn cgroup_of(
        &self,
        id: &str,
    ) -> Result<(crate::state::State, Status, Box<dyn libcgroups::Manager>)> {
        let (st, status) = self.load(id)?;
        let cg = libcgroups::manager_from_state(&self.cgroup_root, &st.cgroup)?;
        Ok((st, status, cg))
    }

    /// Host pids of every process in the container.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (_, _, cg) = self.cgroup_of(id)?;
        Ok(cg.pids()?)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let (mut st, status, cg) = self.cgroup_of(id)?;
        if status != Status::Running && status != Status::Created {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.as_str(),
                op: "pause",
                wanted: "running",
            });
        }
        cg.freeze(true)?;
        st.paused = true;
        self.store.save(&st)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let (mut st, status, cg) = self.cgroup_of(id)?;
        if status != Status::Paused {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.as_str(),
                op: "resume",
                wanted: "paused",
            });
        }
        cg.freeze(false)?;
        st.paused = false;
        self.store.save(&st)
    }

    /// Apply new resources to a live container.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let (_, status, cg) = self.cgroup_of(id)?;
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.as_str(),
                op: "update",
                wanted: "created, running or paused",
            });
        }
        libcgroups::validate(resources)?;
        Ok(cg.apply(resources)?)
    }

    pub fn stats(&self, id: &str) -> Result<libcgroups::Stats> {
        let (_, status, cg) = self.cgroup_of(id)?;
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.as_str(),
                op: "events",
                wanted: "running",
            });
        }
        Ok(cg.stats()?)
    }
}
