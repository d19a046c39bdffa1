//! The systemd cgroup driver (`--systemd-cgroup`), as runc's on cgroup v2:
//! the container's cgroup is a transient unit that systemd creates (a
//! scope holding the init, with Delegate=yes; or a slice), started over
//! D-Bus; its limits are given to systemd as unit properties (so that a
//! reload keeps them) and then written to the cgroup files by the v2
//! backend, which also does everything else (freeze, stats, devices).
//!
//! `linux.cgroupsPath` is `slice:prefix:name`: the unit is
//! `prefix-name.scope` in `slice` (default system.slice; `-` is the root
//! slice), or `name` itself when it ends in `.slice`. An empty path means
//! `:hull:<id>`. `org.systemd.property.*` annotations add unit properties
//! (see [`annotations`]).

mod annotations;
mod dbus;

use std::collections::HashMap;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::fs::rmdir_retry;
use crate::settings::settings;
use crate::{Cgroup, CgroupError, CgroupMount, CgroupRoot, CgroupState, Manager, Result, Stats};
use dbus::{Connection, Reply, Value};

const PRIVATE_SOCKET: &str = "/run/systemd/private";
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// True when systemd is PID 1 (as sd_booted(3) checks).
pub fn running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The unit a container's cgroup is, and where systemd puts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// e.g. "hull-abc.scope" or "machine-abc.slice".
    pub name: String,
    /// The parent slice of a scope (e.g. "system.slice", "-.slice").
    pub slice: String,
    /// The cgroup path under the cgroup2 mount, e.g.
    /// "/system.slice/hull-abc.scope".
    pub path: PathBuf,
}

impl Unit {
    fn is_scope(&self) -> bool {
        self.name.ends_with(".scope")
    }
}

fn bad_path(path: &str, why: &str) -> CgroupError {
    CgroupError::invalid(
        "linux.cgroupsPath",
        format!("{path:?}: {why} (the systemd cgroup driver takes \"slice:prefix:name\")"),
    )
}

/// "a-b.slice" -> /a.slice/a-b.slice ("-.slice" is the root), as systemd
/// lays slices out.
pub fn expand_slice(slice: &str) -> std::result::Result<PathBuf, String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("{slice:?} is not a slice name (no .slice suffix)"));
    };
    if slice.contains('/') {
        return Err(format!("slice {slice:?} contains \"/\""));
    }
    let mut path = PathBuf::from("/");
    if stem == "-" {
        return Ok(path);
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(format!("slice {slice:?} is not a valid slice name"));
    }
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Ok(path)
}

/// The unit for a container's `linux.cgroupsPath`.
pub fn unit_for(cgroups_path: Option<&Path>, id: &str) -> Result<Unit> {
    let raw = cgroups_path
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spec = if raw.is_empty() {
        format!(":hull:{id}")
    } else {
        raw.clone()
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(bad_path(&raw, "expected three parts separated by \":\""));
    };
    if name.is_empty() || name.contains('/') {
        return Err(bad_path(&raw, "the name part is empty or has a \"/\""));
    }
    let slice = match slice {
        "" => "system.slice".to_string(),
        "-" => "-.slice".to_string(),
        s => s.to_string(),
    };
    let parent = expand_slice(&slice).map_err(|e| bad_path(&raw, &e))?;
    if name.ends_with(".slice") {
        let path = expand_slice(name).map_err(|e| bad_path(&raw, &e))?;
        return Ok(Unit {
            name: name.into(),
            slice,
            path,
        });
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(Unit {
        path: parent.join(&unit),
        name: unit,
        slice,
    })
}

fn prop(name: &str, v: Value) -> Value {
    Value::Struct(vec![Value::str(name), Value::Variant(Box::new(v))])
}

fn limit(v: &str) -> Option<Value> {
    if v == "max" {
        return Some(Value::U64(u64::MAX));
    }
    v.parse().ok().map(Value::U64)
}

/// "0-2,5" -> systemd's CPU/NUMA bitmask (byte i, bit j = 8i+j).
fn bitmask(list: &str) -> Option<Value> {
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let n = part.parse::<usize>().ok()?;
                (n, n)
            }
        };
        if a > b || b >= 8192 {
            return None;
        }
        for n in a..=b {
            if bytes.len() <= n / 8 {
                bytes.resize(n / 8 + 1, 0);
            }
            bytes[n / 8] |= 1 << (n % 8);
        }
    }
    Some(Value::Array(
        "y".into(),
        bytes.into_iter().map(Value::Byte).collect(),
    ))
}

/// The unit properties for `resources`, from the same translation the
/// cgroupfs backends write (its cgroup v2 half): what systemd should keep
/// when it re-applies a unit's settings.
pub fn properties(r: &LinuxResources) -> Vec<Value> {
    let mut out = Vec::new();
    for s in settings(r) {
        let Some(w) = s.v2 else { continue };
        let v = w.value.trim();
        let p = match w.file.as_str() {
            "memory.max" => limit(v).map(|x| prop("MemoryMax", x)),
            "memory.low" => limit(v).map(|x| prop("MemoryLow", x)),
            "memory.high" => limit(v).map(|x| prop("MemoryHigh", x)),
            "memory.min" => limit(v).map(|x| prop("MemoryMin", x)),
            "memory.swap.max" => limit(v).map(|x| prop("MemorySwapMax", x)),
            "pids.max" => limit(v).map(|x| prop("TasksMax", x)),
            "cpu.weight" => limit(v).map(|x| prop("CPUWeight", x)),
            "cpuset.cpus" => bitmask(v).map(|x| prop("AllowedCPUs", x)),
            "cpuset.mems" => bitmask(v).map(|x| prop("AllowedMemoryNodes", x)),
            "cpu.max" => {
                let (q, period) = v.split_once(' ').unwrap_or((v, "100000"));
                let period: u64 = period.parse().unwrap_or(100_000).max(1);
                // systemd keeps a CPU percentage: round up to 10 ms a
                // second, as runc does, so the exact quota still fits.
                let per_sec = match q.parse::<u64>() {
                    Ok(q) => (q * 1_000_000 / period).div_ceil(10_000) * 10_000,
                    Err(_) => u64::MAX,
                };
                out.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
                Some(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)))
            }
            _ => None,
        };
        out.extend(p);
    }
    out
}

fn connect() -> Result<Connection> {
    Connection::open(Path::new(PRIVATE_SOCKET), None)
        .or_else(|first| {
            Connection::open(Path::new(SYSTEM_BUS), Some("org.freedesktop.systemd1"))
                .map_err(|_| first)
        })
        .map_err(|e| CgroupError::Systemd(format!("cannot reach systemd over D-Bus: {e}")))
}

fn call(conn: &mut Connection, member: &str, args: &[Value]) -> Result<Reply> {
    conn.call_manager(member, args)
        .map_err(|e| CgroupError::Systemd(format!("{member}: {e}")))
}

/// A container cgroup that is a systemd unit, backed by the v2 manager.
pub struct Systemd {
    unit: Unit,
    id: String,
    inner: Cgroup,
    /// Properties from `org.systemd.property.*` annotations.
    extra: Vec<(String, Value)>,
    /// The unit exists and is ours (we started it).
    started: Mutex<bool>,
    /// Resources given before the unit could be started (a scope needs
    /// its first process).
    pending: Mutex<Option<LinuxResources>>,
}

impl Systemd {
    pub fn new(
        root: &CgroupRoot,
        unit: Unit,
        id: &str,
        annotations: Option<&HashMap<String, String>>,
    ) -> Result<Systemd> {
        let extra = match annotations {
            Some(a) => annotations::properties(a)?,
            None => Vec::new(),
        };
        let inner = Cgroup::discover(root, &unit.path)?;
        Ok(Systemd {
            unit,
            id: id.into(),
            inner,
            extra,
            started: Mutex::new(false),
            pending: Mutex::new(None),
        })
    }

    pub fn from_state(name: &str, state: CgroupState) -> Systemd {
        let path = state
            .dirs
            .first()
            .map(|d| {
                let rel = d.path.strip_prefix(&d.mount_point).unwrap_or(&d.path);
                Path::new("/").join(rel)
            })
            .unwrap_or_default();
        Systemd {
            unit: Unit {
                name: name.into(),
                slice: String::new(),
                path,
            },
            id: String::new(),
            inner: Cgroup::from_state(state),
            extra: Vec::new(),
            started: Mutex::new(true),
            pending: Mutex::new(None),
        }
    }

    fn dir(&self) -> PathBuf {
        self.inner.state().dirs[0].path.clone()
    }

    /// StartTransientUnit, then wait until the unit's cgroup holds `pid`
    /// (a scope) or exists (a slice).
    fn start(&self, pid: Option<i32>, resources: Option<&LinuxResources>) -> Result<()> {
        let u = &self.unit;
        let mut props = vec![
            prop(
                "Description",
                Value::str(format!("hull container {}", self.id)),
            ),
            prop("DefaultDependencies", Value::Bool(false)),
            prop("MemoryAccounting", Value::Bool(true)),
            prop("CPUAccounting", Value::Bool(true)),
            prop("IOAccounting", Value::Bool(true)),
            prop("TasksAccounting", Value::Bool(true)),
        ];
        if u.is_scope() {
            props.push(prop("Slice", Value::str(&u.slice)));
            props.push(prop("Delegate", Value::Bool(true)));
            let pids = pid.map(|p| Value::U32(p as u32)).into_iter().collect();
            props.push(prop("PIDs", Value::Array("u".into(), pids)));
        }
        if let Some(r) = resources {
            props.extend(properties(r));
        }
        // Annotations come last: they override ours, as under runc.
        props.extend(self.extra.iter().map(|(n, v)| prop(n, v.clone())));
        let mut conn = connect()?;
        let reply = call(
            &mut conn,
            "StartTransientUnit",
            &[
                Value::str(&u.name),
                Value::str("replace"),
                Value::Array("(sv)".into(), props),
                Value::Array("(sa(sv))".into(), vec![]),
            ],
        )?;
        if let Reply::Error(name, msg) = reply {
            return Err(CgroupError::Systemd(if name.ends_with(".UnitExists") {
                format!("unit {} already exists", u.name)
            } else {
                format!("start unit {}: {msg} ({name})", u.name)
            }));
        }
        let dir = self.dir();
        let want = format!("0::{}", u.path.display());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let done = match pid {
                Some(p) => std::fs::read_to_string(format!("/proc/{p}/cgroup"))
                    .map(|s| s.lines().any(|l| l == want))
                    .unwrap_or(false),
                None => dir.is_dir(),
            };
            if done {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CgroupError::Systemd(format!(
                    "unit {}: its cgroup {} was not ready after 10 s",
                    u.name,
                    dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Start the unit and apply the resources given so far.
    fn start_and_apply(&self, pid: Option<i32>) -> Result<()> {
        let pending = self.pending.lock().expect("lock").take();
        self.start(pid, pending.as_ref())?;
        *self.started.lock().expect("lock") = true;
        // The unit's cgroup exists: the v2 backend finds every directory in
        // place (it creates none) and delegates the controllers down to it,
        // as runc does under systemd.
        let mut inner = self.inner.clone();
        inner.create()?;
        if let Some(r) = pending {
            self.inner.apply(&r)?;
        }
        Ok(())
    }
}

impl Manager for Systemd {
    fn create(&mut self) -> Result<()> {
        if self.unit.is_scope() {
            return Ok(()); // started with the init's pid (add_task)
        }
        self.start_and_apply(None)
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        if !*self.started.lock().expect("lock") {
            self.start_and_apply(Some(pid))?;
            if self.unit.is_scope() {
                return Ok(());
            }
        }
        self.inner.add_task(pid)
    }

    fn apply(&self, r: &LinuxResources) -> Result<()> {
        if !*self.started.lock().expect("lock") {
            *self.pending.lock().expect("lock") = Some(r.clone());
            return Ok(());
        }
        let props = properties(r);
        if !props.is_empty() {
            let mut conn = connect()?;
            let reply = call(
                &mut conn,
                "SetUnitProperties",
                &[
                    Value::str(&self.unit.name),
                    Value::Bool(true),
                    Value::Array("(sv)".into(), props),
                ],
            )?;
            if let Reply::Error(name, msg) = reply {
                return Err(CgroupError::Systemd(format!(
                    "set properties of {}: {msg} ({name})",
                    self.unit.name
                )));
            }
        }
        self.inner.apply(r)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.inner.pids()
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        self.inner.freeze(frozen)
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        if !*self.started.lock().expect("lock") {
            return Ok(());
        }
        self.inner.kill_all(signal)
    }

    fn destroy(&self) -> Result<()> {
        if !*self.started.lock().expect("lock") {
            return Ok(()); // nothing of ours exists (maybe another's unit)
        }
        let mut conn = connect()?;
        let name = Value::str(&self.unit.name);
        if let Reply::Error(err, msg) = call(
            &mut conn,
            "StopUnit",
            &[name.clone(), Value::str("replace")],
        )? {
            if !err.ends_with(".NoSuchUnit") {
                return Err(CgroupError::Systemd(format!(
                    "stop unit {}: {msg} ({err})",
                    self.unit.name
                )));
            }
        }
        // A scope whose processes were killed ends "failed": clear it so
        // the name can be used again. Not loaded any more is fine.
        let _ = call(&mut conn, "ResetFailedUnit", &[name]);
        rmdir_retry(&self.dir())
    }

    fn state(&self) -> CgroupState {
        CgroupState {
            systemd_unit: Some(self.unit.name.clone()),
            ..self.inner.state()
        }
    }

    fn unified_dir(&self) -> Option<PathBuf> {
        self.inner.unified_dir()
    }

    fn clone_into(&self) -> Option<PathBuf> {
        if !*self.started.lock().expect("lock") {
            return None;
        }
        Manager::clone_into(&self.inner)
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    fn mount_sources(&self) -> Vec<CgroupMount> {
        self.inner.mount_sources()
    }

    fn stats(&self) -> Result<Stats> {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(path: &str) -> Result<Unit> {
        unit_for(Some(Path::new(path)), "c1")
    }

    #[test]
    fn cgroups_paths_name_units_as_runc_does() {
        let u = unit_for(None, "c1").unwrap();
        assert_eq!(
            (u.name.as_str(), u.slice.as_str(), u.path.to_str().unwrap()),
            (
                "hull-c1.scope",
                "system.slice",
                "/system.slice/hull-c1.scope"
            )
        );
        let u = unit("machine.slice:libpod:abc").unwrap();
        assert_eq!(u.path, Path::new("/machine.slice/libpod-abc.scope"));
        let u = unit("a-b.slice::x").unwrap();
        assert_eq!(u.name, "x.scope");
        assert_eq!(u.path, Path::new("/a.slice/a-b.slice/x.scope"));
        let u = unit("-:p:x").unwrap();
        assert_eq!(
            (u.slice.as_str(), u.path.to_str().unwrap()),
            ("-.slice", "/p-x.scope")
        );
        let u = unit("system.slice:ignored:k8s-pod1.slice").unwrap();
        assert_eq!(u.name, "k8s-pod1.slice");
        assert_eq!(u.path, Path::new("/k8s.slice/k8s-pod1.slice"));
        for bad in [
            "/abs/path",
            "a:b",
            "x:y:z",
            "a--b.slice:p:n",
            "s.slice:p:",
            "a.slice:p:n/x",
        ] {
            let e = unit(bad).unwrap_err().to_string();
            assert!(e.starts_with("linux.cgroupsPath: "), "{bad}: {e}");
            assert!(e.contains("slice:prefix:name"), "{bad}: {e}");
        }
    }

    #[test]
    fn resources_become_unit_properties() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
            "cpu": {"shares": 1024, "quota": 25000, "period": 100000, "cpus": "0-1,9"},
            "pids": {"limit": 0},
        }))
        .unwrap();
        let got: Vec<(String, Value)> = properties(&r)
            .into_iter()
            .map(|p| match p {
                Value::Struct(f) => match (&f[0], &f[1]) {
                    (Value::Str(n), Value::Variant(v)) => (n.clone(), (**v).clone()),
                    _ => panic!("{f:?}"),
                },
                p => panic!("{p:?}"),
            })
            .collect();
        let find = |n: &str| got.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(find("MemoryMax"), Some(Value::U64(67108864)));
        assert_eq!(find("MemoryLow"), Some(Value::U64(33554432)));
        assert_eq!(find("MemorySwapMax"), Some(Value::U64(67108864)));
        assert_eq!(find("CPUWeight"), Some(Value::U64(100)));
        assert_eq!(find("CPUQuotaPerSecUSec"), Some(Value::U64(250_000)));
        assert_eq!(find("CPUQuotaPeriodUSec"), Some(Value::U64(100_000)));
        assert_eq!(find("TasksMax"), Some(Value::U64(u64::MAX)));
        assert_eq!(
            find("AllowedCPUs"),
            Some(Value::Array(
                "y".into(),
                vec![Value::Byte(0b11), Value::Byte(0b10)]
            ))
        );
        // 1 ms a second is rounded up to systemd's 10 ms granularity.
        let r: LinuxResources =
            serde_json::from_value(serde_json::json!({"cpu": {"quota": 1000, "period": 1000000}}))
                .unwrap();
        assert!(properties(&r).contains(&prop("CPUQuotaPerSecUSec", Value::U64(10_000))));
    }
}
