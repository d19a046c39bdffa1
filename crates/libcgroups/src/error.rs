//! Errors of the cgroup managers; each names the file or field at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{field}: not supported on this host: {reason}")]
    Unsupported { field: String, reason: String },
    #[error("no cgroup filesystem is mounted under {0}")]
    NoCgroupFs(PathBuf),
    #[error("systemd cgroup driver: {0}")]
    Systemd(String),
    #[error("cgroup {path}: {what}")]
    State { path: PathBuf, what: String },
}

impl CgroupError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CgroupError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CgroupError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
