//! The examples each command's `--help` ends with (clap `after_help`), one const per command.
//! Every line stays within 80 columns: help is wrapped to the terminal, examples are not.

pub const INIT: &str = "Examples:
  cairn init
  cairn --store /srv/cairn init --avg-chunk 32768
  CAIRN_STORE=/srv/cairn cairn init --frame-size 0 --delta off";

pub const CONVERT: &str = "Examples:
  cairn convert oci:py-layout:3.12 --name py:3.12
  cairn convert docker-archive:app.tar --name app:v2 --dict app:v1
  cairn convert layer.tar.zst --name base:v1
  (a registry image: cairn pull REGISTRY/REPO:TAG --name NAME)";

pub const PULL: &str = "Examples:
  cairn pull docker.io/library/python:3.12-slim --name py:3.12
  cairn pull --insecure 127.0.0.1:5000/app:v2 --name app:v2 --dict app:v1
  cairn pull --store-format registry.example.com/app:v2-cairn --name app:v2";

pub const PUSH: &str = "Examples:
  cairn push app:v2 registry.example.com/team/app:v2 --mount-from team/base
  cairn push --store-format app:v2 registry.example.com/team/app:v2-cairn";

pub const IMAGES: &str = "Examples:
  cairn images
  cairn images --json | jq -r '.[].name'";

pub const EXPORT: &str = "Examples:
  cairn export app:v1 oci:out:v1
  cairn export app:v2 oci:out:v2 --compression zstd
  cairn export app:v1 docker-archive:app.tar   # then: docker load -i app.tar
  cairn export app:v1 docker-archive:app.tar --force   # replace app.tar";

pub const EXPORT_LAYER: &str = "Examples:
  cairn export-layer app:v1 0 -o layer0.tar
  cairn export-layer app:v1 2 -o - | tar -tvf -";

pub const CAT: &str = "Examples:
  cairn cat app:v1 /etc/os-release
  cairn cat app:v1 /usr/bin/python3 > python3";

pub const LS: &str = "Examples:
  cairn ls app:v1
  cairn ls --long app:v1 /usr/lib
  cairn ls --json app:v1 /etc";

pub const DIFF: &str = "Examples:
  cairn diff app:v1 app:v2
  cairn diff app:v1 app:v2 --by file --top 20
  cairn diff app:v1 app:v2 --json";

pub const STATS: &str = "Examples:
  cairn stats
  cairn stats app:v1 app:v2 --matrix
  cairn stats --json";

pub const INVENTORY: &str = "Examples:
  cairn inventory
  cairn inventory --format csv > layers.csv
  cairn inventory --format parquet --level chunk -o tables/
  cairn inventory docker://registry.example.com/team/app --all-tags";

pub const PLAN: &str = "Examples:
  cairn plan api:v1 api:v2 worker:v1 batch:v1
  cairn plan api:v1 api:v2 worker:v1 --emit-base 1 oci:bases:os
  cairn plan api:v1 api:v2 --emit-image api:v2 oci:rebuilt:api-v2";

pub const UNPACK: &str = "Examples:
  cairn unpack app:v1 rootfs/
  cairn unpack app:v1 rootfs-1/ --layer 1
  sudo cairn unpack app:v1 /srv/root --xattrs strict";

pub const VERIFY: &str = "Examples:
  cairn verify
  cairn verify --full
  cairn verify --repair-index";

pub const RM: &str = "Examples:
  cairn rm app:v1
  cairn rm app:v1 app:v2 && cairn gc";

pub const GC: &str = "Examples:
  cairn gc --dry-run
  cairn gc
  cairn gc --compact-below 0";

pub const OPTIMIZE: &str = "Examples:
  cairn optimize --dry-run
  cairn optimize --max-seconds 600
  cairn optimize --budget-mb 512 --level 19 --io-idle";

pub const MOUNT: &str = "Examples:
  cairn mount app:v1 /mnt/app && ls /mnt/app
  cairn mount --all /mnt/images
  cairn mount app:v1 /mnt/lower --layer 1 --foreground";

pub const UMOUNT: &str = "Examples:
  cairn umount /mnt/app
  cairn umount --lazy /mnt/lower";

pub const DEMO: &str = "Examples:
  cairn demo
  cairn demo --keep demo/ && ls demo/";

pub const DICT: &str = "Examples:
  cairn dict export --all -o site.dict
  cairn dict build api:v1 worker:v1 --min-images 2 --name runtime-dict";

pub const DICT_EXPORT: &str = "Examples:
  cairn dict export --all -o site.dict
  cairn dict export app:v1 app:v2 -o apps.dict";

pub const DICT_BUILD: &str = "Examples:
  cairn dict build api:v1 worker:v1 cli:v1 --min-images 2 --name runtime-dict
  cairn convert oci:api:v2 --name api:v2 --dict runtime-dict";

pub const BUNDLE: &str = "Examples:
  cairn bundle create app:v2 --have app:v1 -o app-v2.cairn
  cairn bundle inspect app-v2.cairn
  cairn bundle import app-v2.cairn";

pub const BUNDLE_CREATE: &str = "Examples:
  cairn bundle create app:v1 -o app-v1.cairn
  cairn bundle create app:v2 --have app:v1 -o app-v2.cairn
  cairn bundle create app:v3 --since app-v1.cairn --since app-v2.cairn -o - \\
    | ssh site cairn bundle import -";

pub const BUNDLE_IMPORT: &str = "Examples:
  cairn bundle import app-v2.cairn
  ssh hub cairn bundle create app:v2 --have app:v1 -o - | cairn bundle import -";

pub const BUNDLE_INSPECT: &str = "Examples:
  cairn bundle inspect app-v2.cairn
  cairn bundle inspect --json app-v2.cairn";

pub const SNAPSHOTTER: &str = "Examples:
  cairn --store /var/lib/cairn snapshotter --socket /run/cairn/snapshotter.sock
  (then in /etc/containerd/config.toml:
     [proxy_plugins.cairn]
       type = \"snapshot\"
       address = \"/run/cairn/snapshotter.sock\"
   and: ctr image pull --snapshotter cairn REF; ctr run --snapshotter cairn REF ID)";

pub const SNAPSHOTS: &str = "Examples:
  cairn --store /var/lib/cairn snapshots
  cairn snapshots --json | jq -r '.[] | select(.kind == \"active\") | .key'";
