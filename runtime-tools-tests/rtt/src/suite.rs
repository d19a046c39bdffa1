//! The pieces every case uses: the runtime under test, a per-case scratch
//! directory, bundles with the probe, and runtime invocations with a
//! timeout.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::bundle::Bundle;
use crate::bundle::{base_config, build_template};
use crate::cases::Case;
use crate::host;

/// How long one runtime invocation may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// What a case returns: Ok is a pass; Err carries a failure or a skip.
pub type R = Result<(), Outcome>;

pub fn fail<T>(msg: impl Into<String>) -> Result<T, Outcome> {
    Err(Outcome::Fail(msg.into()))
}

pub fn skip<T>(msg: impl Into<String>) -> Result<T, Outcome> {
    Err(Outcome::Skip(msg.into()))
}

/// Fail with `msg` unless `cond`.
pub fn check(cond: bool, msg: impl FnOnce() -> String) -> R {
    if cond {
        Ok(())
    } else {
        Err(Outcome::Fail(msg()))
    }
}

pub struct Suite {
    pub work: PathBuf,
    template: PathBuf,
}

impl Suite {
    pub fn new(work: &Path, probe: &Path, busybox: &Path) -> Result<Suite, String> {
        fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
        let work = work.canonicalize().map_err(|e| e.to_string())?;
        let template = work.join("rootfs-template");
        build_template(&template, probe, busybox)?;
        Ok(Suite { work, template })
    }

    pub fn run_case(&self, rt: &Runtime, case: &Case) -> Outcome {
        let dir = self.work.join("case");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("case directory");
        let mut ctx = Ctx {
            rt,
            dir: dir.clone(),
            template: self.template.clone(),
            ids: vec![],
            cleanups: vec![],
            n: 0,
            calls: Default::default(),
        };
        let outcome = match (case.run)(&mut ctx) {
            Ok(()) => Outcome::Pass,
            Err(o) => o,
        };
        drop(ctx);
        let _ = fs::remove_dir_all(&dir);
        outcome
    }
}

pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
    pub root: PathBuf,
}

impl Runtime {
    /// The runtime at `path` (a name without a slash is looked up in PATH).
    pub fn new(path: &Path, suite: &Suite) -> Result<Runtime, String> {
        let path = find_program(path).ok_or(format!("{}: no such runtime", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let root = suite.work.join(format!("state-{name}"));
        let _ = fs::create_dir_all(&root);
        Ok(Runtime { name, path, root })
    }
}

fn find_program(path: &Path) -> Option<PathBuf> {
    if path.components().count() > 1 {
        return path.canonicalize().ok();
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|d| d.join(path))
        .find(|p| p.is_file())
}

/// The result of one runtime invocation.
pub struct Out {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// Where stdout went (a created container keeps writing there).
    pub stdout_path: PathBuf,
}

impl Out {
    /// For messages: what the runtime said.
    pub fn said(&self) -> String {
        let mut s = format!("exit {:?}", self.code);
        if self.timed_out {
            s += " (timed out)";
        }
        for (what, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let t = text.trim();
            if !t.is_empty() {
                let t: String = t.chars().take(1500).collect();
                s += &format!("; {what}: {t}");
            }
        }
        s
    }
}

pub struct Ctx<'a> {
    pub rt: &'a Runtime,
    pub dir: PathBuf,
    template: PathBuf,
    ids: Vec<String>,
    /// Run when the case ends, after its containers are deleted.
    pub cleanups: Vec<Box<dyn FnOnce()>>,
    n: usize,
    calls: std::cell::Cell<usize>,
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.ids) {
            let _ = self.exec(&["delete", "--force", &id]);
        }
        for c in std::mem::take(&mut self.cleanups).into_iter().rev() {
            c();
        }
    }
}

impl Ctx<'_> {
    /// A fresh container id, force-deleted when the case ends.
    pub fn id(&mut self) -> String {
        self.n += 1;
        let id = format!("rtt-{}-{}", std::process::id(), self.n);
        self.ids.push(id.clone());
        id
    }

    /// A new bundle running the probe with `groups`.
    pub fn bundle(&mut self, groups: &[&str]) -> Bundle {
        self.bundle_in(groups, false).expect("bundle")
    }

    /// A bundle whose rootfs is a shared mount of its own (so that a
    /// slave or shared root has a peer on the host).
    pub fn bundle_shared(&mut self, groups: &[&str]) -> Result<Bundle, Outcome> {
        self.bundle_in(groups, true)
    }

    fn bundle_in(&mut self, groups: &[&str], shared: bool) -> Result<Bundle, Outcome> {
        let id = self.id();
        let dir = self.dir.join(format!("bundle-{}", self.n));
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(&rootfs).unwrap();
        if shared {
            host::shared_mount(self, &rootfs).or_else(skip)?;
        }
        let status = Command::new("cp")
            .arg("-a")
            .arg(self.template.join("."))
            .arg(&rootfs)
            .status()
            .expect("cp");
        assert!(status.success(), "copy of the rootfs template failed");
        let mut args = vec!["/rtt/probe"];
        args.extend_from_slice(groups);
        let mut config = base_config(&args);
        config["annotations"] = host::annotations();
        Ok(Bundle { id, dir, config })
    }

    /// Run the runtime with `args` after `--root`; stdout and stderr go to
    /// files (a container holding a pipe open cannot hang the suite).
    pub fn exec(&self, args: &[&str]) -> Out {
        self.exec_with(args, |_| {})
    }

    pub fn exec_with(&self, args: &[&str], setup: impl FnOnce(&mut Command)) -> Out {
        let k = self.calls.get() + 1;
        self.calls.set(k);
        let out_path = self.dir.join(format!("out-{k}"));
        let err_path = self.dir.join(format!("err-{k}"));
        let mut cmd = Command::new(&self.rt.path);
        cmd.arg("--root")
            .arg(&self.rt.root)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap());
        setup(&mut cmd);
        let (code, timed_out) = match cmd.spawn() {
            Ok(mut child) => wait_timeout(&mut child, TIMEOUT),
            Err(e) => {
                return Out {
                    ok: false,
                    code: None,
                    stdout: String::new(),
                    stderr: format!("spawn {}: {e}", self.rt.path.display()),
                    timed_out: false,
                    stdout_path: out_path,
                }
            }
        };
        Out {
            ok: code == Some(0),
            code,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
            timed_out,
            stdout_path: out_path,
        }
    }

    /// `run` the bundle in the foreground.
    pub fn run(&self, b: &Bundle) -> Out {
        b.write();
        self.exec(&["run", "--bundle", b.path(), &b.id])
    }

    pub fn create(&self, b: &Bundle) -> Out {
        b.write();
        self.exec(&["create", "--bundle", b.path(), &b.id])
    }

    /// Create and fail the case if that fails.
    pub fn created(&self, b: &Bundle) -> R {
        let out = self.create(b);
        check(out.ok, || format!("create: {}", out.said()))
    }

    /// The parsed `state` of `id`.
    pub fn state(&self, id: &str) -> Result<Value, Outcome> {
        let out = self.exec(&["state", id]);
        if !out.ok {
            return fail(format!("state {id}: {}", out.said()));
        }
        serde_json::from_str(&out.stdout)
            .or_else(|e| fail(format!("state {id}: not JSON ({e}): {}", out.stdout)))
    }

    pub fn status(&self, id: &str) -> Result<String, Outcome> {
        Ok(self.state(id)?["status"].as_str().unwrap_or("").to_string())
    }

    /// Wait until `id` has `status` (at most 10s).
    pub fn wait_status(&self, id: &str, status: &str) -> R {
        let start = Instant::now();
        loop {
            let s = self.status(id)?;
            if s == status {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                return fail(format!("{id} is still {s:?}, not {status:?}, after 10s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run the probe in `b` and pass if every TAP line is ok.
    pub fn probe(&self, b: &Bundle) -> R {
        let out = self.run(b);
        tap_result(&out)
    }
}

/// Pass if the probe printed a plan and only ok lines, and exited 0.
pub fn tap_result(out: &Out) -> R {
    let failures: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("not ok"))
        .collect();
    if !failures.is_empty() {
        return fail(failures.join("\n"));
    }
    let planned = out.stdout.lines().any(|l| l.starts_with("1.."));
    check(out.ok && planned, || {
        format!("the probe did not finish: {}", out.said())
    })?;
    if out.stdout.lines().all(|l| !l.starts_with("ok ")) {
        return skip("the probe had nothing to check");
    }
    Ok(())
}

pub fn wait_timeout(child: &mut std::process::Child, limit: Duration) -> (Option<i32>, bool) {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (st.code(), false),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return (None, true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return (None, false),
        }
    }
}
