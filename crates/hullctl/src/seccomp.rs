//! seccomp profiles in the Docker/Podman format (`includes`/`excludes` by
//! capability and architecture, `archMap`) -> the runtime spec's
//! `linux.seccomp` for this host and this container's capabilities.
//!
//! The default profile is a copy of the one containers-common ships
//! (Apache-2.0), as Podman uses it.

use anyhow::{Context, Result};
use serde_json::{json, Value};

pub const DEFAULT_PROFILE: &str = include_str!("../data/seccomp.json");

/// The host's names in the profile's `arches` lists and `archMap`.
const HOST_ARCHES: &[&str] = &["amd64", "x86_64", "SCMP_ARCH_X86_64"];
const HOST_SCMP: &str = "SCMP_ARCH_X86_64";

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a rule's `includes`/`excludes` hold for this host and `caps`.
fn applies(rule: &Value, caps: &[String]) -> bool {
    let has_cap = |c: &str| caps.iter().any(|x| x == c);
    let inc = &rule["includes"];
    let exc = &rule["excludes"];
    let arches = strs(&inc["arches"]);
    if !arches.is_empty() && !arches.iter().any(|a| HOST_ARCHES.contains(a)) {
        return false;
    }
    if strs(&exc["arches"]).iter().any(|a| HOST_ARCHES.contains(a)) {
        return false;
    }
    if !strs(&inc["caps"]).iter().all(|c| has_cap(c)) {
        return false;
    }
    !strs(&exc["caps"]).iter().any(|c| has_cap(c))
}

/// Converts `profile` (Docker format, or the spec's own) for a container
/// whose bounding set is `caps` (`CAP_` names).
pub fn convert(profile: &Value, caps: &[String]) -> Result<Value> {
    let default_action = profile["defaultAction"]
        .as_str()
        .context("seccomp profile: no defaultAction")?;
    let mut out = json!({ "defaultAction": default_action });
    if let Some(e) = profile["defaultErrnoRet"].as_u64() {
        out["defaultErrnoRet"] = json!(e);
    }
    let mut arches: Vec<String> = strs(&profile["architectures"])
        .into_iter()
        .map(String::from)
        .collect();
    for m in profile["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == HOST_SCMP {
            arches.push(HOST_SCMP.into());
            arches.extend(strs(&m["subArchitectures"]).into_iter().map(String::from));
        }
    }
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    let mut syscalls = Vec::new();
    for rule in profile["syscalls"].as_array().into_iter().flatten() {
        if !applies(rule, caps) {
            continue;
        }
        let mut names = strs(&rule["names"]);
        if let Some(n) = rule["name"].as_str() {
            names.push(n);
        }
        if names.is_empty() {
            continue;
        }
        let mut s = json!({
            "names": names,
            "action": rule["action"].as_str().context("seccomp profile: a rule without action")?,
        });
        if let Some(e) = rule["errnoRet"].as_u64() {
            s["errnoRet"] = json!(e);
        }
        let args: Vec<Value> = rule["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                json!({
                    "index": a["index"],
                    "value": a["value"],
                    "valueTwo": a["valueTwo"].as_u64().unwrap_or(0),
                    "op": a["op"],
                })
            })
            .collect();
        if !args.is_empty() {
            s["args"] = json!(args);
        }
        syscalls.push(s);
    }
    out["syscalls"] = json!(syscalls);
    Ok(out)
}

/// The default profile for a container with `caps`.
pub fn default_for(caps: &[String]) -> Value {
    let profile: Value = serde_json::from_str(DEFAULT_PROFILE).expect("embedded profile parses");
    convert(&profile, caps).expect("embedded profile converts")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action_of(filter: &Value, name: &str) -> Vec<String> {
        filter["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| strs(&s["names"]).contains(&name))
            .map(|s| s["action"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn default_profile_follows_the_capabilities() {
        let base: Vec<String> = crate::spec::DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .collect();
        let f = default_for(&base);
        assert_eq!(f["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(f["architectures"][0], "SCMP_ARCH_X86_64");
        assert!(action_of(&f, "read").contains(&"SCMP_ACT_ALLOW".to_string()));
        // open_by_handle_at needs CAP_DAC_READ_SEARCH: refused without it.
        let call = "open_by_handle_at";
        assert_eq!(action_of(&f, call), ["SCMP_ACT_ERRNO"]);
        let mut more = base.clone();
        more.push("CAP_DAC_READ_SEARCH".into());
        let f = default_for(&more);
        assert_eq!(action_of(&f, call), ["SCMP_ACT_ALLOW"]);
        // Rules for other architectures are left out.
        assert!(action_of(&f, "s390_pci_mmio_read").is_empty());
        // The result is a valid runtime-spec seccomp object.
        let parsed: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(f).unwrap();
        assert!(!parsed.syscalls().as_ref().unwrap().is_empty());
    }
}
