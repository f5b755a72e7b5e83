#!/usr/bin/env bash
# Regenerates tests/e2e/tools/kube/go.mod from k8s.io/kubernetes's own go.mod:
# every staging module (replaced by ./staging/src/k8s.io/X upstream) is
# replaced here by the published k8s.io/X at the matching v0.<minor>.<patch>.
# Usage: tests/e2e/tools/gen-kube-replaces.sh [v1.34.4]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ver=${1:-$(sed -n 's/^KUBE_VERSION=//p' "$here/versions.env")}
[[ $ver =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "gen-kube-replaces: bad version '$ver'" >&2; exit 1; }
staging="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
cd "$here/kube"
gomod=$(go mod download -json "k8s.io/kubernetes@$ver" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[[ -f $gomod ]] || { echo "gen-kube-replaces: cannot download k8s.io/kubernetes@$ver" >&2; exit 1; }
# Read the replace directives with `go mod edit -json` (needs jq); no hand parsing of go.mod.
mods=$(go mod edit -json "$gomod" | jq -r '.Replace[]? | select(.New.Path | startswith("./staging/src/")) | .Old.Path')
[[ -n $mods ]] || { echo "gen-kube-replaces: no staging replaces found in $gomod" >&2; exit 1; }
cp go.mod go.mod.bak 2>/dev/null || true
for r in $(go mod edit -json | jq -r ".Replace[]?.Old.Path"); do
  go mod edit -dropreplace="$r"
done
args=()
for m in $mods; do args+=("-replace=$m=$m@$staging"); done
go mod edit "${args[@]}"
go mod edit -require="k8s.io/kubernetes@$ver"
rm -f go.mod.bak
echo "gen-kube-replaces: $(wc -w <<<"$mods") staging modules -> $staging"
