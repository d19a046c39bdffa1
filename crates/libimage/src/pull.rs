//! Pull: reference -> manifest (an index picks the platform) -> config ->
//! layers, downloaded in parallel and streamed through digest checks and
//! decompression straight into the store. Layers the store has are not
//! fetched again.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, ImageConfig, ImageManifest, Manifest, Platform};
use crate::progress::{Counting, ProgressMode, Reporter};
use crate::reference::Reference;
use crate::registry::Client;
use crate::store::{ImageRecord, Ingested, Store};
use crate::unpack;

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Defaults to the host's platform.
    pub platform: Option<Platform>,
    pub progress: ProgressMode,
    /// Layers downloaded at once.
    pub parallel: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            progress: ProgressMode::Auto,
            parallel: 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PullReport {
    pub image: ImageRecord,
    pub layers_fetched: usize,
    pub layers_reused: usize,
    pub bytes_fetched: u64,
    pub resumes: u32,
}

/// Pulls `reference` into `store`.
pub fn pull(
    store: &Store,
    client: &Client,
    reference: &str,
    opts: &PullOptions,
) -> Result<PullReport> {
    let r = Reference::parse(reference)?;
    let _ingesting = store.ingest_guard()?;
    let want = opts.platform.clone().unwrap_or_else(Platform::host);
    let report = Reporter::new(opts.progress);
    let mut digests = Vec::new();

    let (manifest_digest, manifest_data, mut manifest) = fetch_manifest(client, &r, &r.target())?;
    if let Some(d) = &r.digest {
        d.check("manifest", manifest_digest.clone())?;
    }
    let mut blobs = vec![(manifest_digest.clone(), manifest_data)];
    let mut image_digest = manifest_digest;
    if let Manifest::Index(index) = &manifest {
        let picked = index.select(&r.to_string(), &want)?.clone();
        digests.push(image_digest.clone());
        let (d, data, m) = fetch_manifest(client, &r, &picked.digest.to_string())?;
        picked.digest.check("manifest", d.clone())?;
        blobs.push((d.clone(), data));
        image_digest = d;
        manifest = m;
    }
    let Manifest::Image(m) = manifest else {
        return Err(Error::format("manifest", &r, "an index inside an index"));
    };
    digests.push(image_digest.clone());
    let config_data = client.blob_bytes(&r, &m.config)?;
    let config = ImageConfig::parse(&m.config.digest.to_string(), &config_data)?;
    check_layers(&r.to_string(), &m, &config)?;
    if opts.platform.is_some() && !config_platform(&config).satisfies(&want) {
        return Err(Error::NoPlatform {
            reference: r.to_string(),
            platform: want.to_string(),
            available: config_platform(&config).to_string(),
        });
    }

    let stats = fetch_layers(
        store,
        client,
        &r,
        &m,
        &config,
        opts.parallel.max(1),
        &report,
    )?;
    for (d, data) in &blobs {
        store.put_blob(d, data)?;
    }
    store.put_blob(&m.config.digest, &config_data)?;
    let name = match (&r.tag, &r.digest) {
        (Some(_), _) => Reference {
            digest: None,
            ..r.clone()
        }
        .to_string(),
        (None, _) => r.to_string(),
    };
    let image = store.put_image(image_record(
        store,
        name,
        digests,
        image_digest,
        &m,
        &config,
    )?)?;
    report.line(&format!("{}: {}", r, &image.id[..12]));
    Ok(PullReport {
        image,
        layers_fetched: stats.0,
        layers_reused: m.layers.len() - stats.0,
        bytes_fetched: stats.1,
        resumes: stats.2,
    })
}

fn fetch_manifest(
    client: &Client,
    r: &Reference,
    target: &str,
) -> Result<(Digest, Vec<u8>, Manifest)> {
    let f = client.manifest(r, target)?;
    let digest = Digest::sha256(&f.data);
    let m = Manifest::parse(
        &format!("{}@{digest}", r.name()),
        f.content_type.as_deref(),
        &f.data,
    )?;
    Ok((digest, f.data, m))
}

pub(crate) fn config_platform(c: &ImageConfig) -> Platform {
    Platform {
        architecture: c.architecture.clone(),
        os: c.os.clone(),
        variant: c.variant.clone(),
        os_version: None,
    }
}

pub(crate) fn check_layers(source: &str, m: &ImageManifest, c: &ImageConfig) -> Result<()> {
    if m.layers.len() != c.rootfs.diff_ids.len() {
        return Err(Error::format(
            "image",
            source,
            format!(
                "the manifest lists {} layers, the config {} diff ids",
                m.layers.len(),
                c.rootfs.diff_ids.len()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn image_record(
    store: &Store,
    name: String,
    digests: Vec<Digest>,
    manifest_digest: Digest,
    m: &ImageManifest,
    c: &ImageConfig,
) -> Result<ImageRecord> {
    let mut size = 0;
    for d in &c.rootfs.diff_ids {
        size += store.layer(d)?.map_or(0, |l| l.size);
    }
    Ok(ImageRecord {
        id: m.config.digest.hex().to_string(),
        names: vec![name],
        digests,
        manifest_digest,
        config_digest: m.config.digest.clone(),
        layers: c.rootfs.diff_ids.clone(),
        size,
        created: c.created.clone(),
        stored: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    })
}

/// Downloads the layers the store lacks, `parallel` at a time. Returns
/// (layers fetched, compressed bytes, resumes).
fn fetch_layers(
    store: &Store,
    client: &Client,
    r: &Reference,
    m: &ImageManifest,
    c: &ImageConfig,
    parallel: usize,
    report: &Reporter,
) -> Result<(usize, u64, u32)> {
    let mut todo = Vec::new();
    for (desc, diff_id) in m.layers.iter().zip(&c.rootfs.diff_ids) {
        if store.layer(diff_id)?.is_none()
            && !todo
                .iter()
                .any(|(_, d): &(&Descriptor, &Digest)| *d == diff_id)
        {
            todo.push((desc, diff_id));
        }
    }
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel.min(todo.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((desc, diff_id)) = todo.get(i) else {
                    break;
                };
                let res = fetch_layer(store, client, r, desc, diff_id, report);
                let failed = res.is_err();
                results.lock().expect("results lock").push(res);
                if failed {
                    next.store(todo.len(), Ordering::Relaxed);
                }
            });
        }
    });
    let mut out = (0, 0, 0);
    for res in results.into_inner().expect("results lock") {
        let (fetched, bytes, resumes) = res?;
        out.0 += usize::from(fetched);
        out.1 += bytes;
        out.2 += resumes;
    }
    Ok(out)
}

fn fetch_layer(
    store: &Store,
    client: &Client,
    r: &Reference,
    desc: &Descriptor,
    diff_id: &Digest,
    report: &Reporter,
) -> Result<(bool, u64, u32)> {
    let label = format!("blob {}", &desc.digest.hex()[..12]);
    let mut resumes = 0;
    let (_, fetched) = store.ingest_layer(diff_id, |dir| {
        let blob = client.blob(r, desc)?;
        let bar = report.blob(&label, desc.size);
        let mut counted = Counting { inner: blob, bar };
        let got = ingest_stream(
            &desc.digest.to_string(),
            &mut counted,
            Some(&desc.digest),
            dir,
        )?;
        resumes = counted.inner.resumes();
        if got.compressed.as_ref().map(|c| c.1) != Some(desc.size) {
            return Err(Error::Mismatch {
                what: "layer size",
                digest: desc.digest.to_string(),
                expected: desc.size.to_string(),
                actual: got.compressed.map_or(0, |c| c.1).to_string(),
            });
        }
        report.done(counted.bar.take(), &label, "done");
        Ok(got)
    })?;
    if !fetched {
        report.line(&format!("{label}: already stored"));
    }
    Ok((fetched, if fetched { desc.size } else { 0 }, resumes))
}

/// Streams one layer blob (gzip, zstd or plain tar, sniffed from its first
/// bytes) through both digests into `dir`. With `expected`, the blob's
/// digest must match it.
pub(crate) fn ingest_stream(
    label: &str,
    blob: &mut dyn Read,
    expected: Option<&Digest>,
    dir: &Path,
) -> Result<Ingested> {
    let read_err = |e: io::Error| Error::format("layer", label, e);
    let algorithm = expected.map_or(crate::digest::Algorithm::Sha256, Digest::algorithm);
    let mut compressed = HashingReader::new(blob, algorithm);
    let mut buffered = BufReader::with_capacity(256 << 10, &mut compressed);
    let magic: Vec<u8> = buffered
        .fill_buf()
        .map_err(read_err)?
        .iter()
        .take(4)
        .copied()
        .collect();
    let decoder: Box<dyn Read + '_> = match magic.as_slice() {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(&mut buffered)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(
            ruzstd::decoding::StreamingDecoder::new(&mut buffered)
                .map_err(|e| Error::format("layer", label, format!("zstd: {e}")))?,
        ),
        _ => Box::new(&mut buffered),
    };
    let mut plain = HashingReader::new(decoder, crate::digest::Algorithm::Sha256);
    let stats = unpack::unpack(label, &mut plain, dir)?;
    let (diff_id, _) = plain.finish().map_err(read_err)?;
    io::copy(&mut buffered, &mut io::sink()).map_err(read_err)?;
    drop(buffered);
    let (digest, size) = compressed.finish().map_err(read_err)?;
    if let Some(e) = expected {
        e.check("layer", digest.clone())?;
    }
    Ok(Ingested {
        diff_id,
        compressed: Some((digest, size)),
        stats,
    })
}
