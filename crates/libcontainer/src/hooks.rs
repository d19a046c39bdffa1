//! OCI hooks: run each with the container state on stdin, honouring its
//! timeout; a non-zero exit is an error naming the hook.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::config::Config;
use crate::error::{Error, Result};

/// The hook kinds by their config.json names, in the order they run.
pub const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Hook lists by their config.json names.
pub fn list<'a>(hooks: Option<&'a Hooks>, kind: &str) -> &'a [Hook] {
    let Some(h) = hooks else { return &[] };
    #[allow(deprecated)]
    let v = match kind {
        "prestart" => h.prestart(),
        "createRuntime" => h.create_runtime(),
        "createContainer" => h.create_container(),
        "startContainer" => h.start_container(),
        "poststart" => h.poststart(),
        "poststop" => h.poststop(),
        _ => &None,
    };
    v.as_deref().unwrap_or(&[])
}

fn kind_name(kind: &str) -> &'static str {
    KINDS.iter().find(|k| **k == kind).unwrap_or(&"poststop")
}

/// Run one hook to completion.
pub fn run_one(kind: &str, hook: &Hook, state: &[u8]) -> Result<()> {
    let path = hook.path().to_string_lossy().into_owned();
    let err = |reason: String| Error::Hook {
        kind: kind_name(kind),
        path: path.clone(),
        reason,
    };
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| err(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait().map_err(|e| err(format!("wait: {e}")))? {
            Some(s) => break s,
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!(
                    "timed out after {}s",
                    hook.timeout().unwrap_or(0)
                )));
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    if let Some(sig) = status.signal() {
        return Err(err(format!("killed by signal {sig}")));
    }
    match status.code() {
        Some(0) => Ok(()),
        Some(c) => Err(err(format!("exited with status {c}"))),
        None => Err(err("ended without a status".into())),
    }
}

/// Run every hook of `kind` in order, stopping at the first failure.
pub fn run(hooks: Option<&Hooks>, kind: &str, state: &[u8]) -> Result<()> {
    list(hooks, kind)
        .iter()
        .try_for_each(|h| run_one(kind, h, state))
}

/// Run every hook of `kind`, each even when one before it failed (as
/// poststop hooks run: a failure is a warning); returns the failures.
pub fn run_each(hooks: Option<&Hooks>, kind: &str, state: &[u8]) -> Vec<Error> {
    list(hooks, kind)
        .iter()
        .filter_map(|h| run_one(kind, h, state).err())
        .collect()
}

/// Hooks that run inside the container (createContainer, startContainer).
pub fn run_in_container(cfg: &Config, kind: &str, state: &[u8]) -> Result<()> {
    run(cfg.spec.hooks().as_ref(), kind, state)
}

/// True when the config has hooks the init must coordinate with the parent.
pub fn needs_round_trip(hooks: Option<&Hooks>) -> bool {
    // Every kind before poststart: they run during create.
    KINDS[..4].iter().any(|k| !list(hooks, k).is_empty())
}
