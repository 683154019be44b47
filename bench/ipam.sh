#!/usr/bin/env bash
# IPAM alone: dualstack-ipam vs the reference host-local, same dual-stack ranges, one fresh dataDir
# per plugin and phase in a temp dir. Runs the plugins inside an isolated node netns.
#   sudo bench/ipam.sh
# Knobs (env): N (serial calls, 200), PARALLEL (parallel calls on one store, 64), ROUNDS (repeats of
# the parallel phase, 3), PREFILL (existing allocations, 250), SAMPLES (ADDs measured at 0 and at
# PREFILL allocations, 100), N_RSS (ADDs sampled for peak RSS, 10), DUALSTACK_BIN, REF_BIN,
# BENCH_STRICT=1 (exit 1 when a target fails). See bench/README.md.

BENCH_SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$BENCH_SCRIPT")/lib.sh"

export N=${N:-200} PARALLEL=${PARALLEL:-64} ROUNDS=${ROUNDS:-3} PREFILL=${PREFILL:-250}
export SAMPLES=${SAMPLES:-100} N_RSS=${N_RSS:-10}

# ipam_cfg <type> <dataDir>: the network config for an IPAM-only call.
ipam_cfg() {
  case $1 in
  host-local)
    printf '{"cniVersion":"1.0.0","name":"bench","ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"%s"}],[{"subnet":"%s"}]]}}\n' \
      "$2" "$POD_V4" "$POD_V6"
    ;;
  dualstack-ipam)
    printf '{"cniVersion":"1.0.0","name":"bench","ipam":{"type":"dualstack-ipam","dataDir":"%s","node":{"podCIDRs":["%s","%s"]}}}\n' \
      "$2" "$POD_V4" "$POD_V6"
    ;;
  esac
}

# ipam_phase <name>: a fresh store and config for the next phase (inner side).
# shellcheck disable=SC2034 # DRV_CFG and CID_PREFIX are read by drv_add/drv_del (lib.sh)
ipam_phase() {
  mkdir -p "$OUT/data-$1"
  ipam_cfg "$IPAM_TYPE" "$OUT/data-$1" >"$OUT/cfg-$1.json"
  DRV_CFG="$OUT/cfg-$1.json"
  CID_PREFIX="$PREFIX-$1-"
}

# ipam_inner <phase>: one phase for one plugin ($IPAM_TYPE, binary $DRV_BIN); records under $OUT.
ipam_inner() {
  mkdir -p "$OUT/r"
  case $1 in
  serial) # (a) serial ADD of N containers, then serial DEL of them
    ipam_phase serial
    wait_idle
    serial add 1 "$N" "$OUT/serial.add"
    validate_adds "$OUT/serial.add"
    serial del 1 "$N" "$OUT/serial.del"
    ;;
  par*) # (b) PARALLEL concurrent ADDs on one store, then PARALLEL concurrent DELs
    ipam_phase "$1"
    wait_idle
    parallel add 1 "$PARALLEL" "$PARALLEL" "$OUT/$1.add"
    validate_adds "$OUT/$1.add"
    parallel del 1 "$PARALLEL" "$PARALLEL" "$OUT/$1.del"
    ;;
  fill0) # (c) ADD with 0 existing allocations (each measured ADD is DELeted at once)
    ipam_phase fill0
    wait_idle
    add_del 1 "$SAMPLES" "$OUT/fill0.add"
    validate_adds "$OUT/fill0.add"
    ;;
  fill) # (c) ADD with PREFILL existing allocations
    ipam_phase fill
    serial add 1 "$PREFILL" "$OUT/prefill.add"
    validate_adds "$OUT/prefill.add"
    wait_idle
    add_del $((PREFILL + 1)) $((PREFILL + SAMPLES)) "$OUT/fill.add"
    validate_adds "$OUT/fill.add"
    ;;
  rss) # peak RSS of a sample of ADDs
    ipam_phase rss
    rss_sample 1 "$N_RSS" "$OUT/rss"
    ;;
  esac
}

[[ -n ${BENCH_INNER:-} ]] && return 0

# ------------------------------------------------------------------------------------------------
# main (outer side)

bench_init ipam
NODE="$PREFIX-node"
node_create "$NODE"
export NODE

# median <numbers...>
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

declare -A S # S[<label>.<metric>]
declare -A TYPE=([hl]=host-local [ds]=dualstack-ipam) BIN=([hl]="$REF_BIN/host-local" [ds]="$DUALSTACK_BIN/dualstack-ipam")

# ipam_stats <label>
ipam_stats() {
  local label=$1 d="$WORK/$1" r f fails=0 calls=0 walls=() dwalls=()
  S[$label.add50]=$(stat_lat "$d/serial.add" 0.5)
  S[$label.add90]=$(stat_lat "$d/serial.add" 0.9)
  S[$label.del50]=$(stat_lat "$d/serial.del" 0.5)
  S[$label.del90]=$(stat_lat "$d/serial.del" 0.9)
  for ((r = 1; r <= ROUNDS; r++)); do
    walls+=("$(stat_wall "$d/par$r.add")")
    dwalls+=("$(stat_wall "$d/par$r.del")")
  done
  cat "$d"/par*.add >"$d/par.add.all"
  cat "$d"/par*.del >"$d/par.del.all"
  S[$label.pwall]=$(median "${walls[@]}")
  S[$label.pdwall]=$(median "${dwalls[@]}")
  S[$label.p50]=$(stat_lat "$d/par.add.all" 0.5)
  S[$label.pd50]=$(stat_lat "$d/par.del.all" 0.5)
  S[$label.f0]=$(stat_lat "$d/fill0.add" 0.5)
  S[$label.f250]=$(stat_lat "$d/fill.add" 0.5)
  S[$label.rss]=$(stat_rss "$d/rss")
  for f in serial.add serial.del par.add.all par.del.all fill0.add fill0.add.del prefill.add \
    fill.add fill.add.del; do
    fails=$((fails + $(stat_fail "$d/$f")))
    calls=$((calls + $(stat_count "$d/$f")))
  done
  if [[ -s $d/rss ]]; then
    fails=$((fails + $(stat_rss_fail "$d/rss")))
    calls=$((calls + $(stat_count "$d/rss")))
  fi
  # a failed call makes a parallel wall time meaningless
  (($(stat_fail "$d/par.add.all") == 0)) || S[$label.pwall]=
  (($(stat_fail "$d/par.del.all") == 0)) || S[$label.pdwall]=
  S[$label.fails]=$fails
  S[$label.calls]=$calls
  if ((fails > 0)); then
    log "$label: $fails of $calls calls failed"
    errors_excerpt "$d/stderr"
  fi
}

run=()
for l in hl ds; do
  if [[ -x ${BIN[$l]} ]]; then
    S[$l.built]=1
    run+=("$l")
    mkdir -p "$WORK/$l"
  else
    S[$l.built]=0
    [[ $l == hl ]] && die "${BIN[$l]} not found"
    log "ipam: ${TYPE[$l]} not built in $DUALSTACK_BIN, skipped"
  fi
done
phases=(serial)
for ((r = 1; r <= ROUNDS; r++)); do phases+=("par$r"); done
phases+=(fill0 fill rss)
# The plugins take turns phase by phase (alternating which goes first), so that load from elsewhere
# on the machine hits both alike.
k=0
for ph in "${phases[@]}"; do
  for ((j = 0; j < ${#run[@]}; j++)); do
    l=${run[$(((j + k) % ${#run[@]}))]}
    log "ipam: $ph: ${TYPE[$l]}"
    OUT="$WORK/$l" IPAM_TYPE=${TYPE[$l]} DRV_KIND=cni DRV_BIN=${BIN[$l]} DRV_NETNS="/run/netns/$NODE" \
      ERRF="$WORK/$l/stderr" in_node "$NODE" ipam_inner "$ph" || die "$l: measuring process failed"
  done
  k=$((k + 1))
done
for l in "${run[@]}"; do ipam_stats "$l"; done

row() { # <label> <name>
  local l=$1
  if [[ ${S[$l.built]} != 1 ]]; then
    echo "| $2 | n/a (not built) | | | | | | | | | | | | |"
    return
  fi
  echo "| $2 | $(fmt_ms "${S[$l.add50]}") | $(fmt_ms "${S[$l.add90]}") | $(fmt_ms "${S[$l.del50]}") |" \
    "$(fmt_ms "${S[$l.del90]}") | $(fmt_ms "${S[$l.pwall]}") | $(fmt_ms "${S[$l.p50]}") |" \
    "$(fmt_ms "${S[$l.pdwall]}") | $(fmt_ms "${S[$l.pd50]}") | $(fmt_ms "${S[$l.f0]}") |" \
    "$(fmt_ms "${S[$l.f250]}") | $(ratio "${S[$l.f250]}" "${S[$l.f0]}") | $(fmt_mb "${S[$l.rss]}") |" \
    "${S[$l.fails]}/${S[$l.calls]} |"
}
ratio_row() {
  if [[ ${S[ds.built]} != 1 || ${S[hl.built]} != 1 ]]; then
    echo "| **ours ÷ host-local** | n/a | | | | | | | | | | | | |"
    return
  fi
  local k out="| **ours ÷ host-local** |"
  for k in add50 add90 del50 del90 pwall p50 pdwall pd50 f0 f250; do
    out+=" $(ratio "${S[ds.$k]}" "${S[hl.$k]}") |"
  done
  out+=" | $(ratio "${S[ds.rss]}" "${S[hl.rss]}") | |"
  echo "$out"
}

echo
echo "### IPAM alone: dualstack-ipam vs host-local"
echo
echo "$(host_info); serial N=$N, parallel $PARALLEL × $ROUNDS rounds (median wall), fill $PREFILL, $SAMPLES samples."
echo
echo "| what | ADD p50 | ADD p90 | DEL p50 | DEL p90 | ${PARALLEL}∥ ADD wall | ${PARALLEL}∥ ADD p50 | ${PARALLEL}∥ DEL wall | ${PARALLEL}∥ DEL p50 | ADD p50 @0 | ADD p50 @$PREFILL | @$PREFILL ÷ @0 | peak RSS | failed |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
row hl "host-local (reference)"
row ds "dualstack-ipam (ours)"
ratio_row
load_warning
echo
CHECK_FAILED=0
if [[ ${S[ds.built]} == 1 ]]; then
  check_calls "ours" "${S[ds.fails]}" "${S[ds.calls]}"
  check "${PARALLEL}-parallel ADD wall time: ours $(fmt_ms "${S[ds.pwall]}") ≤ 1/5 × host-local $(fmt_ms "${S[hl.pwall]:-}")" \
    "${S[ds.pwall]}" "<=" 0.2 "${S[hl.pwall]:-}"
  check "ours ADD p50 with $PREFILL allocations $(fmt_ms "${S[ds.f250]}") ≤ 1.2 × ours with 0 $(fmt_ms "${S[ds.f0]}")" \
    "${S[ds.f250]}" "<=" 1.2 "${S[ds.f0]}"
else
  echo "- SKIP: ${PARALLEL}-parallel ADD wall time ≤ 1/5 of host-local's (dualstack-ipam not built in $DUALSTACK_BIN)"
  echo "- SKIP: ADD p50 @$PREFILL ≤ 1.2 × ADD p50 @0 (dualstack-ipam not built in $DUALSTACK_BIN)"
fi
echo

total_fails=$((${S[hl.fails]:-0} + ${S[ds.fails]:-0}))
((total_fails == 0)) || { log "$total_fails calls failed"; exit 2; }
[[ ${BENCH_STRICT:-0} == 1 && $CHECK_FAILED == 1 ]] && exit 1
exit 0
