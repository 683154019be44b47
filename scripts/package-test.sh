#!/usr/bin/env bash
# Builds the Debian package from a release build, installs it with apt-get, attaches one pod with
# the INSTALLED plugins (ADD, CHECK, pings on both families, DEL, store empty) inside network
# namespaces created here (the node's has no route out), then removes the package and checks that
# its files are gone. Run as root from a checkout; DUALSTACK_BUILD_DIR picks the build directory
# (default build/, as scripts/setup.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${DUALSTACK_BUILD_DIR:-build}

if [[ $(id -u) -ne 0 ]]; then
  echo "package-test: SKIPPED: needs root (apt-get and network namespaces)" >&2
  exit 0
fi
if ! grep -q '^DUALSTACK_SANITIZE:BOOL=OFF' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "package-test: $build is not a release build (run scripts/setup.sh)" >&2
  exit 1
fi
# Installing and removing the package must not clobber a dualstack-cni installed otherwise.
if dpkg-query -W -f='${Status}' dualstack-cni 2>/dev/null | grep -q 'ok installed'; then
  echo "package-test: dualstack-cni is installed on this machine already; not touching it" >&2
  exit 1
fi
for f in /usr/lib/cni/dualstack /usr/lib/cni/dualstack-ipam /usr/sbin/dualstack-install; do
  if [[ -e $f ]]; then
    echo "package-test: $f exists (installed by hand?); not touching it" >&2
    exit 1
  fi
done

p=dspkg$$
node=$p-node
pod=$p-pod
tmp=$(mktemp -d "/tmp/$p.XXXXXX")
installed=0
cleanup() {
  local rc=$?
  ip netns del "$pod" 2>/dev/null || true
  ip netns del "$node" 2>/dev/null || true
  rm -rf "$tmp"
  if ((installed)); then
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq dualstack-cni >/dev/null 2>&1 || true
  fi
  ((rc == 0)) || echo "package-test: FAILED" >&2
  exit $rc
}
trap cleanup EXIT
fail() {
  echo "package-test: $*" >&2
  exit 1
}

echo "== package: build"
cmake --build "$build" --target dualstack dualstack-ipam dualstack-install >/dev/null
rm -f "$build"/dualstack-cni_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
debs=("$build"/dualstack-cni_*.deb)
((${#debs[@]} == 1)) && [[ -f ${debs[0]} ]] || fail "cpack made no dualstack-cni_*.deb in $build"
deb=${debs[0]}
arch=$(dpkg --print-architecture)
[[ $(basename "$deb") =~ ^dualstack-cni_[0-9][^_]*_${arch}\.deb$ ]] || fail "unexpected package name $deb"
dpkg -I "$deb"
depends=$(dpkg-deb -f "$deb" Depends)
[[ $depends == *libc6* ]] || fail "Depends lacks libc6: '$depends'"
recommends=$(dpkg-deb -f "$deb" Recommends)
[[ $recommends == *libcurl4* && $recommends == *libnftables1* ]] || fail "Recommends is '$recommends'"

echo "== package: lintian"
# Errors and warnings fail; informational tags are printed.
lintian --info --fail-on error,warning "$deb" || fail "lintian reports problems in $(basename "$deb")"

echo "== package: install $(basename "$deb")"
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(realpath "$deb")" >/dev/null
mapfile -t files < <(dpkg -L dualstack-cni | while read -r f; do [[ -f $f ]] && echo "$f"; done)
for f in /usr/lib/cni/dualstack /usr/lib/cni/dualstack-ipam /usr/sbin/dualstack-install \
         /usr/share/doc/dualstack-cni/examples/10-dualstack.conflist \
         /usr/share/doc/dualstack-cni/examples/kubernetes/daemonset.yaml \
         /usr/share/doc/dualstack-cni/copyright /usr/share/doc/dualstack-cni/changelog.gz \
         /usr/share/man/man8/dualstack.8.gz /usr/share/man/man8/dualstack-ipam.8.gz \
         /usr/share/man/man8/dualstack-install.8.gz; do
  [[ -f $f ]] || fail "$f not installed"
done
[[ -x /usr/lib/cni/dualstack && -x /usr/lib/cni/dualstack-ipam ]] || fail "plugins not executable"
env -u CNI_COMMAND /usr/lib/cni/dualstack --version
env -u CNI_COMMAND /usr/lib/cni/dualstack-ipam --version
zcat /usr/share/man/man8/dualstack.8.gz | grep -q 'CNI_COMMAND' || fail "dualstack.8 lacks the usage text"

echo "== package: a dual-stack pod with the installed plugins"
ip netns add "$node"
ip -n "$node" link set lo up
ip netns add "$pod"
jq --arg d "$tmp/store" '.plugins[0] + {cniVersion, name} | .ipam.dataDir = $d' \
  /usr/share/doc/dualstack-cni/examples/10-dualstack.conflist >"$tmp/conf.json"
cni() {  # cni VERB CONFIG-FILE: the installed plugin, run on the node
  ip netns exec "$node" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND="$1" \
    CNI_CONTAINERID="$p" CNI_NETNS="/run/netns/$pod" CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    /usr/lib/cni/dualstack <"$2"
}
result=$(cni ADD "$tmp/conf.json") || fail "ADD failed: $result"
echo "$result" | jq -c .
v4=$(echo "$result" | jq -r '.ips[].address | select(contains(".")) | split("/")[0]')
v6=$(echo "$result" | jq -r '.ips[].address | select(contains(":")) | split("/")[0]')
[[ -n $v4 && -n $v6 ]] || fail "ADD did not return one IPv4 and one IPv6 address"
jq --argjson r "$result" '. + {prevResult: $r}' "$tmp/conf.json" >"$tmp/prev.json"
cni CHECK "$tmp/prev.json" || fail "CHECK failed"
ip netns exec "$node" ping -c1 -W1 "$v4" >/dev/null || fail "no answer from $v4"
ip netns exec "$node" ping -c1 -W1 "$v6" >/dev/null || fail "no answer from $v6"
echo "ping $v4 and $v6 from the node: ok"
/usr/lib/cni/dualstack-ipam list --data-dir "$tmp/store"
cni DEL "$tmp/prev.json" || fail "DEL failed"
left=$(/usr/lib/cni/dualstack-ipam list --data-dir "$tmp/store" --json | jq length)
((left == 0)) || fail "$left allocations left after DEL"
/usr/lib/cni/dualstack-ipam verify --data-dir "$tmp/store" || fail "the store is inconsistent after DEL"
ip -n "$pod" link show eth0 >/dev/null 2>&1 && fail "the pod still has eth0 after DEL"

echo "== package: remove"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq dualstack-cni >/dev/null
installed=0
((${#files[@]} > 0)) || fail "dpkg -L listed no files"
for f in "${files[@]}"; do
  [[ -e $f ]] && fail "$f is still there after apt-get remove"
done
dpkg-query -W -f='${Status}' dualstack-cni 2>/dev/null | grep -q 'ok installed' &&
  fail "dualstack-cni still installed"
echo "package-test: ok (${#files[@]} files installed and removed)"
