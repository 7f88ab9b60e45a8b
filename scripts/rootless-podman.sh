#!/usr/bin/env bash
# A rootless Podman service for a test user, on a Debian machine without systemd.
#
#   bash scripts/rootless-podman.sh [start]   set up (idempotent) and start the service
#   bash scripts/rootless-podman.sh stop      stop the service (and the user's pause process)
#   bash scripts/rootless-podman.sh status    exit 0 when the service answers
#   bash scripts/rootless-podman.sh address   print its address (podman+unix://...)
#   bash scripts/rootless-podman.sh test [PYTEST ARGS]
#                                             the contract suite run by the user itself,
#                                             on what connect("podman") finds for it
#
# `test` runs in this checkout with its .venv when the user can read both (the
# test host's /opt/enginekit); else it copies the working tree to
# ENGINEKIT_ROOTLESS_COPY (default /tmp/ek-rootless) and makes a venv there as
# the user (PYTHON, default python3; pip as configured for the machine).
# ENGINEKIT_ROOTLESS_ENGINES (default podman) chooses the engines there.
#
# Must run as root. `start` makes, when missing:
# - the user ENGINEKIT_ROOTLESS_USER (default ekrootless), its uid chosen free by
#   useradd, with a home directory (the user's image store lives there);
# - subordinate uid and gid ranges for it in /etc/subuid and /etc/subgid
#   (65536 ids after every range already given out);
# - the packages rootless Podman needs (uidmap: newuidmap/newgidmap; slirp4netns
#   for Podman 4's rootless network, passt for Podman 5's; fuse-overlayfs where
#   the kernel cannot mount overlayfs inside a user namespace), installed only
#   when missing (the test host has no package source: its image must hold them);
# - /dev/net/tun open to users (0666, as udev makes it; made if missing);
# - its XDG_RUNTIME_DIR, /run/user/<uid> (owned by it, mode 0700);
# - without systemd, ~/.config/containers/containers.conf with the cgroupfs
#   cgroup manager and file events (no systemd user session to ask);
# then starts `podman system service --time=0 unix:///run/user/<uid>/podman/podman.sock`
# as that user in its own session (setsid, nohup), logging to
# $ENGINEKIT_LOG_DIR/podman-rootless.log (default /var/log/enginekit), and waits
# until it answers. A service that already answers is left alone.
#
# The rootful service (/run/podman/podman.sock) and every other engine are never
# touched. Root's clients reach the rootless service through its socket:
#   ENGINEKIT_TEST_ENGINES=podman+unix:///run/user/<uid>/podman/podman.sock
set -euo pipefail

USER_NAME=${ENGINEKIT_ROOTLESS_USER:-ekrootless}
LOG_DIR=${ENGINEKIT_LOG_DIR:-/var/log/enginekit}
WAIT_SECONDS=60
RANGE=65536

log() { printf '[rootless-podman] %s\n' "$*" >&2; }
die() {
  printf '[rootless-podman] %s\n' "$*" >&2
  exit 1
}

user_uid() { id -u "$USER_NAME"; }
user_gid() { id -g "$USER_NAME"; }
user_home() { getent passwd "$USER_NAME" | cut -d: -f6; }
runtime_dir() { printf '/run/user/%s\n' "$(user_uid)"; }
socket_path() { printf '%s/podman/podman.sock\n' "$(runtime_dir)"; }
pid_file() { printf '%s/podman/service.pid\n' "$(runtime_dir)"; }
log_file() { printf '%s/podman-rootless.log\n' "$LOG_DIR"; }

# as_user CMD...: run CMD as the test user, with a clean environment of its own.
as_user() {
  local home
  home=$(user_home)
  setpriv --reuid="$(user_uid)" --regid="$(user_gid)" --init-groups \
    env -i HOME="$home" USER="$USER_NAME" LOGNAME="$USER_NAME" SHELL=/bin/sh \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    XDG_RUNTIME_DIR="$(runtime_dir)" "$@"
}

ok() { curl -fsS --max-time 10 --unix-socket "$(socket_path)" http://d/_ping >/dev/null 2>&1; }

wait_until() {
  local secs=$1 i
  shift
  for ((i = 0; i < secs * 2; i++)); do
    "$@" && return 0
    sleep 0.5
  done
  "$@"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# install PACKAGE...: apt-get install (an index is fetched once per run).
install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${_APT_UPDATED:-}" ]; then
    apt-get update -qq || true
    _APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# install_packages: what is missing of Podman, uidmap, catatonit (the init of
# its containers) and the rootless network helper its version uses (slirp4netns
# for Podman 4, pasta from passt for Podman 5).
install_packages() {
  local wanted=(podman uidmap catatonit curl util-linux) missing=() p major
  installed podman || install podman || die "cannot install podman (no package source here?)"
  major=$(podman --version 2>/dev/null | sed -n 's/.* \([0-9][0-9]*\)\..*/\1/p')
  if [ "${major:-5}" -ge 5 ]; then wanted+=(passt); else wanted+=(slirp4netns); fi
  for p in "${wanted[@]}"; do
    installed "$p" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    install "${missing[@]}" || die "cannot install ${missing[*]} (no package source here?)"
  fi
}

# native_overlay: the kernel mounts overlayfs inside a user namespace (5.13+, or a
# distribution kernel that allows it). Tried, not guessed from the version.
native_overlay() {
  local dir ok=1
  dir=$(mktemp -d /tmp/ek-ovl.XXXXXX)
  mkdir -p "$dir"/{l,u,w,m}
  chown -R "$(user_uid):$(user_gid)" "$dir"
  if as_user unshare --user --map-root-user --mount \
    mount -t overlay overlay -o "lowerdir=$dir/l,upperdir=$dir/u,workdir=$dir/w" "$dir/m" \
    >/dev/null 2>&1; then
    ok=0
  fi
  rm -rf "$dir"
  return $ok
}

ensure_user() {
  if ! id -u "$USER_NAME" >/dev/null 2>&1; then
    log "creating user $USER_NAME"
    useradd --create-home --user-group --shell /bin/bash "$USER_NAME"
  fi
  local home
  home=$(user_home)
  [ -d "$home" ] || {
    mkdir -p "$home"
    chown "$(user_uid):$(user_gid)" "$home"
    chmod 0750 "$home"
  }
}

# next_free FILE: the first id after every range FILE gives out (at least 100000).
next_free() {
  awk -F: 'BEGIN { n = 100000 } NF >= 3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ {
    if ($2 + $3 > n) n = $2 + $3 } END { print n }' "$1"
}

# has_range FILE: FILE gives the user (by name or uid) at least RANGE ids.
has_range() {
  awk -F: -v n="$USER_NAME" -v u="$(user_uid)" -v want="$RANGE" \
    '($1 == n || $1 == u) && $3 >= want { found = 1 } END { exit !found }' "$1"
}

ensure_subids() {
  local changed=1 file start flag
  for file in /etc/subuid /etc/subgid; do
    touch "$file"
    if ! has_range "$file"; then
      start=$(next_free "$file")
      flag=--add-subuids
      [ "$file" = /etc/subgid ] && flag=--add-subgids
      log "giving $USER_NAME ids $start-$((start + RANGE - 1)) in $file"
      usermod "$flag" "$start-$((start + RANGE - 1))" "$USER_NAME"
      changed=0
    fi
  done
  return $changed
}

ensure_runtime_dir() {
  local dir
  dir=$(runtime_dir)
  mkdir -p /run/user
  chmod 0755 /run/user
  mkdir -p "$dir"
  chown "$(user_uid):$(user_gid)" "$dir"
  chmod 0700 "$dir"
  as_user mkdir -p "$dir/podman"
}

# ensure_tun: /dev/net/tun, open to every user as udev makes it (slirp4netns and
# pasta give rootless containers their network through it). Without udev the
# kernel's node is root's alone (0600), and a container's /dev may lack it.
ensure_tun() {
  if [ ! -c /dev/net/tun ]; then
    log "making /dev/net/tun"
    mkdir -p /dev/net
    mknod -m 0666 /dev/net/tun c 10 200
  fi
  if [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    log "opening /dev/net/tun to users (0666, as udev does)"
    chmod 0666 /dev/net/tun
  fi
}

# configure: containers.conf for the user where no systemd runs (Podman would
# otherwise ask a systemd user session for cgroups and the journal for events).
configure() {
  local home conf dir
  home=$(user_home)
  dir="$home/.config/containers"
  conf="$dir/containers.conf"
  as_user mkdir -p "$dir"
  if [ -d /run/systemd/system ]; then
    return 0
  fi
  if ! grep -q 'enginekit' "$conf" 2>/dev/null; then
    log "writing $conf (cgroupfs, file events: no systemd here)"
    as_user sh -c 'cat >"$1"' sh "$conf" <<'EOF'
# Written by enginekit's scripts/rootless-podman.sh: this machine runs no
# systemd, so no user session can hand out cgroups or keep a journal.
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  fi
}

# configure_storage: the overlay driver (Podman 4.3 would otherwise pick vfs, a full
# copy of every layer per container), native where the kernel mounts overlayfs
# inside a user namespace, else through fuse-overlayfs (with /dev/fuse), else vfs.
# A store the user made earlier with another driver is emptied (it holds only
# this user's objects).
configure_storage() {
  local conf want driver=overlay program="" had
  conf="$(user_home)/.config/containers/storage.conf"
  if ! native_overlay; then
    if [ -c /dev/fuse ] && { installed fuse-overlayfs || install fuse-overlayfs; }; then
      log "the kernel cannot mount overlayfs in a user namespace: using fuse-overlayfs"
      program=/usr/bin/fuse-overlayfs
    else
      log "no overlayfs in a user namespace and no fuse-overlayfs: using vfs (slow)"
      driver=vfs
    fi
  fi
  want=$(printf '%s\n' \
    "# Written by enginekit's scripts/rootless-podman.sh." \
    '[storage]' "driver = \"$driver\"" \
    "${program:+[storage.options.overlay]}" "${program:+mount_program = \"$program\"}")
  [ "$(cat "$conf" 2>/dev/null)" = "$want" ] && return 0
  had=$(ls "$(user_home)/.local/share/containers/storage" 2>/dev/null | grep -E '^(vfs|overlay)$' || true)
  if [ -n "$had" ]; then
    log "emptying $USER_NAME's image store (made with another storage set-up)"
    stop
    as_user podman system reset --force >/dev/null 2>&1 || true
  fi
  log "writing $conf ($driver${program:+ through fuse-overlayfs})"
  printf '%s\n' "$want" | as_user sh -c 'cat >"$1"' sh "$conf"
}

# pause_pid: the user's live Podman pause process (it holds the user namespace and
# the rootless network namespace between calls), or nothing.
pause_pid() {
  local pid
  pid=$({ tr -cd '0-9' <"$(runtime_dir)/libpod/tmp/pause.pid"; } 2>/dev/null) || true
  [ -n "$pid" ] && [ "$(stat -c %u "/proc/$pid" 2>/dev/null)" = "$(user_uid)" ] &&
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = catatonit ] && printf '%s\n' "$pid"
  return 0
}

# clear_stale_netns: with no pause process, the rootless network namespace Podman
# recorded is gone (it lived in that process's namespaces); Podman would try to
# use the stale record ("failed to mount runtime directory for rootless netns").
clear_stale_netns() {
  [ -n "$(pause_pid)" ] && return 0
  rm -rf "$(runtime_dir)"/netns/rootless-netns-* "$(runtime_dir)"/libpod/tmp/rootless-netns \
    "$(runtime_dir)"/libpod/tmp/rootless-netns.lock
}

# service_pids: pids of this user's live `podman system service` processes.
service_pids() {
  local pid
  for pid in $(pgrep -u "$(user_uid)" -f '^podman system service' 2>/dev/null || true); do
    # (not a zombie: nothing may reap it on a machine without an init that does)
    case $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) in
      Z | X | x | "") continue ;;
    esac
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = podman ] && printf '%s\n' "$pid"
  done
  return 0
}

start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  install_packages
  ensure_user
  local migrate=1
  ensure_subids && migrate=0
  ensure_runtime_dir
  ensure_tun
  configure
  configure_storage
  if ok; then
    log "the service of $USER_NAME answers at unix://$(socket_path)"
    print_address
    return 0
  fi
  local holders
  holders=$(service_pids | tr '\n' ' ')
  if [ -n "${holders// /}" ]; then
    log "the service (pid ${holders% }) runs but does not answer yet: waiting"
    wait_until "$WAIT_SECONDS" ok || die "pid ${holders% } runs but does not answer; \`$0 stop\` and start again"
    print_address
    return 0
  fi
  if [ "$migrate" = 0 ]; then
    # New id ranges: a user namespace made before them must be made again.
    as_user podman system migrate >/dev/null 2>&1 || true
  fi
  clear_stale_netns
  mkdir -p "$LOG_DIR"
  rm -f "$(socket_path)"
  log "starting the rootless podman service of $USER_NAME (uid $(user_uid))"
  local sock home
  sock=$(socket_path)
  home=$(user_home)
  # Its own session (setsid), from the user's home (conmon inherits the working
  # directory and writes there); root opens the log, the user never needs to.
  (cd "$home" && exec setsid nohup setpriv --reuid="$(user_uid)" --regid="$(user_gid)" \
    --init-groups env -i HOME="$home" USER="$USER_NAME" LOGNAME="$USER_NAME" SHELL=/bin/sh \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin XDG_RUNTIME_DIR="$(runtime_dir)" \
    podman system service --time=0 "unix://$sock" \
    </dev/null >>"$(log_file)" 2>&1) &
  echo $! >"$(pid_file)"
  chown "$(user_uid):$(user_gid)" "$(pid_file)"
  wait_until "$WAIT_SECONDS" ok || {
    tail -20 "$(log_file)" >&2 || true
    die "the service did not start; see $(log_file)"
  }
  print_address
}

print_address() { printf 'podman+unix://%s\n' "$(socket_path)"; }

stop() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  id -u "$USER_NAME" >/dev/null 2>&1 || return 0
  local pids pid i
  pids=$(service_pids)
  if [ -n "$pids" ]; then
    log "stopping the rootless podman service (pid $(echo $pids))"
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 40; i++)); do
      [ -z "$(service_pids)" ] && break
      sleep 0.25
    done
    for pid in $(service_pids); do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  # Podman's pause process holds the user's namespaces between calls.
  pid=$(pause_pid)
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  rm -f "$(socket_path)" "$(pid_file)"
}

# -- the contract suite as the user itself ---------------------------------------
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COPY=${ENGINEKIT_ROOTLESS_COPY:-/tmp/ek-rootless}

# user_can_run_here: the user reads this checkout and can run its venv's Python
# with enginekit and the Podman adapter importable.
user_can_run_here() {
  [ -x "$ROOT/.venv/bin/python" ] &&
    as_user sh -c 'cd "$1" && exec .venv/bin/python -c "import enginekit, enginekit_podman, pytest"' \
      sh "$ROOT" >/dev/null 2>&1
}

# copy_checkout: the working tree (tracked and new files, edits included; no
# .venv, no caches) into COPY, owned by the user, with a venv of the user's own.
copy_checkout() {
  local stage want have
  log "copying the checkout to $COPY (the user cannot read $ROOT)"
  stage=$(mktemp -d /tmp/ek-rootless-stage.XXXXXX)
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
      tar --null -T - -cf -) | tar -xf - -C "$stage"
  else
    tar -C "$ROOT" --exclude=./.venv --exclude=__pycache__ --exclude=.mypy_cache \
      --exclude=.ruff_cache --exclude=.hypothesis --exclude=.pytest_cache -cf - . |
      tar -xf - -C "$stage"
  fi
  if [ -L "$COPY" ] || { [ -e "$COPY" ] && [ "$(stat -c %u "$COPY")" != "$(user_uid)" ]; }; then
    die "$COPY is not a directory of $USER_NAME's; remove it or set ENGINEKIT_ROOTLESS_COPY"
  fi
  as_user mkdir -p "$COPY"
  as_user chmod 0755 "$COPY"
  # Files gone from the tree go from the copy; the venv stays.
  as_user find "$COPY" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
  tar -C "$stage" -cf - . | as_user tar -xf - -C "$COPY"
  rm -rf "$stage"
  want=$(cat "$COPY/pyproject.toml" "$COPY/adapters/podman/pyproject.toml" | sha256sum | cut -c1-16)
  have=$(cat "$COPY/.venv/stamp" 2>/dev/null || true)
  if [ ! -x "$COPY/.venv/bin/python" ] || [ "$want" != "$have" ]; then
    log "making the user's venv in $COPY/.venv"
    as_user "${PYTHON:-python3}" -m venv "$COPY/.venv"
    as_user sh -c 'cd "$1" && exec .venv/bin/python -m pip install -q --disable-pip-version-check \
      -e ".[test]" -e adapters/podman' sh "$COPY" ||
      die "pip install as $USER_NAME failed"
    printf '%s\n' "$want" | as_user sh -c 'cat >"$1"' sh "$COPY/.venv/stamp"
  fi
}

# suite [PYTEST ARGS]: the contract suite run by the user, on the engine
# connect("podman") finds for it ($XDG_RUNTIME_DIR/podman/podman.sock).
suite() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  start >/dev/null
  local where=$ROOT
  if ! user_can_run_here; then
    copy_checkout
    where=$COPY
  fi
  log "the contract suite as $USER_NAME in $where (ENGINEKIT_TEST_ENGINES=${ENGINEKIT_ROOTLESS_ENGINES:-podman})"
  cd "$where"
  as_user env ENGINEKIT_TEST_ENGINES="${ENGINEKIT_ROOTLESS_ENGINES:-podman}" \
    .venv/bin/python -m pytest -p no:cacheprovider tests/test_contract.py "$@"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) ok ;;
    address) print_address ;;
    test)
      shift
      suite "$@"
      ;;
    *) die "usage: $0 [start|stop|status|address|test [PYTEST ARGS]]" ;;
  esac
fi
