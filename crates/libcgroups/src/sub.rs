//! Sub-cgroups of a container's cgroup for `exec --cgroup`, as runc takes
//! them: one `PATH` for every hierarchy, or `CONTROLLER[,CONTROLLER]:PATH`
//! for the hierarchies of those controllers. The sub-cgroups must exist.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::{CgroupError, CgroupState, Result};

const FIELD: &str = "exec --cgroup";

/// Controller ("" for every hierarchy) -> path below the container's cgroup.
pub type SubCgroups = BTreeMap<String, PathBuf>;

fn invalid(reason: String) -> CgroupError {
    CgroupError::invalid(FIELD, reason)
}

/// Parse `--cgroup` arguments. A path without a controller must be the only
/// argument; a controller may be named once.
pub fn parse_sub_cgroups(args: &[String]) -> Result<SubCgroups> {
    let mut out = SubCgroups::new();
    for arg in args {
        let (ctrls, path) = match arg.split_once(':') {
            Some((c, p)) => (Some(c), p),
            None => (None, arg.as_str()),
        };
        if path.contains(':') {
            return Err(invalid(format!("{arg:?}: more than one \":\"")));
        }
        let path = sub_path(arg, path)?;
        let Some(ctrls) = ctrls else {
            if args.len() != 1 {
                return Err(invalid(format!(
                    "{arg:?}: a path without a controller must be the only --cgroup"
                )));
            }
            out.insert(String::new(), path);
            continue;
        };
        for ctrl in ctrls.split(',') {
            if ctrl.is_empty() {
                return Err(invalid(format!("{arg:?}: empty controller name")));
            }
            if out.insert(ctrl.to_string(), path.clone()).is_some() {
                return Err(invalid(format!("controller {ctrl} given more than once")));
            }
        }
    }
    Ok(out)
}

/// A relative path that stays below the container's cgroup.
fn sub_path(arg: &str, path: &str) -> Result<PathBuf> {
    let p = Path::new(path.trim_start_matches('/'));
    let normal = p.components().all(|c| matches!(c, Component::Normal(_)));
    if p.as_os_str().is_empty() || !normal {
        return Err(invalid(format!(
            "{arg:?}: not a path below the container's cgroup"
        )));
    }
    Ok(p.to_path_buf())
}

/// The cgroup of `state` with each directory moved to its sub-cgroup.
/// Every controller named must be one of a hierarchy of the container, the
/// controllers of one hierarchy must agree, and each sub-cgroup must exist.
pub fn resolve(state: &CgroupState, subs: &SubCgroups) -> Result<CgroupState> {
    for ctrl in subs.keys().filter(|c| !c.is_empty()) {
        if !state.dirs.iter().any(|d| d.controllers.contains(ctrl)) {
            return Err(invalid(format!(
                "unknown controller {ctrl}: the container's cgroup has none of that name"
            )));
        }
    }
    let mut out = state.clone();
    for dir in &mut out.dirs {
        dir.created.clear();
        let mut chosen = subs.get("");
        for ctrl in &dir.controllers {
            let Some(p) = subs.get(ctrl) else { continue };
            if chosen.is_some_and(|c| c != p) {
                return Err(invalid(format!(
                    "{} shares one hierarchy ({}) but got different sub-cgroups",
                    dir.controllers.join(","),
                    dir.mount_point.display()
                )));
            }
            chosen = Some(p);
        }
        let Some(sub) = chosen else { continue };
        let path = dir.path.join(sub);
        if !path.is_dir() {
            return Err(invalid(format!(
                "sub-cgroup {} does not exist",
                path.display()
            )));
        }
        dir.path = path;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dir;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn parsed(a: &[&str]) -> Vec<(String, String)> {
        parse_sub_cgroups(&args(a))
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.display().to_string()))
            .collect()
    }

    #[test]
    fn parses_runc_forms() {
        assert_eq!(parsed(&["sub"]), [("".into(), "sub".into())]);
        assert_eq!(parsed(&["/a/b"]), [("".into(), "a/b".into())]);
        assert_eq!(
            parsed(&["cpu,memory:x", "pids:y"]),
            [
                ("cpu".into(), "x".into()),
                ("memory".into(), "x".into()),
                ("pids".into(), "y".into())
            ]
        );
        assert_eq!(
            parsed(&["name=systemd:s"]),
            [("name=systemd".into(), "s".into())]
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in [
            &["a", "b"][..],
            &["sub", "cpu:x"],
            &["cpu:x", "cpu:y"],
            &[",cpu:x"],
            &["cpu:a:b"],
            &["cpu:"],
            &["../other"],
            &["cpu:a/../../b"],
            &[""],
        ] {
            let e = parse_sub_cgroups(&args(bad)).unwrap_err();
            assert!(e.to_string().starts_with(FIELD), "{bad:?}: {e}");
        }
    }

    fn state(root: &Path) -> CgroupState {
        let dir = |name: &str, ctrls: &[&str], v2: bool| Dir {
            path: root.join(name).join("ctr"),
            mount_point: root.join(name),
            controllers: ctrls.iter().map(|c| c.to_string()).collect(),
            v2,
            created: vec![root.join(name).join("ctr")],
        };
        CgroupState {
            v2_host: false,
            dirs: vec![
                dir("cpu,cpuacct", &["cpu", "cpuacct"], false),
                dir("memory", &["memory"], false),
                dir("unified", &["hugetlb"], true),
            ],
            systemd_unit: None,
        }
    }

    #[test]
    fn resolves_existing_sub_cgroups_only() {
        let tmp = std::env::temp_dir().join(format!("libcgroups-sub-{}", std::process::id()));
        let st = state(&tmp);
        for d in &st.dirs {
            std::fs::create_dir_all(d.path.join("s")).unwrap();
        }
        std::fs::create_dir_all(st.dirs[1].path.join("m")).unwrap();
        let subs = |a: &[&str]| parse_sub_cgroups(&args(a)).unwrap();

        let all = resolve(&st, &subs(&["s"])).unwrap();
        for (a, b) in all.dirs.iter().zip(&st.dirs) {
            assert_eq!(a.path, b.path.join("s"));
            assert!(a.created.is_empty(), "nothing of a sub-cgroup is ours");
        }
        let some = resolve(&st, &subs(&["cpu:s", "memory:m"])).unwrap();
        assert_eq!(some.dirs[0].path, st.dirs[0].path.join("s"));
        assert_eq!(some.dirs[1].path, st.dirs[1].path.join("m"));
        assert_eq!(some.dirs[2].path, st.dirs[2].path);

        let err = |a: &[&str]| resolve(&st, &subs(a)).unwrap_err().to_string();
        assert!(err(&["nosuch"]).contains("does not exist"));
        assert!(err(&["cpu:m"]).contains("does not exist"));
        assert!(err(&["rdma:s"]).contains("unknown controller rdma"));
        assert!(err(&["cpu:s", "cpuacct:m"]).contains("different sub-cgroups"));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
