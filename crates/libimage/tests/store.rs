//! The store against layers built here: whiteouts and opaque directories
//! seen through a real overlay mount, hostile tar entries refused, corrupt
//! blobs rejected with nothing kept, shared layers stored once and
//! released by rmi, metadata kept. Needs root (overlay, mknod, chown).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use flate2::write::GzEncoder;
use libimage::digest::Digest;
use libimage::imagefs::{layer_markers, ImageFs};
use libimage::import;
use libimage::Store;
use serde_json::json;

/// One tar entry; paths and link names are written raw, so tests can
/// build the hostile ones a careful tar writer refuses.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Mode(&'a str, &'a [u8], u32, u64, u64),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Xattr(&'a str, &'a str, &'a [u8]),
}

fn raw_header(kind: tar::EntryType, path: &str, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    let name = &mut h.as_old_mut().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    h
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match *e {
            E::Dir(p) => {
                let mut h = raw_header(tar::EntryType::Directory, p, 0, 0o755);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::File(p, data) => {
                let mut h = raw_header(tar::EntryType::Regular, p, data.len() as u64, 0o644);
                h.set_cksum();
                b.append(&h, data).unwrap();
            }
            E::Mode(p, data, mode, uid, gid) => {
                let mut h = raw_header(tar::EntryType::Regular, p, data.len() as u64, mode);
                h.set_uid(uid);
                h.set_gid(gid);
                h.set_cksum();
                b.append(&h, data).unwrap();
            }
            E::Symlink(p, target) | E::Hardlink(p, target) => {
                let kind = if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = raw_header(kind, p, 0, 0o777);
                h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Char(p, major, minor) => {
                let mut h = raw_header(tar::EntryType::Char, p, 0, 0o666);
                h.set_device_major(major).unwrap();
                h.set_device_minor(minor).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Xattr(p, key, value) => {
                let k = format!("SCHILY.xattr.{key}");
                b.append_pax_extensions([(k.as_str(), value)]).unwrap();
                let mut h = raw_header(tar::EntryType::Regular, p, 1, 0o644);
                h.set_cksum();
                b.append(&h, &b"x"[..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut g = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

fn put_blob(dir: &Path, data: &[u8]) -> Digest {
    let d = Digest::sha256(data);
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("blobs/sha256").join(d.hex()), data).unwrap();
    d
}

/// Writes an OCI layout holding one image of `layers` (tars), gzip'd.
fn oci_layout(dir: &Path, tag: &str, layers: &[Vec<u8>]) -> Digest {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        diff_ids.push(Digest::sha256(l).to_string());
        let gz = gzip(l);
        let d = put_blob(dir, &gz);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": gz.len()}));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["A=1"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let cd = put_blob(dir, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let md = put_blob(dir, &manifest);
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(),
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    md
}

fn store(dir: &Path) -> Store {
    Store::open(dir.join("store")).unwrap()
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Every path under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(format!("/{}", p.strip_prefix(root).unwrap().display()));
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn whiteouts_and_opaque_dirs_give_the_final_tree() {
    let t = tempfile::tempdir().unwrap();
    let base = layer(&[
        E::Dir("a/"),
        E::File("a/keep", b"keep"),
        E::File("a/gone", b"gone"),
        E::Dir("d/"),
        E::File("d/old", b"old"),
        E::Dir("d/sub/"),
        E::File("d/sub/old2", b"old2"),
        E::Dir("x/"),
        E::File("x/file", b"x"),
    ]);
    let top = layer(&[
        E::File("a/.wh.gone", b""),
        E::Dir("d/"),
        E::File("d/.wh..wh..opq", b""),
        E::File("d/new", b"new"),
        E::File(".wh.x", b""),
        E::File(".wh..wh.plnk", b""),
    ]);
    oci_layout(&t.path().join("layout"), "v1", &[base, top]);
    let s = store(t.path());
    let img = import::import(&s, &t.path().join("layout"), Some("localhost/wh:v1")).unwrap();
    assert_eq!(img.layers.len(), 2);

    let top = s.find_layer(&img.layers[1].hex()[..8]).unwrap();
    assert_eq!(top.diff_id, img.layers[1]);
    assert_eq!((top.whiteouts, top.opaque_dirs), (2, 1));
    let (whiteouts, opaque) = layer_markers(&s, &img.layers[1]).unwrap();
    assert_eq!(whiteouts, ["/a/gone", "/x"]);
    assert_eq!(opaque, ["/d"]);

    let want = ["/a", "/a/keep", "/d", "/d/new"];
    let fs_view = ImageFs::open(&s, "localhost/wh:v1").unwrap();
    assert_eq!(fs_view.walk().unwrap(), want);
    assert_eq!(fs_view.read("/d/new").unwrap(), b"new");
    assert!(!fs_view.exists("/d/old"));
    assert!(!fs_view.exists("/x/file"));

    let c = s
        .create_container(&img.id, Some("wh"), Default::default())
        .unwrap();
    let rootfs = s.mount_rootfs(&c).unwrap();
    assert_eq!(tree(&rootfs), want, "the overlay shows the final tree");
    assert_eq!(fs::read(rootfs.join("a/keep")).unwrap(), b"keep");
    s.remove_container(&c.id).unwrap();
    assert!(!rootfs.exists());

    // The copy driver gives the same tree without a mount.
    let s = s.with_driver(libimage::store::Driver::Copy);
    let c = s
        .create_container(&img.id, Some("wh2"), Default::default())
        .unwrap();
    let rootfs = s.mount_rootfs(&c).unwrap();
    assert!(!libimage::overlay::is_mounted(&rootfs));
    assert_eq!(tree(&rootfs), want, "the copy shows the final tree");
    s.remove_container(&c.id).unwrap();
}

#[test]
fn metadata_devices_links_and_xattrs_are_kept() {
    let t = tempfile::tempdir().unwrap();
    let l = layer(&[
        E::Dir("bin/"),
        E::Mode("bin/su", b"#!", 0o4755, 0, 0),
        E::Mode("home", b"h", 0o640, 1000, 100),
        E::Symlink("bin/sh", "/bin/busybox"),
        E::Hardlink("bin/su2", "bin/su"),
        E::Char("null", 1, 3),
        E::Xattr("cap", "user.hull", b"v"),
    ]);
    let tar = t.path().join("rootfs.tar");
    fs::write(&tar, &l).unwrap();
    let s = store(t.path());
    let img = import::import(&s, &tar, Some("localhost/meta")).unwrap();
    let diff = s.layer_diff(&img.layers[0]);
    let su = fs::metadata(diff.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    let home = fs::metadata(diff.join("home")).unwrap();
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o777),
        (1000, 100, 0o640)
    );
    assert_eq!(
        fs::read_link(diff.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        fs::metadata(diff.join("bin/su2")).unwrap().ino(),
        su.ino(),
        "hard link"
    );
    let null = fs::symlink_metadata(diff.join("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert_eq!(su.mtime(), 1_700_000_000);
    let path = std::ffi::CString::new(diff.join("cap").as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = [0u8; 8];
    // SAFETY: NUL-terminated strings, buf has buf.len() writable bytes.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"user.hull".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert_eq!(&buf[..n.max(0) as usize], b"v", "xattr from the PAX header");
}

fn assert_nothing_kept(s: &Store) {
    assert_eq!(count(&s.root().join("layers")), 0, "no layer kept");
    assert_eq!(count(&s.root().join("tmp")), 0, "no staging left");
    assert_eq!(count(&s.root().join("images")), 0, "no image recorded");
}

#[test]
fn hostile_entries_are_refused_and_nothing_is_kept() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            layer(&[E::File("../../evil", b"x")]),
            "leaves the layer",
        ),
        (
            "dotdot-inner",
            layer(&[E::File("a/../../evil", b"x")]),
            "leaves the layer",
        ),
        (
            "hardlink-out",
            layer(&[E::Hardlink("pw", "../../../../etc/passwd")]),
            "hard link target leaves",
        ),
        (
            "hardlink-abs",
            layer(&[E::Hardlink("pw", "/etc/passwd")]),
            "hard link target",
        ),
    ];
    for (name, l, reason) in cases {
        let s = Store::open(t.path().join(name)).unwrap();
        let tar = t.path().join(format!("{name}.tar"));
        fs::write(&tar, &l).unwrap();
        let err = import::import(&s, &tar, Some("localhost/bad"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(reason), "{name}: {err}");
        assert_nothing_kept(&s);
    }
    assert_eq!(count(&outside), 0);

    // A symlink to an absolute path resolves inside the layer only: to a
    // directory the layer has, or to nothing.
    let target = outside.display().to_string();
    let s = Store::open(t.path().join("symlink")).unwrap();
    let l = layer(&[E::Symlink("link", &target), E::File("link/pwn", b"x")]);
    let tar = t.path().join("symlink.tar");
    fs::write(&tar, &l).unwrap();
    let err = import::import(&s, &tar, Some("localhost/sym"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("link/pwn") && err.contains("open parent"),
        "{err}"
    );
    assert_nothing_kept(&s);
    let inner = format!("{}/", target.trim_start_matches('/'));
    let l = layer(&[
        E::Dir(&inner),
        E::Symlink("link", &target),
        E::File("link/pwn", b"x"),
    ]);
    fs::write(&tar, &l).unwrap();
    let img = import::import(&s, &tar, Some("localhost/sym")).unwrap();
    assert_eq!(count(&outside), 0, "nothing written through the symlink");
    let inside = s.layer_diff(&img.layers[0]).join(&inner).join("pwn");
    assert!(inside.exists(), "{} should exist", inside.display());
}

#[test]
fn a_corrupt_blob_is_rejected_and_nothing_is_kept() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("layout");
    oci_layout(&dir, "v1", &[layer(&[E::File("f", b"good")])]);
    // Flip a byte of the layer blob: its digest no longer matches.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .replace("sha256:", "");
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("blobs/sha256").join(md)).unwrap()).unwrap();
    let ld = m["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .replace("sha256:", "");
    let blob = dir.join("blobs/sha256").join(ld);
    let good = fs::read(&blob).unwrap();
    let s = store(t.path());
    // A valid layer of other content under the digest: unpacks, then fails
    // the digest check.
    fs::write(&blob, gzip(&layer(&[E::File("f", b"evil")]))).unwrap();
    let err = import::import(&s, &dir, Some("localhost/c:v1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected sha256:"), "{err}");
    assert_nothing_kept(&s);
    // Flipped bytes: the stream itself breaks.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    fs::write(&blob, bad).unwrap();
    assert!(import::import(&s, &dir, Some("localhost/c:v1")).is_err());
    assert_nothing_kept(&s);
    fs::write(&blob, good).unwrap();
    import::import(&s, &dir, Some("localhost/c:v1")).unwrap();
}

#[test]
fn shared_layers_are_stored_once_and_released_by_rmi() {
    let t = tempfile::tempdir().unwrap();
    let base = layer(&[E::File("base", b"base")]);
    oci_layout(
        &t.path().join("one"),
        "v1",
        &[base.clone(), layer(&[E::File("one", b"1")])],
    );
    oci_layout(
        &t.path().join("two"),
        "v1",
        &[base, layer(&[E::File("two", b"2")])],
    );
    let s = store(t.path());
    let a = import::import(&s, &t.path().join("one"), Some("localhost/one:v1")).unwrap();
    let b = import::import(&s, &t.path().join("two"), Some("localhost/two:v1")).unwrap();
    assert_eq!(a.layers[0], b.layers[0]);
    assert_eq!(
        s.layers().unwrap().len(),
        3,
        "the shared base is stored once"
    );

    // A container keeps its image.
    let c = s
        .create_container(&a.id, Some("c1"), Default::default())
        .unwrap();
    let err = s.remove_image("localhost/one:v1").unwrap_err().to_string();
    assert!(err.contains("used by container c1"), "{err}");
    let err = s
        .create_container(&a.id, Some("c1"), Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("already used"), "{err}");
    s.remove_container(&c.id).unwrap();

    s.remove_image("localhost/one:v1").unwrap();
    assert_eq!(
        s.layers().unwrap().len(),
        2,
        "one's own layer released, the base kept"
    );
    assert!(s.layer(&b.layers[0]).unwrap().is_some());
    s.remove_image(&b.id[..12]).unwrap();
    assert_eq!(s.layers().unwrap().len(), 0);
    assert_eq!(count(&s.root().join("blobs/sha256")), 0, "blobs released");
    assert!(s.image("localhost/two:v1").is_err());
}

#[test]
fn names_tags_and_prefixes() {
    let t = tempfile::tempdir().unwrap();
    oci_layout(&t.path().join("l"), "v1", &[layer(&[E::File("f", b"f")])]);
    let s = store(t.path());
    let img = import::import(&s, &t.path().join("l"), Some("busybox:v1")).unwrap();
    assert_eq!(img.names, ["docker.io/library/busybox:v1"]);
    assert_eq!(s.image("busybox:v1").unwrap().id, img.id);
    assert_eq!(s.image("docker.io/library/busybox:v1").unwrap().id, img.id);
    assert_eq!(s.image(&img.id[..5]).unwrap().id, img.id);
    assert_eq!(s.image(&format!("sha256:{}", img.id)).unwrap().id, img.id);
    s.tag("busybox:v1", "localhost/other:x").unwrap();
    assert_eq!(s.image("localhost/other:x").unwrap().id, img.id);
    // Removing one of two names keeps the image.
    s.remove_image("localhost/other:x").unwrap();
    assert_eq!(s.image("busybox:v1").unwrap().names.len(), 1);
    let err = s.image("nosuch").unwrap_err().to_string();
    assert!(err.contains("no such image"), "{err}");
}

#[test]
fn docker_archive_and_bundle_config() {
    let t = tempfile::tempdir().unwrap();
    let l = layer(&[
        E::Dir("etc/"),
        E::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nbob:x:1000:100::/home/bob:/bin/sh\n",
        ),
        E::File("etc/group", b"root:x:0:\nusers:x:100:\nwheel:x:10:bob\n"),
        E::Dir("data/"),
        E::Mode("data/seed", b"seed", 0o600, 1000, 100),
        E::Symlink("evil", "/etc"),
    ]);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/echo"], "Cmd": ["hi"], "User": "bob", "WorkingDir": "/srv",
                   "Env": ["PATH=/bin", "A=1"], "Labels": {"l": "v"}, "StopSignal": "SIGINT",
                   "Volumes": {"/data": {}, "/evil/": {}}},
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256(&l).to_string()]},
    }))
    .unwrap();
    let manifest = json!([{"Config": "cfg.json", "RepoTags": ["localhost/da:1"], "Layers": ["abc/layer.tar"]}]);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    add("cfg.json", &config);
    add("abc/layer.tar", &l);
    let archive = t.path().join("da.tar");
    fs::write(&archive, b.into_inner().unwrap()).unwrap();

    let s = store(t.path());
    assert_eq!(
        import::detect(&archive).unwrap(),
        import::Format::DockerArchive
    );
    let img = import::import(&s, &archive, None).unwrap();
    assert_eq!(img.names, ["localhost/da:1"]);

    let view = ImageFs::open(&s, &img.id).unwrap();
    let cfg = s.image_config(&img).unwrap();
    let o = libimage::bundle::Overrides {
        env: vec!["A=2".into()],
        ..Default::default()
    };
    let spec = libimage::bundle::runtime_config(&view, &cfg, &o).unwrap();
    assert_eq!(spec["process"]["args"], json!(["/bin/echo", "hi"]));
    assert_eq!(
        spec["process"]["user"],
        json!({"uid": 1000, "gid": 100, "additionalGids": [10]})
    );
    assert_eq!(spec["process"]["cwd"], "/srv");
    let env: Vec<&str> = spec["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&env[..2], ["PATH=/bin", "A=2"]);
    assert!(env.contains(&"HOME=/home/bob"));
    assert_eq!(
        spec["annotations"]["org.opencontainers.image.stopSignal"],
        "SIGINT"
    );
    assert_eq!(spec["annotations"]["l"], "v");
    let o = libimage::bundle::Overrides {
        entrypoint: Some(vec!["/bin/sh".into()]),
        user: Some("nobody".into()),
        ..Default::default()
    };
    let err = libimage::bundle::runtime_config(&view, &cfg, &o)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unable to find user nobody"), "{err}");

    let c = s
        .create_container(&img.id, None, Default::default())
        .unwrap();
    let bundle = s.write_bundle(&c, &spec).unwrap();
    assert!(bundle.join("config.json").exists());
    assert!(bundle.join("rootfs/etc/passwd").exists(), "rootfs mounted");
    // The image's Volumes: bind mounts of bundle dirs, filled from the
    // image; one reached through a symlink is left empty.
    let mounts = spec["mounts"].as_array().unwrap();
    let vol = |dest: &str| {
        mounts
            .iter()
            .find(|m| m["destination"] == dest)
            .unwrap_or_else(|| panic!("no mount on {dest}: {mounts:?}"))
            .clone()
    };
    assert_eq!(vol("/data")["source"], "volumes/0-data");
    assert_eq!(vol("/data")["type"], "bind");
    assert_eq!(vol("/evil")["source"], "volumes/1-evil");
    let seed = fs::metadata(bundle.join("volumes/0-data/seed")).unwrap();
    assert_eq!(
        (seed.uid(), seed.gid(), seed.mode() & 0o777),
        (1000, 100, 0o600)
    );
    assert_eq!(
        fs::read_dir(bundle.join("volumes/1-evil")).unwrap().count(),
        0
    );
    s.remove_container(&c.id).unwrap();
    assert!(!bundle.exists());
}
