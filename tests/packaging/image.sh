#!/usr/bin/env bash
# The container image: build packaging/container/Containerfile with the local
# Docker engine and check what it must hold.
#
#   tests/packaging/image.sh            # from anywhere; needs root (or docker access)
#
# - debian:bookworm-slim comes from the engine if it has it; otherwise (no
#   image registry) it is imported from the debootstrap minbase tarball of
#   scripts/debian-rootfs, which has apt configured like the real slim image.
# - The build context is the working tree as git sees it (tracked and new
#   files, not ignored ones): the classic builder has no per-Containerfile
#   ignore file, and tests/e2e/.bin alone is hundreds of MB. Without git the
#   context is the repository root.
# - Checks: `version` (exit 0, the version of meson.build), `probe tds`
#   against the SQL Server stand-in on the host (outcome ok) and against a
#   closed port (exit 1, outcome refused), the non-root numeric user, the OCI
#   labels, entrypoint/command/port; prints the image size.
#
# Environment: IMAGE (default edgewarden:test), BUILD_DIR (default build/,
# where the stand-in is built; scripts/build makes it).
# Leaves the image and the build cache (a warm run takes seconds); removes
# its containers. Exit 0 only when every check holds; each failure is printed.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

image=${IMAGE:-edgewarden:test}
base=debian:bookworm-slim
build_dir=${BUILD_DIR:-build}
standin=$build_dir/tests/fixtures/sqlservr

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
  echo "image: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
die() { echo "image.sh: $*" >&2; fail "$*"; finish; }

tmp=$(mktemp -d)
standin_pid=
cleanup() {
  docker rm -f "edgewarden-image-test-$$" >/dev/null 2>&1
  [ -n "$standin_pid" ] && kill "$standin_pid" 2>/dev/null && wait "$standin_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info)"
[ -x "$standin" ] || die "$standin missing: run scripts/build"

t0=$SECONDS

# ---- the base image ---------------------------------------------------------
if docker image inspect "$base" >/dev/null 2>&1; then
  echo "base: $base present in the engine"
else
  echo "base: $base not in the engine: importing the debootstrap minbase root file system"
  rootfs=$(scripts/debian-rootfs bookworm | tail -n 1) || die "scripts/debian-rootfs failed"
  [ -s "$rootfs" ] || die "scripts/debian-rootfs printed no tarball"
  docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL io.edgewarden.base="debootstrap --variant=minbase bookworm"' \
    --message "scripts/debian-rootfs $(basename "$rootfs")" \
    "$rootfs" "$base" >/dev/null || die "docker import $rootfs failed"
fi

# ---- build ------------------------------------------------------------------
version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n 1)
[ -n "$version" ] || die "no project version in meson.build"
revision=unknown source=
if git rev-parse --git-dir >/dev/null 2>&1; then
  revision=$(git describe --always --dirty)
  source=$(git remote get-url origin 2>/dev/null || true)
fi
# --force-rm: a failed step leaves no container behind (classic builder).
args=(--force-rm --build-arg "VERSION=$version" --build-arg "REVISION=$revision" -t "$image"
      -f packaging/container/Containerfile)
[ -n "$source" ] && args+=(--build-arg "SOURCE=$source")
# apt inside the build goes through the proxy the host's apt uses, if any
# (http_proxy is one of Docker's predefined build arguments).
proxy=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1)
[ -n "$proxy" ] && [ "$proxy" != DIRECT ] && args+=(--build-arg "http_proxy=$proxy")
# BuildKit when the client has it (the buildx component); the classic builder otherwise.
if docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=1
else
  export DOCKER_BUILDKIT=0
fi

echo "build: $image (version $version, revision $revision, BuildKit=$DOCKER_BUILDKIT)"
tb=$SECONDS
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      { [ -e "$f" ] || [ -L "$f" ]; } && printf '%s\0' "$f"
    done | tar --null -T - -cf "$tmp/context.tar"
  docker build "${args[@]}" - <"$tmp/context.tar" >"$tmp/build.log" 2>&1
else
  docker build "${args[@]}" . >"$tmp/build.log" 2>&1
fi
rc=$?
if [ $rc -ne 0 ]; then
  tail -n 40 "$tmp/build.log"
  die "docker build failed (exit $rc)"
fi
ok "docker build ($((SECONDS - tb)) s)"

run() { docker run --rm "$@"; }

# ---- version ----------------------------------------------------------------
out=$(run "$image" version 2>&1); rc=$?
if [ $rc -eq 0 ] && [[ $out == "edgewarden $version ("*")" ]]; then
  ok "version: $out"
else
  fail "version: exit $rc, output: $out"
fi

# ---- probe tds against the stand-in on the host -------------------------------
"$standin" --listen 127.0.0.1:0 --control "$tmp/control.sock" --foreground >"$tmp/standin.out" 2>"$tmp/standin.err" &
standin_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^ready .*listen=[^ ]*:\([0-9][0-9]*\).*/\1/p' "$tmp/standin.out" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$standin_pid" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$port" ]; then
  fail "stand-in did not print ready: $(cat "$tmp/standin.out" "$tmp/standin.err")"
else
  out=$(run --network host "$image" probe tds "127.0.0.1:$port" --json 2>&1); rc=$?
  if [ $rc -eq 0 ] && grep -q '"outcome": *"ok"' <<<"$out"; then
    ok "probe tds 127.0.0.1:$port: $out"
  else
    fail "probe tds against the stand-in: exit $rc, output: $out"
  fi
fi

# ---- the process probe without root ------------------------------------------
# The DaemonSet's setting: host PID namespace, uid 65532, no capabilities, a
# read-only root, the default seccomp profile. The stand-in's engine runs as
# root on the host; the agent must find it (/proc/<pid>/stat and cgroup are
# world-readable) and see it exit through a pidfd (pidfd_open has no
# permission check), not by the /proc polling fallback.
hardened=(--pid host --network host --cap-drop ALL --read-only --security-opt no-new-privileges)
if [ -n "$port" ]; then
  engine=$(sed -n 's/^ready .*engine=\([0-9]*\).*/\1/p' "$tmp/standin.out" | head -n 1)
  out=$(run "${hardened[@]}" "$image" probe process --name sqlservr --json 2>&1); rc=$?
  if [ $rc -eq 0 ] && grep -q '"outcome": *"ok"' <<<"$out"; then
    ok "probe process as uid 65532, no capabilities, hostPID: $out"
  else
    fail "probe process as non-root with hostPID: exit $rc, output: $out"
  fi

  cat >"$tmp/agent.yaml" <<YAML
apiVersion: edgewarden.io/v1alpha1
kind: AgentConfig
log: {level: debug, format: text}
server: {listen: ""}
health: {startupGrace: 0s}
targets:
  - name: sqlserver
    address: 127.0.0.1
    port: $port
    probes:
      - kind: process
        interval: 30s
YAML
  chmod 644 "$tmp/agent.yaml"
  name=edgewarden-image-test-$$
  docker rm -f "$name" >/dev/null 2>&1
  docker run -d --name "$name" "${hardened[@]}" -v "$tmp/agent.yaml:/etc/edgewarden/config.yaml:ro" "$image" >/dev/null
  seen=
  for _ in $(seq 100); do
    docker logs "$name" 2>&1 | grep -q "probe sqlserver/process: ok" && { seen=1; break; }
    sleep 0.1
  done
  if [ -n "$seen" ]; then
    python3 - "$tmp/control.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"crash\n"); s.recv(200)
PY
    # The next check is 30 s away: only the pidfd can report the exit sooner.
    exited=
    for _ in $(seq 50); do
      docker logs "$name" 2>&1 | grep -q "engine pid $engine exited" && { exited=1; break; }
      sleep 0.1
    done
    logs=$(docker logs "$name" 2>&1)
    # "unavailable": the agent fell back to polling for every engine. (A
    # per-engine "pidfd_open() failed" can come from another sqlservr on the
    # host exiting under our feet — hostPID sees them all — and is not that.)
    if [ -n "$exited" ] && ! grep -q "pidfd_open() unavailable" <<<"$logs"; then
      ok "agent as uid 65532 saw the root-owned engine $engine exit through its pidfd"
    else
      fail "engine exit not seen through a pidfd within 5 s: $(grep -E 'pidfd|exited|error' <<<"$logs" | head -n 5)"
    fi
  else
    fail "agent in the container did not check the process: $(docker logs "$name" 2>&1 | tail -n 5)"
  fi
  docker rm -f "$name" >/dev/null 2>&1
fi

# A closed port: bind one, note it, close it.
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
out=$(run --network host "$image" probe tds "127.0.0.1:$closed" --json 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q '"outcome": *"refused"' <<<"$out"; then
  ok "probe tds closed port 127.0.0.1:$closed: exit 1, $out"
else
  fail "probe tds against a closed port: exit $rc (want 1), output: $out"
fi

# ---- configuration ------------------------------------------------------------
out=$(run "$image" check-config /etc/edgewarden/config.yaml 2>&1); rc=$?
if [ $rc -eq 0 ]; then ok "check-config /etc/edgewarden/config.yaml"; else fail "check-config: exit $rc: $out"; fi

# ---- metadata ---------------------------------------------------------------
inspect() { docker image inspect -f "$1" "$image"; }
user=$(inspect '{{.Config.User}}')
if [[ $user =~ ^[1-9][0-9]*(:[0-9]+)?$ ]]; then ok "user $user (numeric, not root)"; else fail "user '$user': want a numeric non-root uid"; fi
out=$(run --entrypoint /usr/bin/id "$image" 2>&1)
if [[ $out == uid=65532\(edgewarden\)* ]]; then ok "runs as: $out"; else fail "id in the container: $out"; fi

entry=$(inspect '{{json .Config.Entrypoint}}') cmd=$(inspect '{{json .Config.Cmd}}')
[ "$entry" = '["/usr/bin/edgewarden"]' ] && ok "entrypoint $entry" || fail "entrypoint $entry"
[ "$cmd" = '["run","--config","/etc/edgewarden/config.yaml"]' ] && ok "cmd $cmd" || fail "cmd $cmd"
ports=$(inspect '{{json .Config.ExposedPorts}}')
[[ $ports == *'"9808/tcp"'* ]] && ok "exposes $ports" || fail "exposed ports $ports"

label() { inspect "{{index .Config.Labels \"org.opencontainers.image.$1\"}}"; }
for l in title description licenses; do
  v=$(label $l)
  [ -n "$v" ] && ok "label $l=$v" || fail "label org.opencontainers.image.$l missing"
done
v=$(label version); [ "$v" = "$version" ] && ok "label version=$v" || fail "label version '$v', want $version"
v=$(label revision); [ "$v" = "$revision" ] && ok "label revision=$v" || fail "label revision '$v', want $revision"
labels=$(inspect '{{json .Config.Labels}}')
if [ -n "$source" ]; then
  v=$(label source); [ "$v" = "$source" ] && ok "label source=$v" || fail "label source '$v', want $source"
else
  [[ $labels == *'"org.opencontainers.image.source":'* ]] && ok "label source present (empty: no git remote)" || fail "label source missing"
fi

# The runtime image has no compiler: the build stage stayed behind.
out=$(run --entrypoint sh "$image" -c 'command -v cc gcc meson; ls /usr/include 2>/dev/null | head -n 1' 2>&1)
[ -z "$out" ] && ok "no build tools in the runtime image" || fail "build tools in the runtime image: $out"

size=$(inspect '{{.Size}}')
echo "size: $image $((size / 1000000)) MB ($size bytes); base $base $(( $(docker image inspect -f '{{.Size}}' "$base") / 1000000 )) MB"
echo "time: $((SECONDS - t0)) s"
finish
