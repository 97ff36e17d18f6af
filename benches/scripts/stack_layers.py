#!/usr/bin/env python3
# Usage: stack_layers.py OUT REF LAYOUT:REF:INDEX...
# Writes an OCI layout OUT (single manifest, tagged REF) whose layers are the given layers of
# other layouts, in order (blobs hard-linked), with the first image's config and the diff_ids of
# the layers taken. For example the py image with v2's site-packages layer on top of v1's, as a
# later `RUN pip install` upgrade would make it (BENCHMARKS: delta bases from earlier layers):
#   stack_layers.py /tmp/up up py/v1:v1:0 py/v1:v1:1 py/v1:v1:2 py/v2:v2:1
import hashlib, json, os, sys

def blob_path(layout, digest):
    return f"{layout}/blobs/{digest.replace(':', '/')}"

def image(layout, ref):
    idx = json.load(open(f"{layout}/index.json"))
    m = [d for d in idx["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref][0]
    manifest = json.load(open(blob_path(layout, m["digest"])))
    config = json.load(open(blob_path(layout, manifest["config"]["digest"])))
    return manifest, config

out, ref, picks = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
def put(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    open(blob_path(out, digest), "wb").write(data)
    return digest
layers, diff_ids, config = [], [], None
for pick in picks:
    layout, layout_ref, index = pick.rsplit(":", 2)
    manifest, layout_config = image(layout, layout_ref)
    config = config or layout_config
    layer = manifest["layers"][int(index)]
    if not os.path.exists(blob_path(out, layer["digest"])):
        os.link(blob_path(layout, layer["digest"]), blob_path(out, layer["digest"]))
    layers.append(layer)
    diff_ids.append(layout_config["rootfs"]["diff_ids"][int(index)])
config = dict(config, rootfs={"type": "layers", "diff_ids": diff_ids})
config.pop("history", None)
config_bytes = json.dumps(config).encode()
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": put(config_bytes), "size": len(config_bytes)},
            "layers": layers}
manifest_bytes = json.dumps(manifest).encode()
index = {"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest_bytes),
    "size": len(manifest_bytes), "annotations": {"org.opencontainers.image.ref.name": ref}}]}
json.dump(index, open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
