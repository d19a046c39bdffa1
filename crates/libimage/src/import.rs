//! Images from files: an OCI image layout (a directory, or a tar of one),
//! a docker-archive (`docker save` output), or a plain rootfs tarball as a
//! new one-layer image.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::manifest::{
    Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest, Platform, OCI_CONFIG, OCI_LAYER,
    OCI_MANIFEST,
};
use crate::pull::{check_layers, image_record, ingest_stream};
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What a file holds, from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OciLayout,
    OciArchive,
    DockerArchive,
    RootfsTar,
}

/// Tells the format of `path`: a directory with `oci-layout`, or a tar
/// holding `oci-layout` or `manifest.json`, else a rootfs tarball.
pub fn detect(path: &Path) -> Result<Format> {
    if path.is_dir() {
        return if path.join("oci-layout").exists() {
            Ok(Format::OciLayout)
        } else {
            Err(Error::format(
                "import",
                path.display(),
                "a directory without an oci-layout file",
            ))
        };
    }
    let file = File::open(path).map_err(Error::io("open", path))?;
    let mut archive = tar::Archive::new(file);
    let entries = archive.entries().map_err(Error::io("read", path))?;
    for e in entries.take(64) {
        let Ok(e) = e else { break };
        let p = e.path_bytes();
        let name = p.strip_prefix(b"./").unwrap_or(&p);
        match name {
            b"oci-layout" => return Ok(Format::OciArchive),
            b"manifest.json" => return Ok(Format::DockerArchive),
            _ => {}
        }
    }
    Ok(Format::RootfsTar)
}

/// Imports `path` (any format) under `name`; a layout or archive that
/// names its image needs no `name`.
pub fn import(store: &Store, path: &Path, name: Option<&str>) -> Result<ImageRecord> {
    let _ingesting = store.ingest_guard()?;
    match detect(path)? {
        Format::OciLayout => import_oci_layout(store, path, name),
        Format::OciArchive => {
            let tmp = store.temp_dir("import")?;
            extract(path, tmp.path())?;
            import_oci_layout(store, tmp.path(), name)
        }
        Format::DockerArchive => import_docker_archive(store, path, name),
        Format::RootfsTar => {
            let name = name.ok_or_else(|| {
                Error::format(
                    "import",
                    path.display(),
                    "a rootfs tarball needs an image name",
                )
            })?;
            import_rootfs(store, path, name)
        }
    }
}

/// Extracts a tar of metadata and blobs (no links, no devices) into `dir`.
fn extract(path: &Path, dir: &Path) -> Result<()> {
    let file = File::open(path).map_err(Error::io("open", path))?;
    let mut archive = tar::Archive::new(file);
    for e in archive.entries().map_err(Error::io("read", path))? {
        let mut e = e.map_err(Error::io("read", path))?;
        let raw = e.path_bytes().into_owned();
        let comps = crate::unpack::clean_path(&raw).ok_or_else(|| {
            Error::format(
                "archive",
                path.display(),
                "an entry leaves the archive (..)",
            )
        })?;
        let rel: PathBuf = comps
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let dest = dir.join(&rel);
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).map_err(Error::io("create", &dest))?
            }
            tar::EntryType::Regular => {
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p).map_err(Error::io("create", p))?;
                }
                let mut f = File::create(&dest).map_err(Error::io("create", &dest))?;
                io::copy(&mut e, &mut f).map_err(Error::io("write", &dest))?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_blob(dir: &Path, d: &Digest) -> Result<Vec<u8>> {
    let p = dir.join("blobs").join(d.to_string().replace(':', "/"));
    let data = fs::read(&p).map_err(Error::io("read", &p))?;
    d.verify("blob", &data)?;
    Ok(data)
}

/// Imports the image of an OCI layout: the manifest named `name`'s tag (or
/// the only one), an index in it resolved for the host platform.
pub fn import_oci_layout(store: &Store, dir: &Path, name: Option<&str>) -> Result<ImageRecord> {
    let index_path = dir.join("index.json");
    let data = fs::read(&index_path).map_err(Error::io("read", &index_path))?;
    let index: ImageIndex = serde_json::from_slice(&data)
        .map_err(|e| Error::format("index", index_path.display(), e))?;
    let tag = name
        .and_then(|n| Reference::parse(n).ok())
        .and_then(|r| r.tag);
    let pick = match index.manifests.as_slice() {
        [one] => Some(one),
        many => many
            .iter()
            .find(|d| d.annotations.get(REF_NAME) == tag.as_ref()),
    }
    .ok_or_else(|| {
        Error::format(
            "index",
            index_path.display(),
            format!(
                "no manifest for tag {tag:?} among {}",
                index.manifests.len()
            ),
        )
    })?;
    let ref_name = pick.annotations.get(REF_NAME).cloned();
    let mut digests = Vec::new();
    let mut desc = pick.clone();
    let mut blobs = Vec::new();
    let manifest = loop {
        let data = read_blob(dir, &desc.digest)?;
        let m = Manifest::parse(&desc.digest.to_string(), Some(&desc.media_type), &data)?;
        digests.push(desc.digest.clone());
        blobs.push((desc.digest.clone(), data));
        match m {
            Manifest::Image(m) => break m,
            Manifest::Index(i) => {
                desc = i
                    .select(&dir.display().to_string(), &Platform::host())?
                    .clone()
            }
        }
    };
    let name = match (name, ref_name) {
        (Some(n), _) => n.to_string(),
        (None, Some(r)) if Reference::parse(&r).is_ok() => r,
        _ => {
            return Err(Error::format(
                "import",
                dir.display(),
                "the layout names no image: give a name",
            ))
        }
    };
    let layers: Vec<(Descriptor, PathBuf)> = manifest
        .layers
        .iter()
        .map(|l| {
            (
                l.clone(),
                dir.join("blobs")
                    .join(l.digest.to_string().replace(':', "/")),
            )
        })
        .collect();
    let config = read_blob(dir, &manifest.config.digest)?;
    store_image(store, &name, digests, blobs, &manifest, &config, &layers)
}

/// Ingests the layers, then records blobs and the image.
fn store_image(
    store: &Store,
    name: &str,
    digests: Vec<Digest>,
    blobs: Vec<(Digest, Vec<u8>)>,
    manifest: &ImageManifest,
    config_data: &[u8],
    layers: &[(Descriptor, PathBuf)],
) -> Result<ImageRecord> {
    let r = Reference::parse(name)?;
    let config = ImageConfig::parse(&manifest.config.digest.to_string(), config_data)?;
    check_layers(name, manifest, &config)?;
    for ((desc, path), diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
        store.ingest_layer(diff_id, |dir| {
            let mut f = File::open(path).map_err(Error::io("open", path))?;
            ingest_stream(&desc.digest.to_string(), &mut f, Some(&desc.digest), dir)
        })?;
    }
    for (d, data) in &blobs {
        store.put_blob(d, data)?;
    }
    store.put_blob(&manifest.config.digest, config_data)?;
    let manifest_digest = digests.last().cloned().expect("one manifest at least");
    store.put_image(image_record(
        store,
        r.to_string(),
        digests,
        manifest_digest,
        manifest,
        &config,
    )?)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Imports the first image of a `docker save` tarball.
pub fn import_docker_archive(
    store: &Store,
    path: &Path,
    name: Option<&str>,
) -> Result<ImageRecord> {
    let tmp = store.temp_dir("import")?;
    extract(path, tmp.path())?;
    let mpath = tmp.path().join("manifest.json");
    let data = fs::read(&mpath).map_err(Error::io("read", &mpath))?;
    let entries: Vec<DockerArchiveEntry> = serde_json::from_slice(&data)
        .map_err(|e| Error::format("docker-archive manifest.json", path.display(), e))?;
    let entry = entries.first().ok_or_else(|| {
        Error::format(
            "docker-archive",
            path.display(),
            "manifest.json lists no image",
        )
    })?;
    let name = match (name, entry.repo_tags.as_ref().and_then(|t| t.first())) {
        (Some(n), _) => n.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => {
            return Err(Error::format(
                "import",
                path.display(),
                "the archive names no image: give a name",
            ))
        }
    };
    let within = |rel: &str| -> Result<PathBuf> {
        let comps = crate::unpack::clean_path(rel.as_bytes()).ok_or_else(|| {
            Error::format(
                "docker-archive",
                path.display(),
                format!("{rel:?} leaves the archive"),
            )
        })?;
        Ok(comps.iter().fold(tmp.path().to_path_buf(), |p, c| {
            p.join(String::from_utf8_lossy(c).as_ref())
        }))
    };
    let config = fs::read(within(&entry.config)?).map_err(Error::io("read", &entry.config))?;
    let mut layers = Vec::new();
    for l in &entry.layers {
        let p = within(l)?;
        let (digest, size) = file_digest(&p)?;
        layers.push((descriptor(OCI_LAYER, digest, size), p));
    }
    let (manifest, mdata) = synth_manifest(&config, layers.iter().map(|l| l.0.clone()).collect());
    let md = Digest::sha256(&mdata);
    let res = store_image(
        store,
        &name,
        vec![md.clone()],
        vec![(md, mdata)],
        &manifest,
        &config,
        &layers,
    );
    drop(tmp);
    res
}

/// Imports a rootfs tarball (plain or gzip) as a one-layer image.
pub fn import_rootfs(store: &Store, path: &Path, name: &str) -> Result<ImageRecord> {
    let (digest, size) = file_digest(path)?;
    let diff_id = uncompressed_digest(path)?;
    let p = Platform::host();
    let config = json!({
        "architecture": p.architecture,
        "os": p.os,
        "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "config": {"Env": [crate::bundle::DEFAULT_PATH], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": format!("hull import {}", path.file_name().map(|f| f.to_string_lossy()).unwrap_or_default())}],
    });
    let config = serde_json::to_vec(&config).expect("config serialises");
    let layers = vec![(descriptor(OCI_LAYER, digest, size), path.to_path_buf())];
    let (manifest, mdata) = synth_manifest(&config, vec![layers[0].0.clone()]);
    let md = Digest::sha256(&mdata);
    store_image(
        store,
        name,
        vec![md.clone()],
        vec![(md, mdata)],
        &manifest,
        &config,
        &layers,
    )
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest,
        size,
        urls: vec![],
        annotations: BTreeMap::new(),
        platform: None,
    }
}

fn synth_manifest(config: &[u8], layers: Vec<Descriptor>) -> (ImageManifest, Vec<u8>) {
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config: descriptor(OCI_CONFIG, Digest::sha256(config), config.len() as u64),
        layers,
        annotations: BTreeMap::new(),
    };
    let data = serde_json::to_vec(&m).expect("manifest serialises");
    (m, data)
}

fn file_digest(path: &Path) -> Result<(Digest, u64)> {
    let f = File::open(path).map_err(Error::io("open", path))?;
    HashingReader::new(f, crate::digest::Algorithm::Sha256)
        .finish()
        .map_err(Error::io("read", path))
}

fn uncompressed_digest(path: &Path) -> Result<Digest> {
    let mut f = File::open(path).map_err(Error::io("open", path))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(Error::io("read", path))?;
    let f = File::open(path).map_err(Error::io("open", path))?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    Ok(HashingReader::new(reader, crate::digest::Algorithm::Sha256)
        .finish()
        .map_err(Error::io("read", path))?
        .0)
}
