//! The devices controller on v1: deny everything, then the rules in order.
//! (cgroup v2 needs an eBPF program; not implemented yet, see fs.rs.)

use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use crate::fs::write_file;
use crate::settings::device_rule;
use crate::Result;

pub fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    write_file(&dir.join("devices.deny"), "a")?;
    for r in rules {
        let file = if r.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let line = device_rule(r);
        if !r.allow() && line == "a" {
            continue; // already denied everything
        }
        write_file(&dir.join(file), &line)?;
    }
    Ok(())
}
