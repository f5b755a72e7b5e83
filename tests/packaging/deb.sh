#!/usr/bin/env bash
# The Debian package, checked by the real tools:
#   1. debian/changelog's version is meson's project version
#   2. `dpkg-buildpackage -us -uc -b` in a copy of the tree (git ls-files plus
#      uncommitted files) with packaging/debian as ./debian; the unit tests
#      run inside the build
#   3. `lintian --fail-on error,warning` on the .changes (the .deb, the dbgsym
#      .deb and the .buildinfo): no E: and no W: line; the maintainer scripts
#      neither enable nor start the unit
#   4. the .deb installed with apt in a clean Debian 12 root - the minbase
#      tarball of scripts/debian-rootfs plus systemd as init, as on any
#      bare-metal node - its Depends resolved from the archive. There
#      `edgewarden version` and `edgewarden check-config
#      /etc/edgewarden/config.yaml` exit 0, dpkg -L lists the unit, both man
#      pages and the config, the config is a conffile, and no unit is enabled
#   5. that root booted with systemd-nspawn: the real systemd starts the
#      installed unit with its whole sandbox against a SQL Server stand-in run
#      as another user (tests/packaging/boot-selftest: READY=1, both probes
#      ok, an engine crash seen through the pidfd, watchdog pings, journal
#      fields, reload, clean stop)
#   6. an edited conffile survives a reinstall; purge leaves nothing
#
# Cache (under /var/cache/edgewarden/deb-test, EDGEWARDEN_CACHE_DIR overrides
# /var/cache/edgewarden): after a cold run, the purged root - minbase, systemd,
# the package's dependencies and apt's lists - is kept as a tarball keyed by
# the package's Depends line, so the next run installs offline from it. The
# minbase tarball itself is scripts/debian-rootfs's cache.
#
# Needs root (chroot, unshare, nspawn), dpkg-dev, debhelper, lintian,
# debootstrap, systemd-container, gcc, zstd (scripts/bootstrap installs them), and
# the Debian mirror for a cold run. Prints timings; exit 0 = every check passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$SECONDS
step() { printf '[deb %4ds] %s\n' $((SECONDS - t0)) "$*"; }
fail() { echo "deb.sh: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "needs root (chroot)"
for tool in dpkg-buildpackage dh lintian unshare git systemd-nspawn gcc zstd; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/bootstrap installs it)"
done

cache=${EDGEWARDEN_CACHE_DIR:-/var/cache/edgewarden}/deb-test
mkdir -p "$cache"
work=$(mktemp -d /tmp/edgewarden-deb.XXXXXX)
cleanup() {
  # The chroot commands run in their own mount namespace, so nothing is
  # mounted under $work; --one-file-system guards against a surprise anyway.
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# --- 1. versions ----------------------------------------------------------
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n1)
deb_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
[ "$meson_version" = "$deb_version" ] ||
  fail "packaging/debian/changelog is $deb_version, meson.build's project version is $meson_version"
step "version $deb_version (meson.build and debian/changelog agree)"

# --- 2. build ---------------------------------------------------------------
# A copy of what git knows plus what is not yet committed (not ignored files),
# without .git and build directories: what a release tarball would hold.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -C "$work/src" -xf -
[ ! -e "$work/src/debian" ] || fail "the tree has a top-level debian/; the packaging lives in packaging/debian"
cp -a packaging/debian "$work/src/debian"
step "building with dpkg-buildpackage -us -uc -b -Jauto"
if ! (cd "$work/src" && dpkg-buildpackage -us -uc -b -Jauto) >"$work/build.log" 2>&1; then
  tail -n 80 "$work/build.log"
  fail "dpkg-buildpackage failed"
fi
deb=$work/edgewarden_${deb_version}_$(dpkg --print-architecture).deb
changes=${deb%.deb}.changes
[ -f "$deb" ] && [ -f "$changes" ] || fail "no $deb or $changes"
unit_tests=$(grep -cE '^ *[0-9]+/[0-9]+ edgewarden:unit / .* OK ' "$work/build.log" || true)
[ "$unit_tests" -gt 0 ] || fail "no unit test ran inside the package build"
step "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB); $unit_tests unit tests passed inside the build"

# --- 3. lintian -------------------------------------------------------------
lintian --fail-on error,warning --display-info "$changes" >"$work/lintian.log" 2>&1 && lrc=0 || lrc=$?
sed 's/^/  lintian: /' "$work/lintian.log" | grep -v 'running with root privileges' || true
if [ "$lrc" -ne 0 ] || grep -qE '^[EW]: ' "$work/lintian.log"; then
  fail "lintian reported errors or warnings (exit $lrc)"
fi
step "lintian: no errors, no warnings"

# The package's files, before installing it anywhere.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#' >"$work/contents"
for f in /usr/bin/edgewarden /lib/systemd/system/edgewarden.service /etc/edgewarden/config.yaml \
  /etc/default/edgewarden /usr/share/man/man8/edgewarden.8.gz /usr/share/man/man5/edgewarden.yaml.5.gz \
  /usr/share/doc/edgewarden/copyright; do
  grep -qxF "$f" "$work/contents" || fail "$f is not in the package"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles >"$work/conffiles"
grep -qxF /etc/edgewarden/config.yaml "$work/conffiles" || fail "/etc/edgewarden/config.yaml is not a conffile"
# The maintainer scripts must never enable or start the unit by themselves:
# no start/restart (an upgrade's try-restart touches only a running agent),
# and the only enable is debhelper's "keep what the admin had enabled", which
# runs for a unit dpkg already knew (debian-installed), never on a first install.
dpkg-deb --ctrl-tarfile "$deb" | tar -C "$work" -xf - ./postinst
if grep -nE 'deb-systemd-invoke +(start|restart) |systemctl .*(enable|start) ' "$work/postinst" >&2; then
  fail "postinst starts or enables a unit"
fi
if grep -q 'deb-systemd-helper enable' "$work/postinst" &&
  ! grep -q 'deb-systemd-helper debian-installed' "$work/postinst"; then
  fail "postinst enables the unit on a first install"
fi
step "contents: binary, unit, man pages, config (a conffile), /etc/default/edgewarden"

# --- 4. install in a clean Debian root ------------------------------------
depends=$(dpkg-deb -f "$deb" Depends)
# What the root holds besides minbase: systemd as init, and the Depends.
base_packages="systemd-sysv"
key=$(printf '%s\n%s\n' "$base_packages" "$depends" | sha256sum | cut -c1-16)
arch=$(dpkg --print-architecture)
warm=$cache/bookworm-$arch-deps-$key.tar.zst
root=$work/root
mkdir "$root"
in_root() { unshare --mount --pid --fork --mount-proc="$root/proc" chroot "$root" "$@"; }
apt_env=(env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin)

if [ -s "$warm" ]; then
  mode=warm
  tar -C "$root" -I zstd -xf "$warm"
  step "root: cached minbase + dependencies ($(basename "$warm"))"
else
  mode=cold
  if [ -x scripts/debian-rootfs ]; then
    base=$(scripts/debian-rootfs bookworm | tail -n1)
  else
    # Fallback while scripts/debian-rootfs does not exist: a minbase
    # debootstrap of our own, cached the same way.
    base=$cache/bookworm-$arch-minbase.tar.gz
    if [ ! -s "$base" ]; then
      mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
      [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
      [ -n "$mirror" ] || fail "no Debian mirror in /etc/apt/sources.list*"
      step "debootstrap --variant=minbase bookworm (once)"
      debootstrap --variant=minbase bookworm "$work/boot" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 30 "$work/debootstrap.log"; fail "debootstrap failed"; }
      tar --numeric-owner -C "$work/boot" -czf "$base.tmp" . && mv "$base.tmp" "$base"
      rm -rf --one-file-system "$work/boot"
    fi
  fi
  [ -s "$base" ] || fail "no Debian root tarball"
  tar -C "$root" -xzf "$base"
  step "root: clean minbase ($(basename "$base"))"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  in_root "${apt_env[@]}" apt-get update -q >"$work/apt-update.log" 2>&1 ||
    { cat "$work/apt-update.log"; fail "apt-get update in the root"; }
  # shellcheck disable=SC2086 # a list of package names
  in_root "${apt_env[@]}" apt-get install -y -q --no-install-recommends $base_packages >"$work/apt-base.log" 2>&1 ||
    { cat "$work/apt-base.log"; fail "apt-get install $base_packages in the root"; }
  step "root: $base_packages installed (the node's init)"
fi

cp "$deb" "$root/tmp/"
pkg=/tmp/$(basename "$deb")
# apt resolves the Depends from the archive (cold) or finds them installed (warm).
if ! in_root "${apt_env[@]}" apt-get install -y -q --no-install-recommends "$pkg" >"$work/install.log" 2>&1; then
  cat "$work/install.log"
  fail "apt-get install $pkg in a clean root"
fi
step "installed in the $mode root: $(grep -cE '^Setting up ' "$work/install.log") packages set up"

in_root edgewarden version || fail "edgewarden version"
in_root edgewarden check-config /etc/edgewarden/config.yaml || fail "edgewarden check-config /etc/edgewarden/config.yaml"
in_root dpkg -L edgewarden >"$work/dpkg-L"
for f in /usr/bin/edgewarden /lib/systemd/system/edgewarden.service /etc/edgewarden/config.yaml \
  /usr/share/man/man8/edgewarden.8.gz /usr/share/man/man5/edgewarden.yaml.5.gz; do
  grep -qxF "$f" "$work/dpkg-L" || fail "dpkg -L edgewarden lacks $f"
  [ -e "$root$f" ] || fail "$f listed but not on disk"
done
cmp -s "$root/etc/edgewarden/config.yaml" packaging/config.yaml || fail "/etc/edgewarden/config.yaml is not packaging/config.yaml"
in_root dpkg-query -W -f='${Conffiles}\n' edgewarden | grep -q '^ /etc/edgewarden/config.yaml ' ||
  fail "dpkg does not track /etc/edgewarden/config.yaml as a conffile"
if [ -d "$root/etc/systemd/system" ] &&
  found=$(find "$root/etc/systemd/system" -name 'edgewarden*' | sed "s#^$root##") && [ -n "$found" ]; then
  fail "installing enabled the unit: $found"
fi
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/edgewarden.service" ] || fail "unit enabled"
step "in the root: version and check-config exit 0; unit, man pages and conffile in place; nothing enabled"

# --- 5. boot it: the unit under the real systemd --------------------------
mkdir -p "$root/opt/edgewarden-test"
gcc -O2 -D_GNU_SOURCE -o "$root/opt/edgewarden-test/sqlservr" tests/fixtures/standin.c
install -m755 tests/packaging/boot-selftest "$root/opt/edgewarden-test/boot-selftest"
printf '%s\n' '[Unit]' 'Description=edgewarden package self-test (tests/packaging/deb.sh)' \
  'After=multi-user.target' '[Service]' 'Type=oneshot' 'ExecStart=/opt/edgewarden-test/boot-selftest' \
  >"$root/etc/systemd/system/ew-selftest.service"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -s ../ew-selftest.service "$root/etc/systemd/system/multi-user.target.wants/ew-selftest.service"
# --keep-unit --register=no: there is no systemd on this host to ask for a
# scope or a machine registration; --private-network: loopback only.
if ! timeout 180 systemd-nspawn --quiet --directory="$root" --boot --keep-unit --register=no \
    --private-network >"$work/nspawn.log" 2>&1; then
  tail -n 40 "$work/nspawn.log"
  cat "$root/var/tmp/selftest.log" 2>/dev/null
  fail "systemd-nspawn --boot failed or timed out"
fi
sed 's/^/  boot: /' "$root/var/tmp/selftest.log"
[ "$(cat "$root/var/tmp/selftest.result" 2>/dev/null)" = PASS ] || fail "the unit under systemd (log above)"
rm -rf "$root/opt/edgewarden-test" "$root/etc/systemd/system/ew-selftest.service" \
  "$root/etc/systemd/system/multi-user.target.wants/ew-selftest.service" "$root/var/tmp/selftest".*
step "booted with systemd-nspawn: the unit ran, sandboxed, against a stand-in of another user"

# A locally edited conffile survives a reinstall; purge removes everything.
echo "# local change" >>"$root/etc/edgewarden/config.yaml"
in_root "${apt_env[@]}" dpkg -i --force-confold "$pkg" >"$work/reinstall.log" 2>&1 ||
  { cat "$work/reinstall.log"; fail "reinstall"; }
grep -qx '# local change' "$root/etc/edgewarden/config.yaml" || fail "reinstall overwrote the edited conffile"
in_root "${apt_env[@]}" apt-get purge -y -q edgewarden >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
for f in /usr/bin/edgewarden /lib/systemd/system/edgewarden.service /etc/edgewarden /etc/default/edgewarden; do
  [ ! -e "$root$f" ] || fail "$f is still there after purge"
done
step "edited conffile kept on reinstall; purge removed binary, unit and /etc/edgewarden"
# The boot left a journal and a machine-id; the cached root starts without them.
rm -rf "${root:?}/var/log/journal/"*
: >"${root:?}/etc/machine-id"

if [ "$mode" = cold ]; then
  # The purged root (minbase + the dependencies) for the next run.
  rm -f "$root/tmp/"*.deb
  in_root apt-get clean
  : >"$root/etc/resolv.conf"
  tar --numeric-owner -C "$root" -I 'zstd -T0 -3' -cf "$warm.tmp" . && mv "$warm.tmp" "$warm"
  # Keep only the newest dependency set.
  find "$cache" -maxdepth 1 -name "bookworm-$arch-deps-*.tar.*" ! -name "$(basename "$warm")" -delete
  step "cached the root with dependencies: $warm"
fi
step "ok ($mode run, $((SECONDS - t0)) s)"
