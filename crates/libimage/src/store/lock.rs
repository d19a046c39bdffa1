//! Advisory file locks (flock) between processes sharing a store.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// An exclusive flock, released on drop.
pub struct FileLock(#[allow(dead_code)] Flock<File>);

impl FileLock {
    /// Blocks until the lock on `path` (created if missing) is ours.
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(Error::io("open", path))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map(FileLock)
            .map_err(|(_, e)| Error::io("flock", path)(e.into()))
    }
}

impl std::fmt::Debug for FileLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileLock")
    }
}
