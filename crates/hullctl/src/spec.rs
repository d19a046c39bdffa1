//! `run`/`create` flags + the image's config -> the container's runtime
//! config: libimage's [`runtime_config`] for the process, then hullctl's
//! defaults (Podman's capabilities and seccomp profile, namespaces) and the
//! flags for mounts, resources and security.

use std::path::Path;

use anyhow::{bail, Context, Result};
use libimage::bundle::{runtime_config, Overrides};
use libimage::imagefs::ImageFs;
use libimage::store::ImageRecord;
use libimage::Store;
use serde_json::{json, Value};

use crate::cli::ContainerArgs;

/// Podman's default capabilities.
pub const DEFAULT_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Where `--init`'s binary is looked for on the host, and where it goes.
const INIT_BINARIES: [&str; 3] = [
    "/usr/libexec/podman/catatonit",
    "/usr/bin/catatonit",
    "/usr/bin/tini-static",
];
const INIT_PATH: &str = "/run/hullctl-init";

fn cap_name(c: &str) -> String {
    let c = c.to_ascii_uppercase();
    if c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// What `ALL` and `--privileged` give: this process's bounding set.
fn our_caps() -> Vec<String> {
    let mut ours: Vec<String> = caps::read(None, caps::CapSet::Bounding)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    ours.sort();
    ours
}

/// The capabilities this kernel knows.
fn all_caps() -> Vec<String> {
    let last: u8 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let mut all: Vec<String> = caps::all()
        .into_iter()
        .filter(|c| c.index() <= last)
        .map(|c| c.to_string())
        .collect();
    all.sort();
    all
}

/// The bounding set: the defaults (or all, privileged), with --cap-drop
/// then --cap-add applied; ALL works in both.
pub fn capabilities(a: &ContainerArgs) -> Result<Vec<String>> {
    let known = all_caps();
    let mut set: Vec<String> = if a.privileged {
        our_caps()
    } else {
        DEFAULT_CAPS.iter().map(|c| c.to_string()).collect()
    };
    for c in &a.cap_drop {
        if c.eq_ignore_ascii_case("all") {
            set.clear();
            continue;
        }
        let c = cap_name(c);
        if !known.contains(&c) {
            bail!("--cap-drop {c}: unknown capability");
        }
        set.retain(|x| *x != c);
    }
    for c in &a.cap_add {
        if c.eq_ignore_ascii_case("all") {
            set = our_caps();
            continue;
        }
        let c = cap_name(c);
        if !known.contains(&c) {
            bail!("--cap-add {c}: unknown capability");
        }
        if !set.contains(&c) {
            set.push(c);
        }
    }
    Ok(set)
}

/// `64m`, `1g`, `512k`, `1048576` (also with a trailing `b`) -> bytes.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid size {s:?}: use bytes or a k, m, g suffix"))?;
    if n <= 0.0 {
        bail!("invalid size {s:?}: must be positive");
    }
    Ok((n * mult as f64) as i64)
}

/// `-v HOST:CTR[:ro|rw]` -> a bind mount.
pub fn parse_volume(v: &str) -> Result<Value> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, opts) = match parts.as_slice() {
        [h, c] => (*h, *c, ""),
        [h, c, o] => (*h, *c, *o),
        _ => bail!("-v {v:?}: use HOST:CONTAINER[:ro]"),
    };
    if !host.starts_with('/') {
        bail!("-v {v:?}: the host path must be absolute (named volumes are not supported)");
    }
    if !ctr.starts_with('/') {
        bail!("-v {v:?}: the container path must be absolute");
    }
    if !Path::new(host).exists() {
        bail!("-v {v:?}: {host} does not exist");
    }
    let mut options = vec!["rbind".to_string()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" => options.push(o.into()),
            "z" | "Z" => {}
            _ => bail!("-v {v:?}: unknown option {o:?} (ro or rw)"),
        }
    }
    Ok(json!({"destination": ctr, "type": "bind", "source": host, "options": options}))
}

/// `--tmpfs PATH[:OPTS]` -> a tmpfs mount.
pub fn parse_tmpfs(t: &str) -> Result<Value> {
    let (path, opts) = t.split_once(':').unwrap_or((t, ""));
    if !path.starts_with('/') {
        bail!("--tmpfs {t:?}: the path must be absolute");
    }
    let mut options: Vec<&str> = vec!["nosuid", "nodev"];
    options.extend(opts.split(',').filter(|o| !o.is_empty()));
    Ok(json!({"destination": path, "type": "tmpfs", "source": "tmpfs", "options": options}))
}

/// -e and --env-file, in order; `KEY` alone takes this process's value.
pub fn environment(a: &ContainerArgs) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("--env-file {}: cannot read it", f.display()))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.extend(one_env(line));
        }
    }
    for e in &a.env {
        out.extend(one_env(e));
    }
    Ok(out)
}

fn one_env(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

fn overrides(a: &ContainerArgs, id: &str) -> Result<Overrides> {
    Ok(Overrides {
        entrypoint: a.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        cmd: (!a.command.is_empty()).then(|| a.command.clone()),
        env: environment(a)?,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: Some(a.hostname.clone().unwrap_or_else(|| id[..12].to_string())),
        terminal: a.tty,
        annotations: Default::default(),
        no_image_volumes: false,
    })
}

fn init_binary() -> Result<&'static str> {
    INIT_BINARIES
        .iter()
        .copied()
        .find(|p| Path::new(p).exists())
        .context("--init needs catatonit or tini-static on the host (apt-get install tini)")
}

/// The whole runtime config of a container `id` on `img`.
pub fn build(store: &Store, img: &ImageRecord, id: &str, a: &ContainerArgs) -> Result<Value> {
    let fs = ImageFs::open(store, &img.id)?;
    let config = store.image_config(img)?;
    let mut spec = runtime_config(&fs, &config, &overrides(a, id)?)?;
    let caps = capabilities(a)?;
    let p = &mut spec["process"];
    p["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
    });
    let security = security_opts(a)?;
    p["noNewPrivileges"] = json!(security.no_new_privileges);
    if a.init {
        let mut args = vec![json!(INIT_PATH), json!("--")];
        args.extend(p["args"].as_array().cloned().unwrap_or_default());
        p["args"] = json!(args);
    }
    spec["root"]["readonly"] = json!(a.read_only);

    let linux = &mut spec["linux"];
    // One level: a parent shared by containers would be removed by
    // whichever of them made it, under the feet of the next one.
    linux["cgroupsPath"] = json!(format!("/hullctl-{id}"));
    let mut namespaces = vec!["pid", "ipc", "uts", "mount", "cgroup"];
    if a.network == "none" {
        namespaces.push("network");
    }
    linux["namespaces"] = json!(namespaces
        .iter()
        .map(|n| json!({"type": n}))
        .collect::<Vec<_>>());
    match (&security.seccomp, a.privileged) {
        (_, true) | (Seccomp::Unconfined, _) => {
            linux.as_object_mut().map(|l| l.remove("seccomp"));
        }
        (Seccomp::Default, false) => linux["seccomp"] = crate::seccomp::default_for(&caps),
        (Seccomp::Profile(v), false) => linux["seccomp"] = crate::seccomp::convert(v, &caps)?,
    }
    if a.privileged {
        linux["maskedPaths"] = json!([]);
        linux["readonlyPaths"] = json!([]);
        linux["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    resources(&mut linux["resources"], a)?;

    add_mounts(&mut spec["mounts"], a)?;
    Ok(spec)
}

/// The flags' mounts (volumes, tmpfs, the init, host files) after the
/// defaults; with --privileged, /sys writable.
fn add_mounts(mounts: &mut Value, a: &ContainerArgs) -> Result<()> {
    let mounts = mounts.as_array_mut().context("spec has no mounts")?;
    if a.privileged {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup" {
                if let Some(o) = m["options"].as_array_mut() {
                    o.retain(|x| x != "ro");
                }
            }
        }
    }
    // -v and --tmpfs replace what is mounted there already (an image
    // volume, a default mount), as in Podman.
    let mut replace = |m: Value| {
        mounts.retain(|old| old["destination"] != m["destination"]);
        mounts.push(m);
    };
    for v in &a.volume {
        replace(parse_volume(v)?);
    }
    for t in &a.tmpfs {
        replace(parse_tmpfs(t)?);
    }
    if a.init {
        let bin = init_binary()?;
        mounts.push(json!({
            "destination": INIT_PATH, "type": "bind", "source": bin,
            "options": ["bind", "ro"],
        }));
    }
    if a.network == "host" {
        for f in ["/etc/resolv.conf", "/etc/hosts"] {
            if Path::new(f).exists() {
                mounts.push(json!({
                    "destination": f, "type": "bind", "source": f, "options": ["bind", "ro"],
                }));
            }
        }
    }
    Ok(())
}

fn resources(r: &mut Value, a: &ContainerArgs) -> Result<()> {
    if let Some(m) = &a.memory {
        r["memory"]["limit"] = json!(parse_size(m)?);
    }
    if let Some(c) = a.cpus {
        if c <= 0.0 {
            bail!("--cpus {c}: must be positive");
        }
        let period = 100_000u64;
        r["cpu"]["period"] = json!(period);
        r["cpu"]["quota"] = json!((c * period as f64) as i64);
    }
    if let Some(p) = a.pids_limit {
        r["pids"]["limit"] = json!(if p <= 0 { -1 } else { p });
    }
    Ok(())
}

enum Seccomp {
    Default,
    Unconfined,
    Profile(Value),
}

struct Security {
    seccomp: Seccomp,
    no_new_privileges: bool,
}

fn security_opts(a: &ContainerArgs) -> Result<Security> {
    let mut s = Security {
        seccomp: Seccomp::Default,
        no_new_privileges: false,
    };
    for o in &a.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o, ""));
        match k {
            "no-new-privileges" => s.no_new_privileges = v.is_empty() || v == "true",
            "seccomp" if v == "unconfined" => s.seccomp = Seccomp::Unconfined,
            "seccomp" => {
                let text = std::fs::read(v)
                    .with_context(|| format!("--security-opt {o}: cannot read {v}"))?;
                let p = serde_json::from_slice(&text)
                    .with_context(|| format!("--security-opt {o}: {v} is not JSON"))?;
                s.seccomp = Seccomp::Profile(p);
            }
            _ => bail!(
                "--security-opt {o:?}: use seccomp=unconfined, seccomp=FILE or no-new-privileges"
            ),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1m").is_err());
    }

    #[test]
    fn volumes_and_tmpfs() {
        let v = parse_volume("/tmp:/data:ro").unwrap();
        assert_eq!(v["source"], "/tmp");
        assert_eq!(v["destination"], "/data");
        assert_eq!(v["options"], json!(["rbind", "ro"]));
        assert!(parse_volume("data:/data").is_err());
        assert!(parse_volume("/tmp:rel").is_err());
        assert!(parse_volume("/tmp:/d:bogus").is_err());
        let t = parse_tmpfs("/run:size=1m").unwrap();
        assert_eq!(t["options"], json!(["nosuid", "nodev", "size=1m"]));
    }

    #[test]
    fn capability_flags() {
        let mut a = ContainerArgs::default();
        assert_eq!(capabilities(&a).unwrap().len(), 11);
        a.cap_drop = vec!["chown".into()];
        a.cap_add = vec!["NET_ADMIN".into()];
        let c = capabilities(&a).unwrap();
        assert!(!c.contains(&"CAP_CHOWN".into()) && c.contains(&"CAP_NET_ADMIN".into()));
        a.cap_drop = vec!["ALL".into()];
        a.cap_add = vec![];
        assert!(capabilities(&a).unwrap().is_empty());
        a.cap_add = vec!["bogus".into()];
        assert!(capabilities(&a).is_err());
    }
}
