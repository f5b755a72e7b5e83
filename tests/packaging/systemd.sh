#!/usr/bin/env bash
# The systemd unit as `meson install` installs it, checked by systemd's tools:
#   1. a build with --prefix=/usr (build-packaging/, reused when present),
#      installed into a DESTDIR: the binary, the unit in systemd.pc's
#      systemdsystemunitdir, both man pages
#   2. the installed unit's ExecStart is /usr/bin/edgewarden run --config
#      /etc/edgewarden/config.yaml, and it keeps /proc visible to the agent
#   3. `systemd-analyze verify` prints nothing and exits 0. No systemd runs
#      as PID 1 here, so it verifies a copy whose ExecStart names the DESTDIR
#      binary (verify checks that it exists and is executable), with MANPATH
#      pointing at the DESTDIR man pages (verify runs man for Documentation=)
#   4. `systemd-analyze security --offline=true` rates the sandbox; an exposure
#      above 2.5 (of 10) fails, so a hardening line cannot go missing unnoticed
# Exit 0 = every check passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$SECONDS
step() { printf '[systemd %3ds] %s\n' $((SECONDS - t0)) "$*"; }
fail() { echo "systemd.sh: FAIL: $*" >&2; exit 1; }

command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (scripts/bootstrap installs systemd)"
command -v scdoc >/dev/null || fail "scdoc is missing (scripts/bootstrap installs it)"

work=$(mktemp -d /tmp/edgewarden-systemd.XXXXXX)
trap 'rm -rf "$work"' EXIT
build=build-packaging
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --prefix=/usr -Dman=enabled -Dtests=disabled >"$work/setup.log" 2>&1 ||
    { cat "$work/setup.log"; fail "meson setup"; }
fi
ninja -C "$build" >"$work/ninja.log" 2>&1 || { cat "$work/ninja.log"; fail "ninja"; }
dest=$work/dest
DESTDIR=$dest meson install -C "$build" --no-rebuild --quiet >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "meson install"; }

unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
unit=$dest$unitdir/edgewarden.service
for f in "$unit" "$dest/usr/bin/edgewarden" "$dest/usr/share/man/man8/edgewarden.8" \
  "$dest/usr/share/man/man5/edgewarden.yaml.5"; do
  [ -f "$f" ] || fail "meson install did not install ${f#"$dest"}"
done
step "meson install: /usr/bin/edgewarden, $unitdir/edgewarden.service, edgewarden(8), edgewarden.yaml(5)"

exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[ "$exec_start" = "/usr/bin/edgewarden run --config /etc/edgewarden/config.yaml" ] ||
  fail "ExecStart is '$exec_start'"
if grep -nE '^(ProtectProc=invisible|ProtectProc=noaccess|ProcSubset=pid)' "$unit"; then
  fail "the unit hides other processes' /proc entries from the process probe"
fi

mkdir "$work/verify"
sed "s#^ExecStart=/usr/bin/edgewarden #ExecStart=$dest/usr/bin/edgewarden #" "$unit" >"$work/verify/edgewarden.service"
set +e
out=$(cd "$work" && MANPATH=$dest/usr/share/man SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$work/verify/edgewarden.service" 2>&1)
rc=$?
set -e
if [ $rc -ne 0 ] || [ -n "$out" ]; then
  printf '%s\n' "$out"
  fail "systemd-analyze verify: exit $rc, output above"
fi
step "systemd-analyze verify: clean (no output, exit 0)"

set +e
sec=$(systemd-analyze security --offline=true --threshold=25 --no-pager "$work/verify/edgewarden.service" 2>&1)
rc=$?
set -e
exposure=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for edgewarden.service: \([0-9.]*\).*/\1/p')
if [ $rc -ne 0 ] || [ -z "$exposure" ]; then
  printf '%s\n' "$sec" | grep -E '✗|Overall' || printf '%s\n' "$sec"
  fail "systemd-analyze security: exposure ${exposure:-?} is above 2.5, or it failed (exit $rc)"
fi
step "systemd-analyze security --offline: exposure $exposure (limit 2.5)"
step "ok ($((SECONDS - t0)) s)"
