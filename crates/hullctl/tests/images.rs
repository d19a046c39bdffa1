//! Image commands: import of each format, tag, history, inspect, save ->
//! import round trip (whiteouts and opaque directories kept), rmi.

mod common;

use std::path::Path;

use libimage::Digest;
use serde_json::json;

fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, path, *d).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Three layers: busybox; /a and /d/x; then a whiteout of /a and an
/// opaque /d holding only y.
fn layers(dir: &Path) -> Vec<Vec<u8>> {
    let base = dir.join("base.tar");
    common::rootfs_tar(&base);
    vec![
        std::fs::read(&base).unwrap(),
        tar_of(&[("a", Some(b"A")), ("d", None), ("d/x", Some(b"X"))]),
        tar_of(&[
            (".wh.a", Some(b"")),
            ("d", None),
            ("d/.wh..wh..opq", Some(b"")),
            ("d/y", Some(b"Y")),
        ]),
    ]
}

fn config(layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::sha256(l).to_string())
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["sh", "-c", "ls /d; cat /a 2>/dev/null || echo no-a"], "StopSignal": "SIGINT"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "base"}, {"created_by": "add a and d/x"}, {"created_by": "remove a, replace d"}],
    }))
    .unwrap()
}

fn oci_layout(dir: &Path, layers: &[Vec<u8>], name: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = Digest::sha256(data);
        std::fs::write(blobs.join(d.hex()), data).unwrap();
        json!({"digest": d.to_string(), "size": data.len()})
    };
    let descs: Vec<_> = layers
        .iter()
        .map(|l| {
            let mut d = put(l);
            d["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar");
            d
        })
        .collect();
    let mut cfg = put(&config(layers));
    cfg["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": descs});
    let mut m = put(&serde_json::to_vec(&manifest).unwrap());
    m["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
    m["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    std::fs::write(
        dir.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [m]}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn docker_archive(path: &Path, layers: &[Vec<u8>], tag: &str) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    for (n, l) in names.iter().zip(layers) {
        add(n, l);
    }
    add("config.json", &config(layers));
    let manifest = json!([{"Config": "config.json", "RepoTags": [tag], "Layers": names}]);
    add("manifest.json", manifest.to_string().as_bytes());
    b.finish().unwrap();
}

const VIEW: &str = "y\nno-a\n";

#[test]
fn import_tag_history_save_and_rmi() {
    let Some(h) = common::setup() else { return };
    let layers = layers(h.dir.path());

    // An OCI layout directory, named by its index.
    let dir = h.dir.path().join("layout");
    oci_layout(&dir, &layers, "localhost/layered:1");
    h.ok(&["import", dir.to_str().unwrap()]);
    assert_eq!(h.ok(&["run", "--rm", "localhost/layered:1"]), VIEW);
    let hist = h.ok(&["history", "localhost/layered:1"]);
    assert!(
        hist.contains("remove a, replace d") && hist.contains("base"),
        "{hist}"
    );
    let img = h.inspect("localhost/layered:1");
    assert_eq!(img["RepoTags"], json!(["localhost/layered:1"]));
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(img["Config"]["StopSignal"], "SIGINT");

    // tag, then save and import the archive: the same tree.
    h.ok(&["tag", "localhost/layered:1", "localhost/again:2"]);
    let images = h.ok(&["images"]);
    assert!(
        images.contains("localhost/again") && images.contains("2"),
        "{images}"
    );
    let archive = h.dir.path().join("saved.tar");
    h.ok(&["save", "-o", archive.to_str().unwrap(), "localhost/again:2"]);
    h.ok(&["rmi", "localhost/again:2"]);
    h.ok(&["rmi", "localhost/layered:1"]);
    assert_eq!(h.ok(&["images", "-q"]).lines().count(), 1, "busybox only");
    let id = h.ok(&["import", archive.to_str().unwrap()]);
    assert_eq!(h.ok(&["run", "--rm", id.trim()]), VIEW);
    let saved = h.inspect(&id.trim()[..8]);
    assert_eq!(saved["RepoTags"], json!(["localhost/layered:1"]));
    assert_eq!(saved["RootFS"]["Layers"].as_array().unwrap().len(), 3);

    // A docker-archive.
    let docker = h.dir.path().join("docker.tar");
    docker_archive(&docker, &layers, "docker-made:3");
    h.ok(&["import", docker.to_str().unwrap()]);
    assert_eq!(h.ok(&["run", "--rm", "docker-made:3"]), VIEW);
    let err = h.fails(&["rmi", "nosuch:1"]);
    assert!(err.contains("no such image"), "{err}");

    // stop sends the image's StopSignal (SIGINT here).
    let trap = "trap 'exit 9' INT; while true; do sleep 0.05; done";
    h.ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        "docker-made:3",
        "sh",
        "-c",
        trap,
    ]);
    h.ok(&["stop", "-t", "20", "sig"]);
    assert_eq!(h.ok(&["wait", "sig"]), "9\n");
    h.ok(&["rm", "sig"]);

    // In use: refused until the container is gone.
    h.ok(&["create", "--name", "user", "docker-made:3"]);
    let err = h.fails(&["rmi", "docker-made:3"]);
    assert!(err.contains("used by container user"), "{err}");
    h.ok(&["rm", "user"]);
    h.ok(&["rmi", "docker-made:3"]);
    h.ok(&["rmi", "localhost/layered:1"]);
    h.ok(&["rmi", "busybox"]);
    assert_eq!(h.entries(&h.root.join("layers")), Vec::<String>::new());
}

/// The plain-HTTP registry of `hack/registry`, when HULL_TEST_REGISTRY names its env file.
fn local_registry() -> Option<String> {
    let Some(path) = std::env::var_os("HULL_TEST_REGISTRY") else {
        eprintln!("skipped: HULL_TEST_REGISTRY is not set (run `hack/registry start`)");
        return None;
    };
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("PLAIN="))
        .map(String::from)
}

#[test]
fn pull_from_a_registry_and_run() {
    let Some(h) = common::setup() else { return };
    let Some(addr) = local_registry() else { return };
    let reference = format!("{addr}/busybox:latest");
    let err = h.fails(&["pull", "-q", &reference]);
    assert!(err.contains("tls"), "{err}");
    let id = h.ok(&["pull", "-q", "--tls-verify=false", &reference]);
    assert_eq!(id.trim().len(), 64, "{id}");
    assert!(h.ok(&["images"]).contains(&format!("{addr}/busybox")));
    assert_eq!(
        h.ok(&["run", "--rm", &reference, "echo", "pulled"]),
        "pulled\n"
    );
    let img = h.inspect(&reference);
    assert_eq!(img["RepoTags"], json!([reference]));
    assert!(img["RepoDigests"][0].as_str().unwrap().contains("@sha256:"));
    h.ok(&["rmi", &reference]);
}
