//! Advisory file locks (flock) between processes sharing a store.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// An exclusive flock, released on drop.
pub struct FileLock {
    lock: Flock<File>,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until the lock on `path` (created if missing) is ours. A
    /// lock file unlinked by its holder while we waited (see `release`) is
    /// not the lock any more: then we start over on the new file.
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        Self::take(path, FlockArg::LockExclusive)
    }

    /// Blocks until a shared lock on `path` is ours (many holders at once,
    /// none while an exclusive one is held).
    pub fn shared(path: &Path) -> Result<FileLock> {
        Self::take(path, FlockArg::LockShared)
    }

    fn take(path: &Path, how: FlockArg) -> Result<FileLock> {
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(Error::io("open", path))?;
            let lock =
                Flock::lock(file, how).map_err(|(_, e)| Error::io("flock", path)(e.into()))?;
            let held = lock.metadata().map_err(Error::io("stat", path))?;
            match fs::metadata(path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(FileLock {
                        lock,
                        path: path.to_path_buf(),
                    })
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("stat", path)(e)),
            }
        }
    }

    /// Unlinks the lock file, then unlocks: for locks that guard one
    /// short operation (a layer's unpacking), so none is left behind.
    pub fn release(self) -> Result<()> {
        fs::remove_file(&self.path).map_err(Error::io("remove", &self.path))?;
        drop(self.lock);
        Ok(())
    }
}

impl std::fmt::Debug for FileLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileLock")
    }
}
