//! Layers: each diff unpacked once, keyed by its diff id (the digest of the
//! uncompressed tar), and shared by every image that lists it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{list_ids, now_rfc3339, read_json, write_json, FileLock, Store};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::unpack::UnpackStats;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub id: String,
    pub diff_id: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed_digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed_size: Option<u64>,
    /// Bytes of file content.
    pub size: u64,
    pub entries: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    pub created: String,
}

/// What filling a new layer produced, checked before it is kept.
pub struct Ingested {
    pub diff_id: Digest,
    pub compressed: Option<(Digest, u64)>,
    pub stats: UnpackStats,
}

const RECORD: &str = "layer.json";

impl Store {
    fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// The unpacked tree of a stored layer.
    pub fn layer_diff(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("diff")
    }

    pub fn layer(&self, diff_id: &Digest) -> Result<Option<LayerRecord>> {
        let path = self.layer_dir(diff_id).join(RECORD);
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    pub fn layers(&self) -> Result<Vec<LayerRecord>> {
        list_ids(&self.root.join("layers"), RECORD)
            .iter()
            .map(|id| read_json(&self.root.join("layers").join(id).join(RECORD)))
            .collect()
    }

    /// Finds a layer by diff id, `sha256:` diff id, unique id prefix or
    /// compressed digest.
    pub fn find_layer(&self, query: &str) -> Result<LayerRecord> {
        let all = self.layers()?;
        let hit = super::images::pick(
            query,
            &all,
            |l| &l.id,
            |l| {
                l.compressed_digest
                    .as_ref()
                    .is_some_and(|d| d.to_string() == query)
            },
        )?;
        hit.cloned().ok_or_else(|| Error::Format {
            what: "layer",
            path: query.to_string(),
            reason: "no such layer".into(),
        })
    }

    /// Stores the layer `diff_id` unless it is there already. `fill` unpacks
    /// into the directory it is given and reports what it saw; a diff id
    /// other than the expected one is refused and nothing is kept. Returns
    /// the record and whether `fill` ran.
    pub fn ingest_layer<F>(&self, diff_id: &Digest, fill: F) -> Result<(LayerRecord, bool)>
    where
        F: FnOnce(&Path) -> Result<Ingested>,
    {
        let lock = FileLock::exclusive(&self.root.join("locks").join(diff_id.hex()))?;
        let result = self.ingest_locked(diff_id, fill);
        let released = lock.release();
        let out = result?;
        released.map(|()| out)
    }

    fn ingest_locked<F>(&self, diff_id: &Digest, fill: F) -> Result<(LayerRecord, bool)>
    where
        F: FnOnce(&Path) -> Result<Ingested>,
    {
        if let Some(rec) = self.layer(diff_id)? {
            return Ok((rec, false));
        }
        let tmp = self.temp_dir("layer")?;
        let diff = tmp.path().join("diff");
        fs::create_dir(&diff).map_err(Error::io("create", &diff))?;
        let got = fill(&diff)?;
        diff_id.check("layer diff id", got.diff_id)?;
        let rec = LayerRecord {
            id: diff_id.hex().to_string(),
            diff_id: diff_id.clone(),
            compressed_digest: got.compressed.as_ref().map(|c| c.0.clone()),
            compressed_size: got.compressed.map(|c| c.1),
            size: got.stats.bytes,
            entries: got.stats.entries,
            whiteouts: got.stats.whiteouts,
            opaque_dirs: got.stats.opaque_dirs,
            created: now_rfc3339(),
        };
        // The layer's files reach the disk before its record does: a crash
        // leaves a whole layer or none (one syncfs, not an fsync per file).
        sync_filesystem(&diff)?;
        write_json(&tmp.path().join(RECORD), &rec)?;
        tmp.persist(&self.layer_dir(diff_id))?;
        Ok((rec, true))
    }

    /// Removes every layer no image lists. Call with the store lock held.
    pub(crate) fn remove_unused_layers(&self, used: &BTreeSet<String>) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for id in list_ids(&self.root.join("layers"), RECORD) {
            if used.contains(&id) {
                continue;
            }
            let lock = FileLock::exclusive(&self.root.join("locks").join(&id))?;
            let dir = self.root.join("layers").join(&id);
            // Unlink the record first: a half-removed layer is then not a layer.
            let rec = dir.join(RECORD);
            fs::remove_file(&rec).map_err(Error::io("remove", &rec))?;
            fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))?;
            lock.release()?;
            removed.push(id);
        }
        Ok(removed)
    }
}

fn sync_filesystem(dir: &Path) -> Result<()> {
    let d = fs::File::open(dir).map_err(Error::io("open", dir))?;
    nix::unistd::syncfs(&d).map_err(|e| Error::io("syncfs", dir)(e.into()))
}
