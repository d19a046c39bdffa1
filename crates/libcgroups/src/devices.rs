//! The devices controller on v1.
//!
//! A v1 devices cgroup holds a default (allow or deny everything) and a
//! list of exceptions; writing a rule of the default's kind only removes
//! an exception equal to it, so "deny c 10:237" after "allow c 10:*" would
//! change nothing. The rules are therefore run through the same model
//! first, in their order, and the resulting default and exceptions
//! written: a rule that cuts into a wildcard exception of a fixed major
//! splits it into that major's minors 0-255 (the misc and other dynamic
//! minors); a cut into a wildcard major cannot be written and is an error.

use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use crate::fs::write_file;
use crate::{CgroupError, Result};

/// Minors a wildcard of a fixed major is split into.
const SPLIT_MINORS: i64 = 256;

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    /// 'c' or 'b' ('a' never reaches an exception).
    typ: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: String,
}

impl Rule {
    fn line(&self) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.typ,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// True when some device is named by both.
    fn meets(&self, other: &Rule) -> bool {
        let num = |a: Option<i64>, b: Option<i64>| a.is_none() || b.is_none() || a == b;
        self.typ == other.typ
            && num(self.major, other.major)
            && num(self.minor, other.minor)
            && self.access.chars().any(|c| other.access.contains(c))
    }

    /// True when every device `other` names is one `self` names.
    fn covers(&self, other: &Rule) -> bool {
        self.typ == other.typ
            && (self.major.is_none() || self.major == other.major)
            && (self.minor.is_none() || self.minor == other.minor)
    }
}

fn without(access: &str, remove: &str) -> String {
    access.chars().filter(|c| !remove.contains(*c)).collect()
}

/// The default (true: allow everything) and the exceptions to it.
#[derive(Debug, PartialEq)]
struct Policy {
    allow: bool,
    exceptions: Vec<Rule>,
}

fn emulate(rules: &[LinuxDeviceCgroup]) -> Result<Policy> {
    let mut p = Policy {
        allow: false,
        exceptions: Vec::new(),
    };
    for (i, r) in rules.iter().enumerate() {
        let typ = r
            .typ()
            .map_or('a', |t| t.as_str().chars().next().unwrap_or('a'));
        if typ == 'a' {
            p = Policy {
                allow: r.allow(),
                exceptions: Vec::new(),
            };
            continue;
        }
        let rule = Rule {
            typ,
            major: r.major().filter(|m| *m >= 0),
            minor: r.minor().filter(|m| *m >= 0),
            access: r.access().clone().unwrap_or_else(|| "rwm".into()),
        };
        if r.allow() != p.allow {
            p.exceptions.push(rule);
            continue;
        }
        // Back toward the default: take `rule` out of the exceptions.
        let mut kept = Vec::new();
        for e in p.exceptions.drain(..) {
            if !rule.meets(&e) {
                kept.push(e);
            } else if rule.covers(&e) {
                let left = without(&e.access, &rule.access);
                if !left.is_empty() {
                    kept.push(Rule { access: left, ..e });
                }
            } else {
                if e.major.is_none() || e.minor.is_some() {
                    return Err(CgroupError::invalid(
                        format!("linux.resources.devices[{i}]"),
                        format!(
                            "{:?} cuts into {:?}: cgroup v1 cannot hold that exception",
                            rule.line(),
                            e.line()
                        ),
                    ));
                }
                for minor in 0..SPLIT_MINORS {
                    let mut one = Rule {
                        minor: Some(minor),
                        ..e.clone()
                    };
                    if rule.covers(&one) {
                        one.access = without(&one.access, &rule.access);
                    }
                    if !one.access.is_empty() {
                        kept.push(one);
                    }
                }
            }
        }
        p.exceptions = kept;
    }
    Ok(p)
}

pub fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let p = emulate(rules)?;
    let (default, exceptions) = if p.allow {
        ("devices.allow", "devices.deny")
    } else {
        ("devices.deny", "devices.allow")
    };
    write_file(&dir.join(default), "a")?;
    for e in &p.exceptions {
        write_file(&dir.join(exceptions), &e.line())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_value(v).unwrap()
    }

    fn lines(v: serde_json::Value) -> (bool, Vec<String>) {
        let p = emulate(&rules(v)).unwrap();
        (p.allow, p.exceptions.iter().map(Rule::line).collect())
    }

    #[test]
    fn allow_inside_deny() {
        let (allow, ex) = lines(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]));
        assert!(!allow);
        assert_eq!(ex, ["c 1:3 rwm"]);
    }

    #[test]
    fn deny_inside_allow_splits_the_wildcard_minor() {
        let (allow, ex) = lines(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 237, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "w"}
        ]));
        assert!(!allow);
        assert_eq!(ex.len(), 255);
        assert!(!ex.iter().any(|l| l.starts_with("c 10:237 ")));
        assert!(ex.contains(&"c 10:229 rm".to_string()));
        assert!(ex.contains(&"c 10:200 rwm".to_string()));
    }

    #[test]
    fn exact_deny_removes_the_exception() {
        let (_, ex) = lines(serde_json::json!([
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "access": "r"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]));
        assert_eq!(ex, ["b 8:* r"]);
    }

    #[test]
    fn allow_all_then_deny() {
        let (allow, ex) = lines(serde_json::json!([
            {"allow": true, "access": "rwm"},
            {"allow": false, "type": "c", "major": 5, "minor": 1, "access": "rwm"}
        ]));
        assert!(allow);
        assert_eq!(ex, ["c 5:1 rwm"]);
    }

    #[test]
    fn a_deny_of_other_access_leaves_the_wildcard() {
        let (_, ex) = lines(serde_json::json!([
            {"allow": true, "type": "c", "access": "m"},
            {"allow": false, "type": "c", "major": 10, "minor": 200, "access": "rw"}
        ]));
        assert_eq!(ex, ["c *:* m"]);
    }

    #[test]
    fn a_cut_into_a_wildcard_major_is_an_error() {
        let r = rules(serde_json::json!([
            {"allow": true, "type": "c", "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
        ]));
        assert!(emulate(&r).is_err());
    }
}
