//! rtt-probe: the container process of the conformance suite.
//!
//! It reads the config it was started with (the runner copies config.json
//! to `/rtt/config.json` in the rootfs), runs the check groups named on its
//! command line against the live process, and prints one TAP line per
//! check. It exits 0 when every check passed and 1 otherwise.
//!
//! Annotations written by the runner carry facts only the host knows:
//! `rtt/host-ns/<type>` (inode of the runtime's namespace of that type),
//! `rtt/ns/<type>` (inode of the namespace a `path` names) and
//! `rtt/host-oom` (the runtime's oom_score_adj).

mod cgroups;
mod fs;
mod linux;
mod process;
mod procfs;

use serde_json::Value;

/// Where the runner puts the config inside the rootfs.
const CONFIG: &str = "/rtt/config.json";

/// TAP output: one line per check, a plan at the end.
pub struct Tap {
    n: usize,
    failed: usize,
}

impl Tap {
    pub fn ok(&mut self, ok: bool, what: impl AsRef<str>) {
        self.n += 1;
        if !ok {
            self.failed += 1;
        }
        let not = if ok { "" } else { "not " };
        println!("{not}ok {} - {}", self.n, what.as_ref());
    }

    /// A check comparing an expected value with what the process sees.
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, want: T, got: T) {
        if want == got {
            self.ok(true, format!("{what} = {got:?}"));
        } else {
            self.ok(false, format!("{what}: want {want:?}, got {got:?}"));
        }
    }

    pub fn skip(&mut self, what: impl AsRef<str>) {
        self.n += 1;
        println!("ok {} - # SKIP {}", self.n, what.as_ref());
    }
}

type Group = fn(&Value, &mut Tap);

const GROUPS: &[(&str, Group)] = &[
    ("namespaces", linux::namespaces),
    ("hostname", process::hostname),
    ("rlimits", process::rlimits),
    ("capabilities", process::capabilities),
    ("user", process::user),
    ("cwd", process::cwd),
    ("env", process::env),
    ("seccomp", linux::seccomp),
    ("no_new_privs", process::no_new_privs),
    ("oom_score_adj", process::oom_score_adj),
    ("personality", linux::personality),
    ("scheduler", process::scheduler),
    ("io_priority", process::io_priority),
    ("sysctl", linux::sysctl),
    ("mounts", fs::mounts),
    ("root", fs::root),
    ("masked_paths", fs::masked_paths),
    ("readonly_paths", fs::readonly_paths),
    ("devices", fs::devices),
    ("default_devices", fs::default_devices),
    ("default_symlinks", fs::default_symlinks),
    ("cgroups", cgroups::resources),
    ("device_access", cgroups::device_access),
    ("preserved_fds", process::preserved_fds),
    ("terminal", process::terminal),
    ("id_mappings", linux::id_mappings),
    ("memory_policy", linux::memory_policy),
    ("cpu_affinity", process::cpu_affinity),
    ("time_offsets", linux::time_offsets),
    ("net_devices", linux::net_devices),
];

fn main() {
    let config: Value = match std::fs::read_to_string(CONFIG)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            println!("not ok 1 - read {CONFIG}: {e}");
            println!("1..1");
            std::process::exit(1);
        }
    };
    let mut tap = Tap { n: 0, failed: 0 };
    let names: Vec<String> = std::env::args().skip(1).collect();
    for name in &names {
        match GROUPS.iter().find(|(g, _)| g == name) {
            Some((_, check)) => check(&config, &mut tap),
            None => tap.ok(false, format!("unknown check group {name:?}")),
        }
    }
    println!("1..{}", tap.n);
    std::process::exit(i32::from(tap.failed > 0));
}

/// `config[a][b]...`, or Null.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

/// An annotation the runner set.
pub fn annotation<'a>(config: &'a Value, key: &str) -> Option<&'a str> {
    config["annotations"][key].as_str()
}

/// The last OS error as a raw errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
