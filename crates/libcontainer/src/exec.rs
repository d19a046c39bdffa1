//! `exec`: start another process in a running container, through the same
//! stage 1 / init code as `create` (joining every namespace of the init
//! instead of creating them, skipping the rootfs).

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxNamespaceType;
use serde_json::Value;

use crate::config::{ns_flag, ns_name, Config};
use crate::container::{open_path, write_atomic, Created, Runtime};
use crate::error::{Error, Result};
use crate::init::{ExecPlan, InitPlan};
use crate::spawn;
use crate::state::{process_start_time, State, Status};

/// Options of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOpts {
    pub id: String,
    /// The process object (config.json's `process` shape).
    pub process: Value,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// Re-execute from a sealed copy of the binary first (command-line use).
    pub seal_exe: bool,
    /// Existing sub-cgroups of the container's to run in (runc's
    /// `--cgroup [CONTROLLER[,CONTROLLER]:]PATH`).
    pub sub_cgroups: Vec<String>,
}

const ALL_NS: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
];

/// Namespaces to join by pidfd, and by fd.
type Join = (Option<(OwnedFd, CloneFlags)>, Vec<(CloneFlags, OwnedFd)>);

/// The init's namespaces, to join through its pidfd in one setns(2) where
/// the kernel allows (all at once, and never those of a process that got
/// the init's pid later), else through one /proc/PID/ns/* fd each.
fn init_namespaces(cfg: &Config, st: &State) -> Result<Join> {
    let kinds: Vec<LinuxNamespaceType> =
        ALL_NS.iter().copied().filter(|k| cfg.has_ns(*k)).collect();
    let flags = kinds
        .iter()
        .fold(CloneFlags::empty(), |f, k| f | ns_flag(*k));
    if !flags.is_empty() && crate::sys::pidfd_setns_supported() {
        let pidfd = crate::sys::pidfd_open(st.pid)
            .map_err(|e| Error::sys(format!("pidfd_open({})", st.pid), e))?;
        // The pidfd is the init's only if the process it names started
        // when the init did.
        if process_start_time(st.pid) != Some(st.pid_start) {
            return Err(Error::CannotExec {
                id: st.id.clone(),
                status: Status::Stopped.as_str(),
            });
        }
        tracing::debug!(
            "exec: joining the namespaces of pid {} through a pidfd",
            st.pid
        );
        return Ok((Some((pidfd, flags)), Vec::new()));
    }
    let fds = kinds
        .iter()
        .map(|k| {
            let path = format!("/proc/{}/ns/{}", st.pid, ns_name(*k));
            open_path(path.as_ref(), OFlag::O_RDONLY).map(|fd| (ns_flag(*k), fd))
        })
        .collect::<Result<Vec<_>>>()?;
    tracing::debug!(
        "exec: joining the namespaces of pid {} through /proc",
        st.pid
    );
    Ok((None, fds))
}

impl Runtime {
    /// The container's config.json as JSON (the defaults for an exec process).
    pub fn container_config(&self, id: &str) -> Result<Value> {
        let (st, _) = self.load(id)?;
        let path = st.bundle.join("config.json");
        let text = std::fs::read(&path).map_err(|source| Error::ReadConfig {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| Error::ParseConfig { path, source })
    }

    pub fn exec(&self, opts: &ExecOpts) -> Result<Created> {
        let (st, status) = self.load(&opts.id)?;
        match status {
            // As runc: a created container (its init waiting to be
            // started) can be exec'd into too.
            Status::Running | Status::Created => {}
            Status::Paused if opts.ignore_paused => {}
            _ => {
                return Err(Error::CannotExec {
                    id: opts.id.clone(),
                    status: status.as_str(),
                })
            }
        }
        if opts.seal_exe && !crate::sys::running_sealed() {
            let e = crate::sys::reexec_sealed().unwrap_err();
            return Err(Error::sys("re-exec from a sealed copy of the runtime", e));
        }
        let mut raw = self.container_config(&opts.id)?;
        raw["process"] = opts.process.clone();
        let cfg = Config::from_value(&mut raw, st.bundle.clone())?;
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        let process = cfg.process()?;
        let (join_pidfd, join) = init_namespaces(&cfg, &st)?;
        let cg_state = if opts.sub_cgroups.is_empty() {
            st.cgroup.clone()
        } else {
            let subs = libcgroups::parse_sub_cgroups(&opts.sub_cgroups)?;
            libcgroups::sub_cgroup(&st.cgroup, &subs)?
        };
        let cg = libcgroups::manager_from_state(&self.cgroup_root, &cg_state)?;
        let plan = InitPlan {
            config: &cfg,
            join,
            join_pidfd,
            new_user: false,
            unshare: nix::sched::CloneFlags::empty(),
            time_offsets: None,
            state_dir: None,
            no_pivot: false,
            no_new_keyring: true,
            preserve_fds: opts.preserve_fds,
            container_id: opts.id.clone(),
            cgroup_mounts: Vec::new(),
            cgroup_tasks: cg.self_join_files(),
            hooks: false,
            exec: ExecPlan::new(process, 0),
        };
        let cgroup_fd = match cg.clone_into() {
            Some(d) => Some(open_path(&d, OFlag::O_PATH | OFlag::O_DIRECTORY)?),
            None => None,
        };
        let mut no_hooks = |_pid: i32| -> Result<Vec<u8>> { Ok(Vec::new()) };
        let mut on_seccomp = |pid: i32, fd: std::os::fd::OwnedFd| -> Result<()> {
            let state = st.oci_json(Status::Running);
            crate::container::send_seccomp_fd(&cfg, pid, &fd, state)
        };
        let spawned = spawn::spawn(
            &plan,
            cgroup_fd.as_ref(),
            None,
            &mut spawn::Parent {
                join_cgroup: &|pid| Ok(cg.add_task(pid)?),
                setup: &mut |_| Ok(()),
                on_hooks: &mut no_hooks,
                on_seccomp: &mut on_seccomp,
            },
        )?;
        if let Some(p) = &opts.pid_file {
            write_atomic(p, &spawned.pid.to_string())?;
        }
        let mut console = spawned.console;
        if let (Some(sock), Some(master)) = (&opts.console_socket, &console) {
            crate::console::send_to_socket(sock, master)?;
            console = None;
        }
        Ok(Created {
            pid: spawned.pid,
            console,
        })
    }
}
