//! `linux.memoryPolicy` -> the arguments of set_mempolicy(2), made in the
//! parent; the init makes the call (the policy survives execve).

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType as F, MemoryPolicyModeType as M};

use crate::error::{Error, Result};

const FIELD: &str = "linux.memoryPolicy";
/// Node numbers above this are refused (the kernel's MAX_NUMNODES is 1024).
const MAX_NODE: usize = 1023;

/// `set_mempolicy(mode, nodemask, maxnode)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemPolicy {
    /// The mode with its flags or'ed in.
    pub mode: i32,
    pub nodemask: Vec<libc::c_ulong>,
    pub maxnode: libc::c_ulong,
}

/// "0-3,7" -> the node numbers.
fn parse_nodes(s: &str) -> Result<Vec<usize>> {
    let bad = |why: String| Error::config(format!("{FIELD}.nodes"), why);
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_NODE)
                .ok_or_else(|| bad(format!("{x:?} in {s:?} is not a node number")))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad(format!("range {part:?} is backwards")));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

pub fn from_spec(p: &LinuxMemoryPolicy) -> Result<MemPolicy> {
    let nodes = parse_nodes(p.nodes().as_deref().unwrap_or(""))?;
    let (mode, needs_nodes) = match p.mode() {
        M::MpolDefault => (0, Some(false)),
        M::MpolPreferred => (1, None),
        M::MpolBind => (2, Some(true)),
        M::MpolInterleave => (3, Some(true)),
        M::MpolLocal => (4, Some(false)),
        M::MpolPreferredMany => (5, Some(true)),
        M::MpolWeightedInterleave => (6, Some(true)),
    };
    match needs_nodes {
        Some(true) if nodes.is_empty() => {
            return Err(Error::config(
                format!("{FIELD}.nodes"),
                format!("{} needs at least one node", p.mode()),
            ))
        }
        Some(false) if !nodes.is_empty() => {
            return Err(Error::config(
                format!("{FIELD}.nodes"),
                format!("{} takes no nodes", p.mode()),
            ))
        }
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            F::MpolFStaticNodes => 1 << 15,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFNumaBalancing => 1 << 13,
        };
    }
    if flags & (3 << 14) == 3 << 14 {
        return Err(Error::config(
            format!("{FIELD}.flags"),
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other",
        ));
    }
    let bits = libc::c_ulong::BITS as usize;
    let mut nodemask = vec![0; nodes.iter().max().map_or(0, |m| m / bits + 1)];
    for n in &nodes {
        nodemask[n / bits] |= 1 << (n % bits);
    }
    // The kernel reads maxnode - 1 bits (libnuma passes one more too).
    let maxnode = match nodemask.len() {
        0 => 0,
        n => (n * bits + 1) as libc::c_ulong,
    };
    Ok(MemPolicy {
        mode: mode | flags,
        nodemask,
        maxnode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> Result<MemPolicy> {
        from_spec(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn modes_nodes_and_flags() {
        let p = policy(
            serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "0-3,7,70",
            "flags": ["MPOL_F_STATIC_NODES"]}),
        )
        .unwrap();
        assert_eq!(p.mode, 3 | 1 << 15);
        assert_eq!(p.nodemask, vec![0b1000_1111, 1 << 6]);
        assert_eq!(p.maxnode, 129);
        let d = policy(serde_json::json!({"mode": "MPOL_DEFAULT"})).unwrap();
        assert_eq!((d.mode, d.maxnode), (0, 0));
        assert!(policy(serde_json::json!({"mode": "MPOL_PREFERRED"})).is_ok());
    }

    #[test]
    fn bad_policies_name_the_field() {
        for (v, field) in [
            (serde_json::json!({"mode": "MPOL_BIND"}), "nodes"),
            (
                serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
                "nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "3-1"}),
                "nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "x"}),
                "nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "0",
                "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
                "flags",
            ),
        ] {
            let e = policy(v.clone()).unwrap_err().to_string();
            assert!(
                e.contains(&format!("linux.memoryPolicy.{field}")),
                "{v}: {e}"
            );
        }
    }
}
