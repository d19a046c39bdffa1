//! `save`: an image as an OCI archive (a tar of an OCI image layout).
//!
//! The store keeps layers unpacked in overlayfs form, so each is packed
//! again: a whiteout device becomes `.wh.NAME`, an opaque directory gets
//! `.wh..wh..opq`. Owners, modes, times, links and devices are kept;
//! extended attributes are not. When the packed layers differ from the
//! originals, the config's diff ids are updated, and so the saved image's
//! id can differ from the stored one.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libimage::digest::{Algorithm, Hasher};
use libimage::manifest::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use libimage::Digest;
use serde_json::{json, Value};

use crate::ctx::Ctx;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const OPAQUE: &str = "trusted.overlay.opaque";

/// A writer that hashes and counts what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(meta: &fs::Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(meta.uid().into());
    h.set_gid(meta.gid().into());
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(size);
    h
}

/// Packs a layer's tree (overlayfs form) as a layer tar.
struct LayerPacker<W: Write> {
    tar: tar::Builder<W>,
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> LayerPacker<W> {
    fn dir(&mut self, root: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(root.join(rel))
            .with_context(|| format!("read {}", root.join(rel).display()))?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            self.entry(root, &rel.join(n))?;
        }
        Ok(())
    }

    fn entry(&mut self, root: &Path, rel: &Path) -> Result<()> {
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        let t = &mut self.tar;
        if ft.is_char_device() && meta.rdev() == 0 {
            let name = rel.file_name().unwrap_or_default().to_string_lossy();
            let wh = rel.with_file_name(format!(".wh.{name}"));
            t.append_data(
                &mut header(&meta, tar::EntryType::Regular, 0),
                wh,
                io::empty(),
            )?;
            return Ok(());
        }
        if ft.is_dir() {
            t.append_data(
                &mut header(&meta, tar::EntryType::Directory, 0),
                rel,
                io::empty(),
            )?;
            if crate::sys::lgetxattr(&path, OPAQUE).as_deref() == Some(b"y") {
                let opq = rel.join(".wh..wh..opq");
                t.append_data(
                    &mut header(&meta, tar::EntryType::Regular, 0),
                    opq,
                    io::empty(),
                )?;
            }
            return self.dir(root, rel);
        }
        if ft.is_symlink() {
            let target = fs::read_link(&path)?;
            t.append_link(&mut header(&meta, tar::EntryType::Symlink, 0), rel, target)?;
            return Ok(());
        }
        if meta.nlink() > 1 && !ft.is_dir() {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                let first = first.clone();
                t.append_link(&mut header(&meta, tar::EntryType::Link, 0), rel, first)?;
                return Ok(());
            }
            self.links
                .insert((meta.dev(), meta.ino()), rel.to_path_buf());
        }
        if ft.is_file() {
            let f = File::open(&path)?;
            t.append_data(
                &mut header(&meta, tar::EntryType::Regular, meta.len()),
                rel,
                f,
            )?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            };
            let mut h = header(&meta, kind, 0);
            let dev = meta.rdev();
            h.set_device_major(nix::sys::stat::major(dev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(dev) as u32)?;
            t.append_data(&mut h, rel, io::empty())?;
        }
        Ok(())
    }
}

/// Packs `diff` into `dest`; the tar's digest and size.
fn pack_layer(diff: &Path, dest: &Path) -> Result<(Digest, u64)> {
    let f = File::create(dest).with_context(|| format!("create {}", dest.display()))?;
    let w = HashingWriter {
        inner: io::BufWriter::new(f),
        hasher: Hasher::new(Algorithm::Sha256),
        count: 0,
    };
    let mut p = LayerPacker {
        tar: tar::Builder::new(w),
        links: HashMap::new(),
    };
    p.dir(diff, Path::new(""))?;
    let mut w = p.tar.into_inner()?;
    w.flush()?;
    Ok((w.hasher.finish(), w.count))
}

fn blob(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

fn put(dir: &Path, data: &[u8]) -> Result<(Digest, u64)> {
    let d = Digest::sha256(data);
    fs::write(blob(dir, &d), data)?;
    Ok((d, data.len() as u64))
}

/// Writes the OCI layout of `image` into `dir`.
fn layout(ctx: &Ctx, image: &str, dir: &Path) -> Result<()> {
    let img = ctx.store.image(image)?;
    let original = ctx.store.get_blob(&img.config_digest)?;
    let mut config: Value = serde_json::from_slice(&original)?;
    fs::create_dir_all(dir.join("blobs/sha256"))?;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for d in &img.layers {
        let tmp = dir.join("layer.tmp");
        let (digest, size) = pack_layer(&ctx.store.layer_diff(d), &tmp)?;
        fs::rename(&tmp, blob(dir, &digest))?;
        layers.push(json!({"mediaType": OCI_LAYER, "digest": digest.to_string(), "size": size}));
        diff_ids.push(digest);
    }
    let config_data = if diff_ids == img.layers {
        original
    } else {
        config["rootfs"]["diff_ids"] =
            json!(diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>());
        serde_json::to_vec(&config)?
    };
    let (cd, cs) = put(dir, &config_data)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd.to_string(), "size": cs},
        "layers": layers,
    });
    let (md, ms) = put(dir, &serde_json::to_vec(&manifest)?)?;
    let mut desc = json!({"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": ms});
    if let Some(name) = img.names.first() {
        desc["annotations"] = json!({ REF_NAME: name });
    }
    let index = json!({"schemaVersion": 2, "manifests": [desc]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(())
}

pub fn save(ctx: &Ctx, image: &str, output: &Path) -> Result<()> {
    let name = output
        .file_name()
        .context("save: the output needs a file name")?
        .to_string_lossy();
    let work = output.with_file_name(format!(".{name}.hullctl-save"));
    let _ = fs::remove_dir_all(&work);
    let result = layout(ctx, image, &work).and_then(|()| {
        let tmp = output.with_file_name(format!(".{name}.tmp"));
        let mut t = tar::Builder::new(File::create(&tmp)?);
        t.mode(tar::HeaderMode::Deterministic);
        for f in ["oci-layout", "index.json"] {
            t.append_path_with_name(work.join(f), f)?;
        }
        t.append_dir_all("blobs", work.join("blobs"))?;
        t.into_inner()?.sync_all()?;
        fs::rename(&tmp, output).with_context(|| format!("write {}", output.display()))
    });
    let _ = fs::remove_dir_all(&work);
    result
}
