#!/usr/bin/python3
"""Writes an OCI image archive holding one static binary, without a registry.

    oci_image.py OUT.tar NAME BINARY CMD...

The image has one uncompressed layer with BINARY as /bin/<its name>, runs CMD, and is named NAME
in the index (the annotation `ctr images import` takes the image name from). The e2e tests
import it as containerd's sandbox ("pause") image.
"""

import hashlib
import io
import json
import os
import platform
import sys
import tarfile

# Go's names for the machine, which containerd matches image platforms against.
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
          "s390x": "s390x", "riscv64": "riscv64"}


def add_file(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    tar.addfile(info)


def blob(blobs, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": digest, "size": len(data)}


def main():
    if len(sys.argv) < 5:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out, name, binary = sys.argv[1:4]
    cmd = sys.argv[4:]
    arch = GOARCH.get(platform.machine())
    if arch is None:
        print(f"oci_image.py: unknown machine {platform.machine()}", file=sys.stderr)
        return 1
    with open(binary, "rb") as f:
        program = f.read()

    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        add_dir(layer, "bin")
        add_file(layer, "bin/" + os.path.basename(binary), program, 0o755)
    layer_bytes = layer_buf.getvalue()

    blobs = {}
    # The layer is stored uncompressed, so its digest is also its diff ID.
    layer_desc = dict(mediaType="application/vnd.oci.image.layer.v1.tar",
                      **blob(blobs, layer_bytes))
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Entrypoint": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
    }
    config_desc = dict(mediaType="application/vnd.oci.image.config.v1+json",
                       **blob(blobs, json.dumps(config, sort_keys=True).encode()))
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc]}
    manifest_desc = dict(mediaType="application/vnd.oci.image.manifest.v1+json",
                         **blob(blobs, json.dumps(manifest, sort_keys=True).encode()))
    manifest_desc["platform"] = {"architecture": arch, "os": "linux"}
    manifest_desc["annotations"] = {"io.containerd.image.name": name,
                                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}
    index = {"schemaVersion": 2, "manifests": [manifest_desc]}

    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        add_file(archive, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add_file(archive, "index.json", json.dumps(index, sort_keys=True).encode())
        add_dir(archive, "blobs")
        add_dir(archive, "blobs/sha256")
        for digest, data in blobs.items():
            add_file(archive, "blobs/sha256/" + digest.split(":", 1)[1], data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
