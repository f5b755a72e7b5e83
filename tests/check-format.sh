#!/usr/bin/env bash
# Fails when a C file in the tree is not formatted by the repository's .clang-format.
cd "$(dirname "$0")/.." || exit 1
command -v clang-format >/dev/null || { echo "clang-format missing (scripts/bootstrap installs it)"; exit 1; }
bad=$(git ls-files '*.c' '*.h' 2>/dev/null | while read -r f; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
[ -z "$bad" ] || { echo "not formatted (run clang-format -i):"; echo "$bad"; exit 1; }
echo "all C sources formatted"
# The Go harness: gofmt, when Go is installed (scripts/bootstrap needs it for
# the end-to-end suite anyway).
if command -v gofmt >/dev/null || [ -x /usr/local/go/bin/gofmt ]; then
  gofmt=$(command -v gofmt || echo /usr/local/go/bin/gofmt)
  badgo=$(git ls-files 'tests/e2e/*.go' | xargs "$gofmt" -l 2>/dev/null)
  [ -z "$badgo" ] || { echo "Go not formatted (run gofmt -w):"; echo "$badgo"; exit 1; }
  echo "all Go sources formatted"
fi
