//! The lifecycle operations: create, start, state, kill, delete, list.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcgroups::{CgroupRoot, Manager};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{Hooks, LinuxDeviceCgroup, LinuxNamespaceType, LinuxResources};

use crate::config::{ns_flag, Config};
use crate::error::{Error, Result};
use crate::hooks;
use crate::init::{ExecPlan, InitPlan};
use crate::spawn::{self, IdMaps};
use crate::state::{process_start_time, State, Status, Store, EXEC_FIFO};

/// Options of `create` (runc's flags).
#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Socket-activation fds (3..3+N) passed before the preserved ones, as
    /// runc does when LISTEN_FDS is set for it; the process gets
    /// LISTEN_FDS=N and LISTEN_PID=1.
    pub listen_fds: u32,
    pub systemd_cgroup: bool,
    /// When the init would be visible to existing processes (a joined or the
    /// host's pid namespace), first re-execute the runtime from a sealed
    /// memfd copy of its binary (see [`crate::sys::reexec_sealed`]). For
    /// command-line use only: it replaces the calling process.
    pub seal_exe: bool,
    /// The caller's NOTIFY_SOCKET: the container gets a socket of its own
    /// at [`crate::notify::CONTAINER_SOCKET`], which `start` or `run` relays
    /// there (see [`crate::notify`]).
    pub notify_socket: Option<PathBuf>,
}

/// A created container.
pub struct Created {
    pub pid: i32,
    /// The pty master when the process has a terminal and no console socket was given.
    pub console: Option<OwnedFd>,
}

/// Entry point for all operations on one state root.
pub struct Runtime {
    pub store: Store,
    pub cgroup_root: CgroupRoot,
}

/// Undoes a half-done create: cgroup and state dir, then the poststop
/// hooks once the lifecycle has begun (runtime.md: a failed create
/// continues at step 12, destroy, and 13, poststop).
struct CreateGuard<'a> {
    store: &'a Store,
    id: &'a str,
    cgroup: Option<Box<dyn Manager>>,
    /// The hooks and the state JSON they get.
    poststop: Option<(Option<Hooks>, Vec<u8>)>,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.destroy();
        }
        let _ = self.store.remove(self.id);
        if let Some((hooks, state)) = &self.poststop {
            warn_poststop(hooks.as_ref(), state);
        }
    }
}

/// poststop hooks: each runs; a failure is a warning (runtime.md step 13).
fn warn_poststop(hooks: Option<&Hooks>, state: &[u8]) {
    for e in hooks::run_each(hooks, "poststop", state) {
        tracing::warn!("{e}");
    }
}

/// The devices cgroup rules runc applies: the config's, then the default
/// allowed devices. `linux.devices` entries get no rule of their own: the
/// config's rules decide, in their order, whether they can be opened.
pub(crate) fn device_rules(resources: Option<&LinuxResources>) -> LinuxResources {
    let mut r = resources.cloned().unwrap_or_default();
    let mut rules: Vec<LinuxDeviceCgroup> = r.devices().clone().unwrap_or_default();
    rules.extend(libcgroups::default_allowed_devices());
    r.set_devices(Some(rules));
    r
}

fn id_maps(cfg: &Config) -> Option<IdMaps> {
    let linux = cfg.spec.linux().as_ref()?;
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    Some(IdMaps {
        uid: fmt(linux.uid_mappings()),
        gid: fmt(linux.gid_mappings()),
    })
}

fn time_offsets(cfg: &Config) -> Option<String> {
    if !cfg.new_ns.contains(ns_flag(LinuxNamespaceType::Time)) {
        return None;
    }
    let offsets = cfg.spec.linux().as_ref()?.time_offsets().as_ref()?;
    let mut out = String::new();
    for (clock, off) in offsets {
        out.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    Some(out)
}

pub(crate) fn open_path(path: &Path, flags: OFlag) -> Result<OwnedFd> {
    nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("open {}", path.display()), e))
}

/// Write a file by temp + rename, as runc does for pid files.
pub fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io("write", path, e))
}

/// Wait until `pid` (started at `start`) is gone.
/// Gives the agent of `linux.seccomp.listenerPath` the notify fd of `pid`.
pub(crate) fn send_seccomp_fd(
    cfg: &Config,
    pid: i32,
    fd: &OwnedFd,
    state: serde_json::Value,
) -> Result<()> {
    let Some(listener) = cfg.seccomp.as_ref().and_then(|f| f.listener.as_ref()) else {
        return Err(Error::Init("a seccomp fd without a listener".into()));
    };
    let msg = crate::seccomp::listener::process_state(listener, pid, state);
    crate::seccomp::listener::send(listener, fd, &msg)
}

fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    while process_start_time(pid) == Some(start) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    true
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            store: Store::new(root),
            cgroup_root: CgroupRoot::default(),
        }
    }

    pub fn create(&self, opts: &CreateOpts) -> Result<Created> {
        let (mut raw, bundle) = Config::read(&opts.bundle)?;
        if opts.notify_socket.is_some() {
            crate::notify::add_to_spec(&mut raw, &self.store.dir(&opts.id));
        }
        let cfg = Config::from_value(&mut raw, bundle)?;
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        let process = cfg.process()?;
        let fresh_pid_ns = cfg.new_ns.contains(ns_flag(LinuxNamespaceType::Pid));
        if opts.seal_exe && !fresh_pid_ns && !crate::sys::running_sealed() {
            let e = crate::sys::reexec_sealed().unwrap_err();
            return Err(Error::sys("re-exec from a sealed copy of the runtime", e));
        }
        let dir = self.store.create_dir(&opts.id)?;
        let mut guard = CreateGuard {
            store: &self.store,
            id: &opts.id,
            cgroup: None,
            poststop: None,
            armed: true,
        };
        if opts.notify_socket.is_some() {
            crate::notify::make_dir(&dir)?;
        }
        let linux = cfg.spec.linux().as_ref();
        let cgroups_path = linux.and_then(|l| l.cgroups_path().as_deref());
        let mut cg = libcgroups::manager_for(
            &self.cgroup_root,
            cgroups_path,
            &opts.id,
            opts.systemd_cgroup,
            cfg.spec.annotations().as_ref(),
        )?;
        cg.create()?;
        let cg = &**guard.cgroup.insert(cg);
        cg.apply(&device_rules(linux.and_then(|l| l.resources().as_ref())))?;

        let fifo = dir.join(EXEC_FIFO);
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
            .map_err(|e| Error::sys(format!("mkfifo {}", fifo.display()), e))?;
        std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
            .map_err(|e| Error::io("chmod", &fifo, e))?;
        let state_dir = open_path(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let join = cfg
            .join_ns
            .iter()
            .map(|j| {
                open_path(&j.path, OFlag::O_RDONLY)
                    .map(|fd| (ns_flag(j.kind), fd))
                    .map_err(|_| {
                        Error::config(
                            "linux.namespaces",
                            format!("cannot open {}", j.path.display()),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let new_user = cfg.new_ns.contains(ns_flag(LinuxNamespaceType::User));
        let uses_cgroup_mount = cfg
            .mounts
            .iter()
            .any(|m| m.kind == crate::config::mounts::MountKind::Cgroup);
        let hooks_cfg = cfg.spec.hooks().as_ref();
        let plan = InitPlan {
            config: &cfg,
            join,
            join_pidfd: None,
            new_user,
            unshare: cfg.new_ns - ns_flag(LinuxNamespaceType::User),
            time_offsets: time_offsets(&cfg),
            state_dir: Some(state_dir),
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            preserve_fds: opts.listen_fds + opts.preserve_fds,
            container_id: opts.id.clone(),
            cgroup_tasks: cg.self_join_files(),
            cgroup_mounts: if uses_cgroup_mount {
                cg.mount_sources()
            } else {
                Vec::new()
            },
            hooks: hooks::needs_round_trip(hooks_cfg),
            exec: ExecPlan::new(process, opts.listen_fds),
        };
        let mut state = State {
            id: opts.id.clone(),
            pid: 0,
            pid_start: 0,
            bundle: cfg.bundle.clone(),
            rootfs: cfg.rootfs.clone(),
            created: crate::time::now_rfc3339(true),
            owner: String::new(),
            annotations: cfg.spec.annotations().clone().unwrap_or_default(),
            cgroup: cg.state(),
            hooks: cfg.spec.hooks().clone(),
            paused: false,
            started: false,
        };
        guard.poststop = Some((
            cfg.spec.hooks().clone(),
            serde_json::to_vec(&state.oci_json(Status::Stopped)).expect("state serializes"),
        ));
        let cgroup_fd = match cg.clone_into() {
            Some(d) => Some(open_path(&d, OFlag::O_PATH | OFlag::O_DIRECTORY)?),
            None => None,
        };
        let maps = if new_user { id_maps(&cfg) } else { None };
        let mut on_hooks = |pid: i32| -> Result<Vec<u8>> {
            let mut s = state.clone();
            s.pid = pid;
            let mut json = s.oci_json(Status::Running);
            json["status"] = "creating".into();
            let bytes = serde_json::to_vec(&json).expect("state serializes");
            hooks::run(hooks_cfg, "prestart", &bytes)?;
            hooks::run(hooks_cfg, "createRuntime", &bytes)?;
            Ok(bytes)
        };
        let mut on_seccomp = |pid: i32, fd: OwnedFd| -> Result<()> {
            let mut s = state.clone();
            s.pid = pid;
            let mut json = s.oci_json(Status::Running);
            json["status"] = "creating".into();
            send_seccomp_fd(&cfg, pid, &fd, json)
        };
        let net_devices = linux
            .and_then(|l| l.net_devices().clone())
            .unwrap_or_default();
        let mut setup = |pid: i32| crate::netdev::move_devices(&net_devices, pid);
        let spawned = spawn::spawn(
            &plan,
            cgroup_fd.as_ref(),
            maps.as_ref(),
            &mut spawn::Parent {
                join_cgroup: &|pid| Ok(cg.add_task(pid)?),
                setup: &mut setup,
                on_hooks: &mut on_hooks,
                on_seccomp: &mut on_seccomp,
            },
        );
        let spawned = spawned?;
        let kill_init = |e: Error| {
            let _ = kill(Pid::from_raw(spawned.pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(spawned.pid), None);
            e
        };
        state.pid = spawned.pid;
        state.pid_start = process_start_time(spawned.pid).unwrap_or(0);
        self.store.save(&state).map_err(kill_init)?;
        if let Some(p) = &opts.pid_file {
            write_atomic(p, &spawned.pid.to_string()).map_err(kill_init)?;
        }
        let mut console = spawned.console;
        if let (Some(sock), Some(master)) = (&opts.console_socket, &console) {
            crate::console::send_to_socket(sock, master).map_err(kill_init)?;
            console = None;
        }
        guard.armed = false;
        Ok(Created {
            pid: spawned.pid,
            console,
        })
    }

    /// Load a container and its live status.
    pub fn load(&self, id: &str) -> Result<(State, Status)> {
        let st = self.store.load(id)?;
        let status = st.status(&self.store.dir(id));
        Ok((st, status))
    }

    pub fn start(&self, id: &str) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let (mut st, status) = self.load(id)?;
        if status != Status::Created {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.as_str(),
                op: "start",
                wanted: "created",
            });
        }
        let fifo = self.store.dir(id).join(EXEC_FIFO);
        let fd = open_path(&fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        let failed = self.await_exec(id, &st, &fd, &fifo)?;
        let _ = std::fs::remove_file(&fifo);
        st.started = true;
        self.store.save(&st)?;
        if let Some(e) = failed {
            let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
            return Err(e);
        }
        let json = serde_json::to_vec(&st.oci_json(Status::Running)).expect("state serializes");
        if let Err(e) = hooks::run(st.hooks.as_ref(), "poststart", &json) {
            let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
            return Err(e);
        }
        Ok(())
    }

    /// The start side of exec.fifo. The init opens it for writing (which
    /// waits for us), writes one byte, runs the startContainer hooks and
    /// execs; the write end is close-on-exec, so end of file means the user
    /// program runs (poststart hooks may go), and anything written after the
    /// byte is the init's error (a failed hook or execve).
    fn await_exec(&self, id: &str, st: &State, fd: &OwnedFd, fifo: &Path) -> Result<Option<Error>> {
        let mut opened = false;
        let mut said = Vec::new();
        loop {
            let mut buf = [0u8; 512];
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) if opened => break,
                Ok(n) if n > 0 && !opened => {
                    opened = true;
                    said.extend_from_slice(&buf[1..n]);
                }
                Ok(n) => said.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::sys(format!("read {}", fifo.display()), e)),
            }
            if !opened && process_start_time(st.pid) != Some(st.pid_start) {
                // Its byte may have come since our read: then it executed
                // the user's program, which has already exited.
                match nix::unistd::read(fd, &mut buf) {
                    Ok(n) if n > 0 => {
                        opened = true;
                        said.extend_from_slice(&buf[1..n]);
                        continue;
                    }
                    _ => {
                        return Err(Error::Init(format!(
                            "container {id:?} init exited before start"
                        )))
                    }
                }
            }
            let pfd =
                nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(fd), nix::poll::PollFlags::POLLIN);
            let _ = nix::poll::poll(&mut [pfd], nix::poll::PollTimeout::from(20u8));
        }
        Ok((!said.is_empty())
            .then(|| Error::Init(String::from_utf8_lossy(&said).trim_end().to_string())))
    }

    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let (st, status) = self.load(id)?;
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.as_str(),
                op: "kill",
                wanted: "created, running or paused",
            });
        }
        if all {
            let cg = libcgroups::manager_from_state(&self.cgroup_root, &st.cgroup)?;
            return Ok(cg.kill_all(signal)?);
        }
        let sig = Signal::try_from(signal).map_err(|_| Error::InvalidSignal(signal.to_string()))?;
        kill(Pid::from_raw(st.pid), sig).map_err(|e| Error::sys(format!("kill {}", st.pid), e))
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let (st, status) = self.load(id)?;
        let cg = libcgroups::manager_from_state(&self.cgroup_root, &st.cgroup);
        match status {
            Status::Stopped => {}
            Status::Created => {}
            _ if force => {}
            _ => {
                return Err(Error::WrongState {
                    id: id.into(),
                    status: status.as_str(),
                    op: "delete",
                    wanted: "stopped (or --force)",
                })
            }
        }
        if status != Status::Stopped {
            if let Ok(cg) = &cg {
                if status == Status::Paused {
                    let _ = cg.freeze(false);
                }
            }
            let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
            if !wait_gone(st.pid, st.pid_start, Duration::from_secs(10)) {
                return Err(Error::Init(format!(
                    "container {id:?}: init {} did not die",
                    st.pid
                )));
            }
        }
        if let Ok(cg) = &cg {
            let _ = cg.kill_all(libc::SIGKILL);
            cg.destroy()?;
        }
        let json = serde_json::to_vec(&st.oci_json(Status::Stopped)).expect("state serializes");
        warn_poststop(st.hooks.as_ref(), &json);
        self.store.remove(id)
    }

    pub fn list(&self) -> Result<Vec<(State, Status)>> {
        let mut out = Vec::new();
        for id in self.store.list()? {
            if let Ok(s) = self.load(&id) {
                out.push(s);
            }
        }
        Ok(out)
    }
}
