//! Capability sets from `process.capabilities`, as 64-bit masks.
//!
//! Parsed from the raw JSON (before oci-spec sees it) so that names this
//! kernel or library does not know are skipped with a warning, as runc does,
//! instead of failing the whole config.

use std::str::FromStr;

use serde_json::Value;

/// The five sets, one bit per capability number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Highest capability number the running kernel knows.
/// Read once per process: it is asked for every capability name.
pub fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

/// Every capability name this build knows (`CAP_CHOWN`, ...), in the
/// order of their numbers.
pub fn known_names() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

/// Bit of one capability name (`CAP_CHOWN` or `chown`), if known.
pub fn cap_bit(name: &str) -> Option<u64> {
    let canon = caps::to_canonical(name);
    let cap = caps::Capability::from_str(&canon).ok()?;
    (u32::from(cap.index()) <= last_cap()).then(|| cap.bitmask())
}

/// Parse `process.capabilities`; unknown names go to `warnings`.
pub fn parse(value: Option<&Value>, warnings: &mut Vec<String>) -> Result<CapSets, String> {
    let mut sets = CapSets::default();
    let Some(obj) = value else {
        return Ok(sets);
    };
    let obj = obj
        .as_object()
        .ok_or_else(|| "must be an object".to_string())?;
    for (key, list) in obj {
        let target = match key.as_str() {
            "bounding" => &mut sets.bounding,
            "effective" => &mut sets.effective,
            "permitted" => &mut sets.permitted,
            "inheritable" => &mut sets.inheritable,
            "ambient" => &mut sets.ambient,
            other => return Err(format!("unknown set {other:?}")),
        };
        let names = list
            .as_array()
            .ok_or_else(|| format!("{key} must be a list of names"))?;
        for name in names {
            let name = name
                .as_str()
                .ok_or_else(|| format!("{key} must be a list of names"))?;
            match cap_bit(name) {
                Some(bit) => *target |= bit,
                None => warnings.push(format!(
                    "ignoring unknown or unsupported capability {name:?}"
                )),
            }
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_names() {
        let v = serde_json::json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NOPE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        });
        let mut warnings = vec![];
        let sets = parse(Some(&v), &mut warnings).unwrap();
        assert_eq!(sets.bounding, (1 << 0) | (1 << 5));
        assert_eq!(sets.ambient, 1 << 10);
        assert_eq!(sets.effective, 0);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("CAP_NOPE"));
    }

    #[test]
    fn wrong_shape_is_an_error() {
        let v = serde_json::json!({"bounding": "CAP_CHOWN"});
        assert!(parse(Some(&v), &mut vec![]).is_err());
        let v = serde_json::json!({"sideways": []});
        assert!(parse(Some(&v), &mut vec![]).is_err());
    }
}
