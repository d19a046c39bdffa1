//! The cgroupfs manager: one directory per mounted hierarchy (one on a
//! cgroup2 host), written through the shared settings translation.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::mountinfo::{own_path, parse_mountinfo, Hierarchy};
use crate::settings::{settings, Setting, Write};
use crate::{
    devices, stats, CgroupError, CgroupMount, CgroupRoot, CgroupState, Dir, Manager, Result, Stats,
};

pub(crate) fn write_file(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.into(),
        source,
    })
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, e))
}

/// A container's cgroup.
#[derive(Debug, Clone)]
pub struct Cgroup {
    state: CgroupState,
}

impl Cgroup {
    /// The directories for `path` in every hierarchy mounted under `root`.
    pub fn discover(root: &CgroupRoot, path: &Path) -> Result<Cgroup> {
        let mountinfo = read_file(Path::new("/proc/self/mountinfo"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let hierarchies = parse_mountinfo(&mountinfo, &root.path);
        let v2_host = hierarchies
            .iter()
            .any(|h| h.v2 && h.mount_point == root.path);
        let chosen: Vec<&Hierarchy> = if v2_host {
            hierarchies
                .iter()
                .filter(|h| h.mount_point == root.path)
                .collect()
        } else {
            hierarchies.iter().collect()
        };
        if chosen.is_empty() {
            return Err(CgroupError::NoCgroupFs(root.path.clone()));
        }
        let dirs = chosen
            .into_iter()
            .map(|h| {
                let base = if path.is_absolute() {
                    PathBuf::from("/")
                } else {
                    own_path(&own, h)
                };
                let rel = base.join(path);
                let controllers = if h.v2 {
                    std::fs::read_to_string(h.mount_point.join("cgroup.controllers"))
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(String::from)
                        .collect()
                } else {
                    h.controllers.clone()
                };
                Dir {
                    path: h.mount_point.join(rel.strip_prefix("/").unwrap_or(&rel)),
                    mount_point: h.mount_point.clone(),
                    controllers,
                    v2: h.v2,
                    created: Vec::new(),
                }
            })
            .collect();
        Ok(Cgroup {
            state: CgroupState {
                v2_host,
                dirs,
                systemd_unit: None,
            },
        })
    }

    pub fn from_state(state: CgroupState) -> Cgroup {
        Cgroup { state }
    }

    fn dir_with(&self, controller: &str) -> Option<&Dir> {
        self.state
            .dirs
            .iter()
            .find(|d| !d.v2 && d.controllers.iter().any(|c| c == controller))
    }

    fn unified(&self) -> Option<&Dir> {
        self.state.dirs.iter().find(|d| d.v2)
    }

    /// Where one setting's write goes on this host, if anywhere.
    fn target(&self, s: &Setting) -> Result<Option<(PathBuf, Write)>> {
        let unified = self.unified();
        if self.state.v2_host {
            let d = unified.expect("a v2 host has its dir");
            return Ok(s.v2.clone().map(|w| (d.path.clone(), w)));
        }
        if let Some(w) = &s.v1 {
            if let Some(d) = self.dir_with(w.controller) {
                return Ok(Some((d.path.clone(), w.clone())));
            }
            // Hybrid hosts may have a controller (hugetlb here) only in the unified mount.
            if let (Some(u), Some(v2)) = (unified, &s.v2) {
                if u.controllers.iter().any(|c| c == v2.controller) {
                    return Ok(Some((u.path.clone(), v2.clone())));
                }
            }
            return Err(CgroupError::Unsupported {
                field: s.field.into(),
                reason: format!("the {} controller is not mounted", w.controller),
            });
        }
        if s.field == "linux.resources.unified" {
            return match (unified, &s.v2) {
                (Some(u), Some(w)) if u.controllers.iter().any(|c| c == w.controller) => {
                    Ok(Some((u.path.clone(), w.clone())))
                }
                _ => Err(CgroupError::Unsupported {
                    field: s.field.into(),
                    reason: "unified settings need cgroup v2".into(),
                }),
            };
        }
        Ok(None)
    }

    fn mkdirs(dir: &mut Dir) -> Result<()> {
        let rel = dir
            .path
            .strip_prefix(&dir.mount_point)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        // A runtime deleting its container may remove a parent we found
        // (it made it): then the whole walk starts again.
        let mut attempts = 0;
        'walk: loop {
            let mut cur = dir.mount_point.clone();
            for c in rel.components() {
                let parent = cur.clone();
                cur.push(c);
                match std::fs::create_dir(&cur) {
                    Ok(()) => dir.created.push(cur.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 50 => {
                        attempts += 1;
                        continue 'walk;
                    }
                    Err(e) => return Err(CgroupError::io("mkdir", &cur, e)),
                }
                if !dir.v2 && dir.controllers.iter().any(|c| c == "cpuset") {
                    // A new cpuset is empty; tasks cannot join until it has
                    // cpus and mems. Also for one that exists: another
                    // runtime may have just made it and not filled it yet.
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        if read_file(&cur.join(f))?.trim().is_empty() {
                            let v = read_file(&parent.join(f))?;
                            write_file(&cur.join(f), v.trim())?;
                        }
                    }
                }
            }
            break;
        }
        if dir.v2 {
            // Every ancestor delegates its controllers (also ones that
            // existed before, e.g. a shared parent).
            let mut anc = dir.mount_point.clone();
            for c in rel.components() {
                enable_controllers(&anc);
                anc.push(c);
            }
        }
        Ok(())
    }
}

/// Delegate every available controller to the children of `dir`.
fn enable_controllers(dir: &Path) {
    let avail = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    for c in avail.split_whitespace() {
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
    }
}

pub(crate) fn rmdir_retry(path: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(CgroupError::io("rmdir", path, e)),
        }
    }
}

fn rmdir_parent(path: &Path) -> Result<()> {
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => Ok(()),
        Err(e) => Err(CgroupError::io("rmdir", path, e)),
    }
}

fn wait_for(what: &Path, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done()? {
        if Instant::now() > deadline {
            return Err(CgroupError::State {
                path: what.to_path_buf(),
                what: "timed out waiting for the freezer".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

impl Manager for Cgroup {
    fn create(&mut self) -> Result<()> {
        // Delegate the controllers of a cgroup2 root (on hybrid hosts too,
        // where hugetlb may live only there).
        for d in self.state.dirs.iter().filter(|d| d.v2) {
            enable_controllers(&d.mount_point);
        }
        for i in 0..self.state.dirs.len() {
            if let Err(e) = Cgroup::mkdirs(&mut self.state.dirs[i]) {
                // Nothing half-made stays: remove what this call created.
                let _ = self.destroy();
                return Err(e);
            }
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        for d in &self.state.dirs {
            write_file(&d.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<()> {
        let mut deferred: Vec<(PathBuf, Write)> = Vec::new();
        for s in settings(r) {
            let Some((dir, w)) = self.target(&s)? else {
                continue;
            };
            let mut path = dir.join(&w.file);
            if matches!(
                w.file.as_str(),
                "blkio.weight" | "blkio.weight_device" | "blkio.leaf_weight"
            ) && !path.exists()
            {
                // CFQ's files, else BFQ's; with neither scheduler the
                // weight is skipped with a warning, as runc does.
                let bfq = dir.join(w.file.replace("blkio.", "blkio.bfq."));
                if !bfq.exists() {
                    tracing::warn!("{}: no {} on this host, skipped", s.field, w.file);
                    continue;
                }
                path = bfq;
            }
            if w.file == "memory.memsw.limit_in_bytes" || w.file == "memory.kmem.tcp.limit_in_bytes"
            {
                if !path.exists() {
                    continue; // no swap/kmem accounting in this kernel
                }
                if w.file.starts_with("memory.memsw") && write_file(&path, &w.value).is_err() {
                    deferred.push((path, w)); // lowering: limit first, then mem+swap
                }
                // kernelTCP (NOT RECOMMENDED in the spec) is not set, as
                // runc 1.1 does not set it.
                continue;
            }
            write_file(&path, &w.value)?;
        }
        for (path, w) in deferred {
            write_file(&path, &w.value)?;
        }
        if let Some(rules) = r.devices().as_ref().filter(|r| !r.is_empty()) {
            if self.state.v2_host {
                crate::bpf::attach(&self.state.dirs[0].path, rules)?;
            } else if let Some(d) = self.dir_with("devices") {
                devices::apply_v1(&d.path, rules)?;
            }
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let d = if self.state.v2_host {
            self.unified()
        } else {
            self.dir_with("pids")
                .or_else(|| self.dir_with("memory"))
                .or(self.state.dirs.first())
        };
        let Some(d) = d else { return Ok(Vec::new()) };
        let path = d.path.join("cgroup.procs");
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(CgroupError::io("read", path, e)),
        }
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        if self.state.v2_host {
            let d = self.unified().expect("v2 dir");
            write_file(
                &d.path.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            )?;
            let events = d.path.join("cgroup.events");
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            return wait_for(&events, || {
                Ok(read_file(&events)?.lines().any(|l| l == want))
            });
        }
        let d = self
            .dir_with("freezer")
            .ok_or_else(|| CgroupError::Unsupported {
                field: "freezer".into(),
                reason: "the freezer controller is not mounted".into(),
            })?;
        let state = d.path.join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        wait_for(&state, || {
            write_file(&state, want)?;
            Ok(read_file(&state)?.trim() == want)
        })
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        if self.state.v2_host && signal == libc::SIGKILL {
            let kill = self.unified().expect("v2 dir").path.join("cgroup.kill");
            if kill.exists() {
                return write_file(&kill, "1");
            }
        }
        for _ in 0..if signal == libc::SIGKILL { 20 } else { 1 } {
            let pids = self.pids()?;
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: kill(2) with a pid read from cgroup.procs.
                unsafe { libc::kill(p, signal) };
            }
            if signal == libc::SIGKILL {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(())
    }

    fn destroy(&self) -> Result<()> {
        // Every hierarchy is tried; the first failure is reported.
        let mut first = Ok(());
        for d in &self.state.dirs {
            for p in d.created.iter().rev() {
                let r = if *p == d.path {
                    rmdir_retry(p)
                } else {
                    // A parent we made may hold another container's cgroup
                    // by now: then it is theirs to remove.
                    rmdir_parent(p)
                };
                if let Err(e) = r {
                    if first.is_ok() {
                        first = Err(e);
                    }
                    break; // its parents cannot go either
                }
            }
        }
        first
    }

    fn state(&self) -> CgroupState {
        self.state.clone()
    }

    fn unified_dir(&self) -> Option<PathBuf> {
        self.state.v2_host.then(|| self.state.dirs[0].path.clone())
    }

    fn clone_into(&self) -> Option<PathBuf> {
        self.unified().map(|d| d.path.clone())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        self.state
            .dirs
            .iter()
            .filter(|d| !d.v2)
            .map(|d| d.path.join("tasks"))
            .collect()
    }

    fn mount_sources(&self) -> Vec<CgroupMount> {
        self.state
            .dirs
            .iter()
            .map(|d| CgroupMount {
                name: d
                    .mount_point
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                host_dir: d.path.clone(),
                mount_point: d.mount_point.clone(),
                fstype: if d.v2 { "cgroup2" } else { "cgroup" },
                options: d.controllers.join(","),
            })
            .collect()
    }

    fn stats(&self) -> Result<Stats> {
        if self.state.v2_host {
            return Ok(stats::v2(&self.unified().expect("v2 dir").path));
        }
        Ok(stats::v1(
            self.dir_with("memory").map(|d| d.path.as_path()),
            self.dir_with("cpuacct").map(|d| d.path.as_path()),
            self.dir_with("pids").map(|d| d.path.as_path()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_dirs_get_cpus_and_mems_also_when_they_exist_empty() {
        let tmp = std::env::temp_dir().join(format!("hull-cpuset-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        // The root has values; "shared" was made by another runtime that
        // has not filled it yet.
        std::fs::create_dir_all(tmp.join("shared")).unwrap();
        for (f, v) in [("cpuset.cpus", "0-1\n"), ("cpuset.mems", "0\n")] {
            std::fs::write(tmp.join(f), v).unwrap();
            std::fs::write(tmp.join("shared").join(f), "\n").unwrap();
        }
        // A real cpuset dir comes with its (empty) files; mimic that.
        let leaf = tmp.join("shared/ctr");
        let mut dir = Dir {
            path: leaf.clone(),
            mount_point: tmp.clone(),
            controllers: vec!["cpuset".into()],
            v2: false,
            created: vec![],
        };
        std::fs::create_dir(&leaf).unwrap();
        for f in ["cpuset.cpus", "cpuset.mems"] {
            std::fs::write(leaf.join(f), "").unwrap();
        }
        Cgroup::mkdirs(&mut dir).unwrap();
        for (f, v) in [("cpuset.cpus", "0-1"), ("cpuset.mems", "0")] {
            assert_eq!(read_file(&tmp.join("shared").join(f)).unwrap().trim(), v);
            assert_eq!(read_file(&leaf.join(f)).unwrap().trim(), v);
        }
        assert!(dir.created.is_empty(), "existing dirs are not ours");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
