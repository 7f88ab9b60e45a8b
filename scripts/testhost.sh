#!/usr/bin/env bash
# The second test host: today's engine releases (Debian unstable) in a
# privileged LXC system container, `enginekit-testhost`, on a bridge of its own.
#
#   scripts/testhost.sh up              build what is missing, start what is stopped, print versions
#   scripts/testhost.sh exec CMD...     run CMD inside as root (cwd /opt/enginekit, clean env)
#   scripts/testhost.sh test [ARGS]     sync this checkout in, run inside: the adapter tests and fault
#                                       scenarios on the local sockets, then the core tests and the
#                                       contract suite on every engine as a remote one (docker+ssh,
#                                       docker+tcp with TLS, podman+ssh rootful and rootless, lxc+ssh,
#                                       at the container's own address); ENGINEKIT_TESTHOST_ENGINES
#                                       names engines instead (local run); extra args go to pytest
#   scripts/testhost.sh bench [ARGS]    run benchmarks/bench_engines.py inside on its engines
#   scripts/testhost.sh sync            sync this checkout in (and reinstall if its metadata changed)
#   scripts/testhost.sh versions        print the engine versions
#   scripts/testhost.sh status          is it built, running, answering
#   scripts/testhost.sh stop            stop the container (the rootfs stays)
#   scripts/testhost.sh destroy         stop it and remove the rootfs and its bridge (the next `up` rebuilds)
#
# ENGINEKIT_TESTHOST_DIR, _NAME, _BRIDGE, _NET (10.123.0) make a second, separate
# instance (e.g. to time a fresh build without touching the one in use).
# Idempotent: the rootfs (under /var/lib/enginekit/testhost) and the container
# stay between runs; `up` repairs what is missing without rebuilding what exists.
# Must run as root on a Debian machine. Traffic goes only to the container's own
# bridge and loopback; the container has no route out (apt and pip run through
# chroot from this machine's network namespace).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${ENGINEKIT_TESTHOST_DIR:-/var/lib/enginekit/testhost}
ROOTFS=$BASE/rootfs
LXCPATH=$BASE/lxc
NAME=${ENGINEKIT_TESTHOST_NAME:-enginekit-testhost}
SUITE=sid
# The container's own bridge and /24 (not lxcbr0's 10.0.3.0/24): this machine is .1, the container .2.
BRIDGE=${ENGINEKIT_TESTHOST_BRIDGE:-ekthbr0}
NET=${ENGINEKIT_TESTHOST_NET:-10.123.0}
HOST_ADDR=$NET.1
CT_ADDR=$NET.2
PREFIX=24
INNER_SRC=/opt/enginekit           # the checkout inside
INNER_VENV=$INNER_SRC/.venv
STATE=/etc/enginekit-testhost      # stamps, inside the rootfs
INNER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The engines the suite runs on inside (names or URLs, as ENGINEKIT_TEST_ENGINES).
DEFAULT_ENGINES=docker,docker+unix:///run/docker-containerd.sock,podman,lxc

PACKAGES=(docker.io docker-cli containerd podman crun catatonit uidmap netavark aardvark-dns
          lxc lxc-dev dnsmasq-base nftables iptables iproute2 busybox-static skopeo umoci
          jq curl docker-registry python3 python3-venv python3-dev gcc libc6-dev pkg-config
          procps psmisc kmod tar xz-utils gzip git ca-certificates
          openssh-client openssh-server socat openssl passt slirp4netns fuse-overlayfs)

log() { printf '[testhost] %s\n' "$*" >&2; }
die() { printf '[testhost] error: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root"; }

# -- this machine -------------------------------------------------------------
host_tools() {
  local missing=() p
  for p in debootstrap rsync; do command -v "$p" >/dev/null || missing+=("$p"); done
  command -v lxc-start >/dev/null || missing+=(lxc)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing on this machine: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The Debian archive apt already uses here (deb822 .sources, else one-line lists).
mirror() {
  if [ -n "${ENGINEKIT_TESTHOST_MIRROR:-}" ]; then echo "$ENGINEKIT_TESTHOST_MIRROR"; return; fi
  local uri
  uri=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' \
          /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -E '/debian/?$' | grep -v -- '-security' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
          awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' |
          grep -E '/debian/?$' | head -n1 || true)
  fi
  [ -n "$uri" ] || die "no Debian archive found in /etc/apt/sources.list*; set ENGINEKIT_TESTHOST_MIRROR"
  echo "${uri%/}"
}

# Unmount everything at or below a path (deepest first).
umount_below() {
  local m
  awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# Run a command in the rootfs from this machine's network namespace, in a mount
# namespace of its own (proc, sys, dev mounted there vanish when it ends).
in_root() {
  unshare --mount --propagation private -- /bin/sh -c '
    r=$1; shift
    mount -t proc proc "$r/proc" && mount -t sysfs sysfs "$r/sys" && mount --rbind /dev "$r/dev" &&
    exec chroot "$r" /usr/bin/env -i PATH="$0" HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
  ' "$INNER_PATH" "$ROOTFS" "$@"
}

# -- the rootfs -----------------------------------------------------------------
build_rootfs() {
  if [ -e "$ROOTFS$STATE/debootstrap.done" ]; then return; fi
  [ ! -e "$ROOTFS" ] || die "$ROOTFS exists but is not finished (no $STATE/debootstrap.done); remove it"
  local m t0=$SECONDS
  m=$(mirror)
  log "debootstrap $SUITE from $m (minbase)"
  mkdir -p "$BASE"
  umount_below "$BASE/rootfs.new"
  rm -rf --one-file-system "$BASE/rootfs.new"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$BASE/rootfs.new" "$m" \
    >"$BASE/debootstrap.log" 2>&1 || { tail -n 20 "$BASE/debootstrap.log" >&2; die "debootstrap failed"; }
  mkdir -p "$BASE/rootfs.new$STATE"
  touch "$BASE/rootfs.new$STATE/debootstrap.done"
  mv "$BASE/rootfs.new" "$ROOTFS"
  log "debootstrap done in $((SECONDS - t0))s"
}

configure_rootfs() {
  local r=$ROOTFS
  mkdir -p "$r/etc/apt/apt.conf.d" "$r/usr/sbin" "$r/etc/docker" "$r/etc/containers" \
           "$r/etc/default" "$r/etc/lxc" "$r/usr/local/sbin" "$r$INNER_SRC" "$r/var/log/enginekit"
  # The archive reached here is a snapshot older than its Release file's validity.
  cat >"$r/etc/apt/apt.conf.d/99enginekit-testhost" <<'EOF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  # For apt and pip run through chroot (the container itself has no route out).
  cp -L /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$r/etc/pip.conf"
  # This machine's own CAs (pip's TLS goes through them here).
  local c changed=0
  mkdir -p "$r/usr/local/share/ca-certificates"
  for c in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$c" ] || continue
    cmp -s "$c" "$r$c" || { cp "$c" "$r$c"; changed=1; }
  done
  [ "$changed" = 0 ] || in_root update-ca-certificates >/dev/null 2>&1 || log "update-ca-certificates failed"
  echo "$NAME" >"$r/etc/hostname"
}

configure_engines() {
  local r=$ROOTFS
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n%s %s\n' \
    "$CT_ADDR" "$NAME" >"$r/etc/hosts"

  # Docker: classic store on the default socket; containerd store on its own.
  # Disjoint bridges and address pools: both daemons share one network namespace.
  cat >"$r/etc/docker/daemon.json" <<'EOF'
{
  "hosts": ["unix:///run/docker.sock"],
  "pidfile": "/run/docker.pid",
  "exec-root": "/run/docker",
  "data-root": "/var/lib/docker",
  "storage-driver": "overlay2",
  "cgroup-parent": "/enginekit-testhost-docker",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "bip": "172.18.0.1/16",
  "default-address-pools": [{"base": "172.19.0.0/16", "size": 24}],
  "ip6tables": false,
  "features": {"containerd-snapshotter": false}
}
EOF
  cat >"$r/etc/docker/daemon-containerd.json" <<EOF
{
  "hosts": ["unix:///run/docker-containerd.sock", "tcp://$CT_ADDR:2376"],
  "tlsverify": true,
  "tlscacert": "/etc/enginekit-testhost/tls/ca.pem",
  "tlscert": "/etc/enginekit-testhost/tls/server-cert.pem",
  "tlskey": "/etc/enginekit-testhost/tls/server-key.pem",
  "pidfile": "/run/docker-containerd.pid",
  "exec-root": "/run/docker-containerd",
  "data-root": "/var/lib/docker-containerd",
  "cgroup-parent": "/enginekit-testhost-docker-containerd",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "bridge": "ekcd0",
  "default-address-pools": [{"base": "172.22.0.0/16", "size": 24}],
  "containerd-namespace": "moby-containerd",
  "containerd-plugins-namespace": "plugins.moby-containerd",
  "ip6tables": false,
  "features": {"containerd-snapshotter": true}
}
EOF
  # Podman: the hard open-files limit here is below podman's default (as
  # scripts/setup-engines.sh writes); netavark with nftables; no systemd.
  cat >"$r/etc/containers/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
firewall_driver = "nftables"
EOF
  # LXC inside: its own bridge on another subnet than this machine's lxcbr0.
  cat >"$r/etc/default/lxc-net" <<'EOF'
USE_LXC_BRIDGE="true"
LXC_BRIDGE="lxcbr0"
LXC_ADDR="10.0.4.1"
LXC_NETMASK="255.255.255.0"
LXC_NETWORK="10.0.4.0/24"
LXC_DHCP_RANGE="10.0.4.2,10.0.4.254"
LXC_DHCP_MAX="253"
EOF
  cat >"$r/etc/lxc/default.conf" <<'EOF'
lxc.net.0.type = veth
lxc.net.0.link = lxcbr0
lxc.net.0.flags = up
lxc.apparmor.profile = unconfined
EOF
  install -m 755 "$REPO/scripts/testhost/engines.sh" "$r/usr/local/sbin/enginekit-testhost-engines"
  install -m 755 "$REPO/scripts/testhost/remote.sh" "$r/usr/local/sbin/enginekit-testhost-remote"
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    in_root dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  local t0=$SECONDS
  log "apt-get install in the rootfs: ${missing[*]}"
  in_root apt-get update -qq >"$BASE/apt.log" 2>&1 || { tail -n 20 "$BASE/apt.log" >&2; die "apt-get update failed"; }
  # An install interrupted earlier leaves packages unpacked but not configured.
  in_root dpkg --force-confdef --force-confold --configure -a >>"$BASE/apt.log" 2>&1 || true
  in_root apt-get install -y -q -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold "${missing[@]}" >>"$BASE/apt.log" 2>&1 ||
    { tail -n 30 "$BASE/apt.log" >&2; die "apt-get install failed (see $BASE/apt.log)"; }
  in_root apt-get clean
  log "packages installed in $((SECONDS - t0))s"
}

# -- the checkout and the venv inside -------------------------------------------
sync_checkout() {
  # The working tree as it is now: tracked files (edits included) and new files
  # git does not ignore (other work in progress needs them); no .venv. Staged
  # with tar (mtimes kept), then mirrored so unchanged files stay untouched
  # and files gone from the tree go from the copy.
  local stage=$BASE/stage
  rm -rf "$stage"; mkdir -p "$stage" "$ROOTFS$INNER_SRC"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
     [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) | tar -xf - -C "$stage"
  rsync -a --delete --exclude=/.venv --exclude=__pycache__ --exclude=.mypy_cache \
    --exclude=.ruff_cache --exclude=.hypothesis --exclude=.pytest_cache --exclude='*.egg-info' \
    "$stage/" "$ROOTFS$INNER_SRC/"
  rm -rf "$stage"
}

venv_stamp() {
  cat "$ROOTFS$INNER_SRC/pyproject.toml" "$ROOTFS$INNER_SRC"/adapters/*/pyproject.toml 2>/dev/null |
    sha256sum | cut -c1-16
}

install_venv() {
  local want have t0=$SECONDS
  want=$(venv_stamp)
  have=$(cat "$ROOTFS$STATE/venv.stamp" 2>/dev/null || true)
  if [ -x "$ROOTFS$INNER_VENV/bin/python" ] && [ "$want" = "$have" ]; then return; fi
  if [ ! -x "$ROOTFS$INNER_VENV/bin/python" ]; then
    log "creating the venv inside ($INNER_VENV)"
    in_root python3 -m venv "$INNER_VENV"
  fi
  local adapters=() a
  for a in docker podman lxc; do
    [ -f "$ROOTFS$INNER_SRC/adapters/$a/pyproject.toml" ] && adapters+=(-e "$INNER_SRC/adapters/$a")
  done
  log "pip install -e '.[dev]' ${adapters[*]} inside (from this machine's network)"
  in_root /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$INNER_SRC" \
    "$INNER_VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -e "$INNER_SRC[dev]" "${adapters[@]}" >"$BASE/pip.log" 2>&1 ||
    { tail -n 30 "$BASE/pip.log" >&2; die "pip install failed (see $BASE/pip.log)"; }
  echo "$want" >"$ROOTFS$STATE/venv.stamp"
  log "venv ready in $((SECONDS - t0))s"
}

install_bench_requirements() {
  local want have
  want=$(sha256sum <"$ROOTFS$INNER_SRC/benchmarks/requirements.txt" | cut -c1-16)
  have=$(cat "$ROOTFS$STATE/bench.stamp" 2>/dev/null || true)
  [ "$want" != "$have" ] || return 0
  log "pip install -r benchmarks/requirements.txt inside"
  in_root "$INNER_VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$INNER_SRC/benchmarks/requirements.txt" >"$BASE/pip-bench.log" 2>&1 ||
    { tail -n 30 "$BASE/pip-bench.log" >&2; die "pip install of the benchmark clients failed"; }
  echo "$want" >"$ROOTFS$STATE/bench.stamp"
}

# -- the container ------------------------------------------------------------------
bridge_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($HOST_ADDR/$PREFIX, no NAT)"
    ip link add "$BRIDGE" type bridge
  fi
  ip -4 addr show dev "$BRIDGE" | grep -q "inet $HOST_ADDR/$PREFIX" ||
    ip addr add "$HOST_ADDR/$PREFIX" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

write_config() {
  mkdir -p "$LXCPATH/$NAME"
  local cfg=$LXCPATH/$NAME/config tmp hw
  hw=$(IFS=. read -r _ b c <<<"$NET"; printf '02:65:6b:%02x:%02x:02' "$b" "$c")
  tmp=$(mktemp)
  cat >"$tmp" <<EOF
# enginekit's test host (written by scripts/testhost.sh; rewritten on every run)
lxc.uts.name = $NAME
lxc.rootfs.path = dir:$ROOTFS
lxc.arch = linux64
# privileged, with nesting
lxc.apparmor.profile = unconfined
lxc.apparmor.allow_nesting = 1
lxc.cap.drop =
lxc.cgroup.devices.allow = a
lxc.mount.auto = proc:rw sys:rw
# /run empty at every start, as a booted system has it: the engines' runtime
# state (Podman's, keyed to the boot id) never outlives the container.
lxc.mount.entry = tmpfs run tmpfs rw,nosuid,nodev,mode=755 0 0
lxc.autodev = 1
lxc.pty.max = 1024
lxc.tty.max = 0
lxc.console.path = none
# an init that reaps (a dockerd killed with SIGKILL must not stay a zombie)
lxc.init.cmd = /usr/bin/catatonit -P
lxc.init.cwd = /
lxc.log.file = $BASE/lxc-$NAME.log
lxc.log.level = WARN
# its own bridge, a static address, no gateway: no route out
lxc.net.0.type = veth
lxc.net.0.link = $BRIDGE
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.net.0.hwaddr = $hw
lxc.net.0.ipv4.address = $CT_ADDR/$PREFIX
EOF
  if ! cmp -s "$tmp" "$cfg"; then
    mv "$tmp" "$cfg"
    if running; then log "container config changed: takes effect at its next start"; fi
  else
    rm -f "$tmp"
  fi
}

running() { [ "$(lxc-info -P "$LXCPATH" -n "$NAME" -sH 2>/dev/null)" = RUNNING ]; }

start_container() {
  local state
  state=$(lxc-info -P "$LXCPATH" -n "$NAME" -sH 2>/dev/null || true)
  [ "$state" != FROZEN ] || lxc-unfreeze -P "$LXCPATH" -n "$NAME"
  running && return 0
  # A fresh start: nothing in /run may survive it (stale pid files, podman's
  # state). /run is a plain directory of the rootfs, not a tmpfs, so that the
  # sockets are reachable from this machine as ROOT/run/...
  find "$ROOTFS/run" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
  log "starting container $NAME"
  lxc-start -P "$LXCPATH" -n "$NAME" -d || {
    tail -n 20 "$BASE/lxc-$NAME.log" >&2; die "lxc-start failed"; }
  lxc-wait -P "$LXCPATH" -n "$NAME" -s RUNNING -t 30 || die "container did not reach RUNNING"
}

# inner CMD...: run inside as root, argument list, clean env, cwd $INNER_SRC
inner() {
  lxc-attach -P "$LXCPATH" -n "$NAME" --clear-env \
    -v PATH="$INNER_PATH" -v HOME=/root -v LANG=C.UTF-8 -v TERM="${TERM:-dumb}" \
    -- /usr/bin/env --chdir="$INNER_SRC" "$@"
}

start_engines() {
  inner /usr/local/sbin/enginekit-testhost-engines &&
    # Rootless Podman for the user ekrootless (uid 1000): its own service and store.
    inner bash "$INNER_SRC/scripts/rootless-podman.sh" start >/dev/null
}

versions() {
  inner /bin/sh -c '
    for s in /run/docker.sock /run/docker-containerd.sock; do
      v=$(timeout 10 docker -H unix://$s version --format "{{.Server.Version}} (API {{.Server.APIVersion}}, min API {{.Server.MinAPIVersion}})" 2>/dev/null) || v="not answering"
      st=$(timeout 10 docker -H unix://$s info --format "{{range .DriverStatus}}{{if eq (index . 0) \"driver-type\"}}{{index . 1}}{{end}}{{end}}" 2>/dev/null || true)
      echo "docker  $s: $v${st:+ [$st]}"
    done
    echo "podman  $(podman --remote --url unix:///run/podman/podman.sock version --format "{{.Server.Version}} (API {{.Server.APIVersion}})" 2>/dev/null || echo not answering)"
    u=$(id -u ekrootless 2>/dev/null) && echo "podman  rootless (ekrootless, unix:///run/user/$u/podman/podman.sock): $(podman --remote --url unix:///run/user/$u/podman/podman.sock version --format "{{.Server.Version}}" 2>/dev/null || echo not answering)"
    echo "lxc     $(lxc-start --version 2>/dev/null) (lxcbr0 $(ip -4 -br addr show lxcbr0 2>/dev/null | awk "{print \$3}"))"
    echo "python  $('"$INNER_VENV"'/bin/python --version 2>&1 | cut -d" " -f2) ($('"$INNER_VENV"'/bin/python -c "import sys; print(sys.executable)" 2>/dev/null))"
    echo "kernel  $(uname -r), cgroups: $(ls /sys/fs/cgroup | tr "\n" " ")"
  ' | sed 's/^/[testhost] /'
}

cmd_up() {
  need_root
  local t0=$SECONDS
  host_tools
  mkdir -p "$BASE"
  exec 9>"$BASE.lock"
  flock 9
  build_rootfs
  configure_rootfs
  install_packages
  configure_engines
  sync_checkout
  install_venv
  bridge_up
  write_config
  start_container
  start_engines || die "an engine did not start (logs: $ROOTFS/var/log/enginekit/)"
  flock -u 9
  log "up in $((SECONDS - t0))s"
  versions
}

# The engines the contract suite runs on by default: every engine of the test
# host as a remote engine, reached at the container's own address (sshd and the
# TLS dockerd inside; a client key and certificates made per run by
# enginekit-testhost-remote): Docker over ssh (classic store), Docker over TLS
# (containerd store), rootful and rootless Podman over ssh, LXC over ssh.
remote_engines() {
  local uid
  uid=$(inner id -u ekrootless)
  printf '%s' "docker+ssh://root@$CT_ADDR,docker+tcp://$CT_ADDR:2376,podman+ssh://root@$CT_ADDR"
  printf '%s' ",podman+ssh://ekrootless@$CT_ADDR/run/user/$uid/podman/podman.sock,lxc+ssh://root@$CT_ADDR"
}

cmd_test() {
  need_root
  running || die "the test host is not running: scripts/testhost.sh up"
  exec 9>"$BASE.lock"; flock 9
  sync_checkout
  install_venv
  flock -u 9
  versions
  local inside=(/usr/bin/env ENGINEKIT_SKIP_SETUP=1 ENGINEKIT_SKIP_LINT=1)
  if [ -n "${ENGINEKIT_TESTHOST_ENGINES:-}" ]; then
    log "suite inside on: $ENGINEKIT_TESTHOST_ENGINES"
    inner "${inside[@]}" ENGINEKIT_TEST_ENGINES="$ENGINEKIT_TESTHOST_ENGINES" bash scripts/test.sh "$@"
    return
  fi
  local kit=/run/enginekit-ci status=0 remote env_lines
  remote=$(remote_engines)
  env_lines=$(inner /usr/local/sbin/enginekit-testhost-remote prepare "$kit" "$CT_ADDR") ||
    die "could not make the remote engines ready (sshd, TLS dockerd)"
  # shellcheck disable=SC2064
  trap "inner /usr/local/sbin/enginekit-testhost-remote cleanup '$kit' || true" EXIT
  log "adapter tests and fault scenarios inside, on the local sockets: $DEFAULT_ENGINES"
  inner "${inside[@]}" ENGINEKIT_TEST_ENGINES="$DEFAULT_ENGINES" ENGINEKIT_TEST_PARTS=adapters,faults \
    bash scripts/test.sh || status=1
  log "core tests and the contract suite inside, on remote engines: $remote"
  # shellcheck disable=SC2086 # env_lines: NAME=VALUE lines without spaces
  inner "${inside[@]}" ENGINEKIT_TEST_ENGINES="$remote" ENGINEKIT_TEST_PARTS=tests ENGINEKIT_TEST_FAULTS= \
    DOCKER_TLS_VERIFY=1 $env_lines bash scripts/test.sh "$@" || status=1
  return $status
}

cmd_bench() {
  need_root
  running || die "the test host is not running: scripts/testhost.sh up"
  exec 9>"$BASE.lock"; flock 9
  sync_checkout
  install_venv
  install_bench_requirements
  flock -u 9
  versions
  if [ "$#" -eq 0 ]; then
    # bench_engines.py takes engine names (docker is the classic-store dockerd).
    set -- --engine docker --engine podman --engine lxc
  fi
  inner "$INNER_VENV/bin/python" benchmarks/bench_engines.py "$@"
}

cmd_destroy() {
  exec 9>"$BASE.lock"; flock 9
  lxc-stop -P "$LXCPATH" -n "$NAME" -k 2>/dev/null || true
  umount_below "$ROOTFS"
  # Not lxc-destroy: the rootfs is removed here, on this file system only.
  rm -rf --one-file-system "$ROOTFS" "$BASE/rootfs.new" "$BASE/stage" "$LXCPATH"
  rm -f "$BASE"/*.log
  ip link del "$BRIDGE" 2>/dev/null || true
  log "destroyed $NAME ($BASE)"
}

main() {
  case "${1:-up}" in
    up) shift || true; cmd_up ;;
    exec) shift; [ "$#" -gt 0 ] || die "usage: $0 exec CMD [ARGS...]"; running || die "not running: $0 up"; inner "$@" ;;
    test) shift; cmd_test "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    sync) need_root; exec 9>"$BASE.lock"; flock 9; sync_checkout; install_venv ;;
    versions) running || die "not running: $0 up"; versions ;;
    status) if running; then echo "running ($LXCPATH/$NAME, $ROOTFS)"; versions; else echo "not running"; exit 1; fi ;;
    stop) need_root; lxc-stop -P "$LXCPATH" -n "$NAME" -k 2>/dev/null || true ;;
    destroy) need_root; cmd_destroy ;;
    -h|--help|help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" ;;
    *) die "unknown command: $1 (up, exec, test, bench, sync, versions, status, stop, destroy)" ;;
  esac
}

# On one line, after everything is read: an edit to this file while it runs
# cannot change what runs.
main "$@"; exit $?
