#!/usr/bin/env python3
"""Build the test images of hack/registry as one OCI image layout.

Every layer is written here with tarfile (exact entries: whiteouts, opaque
markers, owners, modes) and appended with `umoci raw add-layer`, so images
that share a base share its blob byte for byte.

Usage: mkimages.py LAYOUT [--debian ROOTFS_TAR]

Tags made in LAYOUT:
  busybox      one layer: busybox-static with its applets, /etc/passwd, /etc/group
  layered      busybox + a layer adding /app/one
  layered2     busybox + a layer adding /app/two (shares the base with layered)
  whiteouts    busybox + a layer of files + a layer deleting some of them
               (.wh. files) and making /opq opaque (.wh..wh..opq)
  amd64, arm64 one-layer images whose /arch says the architecture
  busybox-zstd busybox with its layer compressed with zstd
  multiarch    an image index over amd64 and arm64 (linux/arm64/v8)
  debian       (with --debian) a debootstrap minbase as one layer
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

MTIME = 1700000000
BUSYBOX = "/bin/busybox"


def entry(tar, name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = MTIME
    info.linkname = link
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def directory(tar, name, mode=0o755, uid=0, gid=0):
    entry(tar, name, tarfile.DIRTYPE, mode=mode, uid=uid, gid=gid)


def write_layer(path, fill):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        fill(tar)


def busybox_layer(tar):
    for d in ["bin", "dev", "etc", "home", "proc", "root", "sys", "usr", "usr/bin", "var"]:
        directory(tar, d)
    directory(tar, "root", mode=0o700)
    directory(tar, "tmp", mode=0o1777)
    directory(tar, "home/app", uid=1000, gid=1000)
    with open(BUSYBOX, "rb") as f:
        entry(tar, "bin/busybox", data=f.read(), mode=0o755)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    for applet in sorted(set(applets.stdout.split())):
        if applet != "busybox":
            entry(tar, f"bin/{applet}", tarfile.SYMTYPE, mode=0o777, link="busybox")
    entry(tar, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"
          b"app:x:1000:1000:app:/home/app:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    entry(tar, "etc/group", data=b"root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n")


def app_layer(name):
    def fill(tar):
        directory(tar, "app")
        entry(tar, f"app/{name}", data=f"{name}\n".encode())
    return fill


def files_layer(tar):
    directory(tar, "data")
    entry(tar, "data/keep", data=b"keep\n")
    entry(tar, "data/gone", data=b"gone\n")
    directory(tar, "data/subdir-gone")
    entry(tar, "data/subdir-gone/inner", data=b"inner\n")
    directory(tar, "opq")
    entry(tar, "opq/old1", data=b"old1\n")
    directory(tar, "opq/olddir")
    entry(tar, "opq/olddir/old2", data=b"old2\n")
    entry(tar, "setuid-file", data=b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0)
    entry(tar, "owned-file", data=b"owned\n", mode=0o640, uid=1000, gid=50)


def delete_layer(tar):
    directory(tar, "data")
    entry(tar, "data/.wh.gone")
    entry(tar, "data/.wh.subdir-gone")
    entry(tar, "data/added", data=b"added\n")
    directory(tar, "opq")
    entry(tar, "opq/.wh..wh..opq")
    entry(tar, "opq/new", data=b"new\n")


def arch_layer(arch):
    def fill(tar):
        entry(tar, "arch", data=f"{arch}\n".encode())
    return fill


def umoci(*args):
    subprocess.run(["umoci", *args], check=True)


def add_layer(layout, src, dst, tar_path, comment):
    umoci("raw", "add-layer", "--image", f"{layout}:{src}", "--tag", dst,
          "--history.created_by", comment, tar_path)


def set_config(layout, tag, *args):
    umoci("config", "--image", f"{layout}:{tag}", *args)


def blob_path(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def add_index(layout, tag, members):
    """Write an image index over the tagged images `members` (tag -> platform)."""
    with open(os.path.join(layout, "index.json")) as f:
        top = json.load(f)
    by_tag = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m
              for m in top["manifests"]}
    manifests = []
    for member, platform in members.items():
        desc = dict(by_tag[member])
        desc.pop("annotations", None)
        desc["platform"] = platform
        manifests.append(desc)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": manifests}
    data = json.dumps(index, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(layout, digest), "wb") as f:
        f.write(data)
    top["manifests"] = [m for m in top["manifests"]
                        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    top["manifests"].append({"mediaType": index["mediaType"], "digest": digest, "size": len(data),
                             "annotations": {"org.opencontainers.image.ref.name": tag}})
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(top, f)


def write_blob(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(layout, digest), "wb") as f:
        f.write(data)
    return {"digest": digest, "size": len(data)}


def tag_manifest(layout, tag, media_type, desc):
    with open(os.path.join(layout, "index.json")) as f:
        top = json.load(f)
    top["manifests"] = [m for m in top["manifests"]
                        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    top["manifests"].append({"mediaType": media_type, **desc,
                             "annotations": {"org.opencontainers.image.ref.name": tag}})
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(top, f)


def add_zstd_variant(layout, src, dst):
    """Tag `dst`: the image `src` with each layer recompressed with zstd."""
    with open(os.path.join(layout, "index.json")) as f:
        top = json.load(f)
    desc = next(m for m in top["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == src)
    with open(blob_path(layout, desc["digest"])) as f:
        manifest = json.load(f)
    for layer in manifest["layers"]:
        with open(blob_path(layout, layer["digest"]), "rb") as f:
            plain = subprocess.run(["gzip", "-dc"], stdin=f, capture_output=True, check=True).stdout
        packed = subprocess.run(["zstd", "-q", "-c"], input=plain, capture_output=True, check=True).stdout
        layer.update(write_blob(layout, packed))
        layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd"
    data = json.dumps(manifest, separators=(",", ":")).encode()
    tag_manifest(layout, dst, "application/vnd.oci.image.manifest.v1+json", write_blob(layout, data))


def main():
    layout = sys.argv[1]
    debian = None
    if len(sys.argv) > 3 and sys.argv[2] == "--debian":
        debian = sys.argv[3]
    if os.path.exists(layout):
        shutil.rmtree(layout)
    umoci("init", "--layout", layout)
    with tempfile.TemporaryDirectory() as tmp:
        def layer(name, fill):
            path = os.path.join(tmp, name + ".tar")
            write_layer(path, fill)
            return path

        umoci("new", "--image", f"{layout}:empty")
        set_config(layout, "empty", "--os", "linux", "--architecture", "amd64")
        add_layer(layout, "empty", "busybox", layer("busybox", busybox_layer), "busybox-static")
        set_config(layout, "busybox", "--config.cmd", "sh", "--config.env",
                   "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        add_layer(layout, "busybox", "layered", layer("one", app_layer("one")), "add /app/one")
        add_layer(layout, "busybox", "layered2", layer("two", app_layer("two")), "add /app/two")
        add_layer(layout, "busybox", "whiteouts-1", layer("files", files_layer), "add files")
        add_layer(layout, "whiteouts-1", "whiteouts", layer("delete", delete_layer),
                  "delete files, make /opq opaque")
        add_zstd_variant(layout, "busybox", "busybox-zstd")
        for arch in ["amd64", "arm64"]:
            umoci("new", "--image", f"{layout}:{arch}-empty")
            set_config(layout, f"{arch}-empty", "--os", "linux", "--architecture", arch)
            add_layer(layout, f"{arch}-empty", arch, layer(arch, arch_layer(arch)), f"arch {arch}")
        add_index(layout, "multiarch", {
            "amd64": {"os": "linux", "architecture": "amd64"},
            "arm64": {"os": "linux", "architecture": "arm64", "variant": "v8"},
        })
        if debian:
            umoci("new", "--image", f"{layout}:debian-empty")
            set_config(layout, "debian-empty", "--os", "linux", "--architecture", "amd64")
            add_layer(layout, "debian-empty", "debian", debian, "debootstrap --variant=minbase")
            set_config(layout, "debian", "--config.cmd", "bash")
    umoci("gc", "--layout", layout)


if __name__ == "__main__":
    main()
