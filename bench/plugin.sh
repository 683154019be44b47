#!/usr/bin/env bash
# Full dual-stack pod ADD/DEL: dualstack + dualstack-ipam vs the reference ptp and bridge (both with
# host-local) vs the bare kernel work done by `ip -batch`. Every variant gets its own isolated node
# netns (plugins run there) and pod netns created before timing.
#   sudo bench/plugin.sh
# Knobs (env): N_SERIAL (100), N_PARALLEL (200), PARALLEL (32), N_RSS (10), N_DAD_SERIAL (20),
# N_DAD_PARALLEL (64), ROUNDS (serial phase split in rounds, variants interleaved, 4), N_BOOT (pods
# of the node boot, 110), BOOT_ROUNDS (3), VARIANTS ("floor ours bridge ptp ptpdad"), DUALSTACK_BIN,
# REF_BIN, BENCH_STRICT=1 (exit 1 when a target fails). See bench/README.md.

BENCH_SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$BENCH_SCRIPT")/lib.sh"

export N_SERIAL=${N_SERIAL:-100} N_PARALLEL=${N_PARALLEL:-200} PARALLEL=${PARALLEL:-32}
export N_RSS=${N_RSS:-10} N_DAD_SERIAL=${N_DAD_SERIAL:-20} N_DAD_PARALLEL=${N_DAD_PARALLEL:-64}
export ROUNDS=${ROUNDS:-4} N_BOOT=${N_BOOT:-110} BOOT_ROUNDS=${BOOT_ROUNDS:-3}
VARIANTS=${VARIANTS:-floor ours bridge ptp ptpdad}

HOSTLOCAL_IPAM='"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"'$POD_V4'"}],[{"subnet":"'$POD_V6'"}]],"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]}'

# plugin_cfg <variant> <dataDir>: the network config of a variant.
plugin_cfg() {
  case $1 in
  ours)
    printf '{"cniVersion":"1.0.0","name":"bench","type":"dualstack","ipam":{"type":"dualstack-ipam","dataDir":"%s","node":{"podCIDRs":["%s","%s"]}}}\n' \
      "$2" "$POD_V4" "$POD_V6"
    ;;
  ptp | ptpdad)
    # shellcheck disable=SC2059
    printf '{"cniVersion":"1.0.0","name":"bench","type":"ptp","ipMasq":false,"mtu":1500,'"$HOSTLOCAL_IPAM"'}\n' "$2"
    ;;
  bridge)
    # shellcheck disable=SC2059
    printf '{"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"dsbench0","isGateway":true,"ipMasq":false,"mtu":1500,'"$HOSTLOCAL_IPAM"'}\n' "$2"
    ;;
  esac
}

# plugin_serial <first> <last>: ADD pods first..last one after the other, then DEL them (inner side,
# node netns). Records are appended to $OUT/serial.{add,del}.
plugin_serial() {
  mkdir -p "$OUT/r"
  [[ $DRV_KIND == floor ]] && floor_prepare "$1" "$2"
  wait_idle
  serial add "$1" "$2" "$OUT/serial.add.new"
  validate_adds "$OUT/serial.add.new"
  serial del "$1" "$2" "$OUT/serial.del"
  cat "$OUT/serial.add.new" >>"$OUT/serial.add"
  rm -f "$OUT/serial.add.new"
}

# plugin_parallel <first> <n-rss> <n-parallel>: peak RSS on a sample of ADDs (untimed), then ADD
# n-parallel pods, $PARALLEL at a time, then DEL them the same way.
plugin_parallel() {
  local a=$(($1 + $2))
  mkdir -p "$OUT/r"
  [[ $DRV_KIND == floor ]] && floor_prepare "$1" $((a + $3 - 1))
  (($2 > 0)) && rss_sample "$1" $((a - 1)) "$OUT/rss"
  wait_idle
  parallel add "$a" $((a + $3 - 1)) "$PARALLEL" "$OUT/par.add"
  validate_adds "$OUT/par.add"
  parallel del "$a" $((a + $3 - 1)) "$PARALLEL" "$OUT/par.del"
}

# plugin_boot <first> <n> <round>: a node boot: ADD n pods all at once (n workers), then DEL them
# all at once.
plugin_boot() {
  local last=$(($1 + $2 - 1))
  mkdir -p "$OUT/r"
  [[ $DRV_KIND == floor ]] && floor_prepare "$1" "$last"
  wait_idle
  parallel add "$1" "$last" "$2" "$OUT/boot$3.add"
  validate_adds "$OUT/boot$3.add"
  parallel del "$1" "$last" "$2" "$OUT/boot$3.del"
}

[[ -n ${BENCH_INNER:-} ]] && return 0

# ------------------------------------------------------------------------------------------------
# main (outer side)

bench_init plugin
declare -A S # S[<variant>.<metric>]

# variant_setup <variant>: binary, config, node netns. Sets S[<v>.built].
variant_setup() {
  local v=$1 d="$WORK/$1" kind=cni bin
  case $v in
  ours) bin="$DUALSTACK_BIN/dualstack" ;;
  ptp | ptpdad) bin="$REF_BIN/ptp" ;;
  bridge) bin="$REF_BIN/bridge" ;;
  floor) kind=floor bin=ip ;;
  *) die "unknown variant $v" ;;
  esac
  if [[ $v == ours && (! -x $bin || ! -x $DUALSTACK_BIN/dualstack-ipam) ]]; then
    S[$v.built]=0
    log "plugin: ours: not built in $DUALSTACK_BIN, skipped"
    return
  fi
  [[ $kind == floor || -x $bin ]] || die "$bin not found"
  S[$v.built]=1 S[$v.kind]=$kind S[$v.bin]=$bin
  mkdir -p "$d/data"
  plugin_cfg "$v" "$d/data" >"$d/cfg.json"
  node_create "$PREFIX-$v-node"
}

# variant_run <variant> <first-pod> <last-pod> <function> [args...]: create the pod netns, run a
# measuring function in the variant's node netns, delete the pod netns.
variant_run() {
  local v=$1 first=$2 last=$3 pods="$PREFIX-$1-p" d="$WORK/$1" i
  shift 3
  pods_create "$pods" "$first" "$last"
  # ptp leaves DAD on in the pod and waits for it; the "ptp" row turns it off beforehand in every
  # pod netns (as a runtime tuning pod sysctls would), "ptpdad" measures ptp as shipped.
  [[ $v == ptp ]] && pods_sysctl "$pods" "$first" "$last" net/ipv6/conf/default/accept_dad 0
  OUT=$d DRV_KIND=${S[$v.kind]} DRV_BIN=${S[$v.bin]} DRV_CFG="$d/cfg.json" DRV_NETNS='' \
    POD_PREFIX=$pods CID_PREFIX="$PREFIX-$v-" ERRF="$d/stderr" in_node "$PREFIX-$v-node" "$@" ||
    die "$v: measuring process failed"
  for ((i = first; i <= last; i++)); do echo "netns del $pods$i"; done | ip -force -batch - >/dev/null 2>&1
  return 0
}

# variant_stats <variant>
variant_stats() {
  local v=$1 d="$WORK/$1" f fails=0 calls=0
  S[$v.add50]=$(stat_lat "$d/serial.add" 0.5)
  S[$v.add90]=$(stat_lat "$d/serial.add" 0.9)
  S[$v.del50]=$(stat_lat "$d/serial.del" 0.5)
  S[$v.del90]=$(stat_lat "$d/serial.del" 0.9)
  S[$v.padd50]=$(stat_lat "$d/par.add" 0.5)
  S[$v.prate]=$(stat_rate "$d/par.add")
  S[$v.pdrate]=$(stat_rate "$d/par.del")
  S[$v.rss]=$(stat_rss "$d/rss")
  local r walls=() awalls=() dwalls=() cpu=0 bootfails=0
  for ((r = 1; r <= BOOT_ROUNDS; r++)); do
    [[ -s $d/boot$r.add ]] || continue
    local a e
    a=$(stat_wall "$d/boot$r.add") e=$(stat_wall "$d/boot$r.del")
    awalls+=("$a") dwalls+=("$e") walls+=($((a + e)))
    a=$(stat_cpu "$d/boot$r.add") e=$(stat_cpu "$d/boot$r.del")
    cpu=$((cpu + ${a:-0} + ${e:-0}))
    bootfails=$((bootfails + $(stat_fail "$d/boot$r.add") + $(stat_fail "$d/boot$r.del")))
  done
  if ((${#walls[@]} > 0 && bootfails == 0)); then
    S[$v.bwall]=$(median "${walls[@]}") S[$v.bawall]=$(median "${awalls[@]}")
    S[$v.bdwall]=$(median "${dwalls[@]}")
    S[$v.bcpu]=$((cpu / (${#walls[@]} * N_BOOT)))
  fi
  for f in serial.add serial.del par.add par.del; do
    fails=$((fails + $(stat_fail "$d/$f")))
    calls=$((calls + $(stat_count "$d/$f")))
  done
  for ((r = 1; r <= BOOT_ROUNDS; r++)); do
    for f in boot$r.add boot$r.del; do
      fails=$((fails + $(stat_fail "$d/$f")))
      calls=$((calls + $(stat_count "$d/$f")))
    done
  done
  if [[ -s $d/rss ]]; then
    fails=$((fails + $(stat_rss_fail "$d/rss")))
    calls=$((calls + $(stat_count "$d/rss")))
  fi
  # a failed call makes a parallel wall time meaningless
  (($(stat_fail "$d/par.add") == 0)) || S[$v.prate]=
  (($(stat_fail "$d/par.del") == 0)) || S[$v.pdrate]=
  S[$v.fails]=$fails S[$v.calls]=$calls
  if ((fails > 0)); then
    log "$v: $fails of $calls calls failed"
    errors_excerpt "$d/stderr"
  fi
}

((ROUNDS >= 1)) || die "ROUNDS must be >= 1"
# median <numbers...>
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
run=()
for v in $VARIANTS; do
  variant_setup "$v"
  [[ ${S[$v.built]} == 1 ]] && run+=("$v")
done
nv=${#run[@]}
((nv > 0)) || die "no variant to run"

# Serial phase in ROUNDS rounds, the variants interleaved (rotating order), so that a load spike
# from elsewhere on the machine hits all variants alike.
for ((r = 0; r < ROUNDS; r++)); do
  for ((k = 0; k < nv; k++)); do
    v=${run[$(((k + r) % nv))]}
    n=$N_SERIAL
    [[ $v == ptpdad ]] && n=$N_DAD_SERIAL
    first=$((r * n / ROUNDS + 1)) last=$(((r + 1) * n / ROUNDS))
    ((last >= first)) || continue
    log "plugin: round $((r + 1))/$ROUNDS: $v serial pods $first..$last"
    variant_run "$v" "$first" "$last" plugin_serial "$first" "$last"
  done
done
# Parallel phase (and the RSS sample), one variant after the other.
for v in "${run[@]}"; do
  n=$N_PARALLEL nr=$N_RSS
  [[ $v == ptpdad ]] && n=$N_DAD_PARALLEL nr=0
  first=$((N_SERIAL + 1))
  log "plugin: $v: $n pods, $PARALLEL at a time"
  variant_run "$v" "$first" $((first + nr + n - 1)) plugin_parallel "$first" "$nr" "$n"
done
# Node boot: N_BOOT pods at once, BOOT_ROUNDS times, the variants taking turns (ptp as shipped
# is left out: its DAD wait says nothing new here).
boot_first=$((N_SERIAL + N_RSS + N_PARALLEL + 1))
for ((r = 1; r <= BOOT_ROUNDS; r++)); do
  for ((k = 0; k < nv; k++)); do
    v=${run[$(((k + r) % nv))]}
    [[ $v == ptpdad ]] && continue
    first=$((boot_first + (r - 1) * N_BOOT))
    log "plugin: node boot $r/$BOOT_ROUNDS: $v: $N_BOOT pods at once"
    variant_run "$v" "$first" $((first + N_BOOT - 1)) plugin_boot "$first" "$N_BOOT" "$r"
  done
done
for v in "${run[@]}"; do
  netns_delete_prefix "$PREFIX-$v-"
  variant_stats "$v"
done

declare -A NAME=(
  [ours]="dualstack + dualstack-ipam (ours)"
  [ptp]="ptp + host-local, pod DAD off"
  [ptpdad]="ptp + host-local, as shipped (waits for DAD)"
  [bridge]="bridge + host-local (reference)"
  [floor]="kernel work alone (ip -batch, 2 processes)"
)

row() {
  local v=$1 b=bridge
  [[ -n ${S[$v.built]:-} ]] || return 0
  if [[ ${S[$v.built]} != 1 ]]; then
    echo "| ${NAME[$v]} | n/a (not built) | | | | | | | | | | | | |"
    return
  fi
  local rate=${S[$v.prate]} drate=${S[$v.pdrate]}
  echo "| ${NAME[$v]} | $(fmt_ms "${S[$v.add50]}") | $(fmt_ms "${S[$v.add90]}") |" \
    "$(fmt_ms "${S[$v.del50]}") | $(fmt_ms "${S[$v.del90]}") | ${rate:-—} | ${drate:-—} |" \
    "$(fmt_ms "${S[$v.padd50]}") | $(fmt_mb "${S[$v.rss]}") | ${S[$v.fails]}/${S[$v.calls]} |" \
    "$(ratio "${S[$v.add50]}" "${S[$b.add50]:-}") | $(ratio "${S[$v.add50]}" "${S[floor.add50]:-}") |" \
    "$(ratio "${S[$v.del50]}" "${S[$b.del50]:-}") | $(ratio "$rate" "${S[$b.prate]:-}") |" \
    "$(ratio "${S[$v.rss]}" "${S[$b.rss]:-}") |"
}

echo
echo "### Dual-stack pod ADD/DEL: dualstack vs reference plugins"
echo
echo "$(host_info); serial: $N_SERIAL pods (ptp as shipped: $N_DAD_SERIAL), parallel: $N_PARALLEL pods (ptp as shipped: $N_DAD_PARALLEL), $PARALLEL at a time; RSS: max over $N_RSS ADDs."
echo
echo "| what | ADD p50 | ADD p90 | DEL p50 | DEL p90 | ADD pods/s ∥$PARALLEL | DEL pods/s ∥$PARALLEL | ADD p50 ∥$PARALLEL | peak RSS | failed | ADD p50 ÷ bridge | ADD p50 ÷ floor | DEL p50 ÷ bridge | pods/s ÷ bridge | RSS ÷ bridge |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for v in ours ptp ptpdad bridge floor; do row "$v"; done
load_warning
echo
echo "### Node boot: $N_BOOT pods ADDed at once, then DELeted at once"
echo
echo "Median of $BOOT_ROUNDS rounds (the variants taking turns). CPU per pod: user + system time of the plugin processes and their children (an IPAM plugin), ADD and DEL, divided by the pods; work the kernel defers to its own threads is not in it."
echo
echo "| what | ADD all, wall | DEL all, wall | ADD + DEL, wall | CPU per pod | wall ÷ bridge | CPU ÷ bridge |"
echo "|---|---|---|---|---|---|---|"
for v in ours ptp bridge floor; do
  [[ ${S[$v.built]:-} == 1 ]] || continue
  echo "| ${NAME[$v]} | $(fmt_ms "${S[$v.bawall]:-}") | $(fmt_ms "${S[$v.bdwall]:-}") | $(fmt_ms "${S[$v.bwall]:-}") |" \
    "$(fmt_ms "${S[$v.bcpu]:-}") | $(ratio "${S[$v.bwall]:-}" "${S[bridge.bwall]:-}") | $(ratio "${S[$v.bcpu]:-}" "${S[bridge.bcpu]:-}") |"
done
echo

# min DEL p50 over the reference plugins that ran
refdel=
for v in ptp ptpdad bridge; do
  x=${S[$v.del50]:-}
  [[ -n $x ]] && { [[ -z $refdel ]] || ((x < refdel)); } && refdel=$x
done
CHECK_FAILED=0
if [[ ${S[ours.built]:-} == 1 ]]; then
  check_calls "ours" "${S[ours.fails]}" "${S[ours.calls]}"
  check "ours ADD p50 $(fmt_ms "${S[ours.add50]}") ≤ 0.15 × bridge's $(fmt_ms "${S[bridge.add50]:-}")" \
    "${S[ours.add50]}" "<=" 0.15 "${S[bridge.add50]:-}"
  check "ours ADD p50 $(fmt_ms "${S[ours.add50]}") ≤ 1.5 × kernel floor's $(fmt_ms "${S[floor.add50]:-}")" \
    "${S[ours.add50]}" "<=" 1.5 "${S[floor.add50]:-}"
  check "ours DEL p50 $(fmt_ms "${S[ours.del50]}") ≤ reference's (min of ptp/bridge) $(fmt_ms "$refdel")" \
    "${S[ours.del50]}" "<=" 1 "$refdel"
  check "ours ADD throughput ∥$PARALLEL ${S[ours.prate]:-—} pods/s ≥ 5 × bridge's ${S[bridge.prate]:-—}" \
    "${S[ours.prate]}" ">=" 5 "${S[bridge.prate]:-}"
  check "ours node boot ($N_BOOT pods ADDed, then DELeted, at once) $(fmt_ms "${S[ours.bwall]:-}") ≤ 0.2 × bridge's $(fmt_ms "${S[bridge.bwall]:-}")" \
    "${S[ours.bwall]:-}" "<=" 0.2 "${S[bridge.bwall]:-}"
  check "ours peak RSS $(fmt_mb "${S[ours.rss]}") < bridge's $(fmt_mb "${S[bridge.rss]:-}")" \
    "${S[ours.rss]}" "<=" 0.999 "${S[bridge.rss]:-}"
else
  for t in "ADD p50 ≤ 0.15 × bridge's" "ADD p50 ≤ 1.5 × kernel floor's" "DEL p50 ≤ min(ptp, bridge)" \
    "ADD throughput ∥$PARALLEL ≥ 5 × bridge's" "node boot ≤ 0.2 × bridge's" "peak RSS < bridge's"; do
    echo "- SKIP: ours $t (not built in $DUALSTACK_BIN)"
  done
fi
echo

total_fails=0
for v in $VARIANTS; do total_fails=$((total_fails + ${S[$v.fails]:-0})); done
((total_fails == 0)) || { log "$total_fails calls failed"; exit 2; }
[[ ${BENCH_STRICT:-0} == 1 && $CHECK_FAILED == 1 ]] && exit 1
exit 0
