//! The crate's error type: each variant names the reference, digest, file or
//! registry at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    #[error("invalid digest {0:?}")]
    Digest(String),
    #[error("{what} {digest}: expected {expected}, got {actual}")]
    Mismatch {
        what: &'static str,
        digest: String,
        expected: String,
        actual: String,
    },
    #[error("{registry}: {op}: {reason}")]
    Registry {
        registry: String,
        op: String,
        reason: String,
    },
    #[error("{registry}: authentication required for {repo}: {reason}")]
    Unauthorized {
        registry: String,
        repo: String,
        reason: String,
    },
    #[error("{reference}: manifest unknown")]
    ManifestUnknown { reference: String },
    #[error("{reference}: no image for platform {platform} (available: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("{what} {path}: {reason}")]
    Format {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("layer {layer}: tar entry {entry:?}: {reason}")]
    Unpack {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0:?}: no such image")]
    ImageUnknown(String),
    #[error("{0:?}: no such container")]
    ContainerUnknown(String),
    #[error("{name:?} is ambiguous: matches {matches}")]
    Ambiguous { name: String, matches: String },
    #[error("name {name:?} is already used by {kind} {id}")]
    NameInUse {
        name: String,
        kind: &'static str,
        id: String,
    },
    #[error("image {image} is used by container {container}")]
    ImageInUse { image: String, container: String },
    #[error("config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("mount overlay on {path}: {reason}")]
    Mount { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn reference(reference: &str, reason: impl Into<String>) -> Error {
        Error::Reference {
            reference: reference.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn format(what: &'static str, path: impl ToString, reason: impl ToString) -> Error {
        Error::Format {
            what,
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }
}
