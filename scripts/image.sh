#!/usr/bin/env bash
# Builds the dualstack-cni container image offline, from this repository's build and the Debian
# packages installed on this machine (no registry), loads it into podman and containerd, and
# prints its name (localhost/dualstack-cni:<version>) on stdout.
#
#   scripts/image.sh [--bin-dir DIR] [--output FILE] [--no-load]
#                    [--containerd-address SOCKET] [--containerd-namespace NS]
#
# The image holds the binaries (dualstack, dualstack-ipam in /opt/cni/bin; dualstack-install and,
# when built, dualstack-agent in /usr/sbin), stripped, and exactly the shared libraries they load:
# what ldd lists, plus libcurl (the Kubernetes API) and libnftables (ipMasq, the agent's sets),
# which the binaries dlopen, with everything those need. No shell, no package manager, no CA
# bundle (the cluster CA comes from the service account). Its default user is 65532 (nonroot);
# the DaemonSet runs its containers as root with only the capabilities each one uses.
#
# Reproducible: the layer is a sorted tar with every mtime set to the commit's time, root-owned,
# gzip without a name or time, so the same binaries and packages give the same layer and image
# digests. Without --bin-dir the release build (build/bin) is made or brought up to date first;
# with it, the binaries there are taken as they are. The OCI archive is kept (default
# build/image/dualstack-cni.oci.tar). It is loaded into podman's storage (`podman load`;
# CONTAINERS_STORAGE_CONF is honoured) and into containerd's k8s.io namespace when containerd's
# socket exists (else it says so and skips); --no-load only writes the archive.
set -euo pipefail
umask 022
repo=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=
output="$repo/build/image/dualstack-cni.oci.tar"
load=1
ctr_address=${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}
ctr_namespace=k8s.io

usage() { sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; }
while (($#)); do
  case $1 in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    --no-load) load=0; shift ;;
    --containerd-address) ctr_address=$2; shift 2 ;;
    --containerd-namespace) ctr_namespace=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "image.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "image.sh: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in jq sha256sum tar gzip strip ldd dpkg-query; do
  command -v "$tool" >/dev/null || die "$tool is not installed (run scripts/setup.sh)"
done
# Without --bin-dir the release build is made (or brought up to date) here; a --bin-dir is taken
# as it is.
if [[ -z "$bin_dir" ]]; then
  bin_dir="$repo/build/bin"
  if [[ -f "$repo/build/build.ninja" ]]; then
    cmake --build "$repo/build" -j 2 >&2
  else
    "$repo/scripts/setup.sh" >&2
  fi
fi
for b in dualstack dualstack-ipam dualstack-install; do
  [[ -x "$bin_dir/$b" ]] || die "$bin_dir/$b is not built (run scripts/setup.sh)"
done
version=$("$bin_dir/dualstack-install" --version | awk '{print $2}')
[[ "$version" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "version \"$version\" is not a valid image tag"
name="localhost/dualstack-cni:$version"
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
arch=$(dpkg --print-architecture)

work=$(mktemp -d "${TMPDIR:-/tmp}/dualstack-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{etc,tmp,opt/cni/bin,usr/sbin,usr/lib,usr/lib64,usr/share/doc/dualstack-cni}
chmod 1777 "$root/tmp"
# Debian's merged /usr: the binaries' interpreter is /lib64/ld-linux-x86-64.so.2.
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
ln -s usr/sbin "$root/sbin"

binaries=("$bin_dir/dualstack" "$bin_dir/dualstack-ipam")
strip --strip-unneeded -o "$root/opt/cni/bin/dualstack" "$bin_dir/dualstack"
strip --strip-unneeded -o "$root/opt/cni/bin/dualstack-ipam" "$bin_dir/dualstack-ipam"
entrypoint=/usr/sbin/dualstack-install
for b in dualstack-install dualstack-agent; do
  [[ -x "$bin_dir/$b" ]] || { say "$b is not built: the image has none"; continue; }
  strip --strip-unneeded -o "$root/usr/sbin/$b" "$bin_dir/$b"
  binaries+=("$bin_dir/$b")
  [[ $b == dualstack-agent ]] && entrypoint=/usr/sbin/dualstack-agent
done
chmod 0755 "$root"/opt/cni/bin/* "$root"/usr/sbin/*
cp "$repo/conf/60-dualstack-kubernetes.conflist" "$root/usr/share/doc/dualstack-cni/"

# The libraries: ldd of each binary and of the two dlopen'ed libraries gives the whole closure
# (ldd resolves dependencies of dependencies). Each is copied to the path it has on this
# machine under /usr, with its soname as a symlink when the file name differs.
libs=()
for f in "${binaries[@]}" /lib/"$(gcc -dumpmachine)"/libcurl.so.4 /lib/"$(gcc -dumpmachine)"/libnftables.so.1; do
  [[ -e "$f" ]] || die "$f not found: install libcurl4 and libnftables1"
  libs+=("$f")
  while read -r lib; do libs+=("$lib"); done < <(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
done
declare -A seen=()
copied=()
for lib in "${libs[@]}"; do
  [[ "$lib" == "$bin_dir"/* ]] && continue
  real=$(readlink -f "$lib")
  [[ -n "${seen[$real]:-}" ]] && continue
  seen[$real]=1
  copied+=("$real")
  dest="$root/usr${real#/usr}"
  mkdir -p "$(dirname "$dest")"
  cp "$real" "$dest" # with its mode: the dynamic loader and libc are executable
  base=$(basename "$lib")
  [[ "$base" == "$(basename "$real")" ]] || ln -sf "$(basename "$real")" "$(dirname "$dest")/$base"
done
# Which Debian package each comes from, in one query (dpkg knows the /usr or the / path).
declare -A owner=()
while IFS= read -r line; do
  path=${line#*: }
  owner[/usr${path#/usr}]=${line%%: *}
done < <(for real in "${copied[@]}"; do echo "$real"; echo "${real#/usr}"; done |
  xargs dpkg-query -S 2>/dev/null || true)
packages=()
for real in "${copied[@]}"; do
  [[ -n "${owner[$real]:-}" ]] || die "$real belongs to no Debian package"
  packages+=("${owner[$real]%%:*}")
done
interp=$(readlink -f /lib64/ld-linux-x86-64.so.2)
ln -s "../lib/$(basename "$(dirname "$interp")")/$(basename "$interp")" "$root/usr/lib64/ld-linux-x86-64.so.2"

# The packages the image carries files of, with their versions and copyright notices.
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Package} ${Version}\n' "$p"
  if [[ -f "/usr/share/doc/$p/copyright" ]]; then
    mkdir -p "$root/usr/share/doc/$p"
    cp "/usr/share/doc/$p/copyright" "$root/usr/share/doc/$p/copyright"
  fi
done >"$root/usr/share/doc/dualstack-cni/image-packages"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
# glibc's own files and dns services: a kubeconfig may name the API server by host name.
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

# The layer: sorted, fixed times and owners, gzip without name and time.
oci="$work/oci"
mkdir -p "$oci/blobs/sha256"
tar -C "$root" --sort=name --format=gnu --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 -c "$work/layer.tar" >"$work/layer.tar.gz"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$oci/blobs/sha256/$layer"

# blob FILE: stores FILE under its digest, prints "digest size".
blob() {
  local d
  d=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$oci/blobs/sha256/$d"
  echo "$d $(stat -c %s "$oci/blobs/sha256/$d")"
}

labels=$(jq -cn --arg v "$version" --arg r "$revision" --arg c "$created" '{
  "org.opencontainers.image.title": "dualstack-cni",
  "org.opencontainers.image.description": "dualstack CNI plugin, dualstack-ipam, dualstack-install and the dualstack-agent node agent",
  "org.opencontainers.image.version": $v,
  "org.opencontainers.image.revision": $r,
  "org.opencontainers.image.created": $c}')
jq -cn --arg created "$created" --arg arch "$arch" --arg entry "$entrypoint" \
  --arg diff "sha256:$diff_id" --argjson labels "$labels" '{
  created: $created, architecture: $arch, os: "linux",
  config: {User: "65532:65532", Entrypoint: [$entry],
           Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin:/opt/cni/bin"], Labels: $labels},
  rootfs: {type: "layers", diff_ids: [$diff]},
  history: [{created: $created, created_by: "scripts/image.sh"}]}' >"$work/config.json"
read -r config config_size < <(blob "$work/config.json")
jq -cn --arg c "sha256:$config" --argjson cs "$config_size" --arg l "sha256:$layer" \
  --argjson ls "$layer_size" --argjson labels "$labels" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}],
  annotations: $labels}' >"$work/manifest.json"
read -r manifest manifest_size < <(blob "$work/manifest.json")
# containerd names the image after io.containerd.image.name, podman after ref.name.
jq -cn --arg m "sha256:$manifest" --argjson ms "$manifest_size" --arg name "$name" --arg arch "$arch" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
               platform: {architecture: $arch, os: "linux"},
               annotations: {"io.containerd.image.name": $name,
                             "org.opencontainers.image.ref.name": $name}}]}' >"$oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
mkdir -p "$(dirname "$output")"
tar -C "$oci" --sort=name --format=gnu --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  -cf "$output.tmp" oci-layout index.json blobs
mv "$output.tmp" "$output"

say "$name: layer sha256:$layer ($((layer_size / 1024)) KiB compressed, $(($(stat -c %s "$work/layer.tar") / 1024)) KiB unpacked)"
say "manifest sha256:$manifest, config sha256:$config; archive $output"

if ((load)); then
  if command -v podman >/dev/null; then
    podman load -q -i "$output" >&2
    podman image exists "$name" || die "podman load did not create $name"
    say "loaded into podman"
  else
    say "podman is not installed: not loaded into podman"
  fi
  if [[ -S "$ctr_address" ]]; then
    ctr --address "$ctr_address" -n "$ctr_namespace" images import "$output" >&2
    ctr --address "$ctr_address" -n "$ctr_namespace" images ls -q | grep -qxF "$name" ||
      die "ctr images import did not create $name"
    say "loaded into containerd ($ctr_address, namespace $ctr_namespace)"
  else
    say "containerd is not running at $ctr_address: not loaded into containerd (--containerd-address)"
  fi
fi
echo "$name"
