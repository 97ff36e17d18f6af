#!/usr/bin/env python3
# Usage: independent_diff.py V1_LAYOUT V2_LAYOUT  (refs v1 and v2, gzip layers, as gen_py.py writes them)
# Prints what v2 adds over v1 under whole-file dedup (sha256 of each regular file) and under
# layer-digest dedup (uncompressed tar bytes), computed without cairn, to check `cairn diff --json`.
# Independent computation of layer- and file-level dedup for v2 against v1 (py dataset).
import gzip, hashlib, json, sys, tarfile
def image(layout, ref):
    idx = json.load(open(f"{layout}/index.json"))
    m = [d for d in idx["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref][0]
    man = json.load(open(f"{layout}/blobs/sha256/{m['digest'][7:]}"))
    return [(l["digest"], f"{layout}/blobs/sha256/{l['digest'][7:]}") for l in man["layers"]]
def files(path):
    out = []
    with tarfile.open(path, "r:gz") as t:
        for m in t:
            if m.isreg():
                out.append((hashlib.sha256(t.extractfile(m).read()).hexdigest(), m.size))
    return out
def tar_size(path):
    with gzip.open(path) as f:
        n = 0
        while True:
            b = f.read(1 << 20)
            if not b: return n
            n += len(b)
v1 = image(sys.argv[1], "v1"); v2 = image(sys.argv[2], "v2")
old = {h for _, p in v1 for h, _ in files(p)}
seen, file_added = set(), 0
for _, p in v2:
    for h, n in files(p):
        if h not in old and h not in seen:
            seen.add(h); file_added += n
old_digests = {d for d, _ in v1}
layer_added = sum(tar_size(p) for d, p in v2 if d not in old_digests)
print(json.dumps({"file_dedup_added_bytes": file_added, "layer_dedup_added_bytes": layer_added}))
