//! OCI images for hull: parse a reference, pull it from a registry (or
//! import it from a file), keep its layers once in a store in overlayfs
//! form, and turn it into a bundle (config.json + an overlay rootfs) that
//! any OCI runtime runs.
//!
//! The way through: [`Reference`] -> [`registry::Client`] -> [`pull()`]
//! (manifest, config, layers via [`unpack`]) -> [`Store`] -> [`bundle`].

pub mod bundle;
mod copy_driver;
pub mod digest;
mod error;
pub mod imagefs;
pub mod import;
pub mod manifest;
pub mod overlay;
mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
mod sys;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, Result};
pub use progress::ProgressMode;
pub use pull::{pull, PullOptions, PullReport};
pub use reference::Reference;
pub use store::Store;
