//! A hullctl with its own store and runtime root in a temporary
//! directory, and a busybox image built here from the host's static
//! busybox and imported as a rootfs tarball. Needs root.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";

pub struct Hullctl {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub runroot: PathBuf,
}

/// None (and a note) when the tests cannot run here.
pub fn setup() -> Option<Hullctl> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing: install busybox-static"
    );
    let dir = tempfile::tempdir().unwrap();
    let h = Hullctl {
        root: dir.path().join("store"),
        runroot: dir.path().join("run"),
        dir,
    };
    let tar = h.dir.path().join("busybox.tar");
    rootfs_tar(&tar);
    h.ok(&["import", tar.to_str().unwrap(), "busybox"]);
    Some(h)
}

/// A rootfs tarball: busybox and its applet links, /etc/passwd with root,
/// nobody and app (1000:1000, home /home/app).
pub fn rootfs_tar(dest: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(dest).unwrap());
    let dir = |b: &mut tar::Builder<std::fs::File>, path: &str, mode: u32, uid: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, &[][..]).unwrap();
    };
    let file = |b: &mut tar::Builder<std::fs::File>, path: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, data).unwrap();
    };
    for d in ["bin", "proc", "sys", "dev", "etc", "home", "run", "var"] {
        dir(&mut b, d, 0o755, 0);
    }
    dir(&mut b, "tmp", 0o1777, 0);
    dir(&mut b, "root", 0o700, 0);
    dir(&mut b, "home/app", 0o755, 1000);
    file(
        &mut b,
        "bin/busybox",
        0o755,
        &std::fs::read(BUSYBOX).unwrap(),
    );
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    file(
        &mut b,
        "etc/group",
        0o644,
        b"root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n",
    );
    b.finish().unwrap();
}

impl Hullctl {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hullctl"));
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and asserts success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hullctl {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and asserts failure; stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "hullctl {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    /// Polls `f` every 50ms for up to 10s.
    pub fn eventually(&self, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn entries(&self, dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Hullctl {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
    }
}
