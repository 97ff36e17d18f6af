#!/usr/bin/env python3
"""Dataset "family": nine images from real Debian 12 packages that share an OS base and runtimes
the way separately built images do, for planning shared bases and dictionaries (issue 17).

Writes one OCI image layout with nine refs, OUT/oci (`oci:OUT/oci:py-api-v1`, ...), and
OUT/family.json: each image's layers (digest, diff_id, sizes, what they hold, their packages)
and the ground truth of what is shared ("sharing": os:debian-a, os:debian-b, os:common,
runtime:python, runtime:java, each with its images and layer digests).

Every image is a stack like a Dockerfile's: FROM an OS base, RUN apt-get install a runtime (one
or two layers), COPY an app. The images were "built separately": a runtime installed by two
images is the same files from the same .debs, but the layer tars differ (each build's own
directory mtimes, or every mtime set to the build time; its own /var/lib/dpkg/status and apt
logs; a different split into layers; an extra package in the same layer), so dedup by layer
digest misses the sharing that file or chunk analysis finds. All layers are "slim" like
debian:bookworm-slim (SLIM_CFG: no docs but copyright files, no man pages, no locales).

  OS bases (one blob each, used as-is by every image built on it, as FROM does):
    debian-a   OS_COMMON (libc6, coreutils, bash, dash, apt, gnutls, ...) + OS_A: perl-base,
               liblzma5, apt, libapt-pkg6.0, libsystemd0, libudev1 at older versions.
    debian-b   OS_COMMON + OS_B: the same six at newer versions, plus ca-certificates (and the
               bundle update-ca-certificates makes), tzdata, openssl, libssl3.
  Runtimes (packages already in the base are not installed again, as apt would skip them, so
  py-cli's runtime has no libssl3: debian-b has it):
    python     PYTHON: python3.11 (minimal, stdlib), python3, readline, sqlite, krb5, libssl3, ...
    java       JAVA_DEPS (nss, freetype, harfbuzz, glib, alsa, ...) + JRE: openjdk-17-jre-headless
               with the /usr/bin/java alternative symlinks (the JRE alone is 193 MB of tar)
  Images (ref: base | runtime layers | app; "clamp": package files keep their mtimes, directories
  and generated files get the build date; "fixed": every mtime is the build date):
    py-api-v1      debian-a | python + python3-yaml in one layer, clamp        | app v1
    py-api-v2      debian-a | the same runtime blob (a build-cache hit)         | app v2
    py-worker-v1   debian-a | python, fixed                                     | app v1
    py-worker-v2   debian-a | python rebuilt, clamp                             | app v2
    py-cli-v1      debian-b | python split: interpreter layer, stdlib layer      | app v1
    java-svc-v1    debian-b | java deps + JRE in one layer, clamp               | app v1
    java-svc-v2    debian-b | the same runtime blob                              | app v2
    java-batch-v1  debian-b | java deps layer (clamp), JRE layer (fixed)        | app v1
    java-batch-v2  debian-b | both rebuilt on a later date                      | app v2
  Apps (/app): a config, a script, a small module or properties file, and a seeded pseudo-random
  blob (py: model.bin, 1-3 MiB; java: a stored .jar of pseudo-random classes, 2-3 MiB). v2
  changes the config and inserts 100 bytes into the blob (into one .jar entry for java).
  Sizes: python images ~91 MB of tar, java images ~276 MB; 898 MB of distinct layer tar in all.

Deterministic: the same digests on every run, given the same packages (ocilib.fetch_debs warns
when a pinned version is gone from the archive and takes the current one; then debian-a and
debian-b may differ in fewer packages). About 88 MB of .debs, downloaded with apt-get into
CACHE/debs; no other network. Needs apt-get (Debian 12 sources), dpkg-deb; run as root. About
2 minutes with the .debs cached, 1 minute with --level 1.

Usage: nice -n 10 python3 benches/scripts/gen_family.py --out DIR [--cache DIR] [--shared DIR]
  --shared  the shared datasets directory holding ocilib.py (default: ../shared/datasets from the
            repository root)
"""
import argparse
import calendar
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pins(text):
    return [tuple(p.split("=", 1)) for p in text.split()]


def deb_pin(path):
    """"pkg=version" of a downloaded .deb (the pinned one, or the fallback fetch_debs took)."""
    pkg, ver, _ = os.path.basename(path).split("_")
    return f"{pkg}={ver.replace('%3a', ':')}"


def day(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%d"))


OS_COMMON = pins("""
base-files=12.4+deb12u15 base-passwd=3.6.1 bash=5.2.15-2+b13 coreutils=9.1-1 dash=0.5.12-2
debianutils=5.7-0.5~deb12u1 diffutils=1:3.8-4 findutils=4.9.0-4 grep=3.8-5 gzip=1.12-1
hostname=3.23+nmu1 sed=4.9-1+deb12u1 tar=1.34+dfsg-1.2+deb12u1 mawk=1.3.4.20200120-3.1
ncurses-base=6.4-4 ncurses-bin=6.4-4 sysvinit-utils=3.06-4 libc6=2.36-9+deb12u14
libc-bin=2.36-9+deb12u14 libgcc-s1=12.2.0-14+deb12u1 gcc-12-base=12.2.0-14+deb12u1
libstdc++6=12.2.0-14+deb12u1 zlib1g=1:1.2.13.dfsg-1 libtinfo6=6.4-4 libcrypt1=1:4.4.33-2
libacl1=2.3.1-3 libattr1=1:2.5.1-4 libselinux1=3.4-1+b6 libpcre2-8-0=10.42-1+deb12u2
libzstd1=1.5.4+dfsg2-5+deb12u1 libbz2-1.0=1.0.8-5+b1 libgmp10=2:6.2.1+dfsg1-1.1
libcap2=1:2.66-4+deb12u3+b1 libffi8=3.4.4-1 gpgv=2.2.40-1.1+deb12u2
debian-archive-keyring=2023.3+deb12u2 libgnutls30=3.7.9-2+deb12u7 libhogweed6=3.8.1-2
libnettle8=3.8.1-2 libidn2-0=2.3.3-1+b1 libp11-kit0=0.24.1-2 libtasn1-6=4.19.0-2+deb12u1
libunistring2=1.0-2 libseccomp2=2.5.4-1+deb12u1 libgcrypt20=1.10.1-3+deb12u1
libgpg-error0=1.46-1 liblz4-1=1.9.4-1 libxxhash0=0.8.1-1
""")
OS_A = pins("""
perl-base=5.36.0-7+deb12u3 liblzma5=5.4.1-1+deb12u1 apt=2.6.1 libapt-pkg6.0=2.6.1
libsystemd0=252.38-1~deb12u1 libudev1=252.38-1~deb12u1
""")
OS_B = pins("""
perl-base=5.36.0-7+deb12u4 liblzma5=5.4.1-1+deb12u2 apt=2.6.2 libapt-pkg6.0=2.6.2
libsystemd0=252.39-1~deb12u2 libudev1=252.39-1~deb12u2 ca-certificates=20250419~deb12u2
tzdata=2026f-0+deb12u1 openssl=3.0.22-1~deb12u2 libssl3=3.0.22-1~deb12u2
""")
PY_INTERP = pins("""
python3.11-minimal=3.11.2-6+deb12u9 libpython3.11-minimal=3.11.2-6+deb12u9
python3-minimal=3.11.2-1+b1 libexpat1=2.5.0-1+deb12u5 libssl3=3.0.22-1~deb12u2
""")
PY_STDLIB = pins("""
libpython3.11-stdlib=3.11.2-6+deb12u9 python3.11=3.11.2-6+deb12u9 python3=3.11.2-1+b1
libpython3-stdlib=3.11.2-1+b1 media-types=10.0.0 libsqlite3-0=3.40.1-2+deb12u2
libreadline8=8.2-1.3 readline-common=8.2-1.3 libncursesw6=6.4-4 libnsl2=1.3.0-2
libtirpc3=1.3.3+ds-1 libtirpc-common=1.3.3+ds-1 libgssapi-krb5-2=1.20.1-2+deb12u5
libkrb5-3=1.20.1-2+deb12u5 libk5crypto3=1.20.1-2+deb12u5 libkrb5support0=1.20.1-2+deb12u5
libcom-err2=1.47.0-2+b2 libkeyutils1=1.6.3-2 libdb5.3=5.3.28+dfsg2-1 libuuid1=2.38.1-5+deb12u3
""")
PYTHON = PY_INTERP + PY_STDLIB
PY_YAML = pins("python3-yaml=6.0-3+b2 libyaml-0-2=0.2.5-1")
JAVA_DEPS = pins("""
java-common=0.74 libnspr4=2:4.35-1 libnss3=2:3.87.1-1+deb12u4 libsqlite3-0=3.40.1-2+deb12u2
liblcms2-2=2.14-2+deb12u1 libjpeg62-turbo=1:2.1.5-2 libfreetype6=2.12.1+dfsg-5+deb12u4
libpng16-16=1.6.39-2+deb12u6 libbrotli1=1.0.9-2+deb12u1 libpcsclite1=1.9.9-2
libasound2=1.2.8-1+b1 libasound2-data=1.2.8-1 libharfbuzz0b=6.0.0+dfsg-3
libglib2.0-0=2.74.6-2+deb12u9 libgraphite2-3=1.3.14-1+deb12u1 libfontconfig1=2.14.1-4
fontconfig-config=2.14.1-4 libmount1=2.38.1-5+deb12u3 libblkid1=2.38.1-5+deb12u3
""")
JRE = pins("openjdk-17-jre-headless=17.0.19+10-1~deb12u2")
JAVA = JAVA_DEPS + JRE
JVM = "/usr/lib/jvm/java-17-openjdk-amd64"

BASES = {"debian-a": (OS_COMMON + OS_A, day("2026-11-02")),
         "debian-b": (OS_COMMON + OS_B, day("2026-11-03"))}


def rt(key, holds, pkgs, mode, date):
    """A runtime layer: built once per key (an image reusing the key gets the same blob)."""
    return {"key": key, "holds": holds, "pins": pkgs, "mode": mode, "epoch": day(date)}


PY_API_RT = rt("py-api@1", ["runtime:python", "pkg:python3-yaml"], PYTHON + PY_YAML, "clamp", "2026-11-09")
JAVA_SVC_RT = rt("java-svc@1", ["runtime:java"], JAVA, "clamp", "2026-11-11")
# ref: (app, version, base, runtime layers, build date of the app layer)
IMAGES = {
    "py-api-v1": ("py-api", "v1", "debian-a", [PY_API_RT], "2026-11-09"),
    "py-api-v2": ("py-api", "v2", "debian-a", [PY_API_RT], "2026-11-23"),
    "py-worker-v1": ("py-worker", "v1", "debian-a",
                     [rt("py-worker@1", ["runtime:python"], PYTHON, "fixed", "2026-11-10")], "2026-11-10"),
    "py-worker-v2": ("py-worker", "v2", "debian-a",
                     [rt("py-worker@2", ["runtime:python"], PYTHON, "clamp", "2026-11-24")], "2026-11-24"),
    "py-cli-v1": ("py-cli", "v1", "debian-b",
                  [rt("py-cli@1a", ["runtime:python"], PY_INTERP, "clamp", "2026-11-16"),
                   rt("py-cli@1b", ["runtime:python"], PY_STDLIB, "clamp", "2026-11-16")], "2026-11-16"),
    "java-svc-v1": ("java-svc", "v1", "debian-b", [JAVA_SVC_RT], "2026-11-11"),
    "java-svc-v2": ("java-svc", "v2", "debian-b", [JAVA_SVC_RT], "2026-11-25"),
    "java-batch-v1": ("java-batch", "v1", "debian-b",
                      [rt("java-batch@1a", ["runtime:java"], JAVA_DEPS, "clamp", "2026-11-12"),
                       rt("java-batch@1b", ["runtime:java"], JRE, "fixed", "2026-11-12")], "2026-11-12"),
    "java-batch-v2": ("java-batch", "v2", "debian-b",
                      [rt("java-batch@2a", ["runtime:java"], JAVA_DEPS, "clamp", "2026-11-26"),
                       rt("java-batch@2b", ["runtime:java"], JRE, "fixed", "2026-11-26")], "2026-11-26"),
}
RUNTIMES = {"runtime:python": PYTHON, "runtime:java": JAVA}


def prng(nbytes, seed):
    out, i = bytearray(), 0
    while len(out) < nbytes:
        out += hashlib.sha256(seed + i.to_bytes(8, "little")).digest()
        i += 1
    return bytes(out[:nbytes])


def insert_100(data, seed):
    off = len(data) // 2 + 4321
    return data[:off] + prng(100, seed) + data[off:]


class Builder:
    def __init__(self, L, out, cache, level):
        self.L, self.level = L, level
        self.layout = L.fresh_dir(os.path.join(out, "oci"))
        self.blobs = os.path.join(self.layout, "blobs", "sha256")
        self.work = L.fresh_dir(os.path.join(out, "work"))
        self.debs_dir = os.path.join(cache, "debs")
        self.control = {}       # .deb path -> its control fields, for dpkg status
        self.contents = {}      # sha256 of a regular file -> size, over all layers written
        self.layers = {}        # runtime layer key -> layer info

    def fetch(self, pin_list):
        return self.L.fetch_debs(pin_list, self.debs_dir)

    def write_layer(self, entries):
        counts = {"files": 0}

        def counted(it):
            for ti, src in it:
                if ti.type == tarfile.REGTYPE:
                    counts["files"] += 1
                    self.record_content(src)
                yield ti, src
        info = self.L.write_layer(self.blobs, counted(entries), self.level)
        info["files"] = counts["files"]
        return info

    def record_content(self, src):
        h = hashlib.sha256()
        if isinstance(src, (bytes, bytearray)):
            h.update(src)
            n = len(src)
        else:
            with open(src, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            n = os.path.getsize(src)
        self.contents[h.hexdigest()] = n

    def dpkg_status(self, debs):
        """/var/lib/dpkg/status as dpkg would leave it with these packages installed."""
        paras = {}
        for d in debs:
            if d not in self.control:
                self.control[d] = subprocess.run(["dpkg-deb", "-f", d], check=True, capture_output=True,
                                                 text=True).stdout
            lines = self.control[d].rstrip("\n").split("\n")
            paras[lines[0]] = "\n".join(lines[:1] + ["Status: install ok installed"] + lines[1:])
        return "\n\n".join(paras[k] for k in sorted(paras)) + "\n"

    def write_text(self, root, rel, text):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    def apt_logs(self, root, pin_list, epoch):
        """What apt-get install leaves behind: its logs, with the build's date."""
        when = time.strftime("%Y-%m-%d  %H:%M:%S", time.gmtime(epoch + 600))
        names = " ".join(f"{p}:amd64 ({v})" for p, v in pin_list)
        self.write_text(root, "var/log/apt/history.log",
                        f"\nStart-Date: {when}\nCommandline: apt-get install -y --no-install-recommends"
                        f" {' '.join(p for p, _ in pin_list)}\nInstall: {names}\nEnd-Date: {when}\n")
        self.write_text(root, "var/log/dpkg.log", "".join(
            f"{when[:10]} {when[12:]} install {p}:amd64 <none> {v}\n" for p, v in pin_list))

    def os_base(self, name):
        pin_list, epoch = BASES[name]
        debs = self.fetch(pin_list)
        root = os.path.join(self.work, name)
        self.L.extract_debs(debs, root)
        slim(root)
        self.write_text(root, "etc/dpkg/dpkg.cfg.d/docker", SLIM_CFG)
        self.write_text(root, "var/lib/dpkg/status", self.dpkg_status(debs))
        certs = os.path.join(root, "usr/share/ca-certificates/mozilla")
        if os.path.isdir(certs):  # what update-ca-certificates generates
            bundle = ""
            for c in sorted(os.listdir(certs)):
                with open(os.path.join(certs, c)) as f:
                    bundle += f.read()
            self.write_text(root, "etc/ssl/certs/ca-certificates.crt", bundle)
        self.L.log(f"writing the OS base {name}")
        info = self.write_layer(self.L.tree_entries(root, mtime_mode="clamp", epoch=epoch))
        shutil.rmtree(root)
        info.update(holds=[f"os:{name}"], packages=[deb_pin(d) for d in debs],
                    created_by=f"ADD {name}-rootfs.tar /")
        return info, debs

    def runtime_layer(self, spec, installed_names, status_debs):
        """apt-get install spec's packages (those not yet installed) into a layer of their own."""
        if spec["key"] in self.layers:
            return self.layers[spec["key"]]
        todo = [(p, v) for p, v in spec["pins"] if p not in installed_names]
        debs = self.fetch(todo)
        root = self.L.fresh_dir(os.path.join(self.work, spec["key"]))
        for d in debs:
            subprocess.run(["dpkg-deb", "-x", d, root], check=True)
        for top in ("bin", "sbin", "lib", "lib64"):  # merged /usr: the base has top -> usr/top
            if os.path.isdir(os.path.join(root, top)):
                self.L._merge_move(os.path.join(root, top), os.path.join(root, "usr", top))
                shutil.rmtree(os.path.join(root, top))
        slim(root)
        if any(p == JRE[0][0] for p, _ in todo):  # update-alternatives
            for d in ("etc/alternatives", "usr/bin"):
                os.makedirs(os.path.join(root, d), exist_ok=True)
            os.symlink(f"{JVM}/bin/java", os.path.join(root, "etc/alternatives/java"))
            os.symlink("/etc/alternatives/java", os.path.join(root, "usr/bin/java"))
        self.write_text(root, "var/lib/dpkg/status", self.dpkg_status(status_debs + debs))
        self.apt_logs(root, todo, spec["epoch"])
        self.L.log(f"writing the runtime layer {spec['key']} ({len(todo)} packages)")
        info = self.write_layer(self.L.tree_entries(root, mtime_mode=spec["mode"], epoch=spec["epoch"]))
        shutil.rmtree(root)
        info.update(holds=spec["holds"], packages=[deb_pin(d) for d in debs], key=spec["key"],
                    mtimes=spec["mode"], created_by="RUN apt-get install -y --no-install-recommends "
                    + " ".join(p for p, _ in todo) + " && rm -rf /var/lib/apt/lists/*")
        self.layers[spec["key"]], info["_debs"] = info, debs
        return info

    def app_layer(self, app, version, epoch):
        info = self.write_layer(app_entries(app, version, epoch))
        info.update(holds=[f"app:{app} {version}"], packages=[], created_by="COPY app /app")
        return info


SLIM_CFG = """# This is the "slim" variant of the Debian base image.
path-exclude /usr/share/doc/*
# we need to keep copyright files for legal reasons
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
"""


def slim(root):
    """What SLIM_CFG (debian:bookworm-slim's /etc/dpkg/dpkg.cfg.d/docker) makes dpkg leave out."""
    share = os.path.join(root, "usr/share")
    for d in ("groff", "info", "linda", "lintian", "locale", "man"):
        if os.path.isdir(os.path.join(share, d)):
            shutil.rmtree(os.path.join(share, d))
            os.mkdir(os.path.join(share, d))
    doc = os.path.join(share, "doc")
    for name in os.listdir(doc) if os.path.isdir(doc) else []:
        p = os.path.join(doc, name)
        if os.path.isdir(p) and not os.path.islink(p):
            for sub in os.listdir(p):
                if sub != "copyright":
                    q = os.path.join(p, sub)
                    shutil.rmtree(q) if os.path.isdir(q) and not os.path.islink(q) else os.unlink(q)
        else:
            os.unlink(p)


def tar_entry(name, epoch, typ=tarfile.REGTYPE, mode=0o644, link=""):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.mtime, t.linkname = typ, mode, epoch, link
    t.uid = t.gid = 0
    t.uname = t.gname = "root"
    return t


def jar(app, version, size):
    """A stored (uncompressed) .jar of pseudo-random classes; v2 changes one class by 100 bytes."""
    buf, n = io.BytesIO(), 24
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        def put(name, data):
            z.writestr(zipfile.ZipInfo(name, (2026, 11, 1, 0, 0, 0)), data)
        put("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nMain-Class: com.example.{app.replace('-', '')}"
            f".Main\nImplementation-Version: {version}\n")
        for i in range(n):
            cls = prng(size // n, f"{app}-class-{i}".encode())
            if version == "v2" and i == n // 2:
                cls = insert_100(cls, f"{app}-v2".encode())
            put(f"com/example/{app.replace('-', '')}/C{i:02d}.class", b"\xca\xfe\xba\xbe" + cls)
    return buf.getvalue()


def app_entries(app, version, epoch):
    """/app of one app version: config, script, a module or properties, and a large blob."""
    size = {"py-api": 2, "py-worker": 3, "py-cli": 1, "java-svc": 2, "java-batch": 3}[app] << 20
    e = lambda n, data, mode=0o644: (tar_entry(n, epoch, mode=mode), data)  # noqa: E731
    cfg = {"app": app, "version": version, "workers": 4 if version == "v1" else 8,
           "log_level": "info", "feature_flags": {"new_cache": version == "v2"}}
    out = [(tar_entry("app", epoch, tarfile.DIRTYPE, 0o755), None),
           e("app/VERSION", f"{version}\n".encode()),
           e("app/config.json", json.dumps(cfg, indent=1, sort_keys=True).encode())]
    if app.startswith("py-"):
        mod = app.replace("-", "_")
        model = prng(size, f"{app}-model".encode())
        if version == "v2":
            model = insert_100(model, f"{app}-v2".encode())
        out += [(tar_entry(f"app/{mod}", epoch, tarfile.DIRTYPE, 0o755), None),
                e(f"app/{mod}/__init__.py", f'__version__ = "{version}"\n'.encode()),
                e(f"app/{mod}/core.py", "".join(f"def handler_{i}(x):\n    return x * {i}\n\n"
                                                for i in range(40 if version == "v1" else 44)).encode()),
                e("app/main.py", f"#!/usr/bin/python3\nimport {mod}.core\nprint('{app}', {mod}.__version__)\n"
                  .encode(), 0o755),
                e("app/model.bin", model)]
    else:
        out += [e("app/application.properties", f"server.port=8080\napp.name={app}\napp.version={version}\n"
                  .encode()),
                e("app/run.sh", f"#!/bin/sh\nexec java -Xmx256m -jar /app/{app}.jar \"$@\"\n".encode(), 0o755),
                e(f"app/{app}.jar", jar(app, version, size))]
    return out


def image_config(app):
    if app.startswith("java-"):
        env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
               f"JAVA_HOME={JVM}"]
        return env, ["/app/run.sh"]
    return None, ["python3", "/app/main.py"]


def write_index(layout, manifests):
    """One index.json naming every image (ocilib.write_image writes one naming only its own)."""
    entries = []
    for ref, digest in manifests:
        size = os.path.getsize(os.path.join(layout, "blobs", "sha256", digest.split(":")[1]))
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                        "size": size, "platform": {"architecture": "amd64", "os": "linux"},
                        "annotations": {"org.opencontainers.image.ref.name": ref}})
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
    with open(os.path.join(layout, "index.json"), "wb") as f:
        f.write(json.dumps(idx, separators=(",", ":")).encode())


def public(layer):
    """A layer's description for family.json: no build time, so the file is the same every run."""
    return {k: v for k, v in layer.items() if not k.startswith("_") and k != "seconds"}


def ground_truth(images, bases):
    """What a plan should find: which images share each OS base and runtime, and in which layers."""
    share = {}
    for name in bases:
        refs = [r for r, im in images.items() if im["base"] == name]
        base = images[refs[0]]["layers"][0]
        share[f"os:{name}"] = {"images": refs, "layer_digests": [base["digest"]], "identical_blobs": True,
                               "packages": base["packages"]}
    a, b = (set(share[f"os:{n}"]["packages"]) for n in ("debian-a", "debian-b"))
    share["os:common"] = {"images": list(images), "packages": sorted(a & b),
                          "note": "debian-a and debian-b hold these packages at the same version; "
                                  "they differ in " + ", ".join(sorted(a ^ b))}
    for what, pin_list in RUNTIMES.items():
        refs = [r for r, im in images.items() if any(what in l["holds"] for l in im["layers"])]
        digests = sorted({l["digest"] for r in refs for l in images[r]["layers"] if what in l["holds"]})
        per_image = [{p for l in images[r]["layers"] if what in l["holds"] for p in l["packages"]} for r in refs]
        share[what] = {"images": refs, "layer_digests": digests, "identical_blobs": len(digests) == 1,
                       "packages": [f"{p}={v}" for p, v in pin_list],
                       "installed_by_every_image": sorted(set.intersection(*per_image)),
                       "note": "the same files from the same .debs in every image, in layers that are "
                               "not byte-identical except where an image reuses another's layer"}
    return share


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

    os.umask(0o022)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    B = Builder(L, out, os.path.abspath(a.cache), a.level)
    bases = {name: B.os_base(name) for name in BASES}

    images, manifests = {}, []
    for ref, (app, version, base, runtime_specs, date) in IMAGES.items():
        base_layer, base_debs = bases[base]
        installed = {p for p, _ in BASES[base][0]}
        status_debs, layers = list(base_debs), [base_layer]
        for spec in runtime_specs:
            l = B.runtime_layer(spec, installed, status_debs)
            installed |= {p.split("=")[0] for p in l["packages"]}
            status_debs += l["_debs"]
            layers.append(l)
        epoch = day(date)
        layers.append(B.app_layer(app, version, epoch))
        env, cmd = image_config(app)
        md = L.write_image(B.layout, ref, layers, epoch, [l["created_by"] for l in layers], cmd=cmd, env=env,
                           labels={"org.opencontainers.image.title": app,
                                   "org.opencontainers.image.version": version})
        manifests.append((ref, md))
        images[ref] = {"app": app, "version": version, "base": base, "manifest": md,
                       "layers": [public(l) for l in layers]}
    write_index(B.layout, manifests)
    shutil.rmtree(B.work)

    family = {"dataset": "family", "layout": "oci", "refs": list(images), "images": images,
              "sharing": ground_truth(images, BASES)}
    with open(os.path.join(out, "family.json"), "w") as f:
        json.dump(family, f, indent=1)
    report(out, images, B.contents, time.time() - t0)


def report(out, images, contents, seconds):
    print("| image | base | layers | tar MB | gzip MB | regular files | manifest |")
    print("|---|---|---:|---:|---:|---:|---|")
    for ref, im in images.items():
        ls = im["layers"]
        print(f"| {ref} | {im['base']} | {len(ls)} | {sum(l['tar_size'] for l in ls) / 1e6:.1f}"
              f" | {sum(l['size'] for l in ls) / 1e6:.1f} | {sum(l['files'] for l in ls)} | {im['manifest'][7:19]} |")
    print("\n| layer | holds | images | tar MB | gzip MB | entries | regular files |")
    print("|---|---|---|---:|---:|---:|---:|")
    seen = {}
    for ref, im in images.items():
        for l in im["layers"]:
            seen.setdefault(l["digest"], (l, []))[1].append(ref)
    for d, (l, refs) in seen.items():
        print(f"| {d[7:19]} | {', '.join(l['holds'])}{' (' + l['mtimes'] + ')' if 'mtimes' in l else ''}"
              f" | {', '.join(refs)} | {l['tar_size'] / 1e6:.1f} | {l['size'] / 1e6:.1f} | {l['entries']}"
              f" | {l['files']} |")
    all_tar = sum(l["tar_size"] for im in images.values() for l in im["layers"])
    uniq_tar = sum(l["tar_size"] for l, _ in seen.values())
    uniq_gz = sum(l["size"] for l, _ in seen.values())
    print(f"\n{len(images)} images: {all_tar / 1e6:.1f} MB of tar in all; distinct layers {len(seen)}:"
          f" {uniq_tar / 1e6:.1f} MB of tar, {uniq_gz / 1e6:.1f} MB gzip; distinct file contents"
          f" {len(contents)}: {sum(contents.values()) / 1e6:.1f} MB")
    print(f"layout: oci:{out}/oci:REF   total build time {seconds:.0f}s")


if __name__ == "__main__":
    main()
