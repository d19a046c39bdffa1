//! The OCI container lifecycle for hull: config.json -> validated
//! [`config::Config`] -> [`container::Runtime`] operations, with the code
//! that runs in the container's processes under [`init`].

pub mod cgroup_ops;
pub mod channel;
pub mod config;
pub mod console;
pub mod container;
pub mod error;
pub mod exec;
pub mod foreground;
pub mod hooks;
pub mod init;
pub mod netdev;
pub mod notify;
pub mod ps;
pub mod seccomp;
pub mod signal;
pub mod spawn;
pub mod state;
pub mod sys;
pub mod time;

pub use container::{CreateOpts, Created, Runtime};
pub use error::{Error, Result};
pub use exec::ExecOpts;

/// The runtime-spec version hull implements.
pub const OCI_VERSION: &str = "1.2.0";
