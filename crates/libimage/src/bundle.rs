//! Image config + the caller's overrides -> an OCI runtime config, and a
//! container's bundle: that config.json beside its overlay rootfs.
//!
//! Entrypoint and Cmd combine as Docker does (`--entrypoint` drops the
//! image's Cmd), Env is merged by key, User is resolved through the
//! image's own /etc/passwd and /etc/group, Labels and StopSignal become
//! annotations, and each of the image's Volumes is a bind mount of a
//! directory of the bundle, filled from the image (as Docker and Podman's
//! default do).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::imagefs::ImageFs;
use crate::manifest::ImageConfig;
use crate::overlay::{self, Overlay};
use crate::store::{ContainerRecord, Driver, Store};

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const STOP_SIGNAL_ANNOTATION: &str = "org.opencontainers.image.stopSignal";
/// Directory of the bundle holding the image's anonymous volumes.
pub const VOLUMES_DIR: &str = "volumes";

/// What the caller changes from the image's defaults.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces the image's Entrypoint (and then its Cmd is not used).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's Cmd.
    pub cmd: Option<Vec<String>>,
    /// `KEY=value`, replacing the image's value of KEY.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`.
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub terminal: bool,
    pub annotations: BTreeMap<String, String>,
    /// Leave out the image's Volumes (by default each is a bind mount of
    /// a directory of the bundle, filled from the image as Docker does).
    pub no_image_volumes: bool,
}

/// The user a process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
}

/// Builds the runtime config (as JSON, for the caller to adjust) for the
/// image whose tree is `fs` and whose config is `config`.
pub fn runtime_config(fs: &ImageFs, config: &ImageConfig, o: &Overrides) -> Result<Value> {
    let c = &config.config;
    let entrypoint = o
        .entrypoint
        .clone()
        .or_else(|| c.entrypoint.clone())
        .unwrap_or_default();
    let cmd = match (&o.cmd, &o.entrypoint) {
        (Some(cmd), _) => cmd.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => c.cmd.clone().unwrap_or_default(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::format(
            "image",
            "config",
            "no command: the image has no Entrypoint or Cmd and none was given",
        ));
    }
    let user = resolve_user(fs, o.user.as_deref().or(c.user.as_deref()).unwrap_or(""))?;
    let hostname = o.hostname.clone().unwrap_or_else(|| "hull".into());
    let mut env = merge_env(c.env.as_deref().unwrap_or_default(), &o.env);
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={hostname}"));
    }
    if o.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home.as_deref().unwrap_or("/")));
    }
    let cwd = o
        .workdir
        .clone()
        .or_else(|| c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let cwd = if cwd.starts_with('/') {
        cwd
    } else {
        format!("/{cwd}")
    };

    let mut annotations: BTreeMap<String, String> = c.labels.clone().unwrap_or_default();
    if let Some(s) = &c.stop_signal {
        annotations.insert(STOP_SIGNAL_ANNOTATION.into(), s.clone());
    }
    annotations.extend(o.annotations.clone());

    let mut spec =
        serde_json::to_value(oci_spec::runtime::Spec::default()).expect("spec serialises");
    spec["ociVersion"] = json!("1.0.2");
    spec["hostname"] = json!(hostname);
    spec["root"] = json!({"path": "rootfs", "readonly": false});
    spec["annotations"] = json!(annotations);
    let p = &mut spec["process"];
    p["terminal"] = json!(o.terminal);
    p["args"] = json!(args);
    p["env"] = json!(env);
    p["cwd"] = json!(cwd);
    p["noNewPrivileges"] = json!(false);
    p["user"] = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(user.additional_gids);
    }
    if !o.no_image_volumes {
        let volumes = c.volumes.as_ref().map(|v| v.keys().collect::<Vec<_>>());
        let mounts = spec["mounts"]
            .as_array_mut()
            .expect("default spec has mounts");
        for (i, dest) in volumes.unwrap_or_default().into_iter().enumerate() {
            let parts = crate::unpack::clean_path(dest.as_bytes())
                .filter(|p| !p.is_empty())
                .ok_or_else(|| Error::format("image", "config", format!("Volumes: {dest:?}")))?;
            let parts: Vec<String> = parts
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let dest = format!("/{}", parts.join("/"));
            let name = parts.join("_");
            mounts.push(json!({
                "destination": dest,
                "type": "bind",
                "source": format!("{VOLUMES_DIR}/{i}-{name}"),
                "options": ["rbind", "rprivate"],
            }));
        }
    }
    Ok(spec)
}

/// Creates the bundle's volume directories that `spec` binds (sources in
/// VOLUMES_DIR), each filled with what the image has at its destination.
/// A destination that is not a plain directory in the image (missing, a
/// file, or reached through a symlink) gets an empty volume: nothing is
/// read from outside the rootfs.
fn make_volumes(bundle: &Path, rootfs: &Path, spec: &Value) -> Result<()> {
    let mounts = spec["mounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for m in mounts {
        let (Some(src), Some(dest)) = (m["source"].as_str(), m["destination"].as_str()) else {
            continue;
        };
        if m["type"] != "bind" || !src.starts_with(&format!("{VOLUMES_DIR}/")) {
            continue;
        }
        let vol = bundle.join(src);
        if vol.exists() {
            continue;
        }
        let parent = bundle.join(VOLUMES_DIR);
        fs::create_dir_all(&parent).map_err(Error::io("create", &parent))?;
        let tmp = parent.join(format!(".tmp-{}", crate::store::random_hex(8)));
        fs::create_dir(&tmp).map_err(Error::io("create", &tmp))?;
        if let Some(seed) = plain_dir(rootfs, dest) {
            crate::copy_driver::apply_layer(&seed, &tmp)?;
            let m = fs::metadata(&seed).map_err(Error::io("stat", &seed))?;
            std::os::unix::fs::chown(&tmp, Some(m.uid()), Some(m.gid()))
                .map_err(Error::io("chown", &tmp))?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(Error::io("chmod", &tmp))?;
        }
        fs::rename(&tmp, &vol).map_err(Error::io("rename", &vol))?;
    }
    Ok(())
}

/// `rootfs` + `path` when every component is a real directory (no symlink).
fn plain_dir(rootfs: &Path, path: &str) -> Option<PathBuf> {
    let mut cur = rootfs.to_path_buf();
    for c in path.split('/').filter(|c| !c.is_empty()) {
        cur.push(c);
        let m = fs::symlink_metadata(&cur).ok()?;
        if !m.is_dir() {
            return None;
        }
    }
    Some(cur)
}

/// The image's Env, then the overrides by key, with a PATH if none is set.
fn merge_env(image: &[String], overrides: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut out: Vec<String> = Vec::new();
    for e in image.iter().chain(overrides) {
        let k = key(e);
        match out.iter_mut().find(|x| key(x) == k) {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH.into());
    }
    out
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`, or empty for
/// root) through the image's /etc/passwd and /etc/group, as Docker does.
pub fn resolve_user(fs: &ImageFs, spec: &str) -> Result<User> {
    let passwd = fs
        .read("/etc/passwd")
        .map(|d| String::from_utf8_lossy(&d).into_owned());
    let group = fs
        .read("/etc/group")
        .map(|d| String::from_utf8_lossy(&d).into_owned());
    resolve_user_in(spec, passwd.as_deref().ok(), group.as_deref().ok())
}

fn resolve_user_in(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<User> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let pw: Vec<Vec<&str>> = passwd
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let gr: Vec<Vec<&str>> = group
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let no_user = |what: &str, name: &str| {
        Error::format(
            "user",
            spec,
            format!(
                "unable to find {what} {name}: no matching entries in {what_file} file",
                what_file = if what == "user" { "passwd" } else { "group" }
            ),
        )
    };
    let entry = match u.parse::<u32>() {
        Ok(uid) => pw.iter().find(|f| f[2].parse() == Ok(uid)),
        Err(_) => Some(
            pw.iter()
                .find(|f| f[0] == u)
                .ok_or_else(|| no_user("user", u))?,
        ),
    };
    let uid = match u.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| no_user("user", u))?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => gr
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| no_user("group", g))?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    // Supplementary groups: those listing the user by name (not with an
    // explicit group, as Docker does).
    let mut additional_gids = Vec::new();
    if g.is_none() {
        if let Some(name) = entry.map(|f| f[0]) {
            for f in &gr {
                let members = f[3].split(',').any(|m| m == name);
                if let Ok(id) = f[2].parse::<u32>() {
                    if members && id != gid && !additional_gids.contains(&id) {
                        additional_gids.push(id);
                    }
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
        home: entry.map(|f| f[5].to_string()),
    })
}

impl Store {
    /// Mounts the container's overlay rootfs (idempotent) and returns it.
    pub fn mount_rootfs(&self, c: &ContainerRecord) -> Result<PathBuf> {
        let img = self.image(&c.image)?;
        let dir = self.container_dir(&c.id);
        let mut lowers: Vec<PathBuf> = img
            .layers
            .iter()
            .rev()
            .map(|d| self.layer_diff(d))
            .collect();
        if lowers.is_empty() {
            let empty = dir.join("empty");
            fs::create_dir_all(&empty).map_err(Error::io("create", &empty))?;
            lowers.push(empty);
        }
        let target = self.bundle_dir(&c.id).join("rootfs");
        if self.driver() == Driver::Copy {
            let done = dir.join("rootfs.copied");
            if !done.exists() {
                for l in lowers.iter().rev() {
                    crate::copy_driver::apply_layer(l, &target)?;
                }
                fs::write(&done, b"").map_err(Error::io("write", &done))?;
            }
            return Ok(target);
        }
        Overlay {
            lowers: &lowers,
            upper: &dir.join("upper"),
            work: &dir.join("work"),
        }
        .mount(&target)?;
        Ok(target)
    }

    pub fn unmount_rootfs(&self, c: &ContainerRecord) -> Result<()> {
        overlay::unmount(&self.bundle_dir(&c.id).join("rootfs"))
    }

    /// Writes the bundle: `spec` as config.json (checked against the
    /// runtime spec's schema), the rootfs mounted. Returns the bundle dir.
    pub fn write_bundle(&self, c: &ContainerRecord, spec: &Value) -> Result<PathBuf> {
        let bundle = self.bundle_dir(&c.id);
        let config = bundle.join("config.json");
        serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone())
            .map_err(|e| Error::format("runtime config", config.display(), e))?;
        let rootfs = self.mount_rootfs(c)?;
        make_volumes(&bundle, &rootfs, spec)?;
        let data = serde_json::to_vec_pretty(spec).expect("spec serialises");
        crate::store::write_atomic(&config, &data)?;
        Ok(bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbob:x:1000:100:Bob:/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:\nwww:x:33:\naudio:x:29:bob\nvideo:x:44:www,bob\n";

    fn user(spec: &str) -> Result<User> {
        resolve_user_in(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn resolves_users_like_docker() {
        assert_eq!(user("").unwrap().uid, 0);
        let b = user("bob").unwrap();
        assert_eq!(
            (b.uid, b.gid, b.additional_gids.as_slice()),
            (1000, 100, &[29, 44][..])
        );
        assert_eq!(b.home.as_deref(), Some("/home/bob"));
        assert_eq!(user("33").unwrap().gid, 33);
        let u = user("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home), (4242, 0, None));
        let u = user("bob:www").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.len()), (1000, 33, 0));
        assert_eq!(user("1:2").unwrap().gid, 2);
        let err = user("alice").unwrap_err().to_string();
        assert!(err.contains("unable to find user alice"), "{err}");
        let err = user("bob:nogroup").unwrap_err().to_string();
        assert!(err.contains("unable to find group nogroup"), "{err}");
        assert!(resolve_user_in("alice", None, None).is_err());
        assert_eq!(resolve_user_in("7", None, None).unwrap().uid, 7);
    }

    #[test]
    fn merges_env_by_key() {
        let env = merge_env(&["A=1".into(), "B=2".into()], &["B=3".into(), "C=4".into()]);
        assert_eq!(env, [DEFAULT_PATH, "A=1", "B=3", "C=4"]);
        let env = merge_env(&["PATH=/bin".into()], &[]);
        assert_eq!(env, ["PATH=/bin"]);
    }
}
