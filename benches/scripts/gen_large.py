#!/usr/bin/env python3
"""Dataset "large": an image of 85,544 files (92,203 entries, 1.6 GB of tar) from real Debian 12
packages, in two versions.

Writes two OCI image layouts (blobs both have are hard-linked where the file system allows):
  OUT/v1  ref "v1": base | kernel | app v1
  OUT/v2  ref "v2": base re-tarred | kernel (the same blob) | app v2
and OUT/layers.json.

  layer 0  base    BASE_PINS (50 packages: libc, coreutils, bash, python3.11, perl, libicu,
                   vim-runtime, ...), dpkg-deb -x into a merged-/usr tree. v1: mtimes clamped
                   to E1; v2: the same files with every mtime E2 (gen_py's "retar"): same
                   content, new digest.
  layer 1  kernel  linux-source-6.1 (KERNEL_PIN): its usr/src/linux-source-6.1.tar.xz extracted
                   into usr/src (78,581 files, 1.36 GB of tar), plus the package's docs; the
                   .tar.xz itself is left out. The same blob, same digest, in v1 and v2.
  layer 2  app     APP_PINS[version] (curl, libcurl4, libxml2, tzdata at two versions each) and
                   /app: a config, a script, a symlink, a hardlink, a file whiteout of
                   /etc/issue.net and a 2 MiB pseudo-random model; v2 inserts 100 bytes into it.

The kernel layer is what makes the image large in files and bytes while staying the same between
versions: a dedup store should add almost nothing for it when v2 arrives, and its metadata for
79,000 entries is what a store's metadata format has to carry well.

Deterministic: the same digests on every run, given the same packages (ocilib.fetch_debs warns
when a pinned version is gone from the archive and takes the current one). Needs apt-get (with
Debian 12 sources), dpkg-deb, GNU tar and xz; run as root so that tar keeps the kernel tree's
modes exactly. Packages are downloaded with apt-get into CACHE/debs; the kernel layer is built
once into CACHE/layers and reused. No other network.

Usage: nice -n 10 python3 benches/scripts/gen_large.py --out DIR [--cache DIR] [--shared DIR]
  --shared  the shared datasets directory holding ocilib.py (default: ../shared/datasets from the
            repository root)
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

E1 = 1704067200  # 2024-01-01T00:00:00Z
E2 = 1706745600  # 2024-02-01T00:00:00Z

BASE_PINS = [
    ("base-files", "12.4+deb12u15"), ("bash", "5.2.15-2+b13"), ("coreutils", "9.1-1"),
    ("libc6", "2.36-9+deb12u14"), ("libgcc-s1", "12.2.0-14+deb12u1"), ("libstdc++6", "12.2.0-14+deb12u1"),
    ("zlib1g", "1:1.2.13.dfsg-1"), ("libexpat1", "2.5.0-1+deb12u5"), ("libffi8", "3.4.4-1"),
    ("libbz2-1.0", "1.0.8-5+b1"), ("liblzma5", "5.4.1-1+deb12u2"), ("libtinfo6", "6.4-4"),
    ("libcrypt1", "1:4.4.33-2"), ("libssl3", "3.0.22-1~deb12u2"), ("media-types", "10.0.0"),
    ("python3.11-minimal", "3.11.2-6+deb12u9"), ("libpython3.11-minimal", "3.11.2-6+deb12u9"),
    ("libpython3.11-stdlib", "3.11.2-6+deb12u9"),
    ("dash", "0.5.12-2"), ("debianutils", "5.7-0.5~deb12u1"), ("diffutils", "1:3.8-4"),
    ("findutils", "4.9.0-4"), ("grep", "3.8-5"), ("gzip", "1.12-1"), ("sed", "4.9-1+deb12u1"),
    ("tar", "1.34+dfsg-1.2+deb12u1"), ("perl-base", "5.36.0-7+deb12u4"), ("libacl1", "2.3.1-3"),
    ("libattr1", "1:2.5.1-4"), ("libselinux1", "3.4-1+b6"), ("libpcre2-8-0", "10.42-1+deb12u2"),
    ("libzstd1", "1.5.4+dfsg2-5+deb12u1"), ("libgmp10", "2:6.2.1+dfsg1-1.1"),
    ("ncurses-base", "6.4-4"), ("ncurses-bin", "6.4-4"), ("libncursesw6", "6.4-4"),
    ("libsqlite3-0", "3.40.1-2+deb12u2"), ("libreadline8", "8.2-1.3"), ("readline-common", "8.2-1.3"),
    ("libuuid1", "2.38.1-5+deb12u3"), ("libicu72", "72.1-3+deb12u1"),
    ("libnghttp2-14", "1.52.0-1+deb12u3"), ("libidn2-0", "2.3.3-1+b1"), ("libunistring2", "1.0-2"),
    ("libpsl5", "0.21.2-1"), ("libbrotli1", "1.0.9-2+deb12u1"), ("libssh2-1", "1.10.0-3+deb12u1"),
    ("libperl5.36", "5.36.0-7+deb12u4"), ("perl-modules-5.36", "5.36.0-7+deb12u4"),
    ("vim-runtime", "2:9.0.1378-2+deb12u2"),
]
KERNEL_PIN = ("linux-source-6.1", "6.1.192-3")
APP_PINS = {
    "v1": [("curl", "7.88.1-10+deb12u5"), ("libcurl4", "7.88.1-10+deb12u5"),
           ("libxml2", "2.9.14+dfsg-1.3~deb12u4"), ("tzdata", "2025b-0+deb12u1")],
    "v2": [("curl", "7.88.1-10+deb12u15"), ("libcurl4", "7.88.1-10+deb12u15"),
           ("libxml2", "2.9.14+dfsg-1.3~deb12u6"), ("tzdata", "2026f-0+deb12u1")],
}


def prng(nbytes, seed):
    out, i = bytearray(), 0
    while len(out) < nbytes:
        out += hashlib.sha256(seed + i.to_bytes(8, "little")).digest()
        i += 1
    return bytes(out[:nbytes])


def counted(entries, counts):
    """Passes (TarInfo, src) through, counting regular files into counts["files"]."""
    for ti, src in entries:
        if ti.type == tarfile.REGTYPE:
            counts["files"] += 1
        yield ti, src


def layer(L, blobs_dir, entries, level):
    counts = {"files": 0}
    info = L.write_layer(blobs_dir, counted(entries, counts), level)
    info["files"] = counts["files"]
    return info


def extract_plain(debs, root):
    """dpkg-deb -x every package into root. For the layers above the base, which must not
    replace its merged-/usr symlinks (bin -> usr/bin, ...) with directories."""
    os.makedirs(root, exist_ok=True)
    for d in debs:
        subprocess.run(["dpkg-deb", "-x", d, root], check=True)
    for top in ("bin", "sbin", "lib", "lib64"):
        if os.path.lexists(os.path.join(root, top)):
            sys.exit(f"{top}/ in a layer above the base would replace the base's symlink: {debs}")


def kernel_layer(L, cache, work, level):
    """The linux-source layer, built once into CACHE/layers/<deb>-gz<level>/ and reused."""
    deb = L.fetch_debs([KERNEL_PIN], os.path.join(cache, "debs"))[0]
    key = os.path.basename(deb)[:-len(".deb")] + f"-gz{level}"
    done = os.path.join(cache, "layers", key)
    meta = os.path.join(done, "layer.json")
    if os.path.exists(meta):
        with open(meta) as f:
            info = json.load(f)
        L.log(f"kernel layer from the cache: {done}")
        return info, os.path.join(done, "blobs", "sha256")
    root = os.path.join(work, "kernel")
    extract_plain([deb], root)
    src = os.path.join(root, "usr", "src")
    (xz,) = [n for n in os.listdir(src) if n.endswith(".tar.xz")]
    L.log(f"extracting {xz}")
    subprocess.run(["tar", "-xJf", os.path.join(src, xz), "-C", src], check=True)
    os.unlink(os.path.join(src, xz))
    building = L.fresh_dir(done + ".tmp")
    blobs = os.path.join(building, "blobs", "sha256")
    info = layer(L, blobs, L.tree_entries(root, mtime_mode="clamp", epoch=E1), level)
    with open(os.path.join(building, "layer.json"), "w") as f:
        json.dump(info, f, indent=1)
    if os.path.exists(done):
        shutil.rmtree(done)
    os.rename(building, done)
    shutil.rmtree(root)
    return info, os.path.join(done, "blobs", "sha256")


def link_or_copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.exists(dst):
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def app_entries(version, epoch):
    """/app and a whiteout, after the packages of the app layer."""
    def ti(name, typ=tarfile.REGTYPE, mode=0o644, link=""):
        t = tarfile.TarInfo(name)
        t.type, t.mode, t.mtime, t.linkname = typ, mode, epoch, link
        t.uid = t.gid = 0
        t.uname = t.gname = "root"
        return t

    model = prng(2 << 20, b"large-model-v1")
    if version == "v2":
        off = (1 << 20) + 4321
        model = model[:off] + prng(100, b"large-insert-v2") + model[off:]
    run = (f"#!/bin/sh\n# app {version}\nexec curl --version\n").encode()
    cfg = json.dumps({"version": version, "model": "/app/model.bin"}, indent=1).encode()
    return [
        (ti("app", tarfile.DIRTYPE, 0o755), None),
        (ti("app/VERSION"), f"{version}\n".encode()),
        (ti("app/config.json"), cfg),
        (ti("app/model.bin"), model),
        (ti("app/run", mode=0o755), run),
        (ti("app/run-hardlink", tarfile.LNKTYPE, 0o755, "app/run"), None),
        (ti("app/current", tarfile.SYMTYPE, 0o777, "run"), None),
        (ti("etc/.wh.issue.net", mode=0), b""),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "cairn-datasets"))
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared", "datasets"),
                    help="directory of ocilib.py")
    ap.add_argument("--level", type=int, default=6, help="gzip level of the layers")
    a = ap.parse_args()

    sys.path.insert(0, os.path.abspath(a.shared))
    import ocilib as L  # noqa: E402

    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    v1, v2 = L.fresh_dir(os.path.join(out, "v1")), L.fresh_dir(os.path.join(out, "v2"))
    work = L.fresh_dir(os.path.join(out, "work"))
    b1, b2 = os.path.join(v1, "blobs/sha256"), os.path.join(v2, "blobs/sha256")
    debs_dir = os.path.join(a.cache, "debs")
    t0 = time.time()

    debs = L.fetch_debs(BASE_PINS, debs_dir)
    base = os.path.join(work, "base")
    L.extract_debs(debs, base)
    L.log("writing the base layer (v1, then v2 re-tarred)")
    base1 = layer(L, b1, L.tree_entries(base, mtime_mode="clamp", epoch=E1), a.level)
    base2 = layer(L, b2, L.tree_entries(base, mtime_mode="fixed", epoch=E2), a.level)
    shutil.rmtree(base)

    kernel, kernel_blobs = kernel_layer(L, a.cache, work, a.level)
    h = kernel["digest"].split(":")[1]
    for bdir in (b1, b2):
        link_or_copy(os.path.join(kernel_blobs, h), os.path.join(bdir, h))

    app, app_debs = {}, {}
    for v, ep, bdir in (("v1", E1, b1), ("v2", E2, b2)):
        app_debs[v] = L.fetch_debs(APP_PINS[v], debs_dir)
        root = os.path.join(work, f"app-{v}")
        extract_plain(app_debs[v], root)
        os.makedirs(os.path.join(root, "etc"), exist_ok=True)  # for the whiteout
        entries = list(L.tree_entries(root, mtime_mode="clamp", epoch=ep)) + app_entries(v, ep)
        app[v] = layer(L, bdir, entries, a.level)
    shutil.rmtree(work)

    hist = ["dpkg-deb -x " + " ".join(p for p, _ in BASE_PINS),
            f"dpkg-deb -x {KERNEL_PIN[0]}={KERNEL_PIN[1]}; tar -xJf usr/src/linux-source-6.1.tar.xz",
            "dpkg-deb -x {app}; COPY app /app (+ whiteout, symlink, hardlink)"]
    images = {}
    for v, ep, layout, base_l in (("v1", E1, v1, base1), ("v2", E2, v2, base2)):
        pins = " ".join(f"{p}={ver}" for p, ver in APP_PINS[v])
        layers = [base_l, kernel, app[v]]
        m = L.write_image(layout, v, layers, ep, [x.replace("{app}", pins) for x in hist],
                          cmd=["/app/run"])
        images[v] = {"layout": layout, "manifest": m,
                     "layers": {"base": base_l, "kernel": kernel, "app": app[v]}}
    summary = {"dataset": "large", "base": [os.path.basename(d) for d in debs],
               "kernel": "=".join(KERNEL_PIN),
               "app": {v: [os.path.basename(d) for d in app_debs[v]] for v in app_debs},
               "images": images}
    with open(os.path.join(out, "layers.json"), "w") as f:
        json.dump(summary, f, indent=1)

    print("| layer | image | digest | gzip MB | tar MB | entries | regular files |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name in ("base", "kernel", "app"):
        for v in ("v1", "v2"):
            l = images[v]["layers"][name]
            same = " (v1's blob)" if v == "v2" and l["digest"] == images["v1"]["layers"][name]["digest"] else ""
            print(f"| {name} | {v} | {l['digest'][7:19]}{same} | {l['size'] / 1e6:.1f} | {l['tar_size'] / 1e6:.1f}"
                  f" | {l['entries']} | {l['files']} |")
    for v in ("v1", "v2"):
        ls = images[v]["layers"].values()
        print(f"{v}: {sum(l['files'] for l in ls)} regular files, {sum(l['entries'] for l in ls)} entries,"
              f" {sum(l['tar_size'] for l in ls) / 1e6:.1f} MB of tar, {sum(l['size'] for l in ls) / 1e6:.1f} MB gzip")
    print(f"layouts: oci:{v1}:v1 oci:{v2}:v2   total build time {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
