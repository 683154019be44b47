# shellcheck shell=bash
# Common code of the dualstack-cni benchmarks (bench/ipam.sh, bench/plugin.sh).
#
# Two sides:
#  - the "outer" side runs in the caller's netns and only creates/deletes network namespaces and
#    temp dirs, computes statistics and prints tables;
#  - the "inner" side (run through `in_node`) runs inside an isolated node netns created for this
#    run and does all the measured work: every plugin binary is a child of that process, so its
#    host side is the node netns, never the machine's root netns.
# Timing uses bash's $EPOCHREALTIME (no fork per timestamp); percentiles use sort + awk, so a plain
# Debian 12 box with iproute2 is enough.

set -u -o pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_DIR
export REF_BIN=${REF_BIN:-/usr/lib/cni}
export DUALSTACK_BIN=${DUALSTACK_BIN:-$(cd "$BENCH_DIR/.." && pwd)/build/bin}
export CNI_PATH_ALL="$DUALSTACK_BIN:$REF_BIN"
TIME_BIN=${TIME_BIN:-/usr/bin/time}
export TIME_BIN

# The IPv4 and IPv6 pod ranges used by every configuration.
export POD_V4=10.244.0.0/16 POD_V6=fd00:10:244::/64

BENCH_T0=${BENCH_T0:-$EPOCHREALTIME}
export BENCH_T0
log() {
  local t=${EPOCHREALTIME/./} s=${BENCH_T0/./}
  printf '[%4d.%ds] %s\n' $(((t - s) / 1000000)) $(((t - s) / 100000 % 10)) "$*" >&2
}
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------------------------------------
# Outer side: setup and cleanup.

# bench_init <name>: checks, temp dir, cleanup trap. Sets PREFIX (netns name prefix) and WORK.
bench_init() {
  [[ $EUID -eq 0 ]] || die "must run as root (network namespaces): sudo $0"
  ((BASH_VERSINFO[0] >= 5)) || die "bash >= 5 needed (EPOCHREALTIME)"
  local t
  for t in ip awk sort setsid mkfifo; do
    command -v "$t" >/dev/null || die "missing tool: $t"
  done
  BENCH_LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
  PREFIX="dsbench-$$"
  INNER_PID=
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/dsbench-$1-$$.XXXXXX") || die "mktemp failed"
  export PREFIX WORK
  trap bench_cleanup EXIT
  trap 'log "interrupted"; exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

# Deletes every netns this run created (names start with $PREFIX-), kills the measuring process
# group if it still runs, removes the temp dir. Runs on every exit.
bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n ${INNER_PID:-} ]]; then
    kill -TERM -- "-$INNER_PID" 2>/dev/null
    sleep 0.2
    kill -KILL -- "-$INNER_PID" 2>/dev/null
    wait "$INNER_PID" 2>/dev/null
  fi
  netns_delete_prefix "$PREFIX-"
  [[ -n ${WORK:-} && -d $WORK ]] && rm -rf -- "$WORK"
  exit "$rc"
}

# netns_delete_prefix <prefix>: delete all netns whose name starts with <prefix>.
netns_delete_prefix() {
  local p=$1
  [[ $p == dsbench-* ]] || return 0 # never anything else
  ip netns list 2>/dev/null | awk -v p="$p" 'index($1, p) == 1 { print "netns del " $1 }' |
    ip -force -batch - >/dev/null 2>&1
  return 0
}

# node_create <name>: an isolated node netns with only lo up and no route out.
node_create() {
  ip netns add "$1" || die "cannot create netns $1"
  ip -n "$1" link set lo up || die "cannot set lo up in $1"
}

# pods_create <prefix> <first> <last>: create netns <prefix><i> (one ip process, untimed).
pods_create() {
  local i
  for ((i = $2; i <= $3; i++)); do echo "netns add $1$i"; done | ip -batch - ||
    die "cannot create pod netns $1$2..$1$3"
}

# pods_sysctl <prefix> <first> <last> <path-under-/proc/sys> <value>: set a sysctl in each pod netns
# (untimed setup, e.g. the pod DAD switch for the ptp variant).
pods_sysctl() {
  local i
  for ((i = $2; i <= $3; i++)); do
    ip netns exec "$1$i" sh -c "echo $5 > /proc/sys/$4" || die "sysctl $4 in $1$i"
  done
}

# in_node <node-netns> <function> [args...]: run a function of the calling script ($BENCH_SCRIPT,
# sourced with BENCH_INNER=1 so that it only defines its functions) inside the node netns, as its
# own process group (so cleanup can kill it, and the plugins it runs, by PID).
in_node() {
  local node=$1 rc
  shift
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid ip netns exec "$node" bash -c 'BENCH_INNER=1; source "$0" && inner_guard && "$@"' \
    "$BENCH_SCRIPT" "$@" &
  INNER_PID=$!
  wait "$INNER_PID"
  rc=$?
  INNER_PID=
  return "$rc"
}

# ------------------------------------------------------------------------------------------------
# Inner side: runs inside the node netns.

# Refuse to run anything in the machine's root netns or in a netns with a route out.
inner_guard() {
  local self root
  self=$(readlink /proc/self/ns/net)
  root=$(readlink /proc/1/ns/net)
  [[ -n $self && $self != "$root" ]] || die "refusing to run in the root network namespace"
  [[ -z $(ip -4 route show default) && -z $(ip -6 route show default) ]] ||
    die "node netns has a default route; refusing"
  return 0
}

# The driver: how to ADD/DEL pod <i>. Set by the caller (exported env):
#   DRV_KIND   cni | floor
#   DRV_BIN    plugin binary (cni)
#   DRV_CFG    config file fed on stdin (cni)
#   DRV_NETNS  fixed CNI_NETNS (IPAM-only runs); empty: /run/netns/$POD_PREFIX<i>
#   POD_PREFIX pod netns name prefix;  CID_PREFIX container-ID prefix
#   OUT        directory for outputs and per-call records
#   ERRF       stderr log of the calls

# drv_add <i> [time-prefix...]: one ADD. Result JSON goes to $OUT/r/<i>.add.
drv_add() {
  local i=$1
  shift
  case $DRV_KIND in
  cni)
    CNI_COMMAND=ADD CNI_CONTAINERID="$CID_PREFIX$i" CNI_NETNS="${DRV_NETNS:-/run/netns/$POD_PREFIX$i}" \
      CNI_IFNAME=eth0 CNI_PATH="$CNI_PATH_ALL" "$@" "$DRV_BIN" <"$DRV_CFG" >"$OUT/r/$i.add" 2>>"$ERRF"
    ;;
  floor)
    "$@" ip -batch "$OUT/f/$i.host" 2>>"$ERRF" && "$@" ip -n "$POD_PREFIX$i" -batch "$OUT/f/$i.pod" 2>>"$ERRF"
    ;;
  esac
}

# drv_del <i>: one DEL.
drv_del() {
  local i=$1
  shift
  case $DRV_KIND in
  cni)
    CNI_COMMAND=DEL CNI_CONTAINERID="$CID_PREFIX$i" CNI_NETNS="${DRV_NETNS:-/run/netns/$POD_PREFIX$i}" \
      CNI_IFNAME=eth0 CNI_PATH="$CNI_PATH_ALL" "$@" "$DRV_BIN" <"$DRV_CFG" >"$OUT/r/$i.del" 2>>"$ERRF"
    ;;
  floor)
    "$@" ip link del "vf$i" 2>>"$ERRF"
    ;;
  esac
}

# floor_prepare <first> <last>: the ip -batch files of the kernel-work floor (untimed).
floor_prepare() {
  local i n v4 v6
  mkdir -p "$OUT/f"
  for ((i = $1; i <= $2; i++)); do
    # pod i gets what host-local would hand out: gateway .1, pods from .2
    n=$((i + 1))
    v4="10.244.$((n >> 8)).$((n & 255))"
    printf -v v6 'fd00:10:244::%x' "$n"
    cat >"$OUT/f/$i.host" <<EOF
link add vf$i mtu 1500 type veth peer name eth0 netns $POD_PREFIX$i
addr add 10.244.0.1/32 dev vf$i
addr add fd00:10:244::1/128 dev vf$i nodad
link set vf$i up
route add $v4/32 dev vf$i
route add $v6/128 dev vf$i
EOF
    cat >"$OUT/f/$i.pod" <<EOF
addr add $v4/16 dev eth0
addr add $v6/64 dev eth0 nodad
link set eth0 up
link set lo up
route add 10.244.0.1/32 dev eth0 scope link
route add default via 10.244.0.1 dev eth0
route add fd00:10:244::1/128 dev eth0
route add ::/0 via fd00:10:244::1 dev eth0
EOF
  done
}

# Per-call records: "<i> <start-us> <end-us> <exit-status>", one line per call.

# serial <verb> <first> <last> <records-file>
serial() {
  local verb=$1 i t0 t1 rc
  exec {rfd}>>"$4"
  for ((i = $2; i <= $3; i++)); do
    t0=$EPOCHREALTIME
    "drv_$verb" "$i"
    rc=$?
    t1=$EPOCHREALTIME
    echo "$i ${t0/./} ${t1/./} $rc" >&"$rfd"
  done
  exec {rfd}>&-
}

# add_del <first> <last> <records-file>: ADD pod i, then DEL it at once (DEL records go to
# <records-file>.del), so that every measured ADD sees the same number of existing allocations.
add_del() {
  local i t0 t1 rc
  exec {rfd}>>"$3" {dfd}>>"$3.del"
  for ((i = $1; i <= $2; i++)); do
    t0=$EPOCHREALTIME
    drv_add "$i"
    rc=$?
    t1=$EPOCHREALTIME
    echo "$i ${t0/./} ${t1/./} $rc" >&"$rfd"
    t0=$EPOCHREALTIME
    drv_del "$i"
    rc=$?
    t1=$EPOCHREALTIME
    echo "$i ${t0/./} ${t1/./} $rc" >&"$dfd"
  done
  exec {rfd}>&- {dfd}>&-
}

# parallel <verb> <first> <last> <workers> <records-file>: <workers> processes, worker w doing
# pods first+w, first+w+workers, ... serially; all start together on a barrier (a FIFO), so the
# wall time (written to <records-file>.wall as "<start-us>") excludes forking the workers. The CPU
# time (user + system) of the plugin processes the workers ran, and of their children (an IPAM
# plugin), is appended to <records-file>.cpu in microseconds: each worker's `times` (a builtin,
# no fork) reports what its waited-for children used, so the workers' own loops are not counted.
parallel() {
  local verb=$1 first=$2 last=$3 workers=$4 rec=$5 w i t0 t1 rc fifo release=
  local -a pids=()
  fifo="$OUT/barrier.$BASHPID"
  mkfifo "$fifo" || return 1
  exec {bfd}<>"$fifo"
  for ((w = 0; w < workers && first + w <= last; w++)); do
    (
      exec {rfd}>"$rec.w$w"
      read -r -u "$bfd" _
      for ((i = first + w; i <= last; i += workers)); do
        t0=$EPOCHREALTIME
        "drv_$verb" "$i"
        rc=$?
        t1=$EPOCHREALTIME
        echo "$i ${t0/./} ${t1/./} $rc" >&"$rfd"
      done
      times >"$rec.t$w"
    ) &
    pids+=($!)
    release+=$'\n'
  done
  sleep 0.3 # let every worker reach the barrier
  t0=$EPOCHREALTIME
  printf '%s' "$release" >&"$bfd"
  wait "${pids[@]}"
  exec {bfd}>&-
  rm -f "$fifo"
  cat "$rec".w* >>"$rec"
  # `times` prints "<user> <sys>" of the shell, then of its children, as "<m>m<s.sss>s".
  awk 'FNR == 2 { for (f = 1; f <= 2; f++) { split($f, t, /[ms]/); us += (t[1] * 60 + t[2]) * 1e6 } }
    END { printf "%.0f\n", us }' "$rec".t* >>"$rec.cpu"
  rm -f "$rec".w* "$rec".t*
  echo "${t0/./}" >"$rec.wall"
}

# rss_sample <first> <last> <file>: ADD (recording the peak RSS of the processes of the call via
# /usr/bin/time) then DEL each pod; untimed. One line per ADD in <file>: "<max-KiB> <exit-status>".
rss_sample() {
  local i rc tmp="$OUT/rss.tmp"
  [[ -x $TIME_BIN ]] || return 0
  for ((i = $1; i <= $2; i++)); do
    : >"$tmp"
    drv_add "$i" "$TIME_BIN" -a -f %M -o "$tmp"
    rc=$?
    awk -v rc="$rc" '$1 ~ /^[0-9]+$/ && $1 > m { m = $1 } END { print m + 0, rc }' "$tmp" >>"$3"
    drv_del "$i"
  done
  rm -f "$tmp"
}

# validate_adds <records-file>: a successful ADD must have returned both families (cni driver);
# a bad result is turned into exit status 99 ("bad result") in the records.
validate_adds() {
  [[ $DRV_KIND == cni ]] || return 0
  local i t0 t1 rc out tmp="$1.tmp"
  while read -r i t0 t1 rc; do
    if ((rc == 0)); then
      out=$(<"$OUT/r/$i.add")
      [[ $out == *'"10.244.'* && $out == *'"fd00:10:244:'* ]] || {
        rc=99
        echo "ADD $i: result lacks an address family: $out" >>"$ERRF"
      }
    fi
    echo "$i $t0 $t1 $rc"
  done <"$1" >"$tmp"
  mv "$tmp" "$1"
}

# ------------------------------------------------------------------------------------------------
# Statistics (outer side).

# stat_lat <records-file> <q>: q-quantile (nearest rank) of successful calls' latency in us; "" if none.
stat_lat() {
  [[ -s $1 ]] || return 0
  awk '$4 == 0 { print $3 - $2 }' "$1" | sort -n |
    awk -v q="$2" '{ a[NR] = $1 } END { if (NR) { k = int(q * NR); if (k < q * NR) k++; if (k < 1) k = 1; print a[k] } }'
}

# stat_fail <records-file>: number of failed calls.
stat_fail() {
  [[ -s $1 ]] || { echo 0; return; }
  awk '$4 != 0 { n++ } END { print n + 0 }' "$1"
}

# stat_count <records-file>: number of calls.
stat_count() {
  [[ -s $1 ]] || { echo 0; return; }
  awk 'END { print NR }' "$1"
}

# stat_wall <records-file>: us from the barrier release to the last call's end.
stat_wall() {
  [[ -s $1 && -s $1.wall ]] || return 0
  awk -v s="$(<"$1.wall")" '$3 > m { m = $3 } END { print m - s }' "$1"
}

# stat_rate <records-file>: calls per second over the wall time (all calls must have succeeded).
stat_rate() {
  local w n
  w=$(stat_wall "$1")
  n=$(stat_count "$1")
  [[ -n $w && $w -gt 0 ]] || return 0
  awk -v n="$n" -v w="$w" 'BEGIN { printf "%.1f", n / (w / 1e6) }'
}

# stat_cpu <records-file>: CPU time (us) of the plugin processes of a parallel phase, summed over
# the phase's runs (parallel appends one line per run); "" if none was recorded.
stat_cpu() {
  [[ -s $1.cpu ]] || return 0
  awk '{ s += $1 } END { print s }' "$1.cpu"
}

# stat_rss <file>: max peak RSS in KiB over the successful sampled calls.
stat_rss() {
  [[ -s $1 ]] || return 0
  awk '$2 == 0 && $1 > m { m = $1 } END { if (m) print m }' "$1"
}

# stat_rss_fail <file>: number of failed sampled calls.
stat_rss_fail() {
  [[ -s $1 ]] || { echo 0; return; }
  awk '$2 != 0 { n++ } END { print n + 0 }' "$1"
}

# fmt_ms <us>: milliseconds, 2 significant decimals for small values.
fmt_ms() {
  [[ -n ${1:-} ]] || { echo "—"; return; }
  awk -v u="$1" 'BEGIN { m = u / 1000; if (m < 10) printf "%.2f ms", m; else if (m < 100) printf "%.1f ms", m; else printf "%.0f ms", m }'
}

# fmt_mb <KiB>
fmt_mb() {
  [[ -n ${1:-} ]] || { echo "—"; return; }
  awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'
}

# ratio <a> <b>: a/b with 2 decimals, "—" if either is missing.
ratio() {
  [[ -n ${1:-} && -n ${2:-} && ${2:-0} != 0 ]] || { echo "—"; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

# check <label> <lhs> <op> <rhs-factor> <rhs>: prints a PASS/FAIL line for lhs <op> factor*rhs.
# No lhs (ours produced no successful measurement) is a FAIL; no rhs (reference missing) a SKIP.
# Sets CHECK_FAILED=1 on a failure.
# shellcheck disable=SC2034 # CHECK_FAILED is read by the calling script
check() {
  local label=$1 lhs=${2:-} op=$3 f=$4 rhs=${5:-} res
  if [[ -z $lhs ]]; then
    CHECK_FAILED=1
    echo "- FAIL: $label (ours: no successful measurement)"
    return
  fi
  if [[ -z $rhs ]]; then
    echo "- SKIP: $label (reference not measured)"
    return
  fi
  res=$(awk -v a="$lhs" -v b="$rhs" -v f="$f" -v op="$op" \
    'BEGIN { ok = (op == "<=") ? (a <= f * b) : (a >= f * b); print ok ? "PASS" : "FAIL" }')
  [[ $res == PASS ]] || CHECK_FAILED=1
  echo "- $res: $label"
}

# check_calls <label> <failed> <total>: every call of ours must succeed.
# shellcheck disable=SC2034 # CHECK_FAILED is read by the calling script
check_calls() {
  if (($2 == 0)); then
    echo "- PASS: $1: all $3 calls succeeded"
  else
    CHECK_FAILED=1
    echo "- FAIL: $1: $2 of $3 calls failed"
  fi
}

# wait_idle: before a measurement, wait (at most 1 s) until the CPUs are >= 75% idle over 250 ms
# (steal time not counted), so that the kernel's asynchronous netns/device teardown left over by the
# previous phase does not leak into the next one.
wait_idle() {
  local i a b
  for ((i = 0; i < 4; i++)); do
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    sleep 0.25
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); u = y[1] - x[1]; d = y[2] - x[2];
      exit !(u + d > 0 && u / (u + d) < 0.25) }' && return 0
  done
  return 0
}

# host_info: one line about the machine, for the report header.
host_info() {
  echo "$(uname -sr), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), load average at start" \
    "$BENCH_LOAD0, at end $(cut -d' ' -f1-3 /proc/loadavg), run time $(((${EPOCHREALTIME/./} - ${BENCH_T0/./}) / 1000000)) s"
}

# load_warning: a note when something else kept the CPUs busy during the run.
load_warning() {
  awk -v a="$BENCH_LOAD0" -v b="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" 'BEGIN {
    if (a + 0 > n / 2)
      printf "\n**Warning:** load average %s at start on %d CPUs: other work was running, absolute numbers are inflated (ratios within one run remain comparable).\n", a, n }'
}

# errors_excerpt <file>: first lines of a stderr log, for failed calls.
errors_excerpt() {
  [[ -s $1 ]] || return 0
  log "  first stderr lines ($1):"
  head -n 5 "$1" | sed 's/^/    /' >&2
}
