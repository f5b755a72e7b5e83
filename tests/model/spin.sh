#!/usr/bin/env bash
# Model-checks the node-loss protocol (docs/model/edgewarden.pml) with spin:
#   1. the protocol as documented: exhaustive search, no assertion violated
#      ("errors: 0", search complete);
#   2. -DNO_FENCE_WAIT (the remediator does not wait for the fencing
#      deadline): spin must find two nodes running SQL (a counterexample trail);
#   3. -DCLAIM_NO_FAILOVER: spin must refute "failover never happens", so the
#      first result is not safety by never failing over;
#   4. the model's findings whose fixes are built (docs/model/README.md): each
#      finding's flag alone must give a violation, and with its fix's flag the
#      search must complete with no error. Finding 1 (-DSTALE_PEERS, fixed by
#      -DLEADER_IN_PEERS: edgewarden.io/peers) is the big one: about 2 min and
#      3.4 GB with -DCOLLAPSE.
# One line per result. Usage: spin.sh [MODEL]; MODEL defaults to the one in the
# source tree. Needs spin and gcc (scripts/bootstrap installs both).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
model=$(realpath "${1:-$here/../../docs/model/edgewarden.pml}")

command -v spin >/dev/null || { echo "model-spin: spin is not installed (apt-get install spin; scripts/bootstrap installs it)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "model-spin: gcc is not installed" >&2; exit 1; }
[ -f "$model" ] || { echo "model-spin: no model at $model" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# check NAME SPIN-FLAGS...: generate, compile and run one verifier in its own
# directory; leaves its output in $work/NAME/pan.out.
check() {
  local name=$1; shift
  local dir=$work/$name
  mkdir -p "$dir"
  cp "$model" "$dir/edgewarden.pml"
  (cd "$dir" && spin -a "$@" edgewarden.pml >spin.out 2>&1) || {
    cat "$dir/spin.out"; echo "model-spin: $name: spin -a failed" >&2; exit 1; }
  # -DSAFETY: assertions only (the property is an assert); MEMLIM in MB keeps
  # a runaway state space from taking the machine's memory (the safe run
  # needs about 350 MB).
  # CCFLAGS and PANFLAGS (environment of the call) for the big searches.
  (cd "$dir" && gcc -O2 -DSAFETY ${CCFLAGS:--DMEMLIM=3072} -o pan pan.c >gcc.out 2>&1) || {
    cat "$dir/gcc.out"; echo "model-spin: $name: gcc failed" >&2; exit 1; }
  # -m: a search depth that the safe run never reaches (it needs about 16000).
  (cd "$dir" && ./pan ${PANFLAGS:--m1000000} >pan.out 2>&1) || true
}

field() { # NAME REGEX: the first match of an extended regex in NAME's output
  grep -Eo "$2" "$work/$1/pan.out" | head -n 1 || true
}

summary() { # NAME: "N states, depth N, T s"
  local states depth secs
  states=$(field "$1" '[0-9]+ states, stored' | awk '{print $1}')
  depth=$(field "$1" 'depth reached [0-9]+' | awk '{print $3}')
  secs=$(field "$1" 'elapsed time [0-9.e+]+' | awk '{print $3}')
  echo "${states:-?} states, depth ${depth:-?}, ${secs:-?} s"
}

errors() { field "$1" 'errors: [0-9]+' | awk '{print $2}'; }

fail=0

# must_hold LABEL NAME FLAGS...: a complete search with no error; on failure
# the pan output and the end of the counterexample.
must_hold() {
  local label=$1 name=$2 e
  shift
  check "$@"
  e=$(errors "$name")
  if [ "$e" = 0 ] && ! grep -Eq 'Search not completed|max search depth too small|out of memory' "$work/$name/pan.out"; then
    echo "model-spin: $label: errors: 0, search complete ($(summary "$name"))"
    return
  fi
  cat "$work/$name/pan.out"
  if [ -f "$work/$name/edgewarden.pml.trail" ]; then
    echo "model-spin: the end of the counterexample (spin -t):"
    (cd "$work/$name" && spin -t "${@:2}" edgewarden.pml | grep -v '^#processes' | tail -n 60) || true
  fi
  echo "model-spin: $label: FAILED (errors: ${e:-?}, or the search did not complete; see above)"
  fail=1
}

# must_break LABEL NAME VARIABLE FLAGS...: spin violates assert(!VARIABLE)
# and writes a trail: sql0 for two nodes running SQL, sql1 for the claim
# that failover never happens.
must_break() {
  local label=$1 name=$2 var=$3 e
  shift 3
  check "$name" "$@"
  e=$(errors "$name")
  if [ "${e:-0}" -gt 0 ] && [ -f "$work/$name/edgewarden.pml.trail" ] &&
     grep -q "assertion violated.*$var" "$work/$name/pan.out"; then
    echo "model-spin: $label: errors: $e, assert(!$var) violated, trail written ($(summary "$name"))"
  else
    cat "$work/$name/pan.out"
    echo "model-spin: $label: FAILED: spin found no violation of assert(!$var)"
    fail=1
  fi
}

must_hold "protocol as documented" safe
must_break "NO_FENCE_WAIT (two nodes run SQL)" no-fence-wait sql0 -DNO_FENCE_WAIT
must_break "CLAIM_NO_FAILOVER (failover is reachable)" claim-no-failover sql1 -DCLAIM_NO_FAILOVER

# The findings whose fixes are built: the finding alone breaks safety, the
# fix restores it (the fixes' searches are big: -DCOLLAPSE, more memory).
big() { CCFLAGS="-DCOLLAPSE -DMEMLIM=14000" PANFLAGS="-m3000000 -w27" "$@"; }
# 1: a remediator the fencing node does not ask (edgewarden.io/peers).
must_break "finding 1, -DSTALE_PEERS" stale-peers sql0 -DSTALE_PEERS
big must_hold "finding 1 fixed, -DSTALE_PEERS -DLEADER_IN_PEERS" stale-peers-fixed -DSTALE_PEERS -DLEADER_IN_PEERS
# 2: a lagging watch (the fresh read before acting).
must_break "finding 2, -DWATCH_LAG" watch-lag sql0 -DWATCH_LAG
big must_hold "finding 2 fixed, -DWATCH_LAG -DREREAD_BEFORE_ACT" watch-lag-fixed -DWATCH_LAG -DREREAD_BEFORE_ACT
# 4: a clean stop that disarmed before unfencing was acknowledged.
must_break "finding 4, -DAGENT_RESTART" agent-restart sql0 -DAGENT_RESTART
big must_hold "finding 4 fixed, -DAGENT_RESTART -DFENCED_FALSE_FIRST" agent-restart-fixed -DAGENT_RESTART -DFENCED_FALSE_FIRST

exit $fail
