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

check safe
e=$(errors safe)
if [ "$e" = 0 ] && ! grep -Eq 'Search not completed|max search depth too small|out of memory' "$work/safe/pan.out"; then
  echo "model-spin: protocol as documented: errors: 0, search complete ($(summary safe))"
else
  cat "$work/safe/pan.out"
  if [ -f "$work/safe/edgewarden.pml.trail" ]; then
    echo "model-spin: the end of the counterexample (spin -t):"
    (cd "$work/safe" && spin -t edgewarden.pml | grep -v '^#processes' | tail -n 60) || true
  fi
  echo "model-spin: protocol as documented: FAILED (errors: ${e:-?}; see above)"
  fail=1
fi

check no-fence-wait -DNO_FENCE_WAIT
e=$(errors no-fence-wait)
if [ "${e:-0}" -gt 0 ] && [ -f "$work/no-fence-wait/edgewarden.pml.trail" ] &&
   grep -q 'assertion violated.*sql0' "$work/no-fence-wait/pan.out"; then
  echo "model-spin: NO_FENCE_WAIT: errors: $e, two nodes run SQL, trail written ($(summary no-fence-wait))"
else
  cat "$work/no-fence-wait/pan.out"
  echo "model-spin: NO_FENCE_WAIT: FAILED: spin found no violation without the fencing wait"
  fail=1
fi

check claim-no-failover -DCLAIM_NO_FAILOVER
e=$(errors claim-no-failover)
if [ "${e:-0}" -gt 0 ] && grep -q 'assertion violated.*sql1' "$work/claim-no-failover/pan.out"; then
  echo "model-spin: CLAIM_NO_FAILOVER: errors: $e, failover is reachable ($(summary claim-no-failover))"
else
  cat "$work/claim-no-failover/pan.out"
  echo "model-spin: CLAIM_NO_FAILOVER: FAILED: failover is never reached, the safe result is vacuous"
  fail=1
fi

# must_hold NAME FLAGS...: complete search, no error.
must_hold() {
  local name=$1 e
  check "$@"
  e=$(errors "$name")
  if [ "$e" = 0 ] && ! grep -Eq 'Search not completed|max search depth too small|out of memory' "$work/$name/pan.out"; then
    echo "model-spin: ${*:2}: errors: 0, search complete ($(summary "$name"))"
  else
    cat "$work/$name/pan.out"
    echo "model-spin: ${*:2}: FAILED (errors: ${e:-?}, or the search did not complete)"
    fail=1
  fi
}

# must_break NAME FLAGS...: spin finds two nodes running SQL.
must_break() {
  local name=$1 e
  check "$@"
  e=$(errors "$name")
  if [ "${e:-0}" -gt 0 ] && grep -q 'assertion violated.*sql0' "$work/$name/pan.out"; then
    echo "model-spin: ${*:2}: errors: $e, two nodes run SQL ($(summary "$name"))"
  else
    cat "$work/$name/pan.out"
    echo "model-spin: ${*:2}: FAILED: spin found no violation of the finding"
    fail=1
  fi
}

# Finding 1: a remediator the fencing node does not ask.
must_break stale-peers -DSTALE_PEERS
CCFLAGS="-DCOLLAPSE -DMEMLIM=14000" PANFLAGS="-m3000000 -w27" \
  must_hold stale-peers-fixed -DSTALE_PEERS -DLEADER_IN_PEERS
# Finding 2: a lagging watch (fix: the fresh read before acting).
must_break watch-lag -DWATCH_LAG
CCFLAGS="-DCOLLAPSE -DMEMLIM=14000" PANFLAGS="-m3000000 -w27" \
  must_hold watch-lag-fixed -DWATCH_LAG -DREREAD_BEFORE_ACT
# Finding 4: a clean stop that disarmed before unfencing was acknowledged.
must_break agent-restart -DAGENT_RESTART
CCFLAGS="-DCOLLAPSE -DMEMLIM=14000" PANFLAGS="-m3000000 -w27" \
  must_hold agent-restart-fixed -DAGENT_RESTART -DFENCED_FALSE_FIRST

exit $fail
