//! Pulls from real registries: Debian's docker-registry started by
//! `hack/registry start` (plain HTTP, basic auth, TLS with a CA made there,
//! token auth), filled with images built there. `HULL_TEST_REGISTRY` names
//! the env file it writes; `hack/test` starts the registries and sets it.
//! Needs root (overlay mounts, chown while unpacking).

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use base64::Engine;
use common::proxy::{self, Fault};
use libimage::imagefs::ImageFs;
use libimage::manifest::{Manifest, Platform};
use libimage::reference::Reference;
use libimage::registry::auth::Credentials;
use libimage::registry::config::{RegistriesConfig, RegistryEntry};
use libimage::registry::{Client, ClientOptions};
use libimage::{pull, Error, PullOptions, Store};

struct Registries(HashMap<String, String>);

impl Registries {
    /// The registries of `hack/registry`, or None (the test is skipped,
    /// with the reason printed) when HULL_TEST_REGISTRY is not set.
    fn get() -> Option<Registries> {
        let Some(path) = std::env::var_os("HULL_TEST_REGISTRY") else {
            eprintln!("skipped: HULL_TEST_REGISTRY is not set (run `hack/registry start`)");
            return None;
        };
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("HULL_TEST_REGISTRY={path:?}: {e}"));
        let vars = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Registries(vars))
    }

    fn var(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from HULL_TEST_REGISTRY"))
    }
}

/// Options with nothing from the host: no auth files, no certs.d.
fn bare() -> ClientOptions {
    ClientOptions {
        certs_dirs: vec![],
        auth_files: vec![],
        retries: 2,
        backoff: std::time::Duration::from_millis(20),
        ..ClientOptions::default()
    }
}

fn insecure(host: &str) -> ClientOptions {
    ClientOptions {
        registries: RegistriesConfig {
            registries: vec![RegistryEntry {
                location: host.to_string(),
                insecure: true,
                ca: None,
            }],
        },
        ..bare()
    }
}

fn quiet() -> PullOptions {
    PullOptions {
        progress: libimage::ProgressMode::Quiet,
        ..PullOptions::default()
    }
}

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

/// Every file below `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Nothing but empty directories left in the store (no layers, blobs,
/// images or temporary files).
fn assert_store_empty(store: &Store) {
    assert!(store.images().unwrap().is_empty(), "images left");
    assert!(store.layers().unwrap().is_empty(), "layers left");
    let files: Vec<String> = tree(store.root())
        .into_iter()
        .filter(|p| !store.root().join(p).is_dir() && !p.ends_with("lock"))
        .collect();
    assert!(files.is_empty(), "files left in the store: {files:?}");
}

#[test]
fn pull_by_tag_then_by_digest() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("PLAIN");
    let client = Client::new(insecure(host));
    let (_d, store) = new_store();
    let rep = pull(&store, &client, &format!("{host}/busybox:latest"), &quiet()).unwrap();
    assert_eq!(
        rep.image.manifest_digest.to_string(),
        reg.var("DIGEST_busybox")
    );
    assert_eq!(rep.image.layers.len(), 1);
    assert_eq!(rep.layers_fetched, 1);
    assert!(rep.bytes_fetched > 500_000, "{} bytes", rep.bytes_fetched);
    let fs = ImageFs::open(&store, &format!("{host}/busybox")).unwrap();
    assert!(fs.exists("/bin/busybox"));
    assert!(fs.read("/etc/passwd").unwrap().starts_with(b"root:x:0:0"));

    // By digest, into another store: the same image.
    let (_d2, store2) = new_store();
    let by_digest = format!("{host}/busybox@{}", reg.var("DIGEST_busybox"));
    let rep2 = pull(&store2, &client, &by_digest, &quiet()).unwrap();
    assert_eq!(rep2.image.id, rep.image.id);
    assert_eq!(store2.image(&by_digest).unwrap().id, rep.image.id);

    // A digest the registry does not have: refused, nothing stored.
    let (_d3, store3) = new_store();
    let missing = format!("{host}/busybox@sha256:{}", "0".repeat(64));
    let err = pull(&store3, &client, &missing, &quiet()).unwrap_err();
    assert!(err.to_string().contains("busybox"), "{err}");
    assert_store_empty(&store3);
}

#[test]
fn index_picks_the_platform() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("PLAIN");
    let client = Client::new(insecure(host));
    let name = format!("{host}/multiarch:latest");
    for (platform, want) in [
        (None, "amd64"),
        (Some("linux/arm64"), "arm64"),
        (Some("linux/arm64/v8"), "arm64"),
        (Some("linux/amd64"), "amd64"),
    ] {
        let (_d, store) = new_store();
        let opts = PullOptions {
            platform: platform.map(|p| Platform::parse(p).unwrap()),
            ..quiet()
        };
        let rep = pull(&store, &client, &name, &opts).unwrap();
        let fs = ImageFs::open(&store, &rep.image.id).unwrap();
        assert_eq!(fs.read("/arch").unwrap(), format!("{want}\n").as_bytes());
        // The image is also known by the index digest it was pulled through.
        let index = reg.var("DIGEST_multiarch");
        assert!(
            rep.image.digests.iter().any(|d| d.to_string() == index),
            "{:?}",
            rep.image.digests
        );
    }
    let (_d, store) = new_store();
    let opts = PullOptions {
        platform: Some(Platform::parse("linux/s390x").unwrap()),
        ..quiet()
    };
    let err = pull(&store, &client, &name, &opts).unwrap_err().to_string();
    assert!(err.contains("s390x"), "{err}");
    assert_store_empty(&store);
}

#[test]
fn docker_schema2_and_zstd_layers() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("PLAIN");
    let client = Client::new(insecure(host));
    let (_d, store) = new_store();
    let base = pull(&store, &client, &format!("{host}/busybox"), &quiet()).unwrap();
    for name in ["busybox-v2s2", "busybox-zstd"] {
        let r = format!("{host}/{name}");
        let fetched = client
            .manifest(&Reference::parse(&r).unwrap(), "latest")
            .unwrap();
        let ct = fetched.content_type.clone().unwrap_or_default();
        let rep = pull(&store, &client, &r, &quiet()).unwrap();
        // Same uncompressed layer: stored once, found by its diff id.
        assert_eq!(rep.image.layers, base.image.layers, "{name} ({ct})");
        assert_eq!(rep.layers_reused, 1, "{name}");
        if name == "busybox-v2s2" {
            assert_eq!(ct, "application/vnd.docker.distribution.manifest.v2+json");
        }
    }
    // The zstd one, into an empty store: decompressed and verified.
    let (_d2, store2) = new_store();
    let rep = pull(&store2, &client, &format!("{host}/busybox-zstd"), &quiet()).unwrap();
    assert_eq!(rep.layers_fetched, 1);
    assert_eq!(rep.image.layers, base.image.layers);
    assert!(ImageFs::open(&store2, &rep.image.id)
        .unwrap()
        .exists("/bin/busybox"));
}

#[test]
fn basic_auth() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("AUTH");
    let name = format!("{host}/busybox");
    let creds = |password: &str| Credentials {
        username: reg.var("USER").to_string(),
        password: password.to_string(),
    };

    let (_d, store) = new_store();
    let err = pull(&store, &Client::new(insecure(host)), &name, &quiet()).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    let wrong = ClientOptions {
        credentials: Some(creds("wrong")),
        ..insecure(host)
    };
    let err = pull(&store, &Client::new(wrong), &name, &quiet()).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert_store_empty(&store);

    let given = ClientOptions {
        credentials: Some(creds(reg.var("PASSWORD"))),
        ..insecure(host)
    };
    pull(&store, &Client::new(given), &name, &quiet()).unwrap();

    // The same credentials from an auth.json, as Podman and Docker write it.
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let token = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        reg.var("USER"),
        reg.var("PASSWORD")
    ));
    fs::write(
        &auth,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{token}"}}}}}}"#),
    )
    .unwrap();
    let from_file = ClientOptions {
        auth_files: vec![auth],
        ..insecure(host)
    };
    let (_d2, store2) = new_store();
    pull(&store2, &Client::new(from_file), &name, &quiet()).unwrap();
}

#[test]
fn token_auth_anonymous_pull() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("TOKEN");
    let (_d, store) = new_store();
    let rep = pull(
        &store,
        &Client::new(insecure(host)),
        &format!("{host}/busybox"),
        &quiet(),
    )
    .unwrap();
    assert_eq!(rep.image.layers.len(), 1);
}

#[test]
fn tls_with_a_custom_ca() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("TLS");
    let name = format!("{host}/busybox");
    let ca = Path::new(reg.var("CA"));

    // The system roots do not know the CA: refused, and the error says why.
    let (_d, store) = new_store();
    let err = pull(&store, &Client::new(bare()), &name, &quiet())
        .unwrap_err()
        .to_string();
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
    assert_store_empty(&store);

    // The CA named in the registries config.
    let configured = ClientOptions {
        registries: RegistriesConfig {
            registries: vec![RegistryEntry {
                location: host.to_string(),
                insecure: false,
                ca: Some(ca.to_path_buf()),
            }],
        },
        ..bare()
    };
    pull(&store, &Client::new(configured), &name, &quiet()).unwrap();

    // The CA in a certs.d directory, as Docker and Podman read them.
    let certs = tempfile::tempdir().unwrap();
    fs::create_dir(certs.path().join(host)).unwrap();
    fs::copy(ca, certs.path().join(host).join("ca.crt")).unwrap();
    let certs_d = ClientOptions {
        certs_dirs: vec![certs.path().to_path_buf()],
        ..bare()
    };
    let (_d2, store2) = new_store();
    pull(&store2, &Client::new(certs_d), &name, &quiet()).unwrap();
}

/// The compressed digest of the first layer of `repo:latest`.
fn first_layer(client: &Client, host: &str, repo: &str) -> String {
    let r = Reference::parse(&format!("{host}/{repo}")).unwrap();
    let f = client.manifest(&r, "latest").unwrap();
    match Manifest::parse(repo, f.content_type.as_deref(), &f.data).unwrap() {
        Manifest::Image(m) => m.layers[0].digest.to_string(),
        Manifest::Index(_) => panic!("{repo} is an index"),
    }
}

#[test]
fn corrupted_blob_is_rejected_and_nothing_kept() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("PLAIN");
    let digest = first_layer(&Client::new(insecure(host)), host, "busybox");
    // Every download of the layer has one byte flipped.
    let p = proxy::start(host, &digest, Fault::FlipAt(300_000), u32::MAX);
    let (_d, store) = new_store();
    let err = pull(
        &store,
        &Client::new(insecure(&p.addr)),
        &format!("{}/busybox", p.addr),
        &quiet(),
    )
    .unwrap_err();
    assert!(p.hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let msg = err.to_string();
    assert!(
        msg.contains(&digest[7..19]) || msg.contains(&digest),
        "{msg}"
    );
    assert_store_empty(&store);
}

#[test]
fn interrupted_download_is_resumed() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("PLAIN");
    let digest = first_layer(&Client::new(insecure(host)), host, "busybox");
    // The first download of the layer is cut 200 kB in.
    let p = proxy::start(host, &digest, Fault::CutAfter(200_000), 1);
    let (_d, store) = new_store();
    let rep = pull(
        &store,
        &Client::new(insecure(&p.addr)),
        &format!("{}/busybox", p.addr),
        &quiet(),
    )
    .unwrap();
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(p.hits.load(SeqCst), 1);
    assert!(p.ranges.load(SeqCst) >= 1, "no Range request was made");
    assert!(rep.resumes >= 1);
    // Verified all the same: the layer is the one the direct pull gets.
    let (_d2, direct) = new_store();
    let want = pull(
        &direct,
        &Client::new(insecure(host)),
        &format!("{host}/busybox"),
        &quiet(),
    )
    .unwrap();
    assert_eq!(rep.image.layers, want.image.layers);
}

#[test]
fn shared_base_layer_is_stored_once() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("PLAIN");
    let client = Client::new(insecure(host));
    let (_d, store) = new_store();
    let one = pull(&store, &client, &format!("{host}/layered"), &quiet()).unwrap();
    let two = pull(&store, &client, &format!("{host}/layered2"), &quiet()).unwrap();
    assert_eq!(one.layers_fetched, 2);
    assert_eq!((two.layers_fetched, two.layers_reused), (1, 1));
    assert_eq!(one.image.layers[0], two.image.layers[0]);
    assert_eq!(store.layers().unwrap().len(), 3);
    let base = store.layer_diff(&one.image.layers[0]);
    let inode = fs::metadata(base.join("bin/busybox")).unwrap().ino();

    store.remove_image(&format!("{host}/layered")).unwrap();
    assert_eq!(store.layers().unwrap().len(), 2, "the base must stay");
    assert_eq!(fs::metadata(base.join("bin/busybox")).unwrap().ino(), inode);
    let fs2 = ImageFs::open(&store, &format!("{host}/layered2")).unwrap();
    assert_eq!(fs2.read("/app/two").unwrap(), b"two\n");
    assert!(!fs2.exists("/app/one"));
    store.remove_image(&format!("{host}/layered2")).unwrap();
    assert_store_empty(&store);
}

#[test]
fn whiteouts_and_opaque_dirs_give_the_final_tree() {
    let Some(reg) = Registries::get() else { return };
    let host = reg.var("PLAIN");
    let client = Client::new(insecure(host));
    let (_d, store) = new_store();
    let name = format!("{host}/whiteouts");
    let rep = pull(&store, &client, &name, &quiet()).unwrap();
    assert_eq!(rep.image.layers.len(), 3);

    let top = rep.image.layers.last().unwrap();
    let (whiteouts, opaque) = libimage::imagefs::layer_markers(&store, top).unwrap();
    let mut whiteouts = whiteouts;
    whiteouts.sort();
    assert_eq!(whiteouts, ["/data/gone", "/data/subdir-gone"]);
    assert_eq!(opaque, ["/opq"]);

    // What a container sees: the overlay rootfs of a container on it.
    let c = store
        .create_container(&rep.image.id, None, Default::default())
        .unwrap();
    let root = store.mount_rootfs(&c).unwrap();
    let seen = (tree(&root.join("data")), tree(&root.join("opq")));
    let setuid = fs::metadata(root.join("setuid-file")).unwrap();
    let owned = fs::metadata(root.join("owned-file")).unwrap();
    store.unmount_rootfs(&c).unwrap();
    store.remove_container(&c.id).unwrap();
    assert_eq!(seen.0, ["added", "keep"]);
    assert_eq!(seen.1, ["new"]);
    assert_eq!(setuid.mode() & 0o7777, 0o4755);
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o777),
        (1000, 50, 0o640)
    );

    // The same through ImageFs, without mounting.
    let fs = ImageFs::open(&store, &name).unwrap();
    let mut data = fs.read_dir("/data").unwrap();
    data.sort();
    assert_eq!(data, ["added", "keep"]);
    assert_eq!(fs.read_dir("/opq").unwrap(), ["new"]);
    assert!(!fs.exists("/opq/olddir/old2"));
}
