//! Shared helpers for the integration tests.
//!
//! The runtime under test is `hull` itself, or whatever `HULL_TEST_RUNTIME`
//! names (for example `runc`, to check the tests against a reference
//! runtime). Every test gets a [`Ctx`]: a private scratch directory, a
//! private `--root` state directory and unique container ids. Containers a
//! test created are force-deleted when the `Ctx` is dropped, so a failing
//! test does not leak them.
//!
//! Bundles share one busybox root filesystem (built on first use and cached
//! under the target's tmp dir), mounted read-only (`root.readonly`). Tests that need to write to `/` call
//! [`Bundle::writable_rootfs`] to get a private copy; anything else should
//! write to a tmpfs or a bind mount. Mount destinations must exist in the
//! shared rootfs (see [`MOUNT_POINTS`]) or lie below a tmpfs the test mounts,
//! so a runtime never has to create directories in the shared tree.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use config::default_config;
pub use serde_json::{json, Value};

mod config;
mod runtime;

pub use runtime::{Opts, Output, Runtime};

/// How long a single runtime invocation may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Directories that exist in the shared rootfs for use as mount points.
pub const MOUNT_POINTS: &[&str] = &["/mnt/a", "/mnt/b", "/mnt/c", "/mnt/ctl"];

/// The runtime binary under test.
pub fn runtime() -> PathBuf {
    match std::env::var_os("HULL_TEST_RUNTIME") {
        Some(r) if !r.is_empty() => PathBuf::from(r),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_hull")),
    }
}

/// True when the tests run against runc rather than hull.
pub fn is_runc() -> bool {
    runtime()
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("runc"))
}

/// True when the tests run against hull (the stricter checks apply).
pub fn is_hull() -> bool {
    !matches!(std::env::var_os("HULL_TEST_RUNTIME"), Some(r) if !r.is_empty())
}

/// True on a cgroup v2 (unified) host.
pub fn cgroup2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn tmp_base() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

// ---------------------------------------------------------------------------
// Shared rootfs

const ROOTFS_VERSION: u32 = 1;

/// The shared busybox rootfs (built on first use).
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(build_rootfs)
}

fn busybox() -> PathBuf {
    match std::env::var_os("HULL_TEST_BUSYBOX") {
        Some(b) if !b.is_empty() => PathBuf::from(b),
        _ => PathBuf::from("/bin/busybox"),
    }
}

fn build_rootfs() -> PathBuf {
    let bb = busybox();
    let meta = fs::metadata(&bb).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (install busybox-static or set HULL_TEST_BUSYBOX)",
            bb.display()
        )
    });
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let tag = format!(
        "v{ROOTFS_VERSION}-{}-{}",
        meta.len(),
        mtime.map_or(0, |d| d.as_secs())
    );
    let dest = tmp_base().join(format!("busybox-rootfs-{tag}"));
    if dest.join(".complete").exists() {
        return dest;
    }
    let work = tmp_base().join(format!("busybox-rootfs-{tag}.tmp{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    for d in [
        "bin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "etc",
        "root",
        "home/user",
        "mnt",
    ] {
        fs::create_dir_all(work.join(d)).unwrap();
    }
    for m in MOUNT_POINTS {
        fs::create_dir_all(work.join(m.trim_start_matches('/'))).unwrap();
    }
    fs::set_permissions(work.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(work.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::copy(&bb, work.join("bin/busybox")).unwrap();
    fs::set_permissions(work.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    assert!(list.status.success(), "busybox --list failed");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", work.join("bin").join(applet)).unwrap();
    }
    fs::write(
        work.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         user:x:1000:1000:user:/home/user:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        work.join("etc/group"),
        "root:x:0:\ntty:x:5:\nuser:x:1000:\nextra1:x:2001:user\nextra2:x:2002:user\nnogroup:x:65534:\n",
    )
    .unwrap();
    std::os::unix::fs::chown(work.join("home/user"), Some(1000), Some(1000)).unwrap();
    fs::write(work.join(".complete"), "").unwrap();
    match fs::rename(&work, &dest) {
        Ok(()) => {}
        // Another test binary won the race; use its copy.
        Err(_) if dest.join(".complete").exists() => {
            let _ = fs::remove_dir_all(&work);
        }
        Err(e) => panic!("rename {} -> {}: {e}", work.display(), dest.display()),
    }
    dest
}

// ---------------------------------------------------------------------------
// Per-test context

/// Per-test scratch space, runtime and cleanup guard.
pub struct Ctx {
    pub name: String,
    pub dir: PathBuf,
    pub rt: Runtime,
    ids: std::sync::Mutex<Vec<String>>,
    n: AtomicUsize,
}

impl Ctx {
    pub fn new(name: &str) -> Ctx {
        let dir = tmp_base()
            .join("hull-tests")
            .join(format!("{name}-{}", std::process::id()));
        if dir.exists() && !mounted_below(&dir) {
            let _ = fs::remove_dir_all(&dir);
        }
        let root = dir.join("state");
        let scratch = dir.join("cmd");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&scratch).unwrap();
        let rt = Runtime::new(runtime(), root, scratch);
        Ctx {
            name: name.to_string(),
            dir,
            rt,
            ids: Default::default(),
            n: AtomicUsize::new(0),
        }
    }

    /// A fresh container id, deleted (forcibly) when the test ends.
    pub fn id(&self) -> String {
        let n = self.n.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{}-{n}", self.name, std::process::id());
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// A new bundle with the default config and a fresh id.
    pub fn bundle(&self) -> Bundle {
        let id = self.id();
        let dir = self.dir.join(format!("bundle-{id}"));
        fs::create_dir_all(&dir).unwrap();
        let mut config = default_config();
        config["root"]["path"] = json!(rootfs().to_str().unwrap());
        config["linux"]["cgroupsPath"] = json!(format!("/hull-test/{id}"));
        Bundle { id, dir, config }
    }

    /// A directory under the scratch space (created empty).
    pub fn subdir(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// Run the runtime with `args` (after `--root`).
    pub fn exec(&self, args: &[&str]) -> Output {
        self.rt.exec(args)
    }

    /// Write the bundle's config and `run` it in the foreground.
    pub fn run(&self, b: &Bundle) -> Output {
        b.write();
        self.exec(&["run", "--bundle", b.path(), &b.id])
    }

    /// Write the bundle's config and `create` the container.
    pub fn create(&self, b: &Bundle) -> Output {
        b.write();
        self.exec(&["create", "--bundle", b.path(), &b.id])
    }

    /// The container's state, parsed; panics if `state` fails.
    pub fn state(&self, id: &str) -> Value {
        let o = self.exec(&["state", id]);
        o.ok();
        o.json()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The status, or None when `state` fails.
    pub fn try_status(&self, id: &str) -> Option<String> {
        let o = self.exec(&["state", id]);
        if o.status != 0 {
            return None;
        }
        Some(o.json()["status"].as_str().unwrap_or_default().to_string())
    }

    pub fn pid(&self, id: &str) -> i32 {
        self.state(id)["pid"].as_i64().expect("state has a pid") as i32
    }

    /// Poll `state` until the status is `want`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let start = Instant::now();
        loop {
            let got = self.try_status(id);
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "{id}: status {got:?}, waited for {want:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the container could have left behind is gone: its state,
    /// its mounts (none on the host mention the bundle) and its cgroups.
    #[track_caller]
    pub fn assert_nothing_left(&self, b: &Bundle) {
        let o = self.exec(&["state", &b.id]);
        assert_ne!(o.status, 0, "state still succeeds for {}: {o:#?}", b.id);
        let state_dir = self.rt.root.join(&b.id);
        assert!(
            !state_dir.exists(),
            "state dir {} left behind",
            state_dir.display()
        );
        let leftovers: Vec<_> = fs::read_dir(&self.rt.root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            !leftovers.iter().any(|n| n.contains(&b.id)),
            "state root still has entries for {}: {leftovers:?}",
            b.id
        );
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = mountinfo_escape(&b.dir);
        let left: Vec<_> = mounts.lines().filter(|l| l.contains(&bundle)).collect();
        assert!(left.is_empty(), "mounts left behind: {left:#?}");
        for dir in cgroup_dirs(&b.cgroups_path()) {
            assert!(!dir.exists(), "cgroup {} left behind", dir.display());
        }
    }
}

/// Every directory a cgroup path maps to (v1: one per hierarchy; v2: one).
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    let base = Path::new("/sys/fs/cgroup");
    let mut v = vec![base.join(rel)];
    if !cgroup2() {
        for e in fs::read_dir(base).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                v.push(e.path().join(rel));
            }
        }
    }
    v
}

/// A cgroup interface file of `cgroups_path`, given its v1 controller and
/// file name and its v2 file name.
pub fn cgroup_file(cgroups_path: &str, v1_ctrl: &str, v1_file: &str, v2_file: &str) -> PathBuf {
    let rel = cgroups_path.trim_start_matches('/');
    if cgroup2() {
        Path::new("/sys/fs/cgroup").join(rel).join(v2_file)
    } else {
        Path::new("/sys/fs/cgroup")
            .join(v1_ctrl)
            .join(rel)
            .join(v1_file)
    }
}

/// A path as /proc/self/mountinfo spells it (whitespace and backslashes
/// octal-escaped).
fn mountinfo_escape(p: &Path) -> String {
    let mut out = String::new();
    for c in p.to_string_lossy().chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn mounted_below(dir: &Path) -> bool {
    let d = mountinfo_escape(dir);
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(&*d))
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap());
        for id in &ids {
            // Best effort; a test that hangs here must not hang CI.
            self.rt
                .spawn(&["delete", "--force", id], Opts::default())
                .wait_quietly();
        }
        // Keep the scratch space of a failed test for inspection; never
        // remove anything while something is mounted below it.
        if !std::thread::panicking() && !mounted_below(&self.dir) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------
// Bundles

/// A bundle directory and its (not yet written) config.
pub struct Bundle {
    pub id: String,
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Set the value at a JSON pointer, creating missing objects on the way.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer starts with /");
        let mut cur = &mut self.config;
        for part in parent.split('/').skip(1) {
            cur = match cur {
                Value::Array(a) => &mut a[part.parse::<usize>().expect("array index")],
                v => {
                    if !v.is_object() {
                        *v = json!({});
                    }
                    v.as_object_mut()
                        .unwrap()
                        .entry(part)
                        .or_insert_with(|| json!({}))
                }
            };
        }
        match cur {
            Value::Array(a) => a[key.parse::<usize>().expect("array index")] = value,
            v => {
                if !v.is_object() {
                    *v = json!({});
                }
                v.as_object_mut().unwrap().insert(key.to_string(), value);
            }
        }
        self
    }

    /// Append to the array at a JSON pointer (created if missing).
    pub fn push(&mut self, pointer: &str, value: Value) -> &mut Self {
        if !self.config.pointer(pointer).is_some_and(Value::is_array) {
            self.set(pointer, json!([]));
        }
        self.config
            .pointer_mut(pointer)
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(value);
        self
    }

    /// Remove the value at a JSON pointer (if present).
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match self
            .config
            .pointer_mut(if parent.is_empty() { "" } else { parent })
        {
            Some(Value::Object(o)) => {
                o.remove(key);
            }
            Some(Value::Array(a)) => {
                a.remove(key.parse::<usize>().unwrap());
            }
            _ => {}
        }
        self
    }

    pub fn get(&self, pointer: &str) -> &Value {
        self.config.pointer(pointer).unwrap_or(&Value::Null)
    }

    /// Shorthand for setting process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// Shorthand for `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Add a mount.
    pub fn mount(&mut self, dest: &str, typ: &str, source: &str, options: &[&str]) -> &mut Self {
        self.push(
            "/mounts",
            json!({"destination": dest, "type": typ, "source": source, "options": options}),
        )
    }

    /// Give the bundle a private, writable copy of the rootfs at `rootfs`.
    pub fn writable_rootfs(&mut self) -> &mut Self {
        let dest = self.dir.join("rootfs");
        let st = Command::new("cp")
            .arg("-a")
            .arg(rootfs())
            .arg(&dest)
            .status()
            .expect("cp");
        assert!(st.success(), "cp -a rootfs failed");
        self.set("/root", json!({"path": "rootfs", "readonly": false}))
    }

    /// The absolute path of the rootfs the config points at.
    pub fn rootfs_path(&self) -> PathBuf {
        let p = Path::new(self.get("/root/path").as_str().unwrap());
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    pub fn cgroups_path(&self) -> String {
        self.get("/linux/cgroupsPath")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn write(&self) {
        let s = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.dir.join("config.json"), s).unwrap();
    }
}

/// Read a file, retrying until it exists and satisfies `done` (or the timeout passes).
#[track_caller]
pub fn wait_for_file(path: &Path, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let s = fs::read_to_string(path);
        if let Ok(s) = &s {
            if done(s) {
                return s.clone();
            }
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "{}: gave up waiting: {s:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `script` with `sh -c` in the bundle, require success, check cleanup
/// and return stdout.
pub fn run_sh(t: &Ctx, b: &mut Bundle, script: &str) -> String {
    b.sh(script);
    let o = t.run(b);
    o.ok();
    t.assert_nothing_left(b);
    o.stdout
}

/// `Key:\tvalue` from a /proc/<pid>/status dump.
pub fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {key} in {status:?}"))
        .trim()
}

/// Whether a process exists (and is neither a zombie nor dead).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(')').is_some_and(|(_, rest)| {
            !matches!(rest.trim_start().chars().next(), Some('Z' | 'X' | 'x'))
        }),
        Err(_) => false,
    }
}

/// Wait (at most [`TIMEOUT`]) for a process to be gone.
#[track_caller]
pub fn assert_gone(pid: i32) {
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < TIMEOUT, "process {pid} is still alive");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait (at most [`TIMEOUT`]) for `/proc/<pid>/cmdline` to start with `arg0`.
#[track_caller]
pub fn wait_for_exec(pid: i32, arg0: &str) {
    let start = Instant::now();
    loop {
        let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if raw.split(|&c| c == 0).next() == Some(arg0.as_bytes()) {
            return;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "process {pid} did not exec {arg0}: {:?}",
            String::from_utf8_lossy(&raw)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn read(path: impl AsRef<Path>) -> String {
    let p = path.as_ref();
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Read everything from a reader into a string (lossy).
pub fn slurp(mut r: impl Read) -> String {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}
