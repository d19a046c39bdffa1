//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup
//! is a transient scope systemd made, holding the limits both as unit
//! properties and in the cgroup files.
//!
//! These tests need systemd as PID 1 on a cgroup v2 host: they run in
//! `hack/vm-cgroup2 --systemd` (see hack/test-systemd); elsewhere they say
//! they were skipped. They test hull only (runc needs the system bus's
//! daemon, which that VM does not start).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn systemd_host() -> bool {
    if !is_hull() {
        eprintln!("skipped: the systemd driver tests run against hull only");
        return false;
    }
    if !Path::new("/run/systemd/system").is_dir() || !cgroup2() {
        eprintln!("skipped: needs systemd as PID 1 on cgroup v2 (hack/test-systemd)");
        return false;
    }
    true
}

fn systemctl(args: &[&str]) -> String {
    let o = Command::new("systemctl").args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `systemctl show -p NAME --value UNIT`.
fn unit_prop(unit: &str, name: &str) -> String {
    systemctl(&["show", "-p", name, "--value", unit])
}

fn hull(t: &Ctx, args: &[&str]) -> Output {
    let mut all = vec!["--systemd-cgroup"];
    all.extend_from_slice(args);
    t.exec(&all)
}

/// Create and start a `sleep` container under the systemd driver.
fn sleeper(t: &Ctx, b: &mut Bundle) {
    b.args(&["sleep", "1000"]);
    b.write();
    hull(t, &["create", "--bundle", b.path(), &b.id]).ok();
    hull(t, &["start", &b.id]).ok();
}

/// The unit hull-<id>.scope in hulltest.slice.
fn in_test_slice(b: &mut Bundle) {
    let path = format!("hulltest.slice:hull:{}", b.id);
    b.set("/linux/cgroupsPath", json!(path));
}

fn own_cgroup(pid: i32) -> String {
    read(format!("/proc/{pid}/cgroup")).trim().to_string()
}

#[test]
fn the_container_runs_in_a_scope_with_its_limits() {
    if !systemd_host() {
        return;
    }
    let t = Ctx::new("sd_scope");
    let mut b = t.bundle();
    in_test_slice(&mut b);
    b.set(
        "/linux/resources",
        json!({
            "memory": {"limit": 67108864},
            "pids": {"limit": 50},
            "cpu": {"shares": 2048, "quota": 50000, "period": 100000},
        }),
    );
    b.set(
        "/annotations",
        json!({
            "org.systemd.property.TimeoutStopSec": "uint64 123",
            "org.systemd.property.CollectMode": "'inactive-or-failed'",
        }),
    );
    sleeper(&t, &mut b);
    let unit = format!("hull-{}.scope", b.id);
    let dir = PathBuf::from(format!("/sys/fs/cgroup/hulltest.slice/{unit}"));
    assert_eq!(unit_prop(&unit, "TimeoutStopUSec"), "2min 3s");
    assert_eq!(unit_prop(&unit, "CollectMode"), "inactive-or-failed");
    let pid = t.pid(&b.id);
    assert_eq!(own_cgroup(pid), format!("0::/hulltest.slice/{unit}"));
    assert_eq!(unit_prop(&unit, "ActiveState"), "active");
    assert_eq!(unit_prop(&unit, "Delegate"), "yes");
    let file = |f: &str| read(dir.join(f)).trim().to_string();
    let values = || {
        [
            file("memory.max"),
            file("pids.max"),
            file("cpu.max"),
            file("cpu.weight"),
        ]
    };
    let want = ["67108864", "50", "50000 100000", "174"];
    assert_eq!(values(), want);
    assert_eq!(unit_prop(&unit, "MemoryMax"), "67108864");
    assert_eq!(unit_prop(&unit, "TasksMax"), "50");
    assert_eq!(unit_prop(&unit, "CPUWeight"), "174");
    assert_eq!(unit_prop(&unit, "CPUQuotaPerSecUSec"), "500ms");
    // systemd re-applies its properties on a reload: the limits stay.
    systemctl(&["daemon-reload"]);
    assert_eq!(values(), want);

    // exec joins the scope; update goes to systemd and the files.
    let out = t.exec(&["exec", &b.id, "cat", "/proc/self/cgroup"]);
    out.ok();
    assert!(
        out.stdout.contains(&format!("/hulltest.slice/{unit}")),
        "{}",
        out.stdout
    );
    t.exec(&[
        "update",
        "--memory",
        "104857600",
        "--pids-limit",
        "70",
        &b.id,
    ])
    .ok();
    assert_eq!(file("memory.max"), (100u64 << 20).to_string());
    assert_eq!(file("pids.max"), "70");
    assert_eq!(unit_prop(&unit, "MemoryMax"), (100u64 << 20).to_string());
    assert_eq!(unit_prop(&unit, "TasksMax"), "70");

    t.exec(&["pause", &b.id]).ok();
    assert!(file("cgroup.events").contains("frozen 1"));
    t.exec(&["resume", &b.id]).ok();
    assert!(file("cgroup.events").contains("frozen 0"));
    let stats = t.exec(&["events", "--stats", &b.id]);
    stats.ok();
    assert!(
        stats.json()["data"]["memory"]["usage"]["usage"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{}",
        stats.stdout
    );
    let ps = t.exec(&["ps", "--format", "json", &b.id]);
    ps.ok();
    assert_eq!(ps.json(), json!([pid]));

    t.exec(&["delete", "--force", &b.id]).ok();
    assert_gone(pid);
    assert_eq!(unit_prop(&unit, "LoadState"), "not-found");
    assert!(!dir.exists(), "{} left behind", dir.display());
    t.assert_nothing_left(&b);
}

#[test]
fn slices_and_the_default_path_are_laid_out_as_systemd_does() {
    if !systemd_host() {
        return;
    }
    let t = Ctx::new("sd_slices");
    let mut b = t.bundle();
    b.remove("/linux/cgroupsPath");
    sleeper(&t, &mut b);
    assert_eq!(
        own_cgroup(t.pid(&b.id)),
        format!("0::/system.slice/hull-{}.scope", b.id)
    );
    t.exec(&["delete", "--force", &b.id]).ok();
    assert_eq!(
        unit_prop(&format!("hull-{}.scope", b.id), "LoadState"),
        "not-found"
    );

    // A nested slice, no prefix.
    let mut b = t.bundle();
    b.set(
        "/linux/cgroupsPath",
        json!(format!("hulltest-inner.slice::{}", b.id)),
    );
    sleeper(&t, &mut b);
    let pid = t.pid(&b.id);
    assert_eq!(
        own_cgroup(pid),
        format!("0::/hulltest.slice/hulltest-inner.slice/{}.scope", b.id)
    );
    t.exec(&["delete", "--force", &b.id]).ok();
    assert_gone(pid);

    // The container's unit a slice: the init joins it directly.
    let mut b = t.bundle();
    let slice = format!("hulltest-{}.slice", b.id.replace('-', "_"));
    b.set(
        "/linux/cgroupsPath",
        json!(format!("hulltest.slice:ignored:{slice}")),
    );
    b.set("/linux/resources", json!({"pids": {"limit": 33}}));
    sleeper(&t, &mut b);
    let pid = t.pid(&b.id);
    assert_eq!(own_cgroup(pid), format!("0::/hulltest.slice/{slice}"));
    assert_eq!(unit_prop(&slice, "TasksMax"), "33");
    t.exec(&["delete", "--force", &b.id]).ok();
    assert_gone(pid);
    assert_eq!(unit_prop(&slice, "ActiveState"), "inactive");
}

#[test]
fn bad_paths_and_taken_units_fail_cleanly() {
    if !systemd_host() {
        return;
    }
    let t = Ctx::new("sd_bad");
    let mut b = t.bundle();
    b.set("/linux/cgroupsPath", json!("/not/systemd/form"));
    b.args(&["true"]);
    b.write();
    let o = hull(&t, &["run", "--bundle", b.path(), &b.id]);
    assert_eq!(o.status, 1, "{o:?}");
    assert!(
        o.stderr.contains("linux.cgroupsPath") && o.stderr.contains("slice:prefix:name"),
        "{}",
        o.stderr
    );
    assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.stderr);
    t.assert_nothing_left(&b);

    // An annotation that is not a GVariant value hull understands.
    let mut b = t.bundle();
    in_test_slice(&mut b);
    b.set(
        "/annotations",
        json!({"org.systemd.property.CollectMode": "inactive"}),
    );
    b.args(&["true"]);
    b.write();
    let o = hull(&t, &["run", "--bundle", b.path(), &b.id]);
    assert_eq!(o.status, 1, "{o:?}");
    assert!(
        o.stderr
            .contains("annotations.org.systemd.property.CollectMode"),
        "{}",
        o.stderr
    );
    assert!(t.try_status(&b.id).is_none());
    let unit = format!("hull-{}.scope", b.id);
    assert_eq!(unit_prop(&unit, "LoadState"), "not-found");

    // A limit the kernel refuses once the scope exists: the scope goes
    // with the failed create.
    let mut b = t.bundle();
    in_test_slice(&mut b);
    b.set("/linux/resources", json!({"cpu": {"cpus": "4000"}}));
    b.args(&["true"]);
    b.write();
    let o = hull(&t, &["run", "--bundle", b.path(), &b.id]);
    assert_eq!(o.status, 1, "{o:?}");
    assert!(o.stderr.contains("cpuset.cpus"), "{}", o.stderr);
    let unit = format!("hull-{}.scope", b.id);
    assert_eq!(unit_prop(&unit, "LoadState"), "not-found");
    assert!(!Path::new(&format!("/sys/fs/cgroup/hulltest.slice/{unit}")).exists());
    assert!(t.try_status(&b.id).is_none());

    // A second container asking for the first one's unit fails, and its
    // cleanup leaves the first one's unit alone.
    let mut first = t.bundle();
    let path = format!("hulltest.slice:hull:{}", first.id);
    first.set("/linux/cgroupsPath", json!(path));
    sleeper(&t, &mut first);
    let mut second = t.bundle();
    second.set("/linux/cgroupsPath", json!(path));
    second.args(&["true"]);
    second.write();
    let o = hull(&t, &["run", "--bundle", second.path(), &second.id]);
    assert_eq!(o.status, 1, "{o:?}");
    assert!(o.stderr.contains("already exists"), "{}", o.stderr);
    let unit = format!("hull-{}.scope", first.id);
    assert_eq!(unit_prop(&unit, "ActiveState"), "active");
    assert_eq!(
        own_cgroup(t.pid(&first.id)),
        format!("0::/hulltest.slice/{unit}")
    );
    assert!(t.try_status(&second.id).is_none());
    t.exec(&["delete", "--force", &first.id]).ok();
    assert_eq!(unit_prop(&unit, "LoadState"), "not-found");
}
