//! Images: a manifest, a config and the list of layers, under names.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{list_ids, read_json, write_json, Store};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::ImageConfig;
use crate::reference::Reference;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest's hex, as Docker and Podman name images.
    pub id: String,
    /// Full references (`docker.io/library/busybox:latest`).
    pub names: Vec<String>,
    /// Digests of the manifest this image came from (the index's too,
    /// when it was picked from one): `name@digest` finds it.
    pub digests: Vec<Digest>,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    /// Diff ids, bottom layer first.
    pub layers: Vec<Digest>,
    /// Sum of the layers' unpacked content.
    pub size: u64,
    pub created: Option<String>,
    pub stored: String,
}

const RECORD: &str = "image.json";

/// What an id, name, digest or prefix matched.
pub(crate) fn pick<'a, T>(
    query: &str,
    items: &'a [T],
    id: impl Fn(&T) -> &str,
    exact: impl Fn(&T) -> bool,
) -> Result<Option<&'a T>> {
    if let Some(t) = items.iter().find(|t| id(t) == query || exact(t)) {
        return Ok(Some(t));
    }
    let hex = query.strip_prefix("sha256:").unwrap_or(query);
    if hex.len() < 3 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let found: Vec<&T> = items.iter().filter(|t| id(t).starts_with(hex)).collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(Error::Ambiguous {
            name: query.to_string(),
            matches: many
                .iter()
                .map(|t| &id(t)[..12])
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Whether the image name `name` (`repo:tag` or `repo@digest`) is in `repo`.
fn same_repository(name: &str, repo: &str) -> bool {
    name.strip_prefix(repo)
        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('@'))
}

impl Store {
    fn image_dir(&self, id: &str) -> PathBuf {
        self.root.join("images").join(id)
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        list_ids(&self.root.join("images"), RECORD)
            .iter()
            .map(|id| read_json(&self.image_dir(id).join(RECORD)))
            .collect()
    }

    /// Finds an image by id, id prefix, `sha256:` id, name (short names are
    /// normalised: `busybox` is `docker.io/library/busybox:latest`) or
    /// `name@digest`.
    pub fn image(&self, query: &str) -> Result<ImageRecord> {
        let images = self.images()?;
        let wanted = Reference::parse(query).ok();
        let matches_ref = |img: &ImageRecord| match &wanted {
            Some(r) => match &r.digest {
                Some(d) => {
                    img.digests.contains(d)
                        && img.names.iter().any(|n| same_repository(n, &r.name()))
                }
                None => img.names.iter().any(|n| *n == r.to_string()),
            },
            None => false,
        };
        pick(query, &images, |i| &i.id, matches_ref)?
            .cloned()
            .ok_or_else(|| Error::ImageUnknown(query.to_string()))
    }

    pub fn image_config(&self, img: &ImageRecord) -> Result<ImageConfig> {
        let data = self.get_blob(&img.config_digest)?;
        ImageConfig::parse(&img.config_digest.to_string(), &data)
    }

    /// Records an image (merging with one of the same id) and moves its
    /// names away from any other image. Takes the store lock.
    pub fn put_image(&self, mut rec: ImageRecord) -> Result<ImageRecord> {
        let _lock = self.lock()?;
        for mut other in self.images()? {
            if other.id == rec.id {
                for n in other.names.drain(..) {
                    if !rec.names.contains(&n) {
                        rec.names.push(n);
                    }
                }
                for d in other.digests.drain(..) {
                    if !rec.digests.contains(&d) {
                        rec.digests.push(d);
                    }
                }
                continue;
            }
            let before = other.names.len();
            other.names.retain(|n| !rec.names.contains(n));
            if other.names.len() != before {
                write_json(&self.image_dir(&other.id).join(RECORD), &other)?;
            }
        }
        let dir = self.image_dir(&rec.id);
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        write_json(&dir.join(RECORD), &rec)?;
        Ok(rec)
    }

    /// Adds `name` to the image `query` names.
    pub fn tag(&self, query: &str, name: &str) -> Result<ImageRecord> {
        let r = Reference::parse(name)?;
        let mut img = self.image(query)?;
        if !img.names.contains(&r.to_string()) {
            img.names.push(r.to_string());
        }
        self.put_image(img)
    }

    /// Removes a name, or (given an id, or the last name) the image, then
    /// every layer and blob nothing else uses. Refuses while a container
    /// uses the image. Returns the removed layer ids.
    pub fn remove_image(&self, query: &str) -> Result<Vec<String>> {
        let mut img = self.image(query)?;
        let _gc = self.gc_guard()?;
        let _lock = self.lock()?;
        let by_name = Reference::parse(query)
            .ok()
            .map(|r| r.to_string())
            .filter(|n| img.names.contains(n));
        if let Some(name) = by_name {
            if img.names.len() > 1 {
                img.names.retain(|n| *n != name);
                write_json(&self.image_dir(&img.id).join(RECORD), &img)?;
                return Ok(Vec::new());
            }
        }
        if let Some(c) = self.containers()?.into_iter().find(|c| c.image == img.id) {
            return Err(Error::ImageInUse {
                image: img.names.first().cloned().unwrap_or(img.id.clone()),
                container: c.names.first().cloned().unwrap_or(c.id),
            });
        }
        let dir = self.image_dir(&img.id);
        let rec = dir.join(RECORD);
        fs::remove_file(&rec).map_err(Error::io("remove", &rec))?;
        fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))?;
        self.collect_garbage()
    }

    /// Removes layers and blobs that no image references. Call with the
    /// store lock held.
    pub(crate) fn collect_garbage(&self) -> Result<Vec<String>> {
        let images = self.images()?;
        let used_layers: BTreeSet<String> = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|d| d.hex().to_string()))
            .collect();
        let used_blobs: BTreeSet<String> = images
            .iter()
            .flat_map(|i| {
                i.digests
                    .iter()
                    .chain([&i.config_digest, &i.manifest_digest])
            })
            .map(|d| d.hex().to_string())
            .collect();
        let removed = self.remove_unused_layers(&used_layers)?;
        let blobs = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blobs)
            .map_err(Error::io("read", &blobs))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !used_blobs.contains(&name) {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(removed)
    }
}
