//! Image commands: pull, images, rmi, tag, import, inspect, history.

use std::path::Path;

use anyhow::Result;
use libimage::registry::{config::DEFAULT_CONFIG, Client, ClientOptions};
use libimage::store::ImageRecord;
use libimage::{ProgressMode, PullOptions, Reference};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::table::{ago, human_size, table};

/// Pull options beyond the reference.
#[derive(Debug, Default)]
pub struct Pull<'a> {
    pub platform: Option<&'a str>,
    pub quiet: bool,
    pub tls_verify: Option<bool>,
}

pub fn pull(ctx: &Ctx, reference: &str, p: &Pull) -> Result<()> {
    let (platform, quiet) = (p.platform, p.quiet);
    let mut opts = ClientOptions::from_config_file(Path::new(DEFAULT_CONFIG))?;
    opts.tls_verify = p.tls_verify;
    let client = Client::new(opts);
    let popts = PullOptions {
        platform: platform
            .map(libimage::manifest::Platform::parse)
            .transpose()?,
        progress: if quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        },
        ..PullOptions::default()
    };
    let report = libimage::pull(&ctx.store, &client, reference, &popts)?;
    println!("{}", report.image.id);
    Ok(())
}

/// `(repository, tag)` of each name, or `<none>` twice.
fn repo_tags(img: &ImageRecord) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = img
        .names
        .iter()
        .map(|n| match Reference::parse(n) {
            Ok(r) => {
                let tag = r.tag.clone().unwrap_or_else(|| "<none>".into());
                let familiar = Reference { tag: None, ..r }.familiar();
                (familiar, tag)
            }
            Err(_) => (n.clone(), "<none>".into()),
        })
        .collect();
    if out.is_empty() {
        out.push(("<none>".into(), "<none>".into()));
    }
    out
}

pub fn images(ctx: &Ctx, quiet: bool) -> Result<()> {
    let mut imgs = ctx.store.images()?;
    imgs.sort_by(|a, b| b.stored.cmp(&a.stored));
    if quiet {
        for i in &imgs {
            println!("{}", &i.id[..12]);
        }
        return Ok(());
    }
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
        .map(String::from)
        .to_vec()];
    for i in &imgs {
        for (repo, tag) in repo_tags(i) {
            rows.push(vec![
                repo,
                tag,
                i.id[..12].to_string(),
                i.created.as_deref().map(ago).unwrap_or_default(),
                human_size(i.size),
            ]);
        }
    }
    print!("{}", table(&rows));
    Ok(())
}

pub fn rmi(ctx: &Ctx, names: &[String]) -> Result<()> {
    let mut failed = None;
    for n in names {
        let removed = ctx
            .store
            .image(n)
            .and_then(|img| Ok((ctx.store.remove_image(n)?, img)));
        match removed {
            Ok((layers, img)) => {
                if ctx.store.image(&img.id).is_ok() {
                    println!("Untagged: {n}");
                } else {
                    println!("Deleted: sha256:{}", img.id);
                }
                for l in layers {
                    println!("Deleted layer: {l}");
                }
            }
            Err(e) => {
                eprintln!("hullctl: rmi {n}: {e}");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

pub fn tag(ctx: &Ctx, image: &str, name: &str) -> Result<()> {
    ctx.store.tag(image, name)?;
    Ok(())
}

pub fn import(ctx: &Ctx, path: &Path, name: Option<&str>) -> Result<()> {
    let img = libimage::import::import(&ctx.store, path, name)?;
    println!("{}", img.id);
    Ok(())
}

/// `docker image inspect`'s main fields.
pub fn inspect(ctx: &Ctx, img: &ImageRecord) -> Result<Value> {
    let config = ctx.store.image_config(img)?;
    let repo_digests: Vec<String> = img
        .names
        .iter()
        .filter_map(|n| Reference::parse(n).ok())
        .flat_map(|r| img.digests.iter().map(move |d| format!("{}@{d}", r.name())))
        .collect();
    Ok(json!({
        "Id": format!("sha256:{}", img.id),
        "RepoTags": img.names,
        "RepoDigests": repo_digests,
        "Created": img.created,
        "Architecture": config.architecture,
        "Os": config.os,
        "Author": config.author,
        "Size": img.size,
        "Config": serde_json::to_value(&config.config)?,
        "RootFS": {"Type": "layers", "Layers": img.layers.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "ManifestDigest": img.manifest_digest.to_string(),
        "Stored": img.stored,
    }))
}

pub fn history(ctx: &Ctx, query: &str) -> Result<()> {
    let img = ctx.store.image(query)?;
    let config = ctx.store.image_config(&img)?;
    let mut rows = vec![["IMAGE", "CREATED", "CREATED BY", "COMMENT"]
        .map(String::from)
        .to_vec()];
    let n = config.history.len();
    for (i, h) in config.history.iter().enumerate().rev() {
        let mut by = h.created_by.clone().unwrap_or_default();
        if by.len() > 60 {
            let cut = (0..=57)
                .rev()
                .find(|&c| by.is_char_boundary(c))
                .unwrap_or(0);
            by = format!("{}...", &by[..cut]);
        }
        rows.push(vec![
            if i + 1 == n {
                img.id[..12].to_string()
            } else {
                "<missing>".into()
            },
            h.created.as_deref().map(ago).unwrap_or_default(),
            by,
            h.comment.clone().unwrap_or_default(),
        ]);
    }
    if n == 0 {
        rows.push(vec![
            img.id[..12].to_string(),
            img.created.as_deref().map(ago).unwrap_or_default(),
            String::new(),
            "no history recorded".into(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}
