//! The local store, in the model of containers/storage: layers, images and
//! containers, each a directory with a JSON record.
//!
//! ```text
//! <root>/store.lock              flock: held while records change
//! <root>/blobs/sha256/<hex>      manifests and image configs
//! <root>/layers/<diff-id>/diff   a layer, unpacked once in overlayfs form
//! <root>/layers/<diff-id>/layer.json
//! <root>/images/<id>/image.json  id = the config digest's hex
//! <root>/containers/<id>/        container.json, upper/, work/, bundle/
//! <root>/locks/<diff-id>         flock: one process unpacks a layer
//! <root>/tmp/                    staging; renamed into place when complete
//! ```
//! Every record is written to a temporary file, fsynced and renamed over
//! the old one, so a crash leaves the old record or the new one. A layer is
//! unpacked under tmp/ and renamed into layers/ only once it is verified.

mod containers;
mod images;
mod layers;
mod lock;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub use containers::ContainerRecord;

pub use images::ImageRecord;
pub use layers::{Ingested, LayerRecord};
pub use lock::FileLock;

pub const DEFAULT_ROOT: &str = "/var/lib/hull";

/// How a container's rootfs is made from its image's layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// An overlay mount: no layer is copied.
    #[default]
    Overlay,
    /// A private copy of the layers, for filesystems overlayfs can't use.
    Copy,
}

impl std::str::FromStr for Driver {
    type Err = Error;
    fn from_str(s: &str) -> Result<Driver> {
        match s {
            "overlay" => Ok(Driver::Overlay),
            "copy" | "vfs" => Ok(Driver::Copy),
            _ => Err(Error::Config {
                path: PathBuf::from("storage driver"),
                reason: format!("{s:?}: \"overlay\" or \"copy\" expected"),
            }),
        }
    }
}

/// An open store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    driver: Driver,
}

impl Store {
    /// Opens (creating) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for d in [
            "blobs/sha256",
            "layers",
            "images",
            "containers",
            "locks",
            "tmp",
        ] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(Error::io("create", &p))?;
        }
        let store = Store {
            root,
            driver: Driver::default(),
        };
        store.clean_tmp();
        Ok(store)
    }

    /// The same store, making rootfs with `driver`.
    pub fn with_driver(mut self, driver: Driver) -> Store {
        self.driver = driver;
        self
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the store lock: records may change while it is held.
    pub fn lock(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.root.join("store.lock"))
    }

    /// Held (shared) while content is being added (pull, import): garbage
    /// collection, which takes it exclusively, cannot remove layers and
    /// blobs that are stored but not yet listed by an image record.
    pub fn ingest_guard(&self) -> Result<FileLock> {
        FileLock::shared(&self.root.join("gc.lock"))
    }

    /// Taken before the store lock by whatever collects garbage.
    pub(crate) fn gc_guard(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.root.join("gc.lock"))
    }

    /// A fresh directory under tmp/ (same filesystem as everything else).
    pub(crate) fn temp_dir(&self, prefix: &str) -> Result<TempDir> {
        let path = self
            .root
            .join("tmp")
            .join(format!("{prefix}-{}", random_hex(8)));
        fs::create_dir(&path).map_err(Error::io("create", &path))?;
        Ok(TempDir(Some(path)))
    }

    /// Removes staging directories left by a crashed process (ones whose
    /// owner no longer holds a lock are simply old: anything in tmp/ older
    /// than an hour goes).
    fn clean_tmp(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if old {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Stores a small blob (manifest, config) after checking its digest.
    pub fn put_blob(&self, digest: &Digest, data: &[u8]) -> Result<()> {
        digest.verify("blob", data)?;
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(());
        }
        write_atomic(&path, data)
    }

    pub fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(Error::io("read", &path))
    }
}

/// A directory removed on drop unless it was kept.
pub(crate) struct TempDir(Option<PathBuf>);

impl TempDir {
    pub fn path(&self) -> &Path {
        self.0.as_deref().expect("temp dir already kept")
    }

    /// Moves the directory to `dest` (atomically: same filesystem).
    pub fn persist(mut self, dest: &Path) -> Result<()> {
        let src = self.0.take().expect("temp dir already kept");
        match fs::rename(&src, dest) {
            Ok(()) => {
                sync_dir(dest.parent().unwrap_or(Path::new("/")));
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&src);
                Err(Error::io("rename", dest)(e))
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// Writes `data` to `path` by temp file + fsync + rename + fsync of the dir.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        random_hex(6)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("write", path)(e)
    })?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(value).expect("records serialise");
    write_atomic(path, &data)
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let data = fs::read(path).map_err(Error::io("read", path))?;
    serde_json::from_slice(&data).map_err(|e| Error::format("record", path.display(), e))
}

/// `n` random bytes as hex, from the kernel's generator.
pub fn random_hex(n: usize) -> String {
    hex::encode(crate::sys::random_bytes(n))
}

/// The ids in `dir` (sub-directory names that are complete records).
pub(crate) fn list_ids(dir: &Path, record: &str) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(record).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
