//! An image's merged tree read straight from its stored layers, without
//! mounting anything: look paths up (whiteouts and opaque directories
//! applied, symlinks followed inside the image only), read files, list
//! and walk directories, and list a layer's own whiteouts.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::unpack::OPAQUE_XATTR;

const MAX_SYMLINKS: usize = 40;

/// The layers of an image, top first.
pub struct ImageFs {
    name: String,
    layers: Vec<PathBuf>,
}

enum Hit {
    Real(PathBuf),
    Missing,
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    crate::sys::lgetxattr(p, OPAQUE_XATTR)
        .ok()
        .flatten()
        .as_deref()
        == Some(b"y")
}

fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

impl ImageFs {
    /// The image `query` (id, prefix or name) of `store`.
    pub fn open(store: &Store, query: &str) -> Result<ImageFs> {
        let img = store.image(query)?;
        Ok(Self::from_layers(store, &img.id, &img.layers))
    }

    /// Layers given bottom first, as an image lists them.
    pub fn from_layers(store: &Store, name: &str, diff_ids: &[Digest]) -> ImageFs {
        ImageFs {
            name: name.to_string(),
            layers: diff_ids.iter().rev().map(|d| store.layer_diff(d)).collect(),
        }
    }

    /// Where the merged tree's `comps` lives, with no symlink in it followed.
    fn find(&self, comps: &[String]) -> Hit {
        if comps.is_empty() {
            return self
                .layers
                .first()
                .map_or(Hit::Missing, |l| Hit::Real(l.clone()));
        }
        for layer in &self.layers {
            let mut p = layer.clone();
            let mut opaque = false;
            for (j, c) in comps.iter().enumerate() {
                p.push(c);
                let Ok(m) = fs::symlink_metadata(&p) else {
                    break;
                };
                if is_whiteout(&m) {
                    return Hit::Missing;
                }
                if j + 1 == comps.len() {
                    return Hit::Real(p);
                }
                if !m.is_dir() {
                    return Hit::Missing; // a file here covers directories below
                }
                opaque |= is_opaque(&p);
            }
            if opaque {
                return Hit::Missing;
            }
        }
        Hit::Missing
    }

    /// Resolves `path` in the image, following symlinks (the last one too
    /// if `follow`) as if the image were the root: never out of it.
    fn resolve(&self, path: &str, follow: bool) -> Option<(Vec<String>, PathBuf)> {
        let mut todo: Vec<String> = components(path).into_iter().rev().collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        let mut real = self.layers.first()?.clone();
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            let Hit::Real(p) = self.find(&done) else {
                return None;
            };
            let is_last = todo.is_empty();
            match fs::read_link(&p) {
                Ok(target) if !is_last || follow => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return None;
                    }
                    done.pop();
                    let t = target.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        done.clear();
                    }
                    todo.extend(components(&t).into_iter().rev());
                }
                _ => real = p,
            }
        }
        if done.is_empty() {
            real = self.layers.first()?.clone();
        }
        Some((done, real))
    }

    /// The stored file behind `path` (symlinks followed), if the image has it.
    pub fn lookup(&self, path: &str) -> Option<PathBuf> {
        self.resolve(path, true).map(|(_, p)| p)
    }

    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path, false).is_some()
    }

    /// The contents of a file of the image.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let p = self.lookup(path).ok_or_else(|| {
            Error::format(
                "image file",
                format!("{}:{path}", self.name),
                "not in the image",
            )
        })?;
        fs::read(&p).map_err(Error::io("read", p))
    }

    /// The names in a directory of the merged tree, sorted.
    pub fn read_dir(&self, path: &str) -> Result<Vec<String>> {
        let (comps, _) = self.resolve(path, true).ok_or_else(|| {
            Error::format(
                "image directory",
                format!("{}:{path}", self.name),
                "not in the image",
            )
        })?;
        let mut seen = BTreeSet::new();
        let mut hidden = BTreeSet::new();
        'layers: for layer in &self.layers {
            let mut p = layer.clone();
            for c in &comps {
                p.push(c);
                match fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => break 'layers, // covered by a file or whiteout
                    Err(_) => continue 'layers,
                }
            }
            if let Ok(entries) = fs::read_dir(&p) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let whiteout = e.metadata().is_ok_and(|m| is_whiteout(&m));
                    if whiteout {
                        hidden.insert(name);
                    } else if !hidden.contains(&name) {
                        seen.insert(name);
                    }
                }
            }
            if is_opaque(&p) {
                break;
            }
        }
        Ok(seen.into_iter().collect())
    }

    /// Every path of the merged tree (`/etc`, `/etc/passwd`, ...), sorted;
    /// symlinked directories are listed, not entered.
    pub fn walk(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(dir) = stack.pop() {
            for name in self.read_dir(if dir.is_empty() { "/" } else { &dir })? {
                let path = format!("{dir}/{name}");
                let is_dir = matches!(self.find(&components(&path)), Hit::Real(p)
                    if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()));
                if is_dir {
                    stack.push(path.clone());
                }
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A layer's own whiteouts and opaque directories, as paths in the image.
pub fn layer_markers(store: &Store, diff_id: &Digest) -> Result<(Vec<String>, Vec<String>)> {
    let root = store.layer_diff(diff_id);
    let (mut whiteouts, mut opaque) = (Vec::new(), Vec::new());
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let rel = |p: &Path| format!("/{}", p.strip_prefix(&root).unwrap_or(p).display());
        if dir != root && is_opaque(&dir) {
            opaque.push(rel(&dir));
        }
        for e in fs::read_dir(&dir)
            .map_err(Error::io("read", &dir))?
            .flatten()
        {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if is_whiteout(&m) {
                whiteouts.push(rel(&e.path()));
            }
        }
    }
    whiteouts.sort();
    opaque.sort();
    Ok((whiteouts, opaque))
}
