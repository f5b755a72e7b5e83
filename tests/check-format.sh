#!/usr/bin/env bash
# Fails when a C file in the tree is not formatted by the repository's .clang-format.
cd "$(dirname "$0")/.." || exit 1
command -v clang-format >/dev/null || { echo "clang-format missing (scripts/bootstrap installs it)"; exit 1; }
bad=$(git ls-files '*.c' '*.h' 2>/dev/null | while read -r f; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
[ -z "$bad" ] || { echo "not formatted (run clang-format -i):"; echo "$bad"; exit 1; }
echo "all C sources formatted"
