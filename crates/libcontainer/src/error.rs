//! The crate's error type: each variant names the file, field or id at fault.

use std::path::PathBuf;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container id {0:?} is invalid: {1}")]
    InvalidId(String, &'static str),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container with id {0:?} already exists")]
    Exists(String),
    #[error("container {id:?} is {status}: {op} needs it {wanted}")]
    WrongState {
        id: String,
        status: &'static str,
        op: &'static str,
        wanted: &'static str,
    },
    /// runc's words for an exec into a container that is not running.
    #[error("cannot exec in a {status} container{hint}", hint = if *status == "paused" { " (use --ignore-paused to override)" } else { "" })]
    CannotExec { id: String, status: &'static str },
    #[error("read {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    ParseConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("config.json: {field}: {reason}")]
    InvalidConfig { field: String, reason: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op}: {errno}")]
    Sys { op: String, errno: Errno },
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    #[error("container init: {0}")]
    Init(String),
    #[error("{kind} hook {path}: {reason}")]
    Hook {
        kind: &'static str,
        path: String,
        reason: String,
    },
    #[error("{command}: {reason}")]
    Ps { command: String, reason: String },
    #[error("state file {path}: {reason}")]
    State { path: PathBuf, reason: String },
    #[error(transparent)]
    Cgroup(#[from] libcgroups::CgroupError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub fn sys(op: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            op: op.into(),
            errno,
        }
    }

    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
