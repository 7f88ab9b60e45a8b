#!/usr/bin/env bash
# Installs and starts the engines enginekit drives (Docker, Podman, LXC) and the
# OCI tools, on a Debian machine without systemd. Idempotent: run it as often as
# you like. Must run as root.
#
# After a crash: an engine that was killed (kill -9, OOM) may leave its pid file,
# its socket, and on a machine whose PID 1 reaps no orphans even a zombie with the
# old pid. dockerd refuses to start while its pid file names a process that exists
# ("pid file found"), and it reuses a containerd whose pid file it finds. So before
# starting an engine, a pid file or socket is removed unless a live process of that
# engine (not a zombie, the right name) holds it. A live engine that does not
# answer is never killed: the script waits for it, then stops with a message.
#
# Sourced (`. scripts/setup-engines.sh`), it only defines its functions (tests use
# them on fake pid files); run, it does the work. ENGINEKIT_DOCKER_SOCK,
# ENGINEKIT_DOCKER_PIDFILE, ENGINEKIT_CONTAINERD_PIDFILE, ENGINEKIT_PODMAN_SOCK,
# ENGINEKIT_DOCKERD and ENGINEKIT_LOG_DIR change its paths (for those tests).
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

# live PID [COMM]: PID is a process that runs (not a zombie, not dead), and is
# named COMM if COMM is given.
live() {
  local pid=${1:-} comm=${2:-} state
  [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  case $state in Z | X | x | "") return 1 ;; esac
  [ -z "$comm" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]
}

# pidfile_pid FILE: the pid FILE names (digits only), or nothing.
pidfile_pid() {
  local text
  text=$(head -c 32 "$1" 2>/dev/null | tr -d ' \t\r\n') || true
  [[ $text =~ ^[0-9]+$ ]] && printf '%s\n' "$text"
  return 0
}

# clear_stale_pidfile FILE COMM: remove FILE unless a live COMM process holds it.
# Returns 0 when FILE is gone (or was never there), 1 when a live COMM holds it
# (its pid is printed on stdout).
clear_stale_pidfile() {
  local file=$1 comm=$2 pid
  [ -e "$file" ] || [ -L "$file" ] || return 0
  pid=$(pidfile_pid "$file")
  if live "$pid" "$comm"; then
    printf '%s\n' "$pid"
    return 1
  fi
  log "removing stale $file (pid ${pid:-none} is not a live $comm)"
  rm -f "$file"
}

# live_podman_services: pids of live `podman system service` processes serving
# $PODMAN_SOCK on this machine. Not another socket's (a rootless user's service)
# and not another mount namespace's: a system container's processes (the test
# host's own podman service, on the same path inside it) show in this /proc too.
live_podman_services() {
  local pid ns
  ns=$(readlink /proc/self/ns/mnt 2>/dev/null || true)
  for pid in $(pgrep -f '^podman system service' 2>/dev/null || true); do
    live "$pid" podman || continue
    [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)" = "$ns" ] || continue
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "unix://$PODMAN_SOCK" || continue
    printf '%s\n' "$pid"
  done
  return 0
}

DOCKER_SOCK=${ENGINEKIT_DOCKER_SOCK:-/var/run/docker.sock}
DOCKER_PIDFILE=${ENGINEKIT_DOCKER_PIDFILE:-/var/run/docker.pid}
CONTAINERD_PIDFILE=${ENGINEKIT_CONTAINERD_PIDFILE:-/var/run/docker/containerd/containerd.pid}
PODMAN_SOCK=${ENGINEKIT_PODMAN_SOCK:-/run/podman/podman.sock}
DOCKERD=${ENGINEKIT_DOCKERD:-/usr/sbin/dockerd}
LOG_DIR=${ENGINEKIT_LOG_DIR:-/var/log/enginekit}
WAIT_SECONDS=60

docker_ok() { timeout 5 /usr/bin/docker -H "unix://$DOCKER_SOCK" version >/dev/null 2>&1; }
podman_ok() { curl -fsS --max-time 10 --unix-socket "$PODMAN_SOCK" http://d/_ping >/dev/null 2>&1; }

# wait_until SECONDS CMD...: run CMD every half second until it succeeds.
wait_until() {
  local secs=$1 i
  shift
  for ((i = 0; i < secs * 2; i++)); do
    "$@" && return 0
    sleep 0.5
  done
  "$@"
}

install_packages() {
  # (slirp4netns and passt: rootless Podman 4 and 5 networks, scripts/rootless-podman.sh)
  local PACKAGES=(docker.io podman uidmap catatonit slirp4netns passt lxc lxc-dev skopeo umoci jq
    busybox-static docker-registry iptables iproute2 curl
    openssh-client openssh-server socat openssl hyperfine)
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

configure_podman() {
  # Podman: the machine's hard open-files limit is below podman's default.
  local conf=/etc/containers/containers.conf
  mkdir -p /etc/containers
  if ! grep -q '^default_ulimits' "$conf" 2>/dev/null; then
    log "writing podman default_ulimits"
    if grep -q '^\[containers\]' "$conf" 2>/dev/null; then
      sed -i '/^\[containers\]/a default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]' "$conf"
    else
      printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n' >>"$conf"
    fi
  fi
}

start_docker() {
  docker_ok && return 0
  local holder
  if ! holder=$(clear_stale_pidfile "$DOCKER_PIDFILE" dockerd); then
    # A live dockerd holds the pid file: it may be starting (or shutting down).
    log "dockerd (pid $holder) runs but does not answer yet: waiting"
    wait_until "$WAIT_SECONDS" docker_ok && return 0
    echo "dockerd (pid $holder) runs but does not answer on $DOCKER_SOCK;" \
      "stop it (kill $holder) and run this again; see $LOG_DIR/dockerd.log" >&2
    return 1
  fi
  # dockerd reuses the containerd its pid file names: a dead or zombie one would
  # make it wait for a socket nobody serves. A live one (orphaned by a killed
  # dockerd) is reused by the new dockerd.
  clear_stale_pidfile "$CONTAINERD_PIDFILE" containerd >/dev/null || true
  log "starting dockerd"
  mkdir -p "$LOG_DIR"
  # From /: a daemon's working directory is inherited by what it starts.
  (cd / && exec nohup "$DOCKERD" >>"$LOG_DIR/dockerd.log" 2>&1) &
  wait_until "$WAIT_SECONDS" docker_ok || {
    echo "dockerd did not start; see $LOG_DIR/dockerd.log" >&2
    tail -20 "$LOG_DIR/dockerd.log" >&2
    return 1
  }
}

start_podman() {
  podman_ok && return 0
  local holders
  holders=$(live_podman_services | tr '\n' ' ')
  if [ -n "${holders// /}" ]; then
    log "podman service (pid ${holders% }) runs but does not answer yet: waiting"
    wait_until "$WAIT_SECONDS" podman_ok && return 0
    echo "podman service (pid ${holders% }) runs but does not answer on $PODMAN_SOCK;" \
      "stop it and run this again; see $LOG_DIR/podman.log" >&2
    return 1
  fi
  log "starting podman system service"
  mkdir -p "$(dirname "$PODMAN_SOCK")" "$LOG_DIR"
  # The socket of a service that was killed stays behind: nobody serves it.
  rm -f "$PODMAN_SOCK"
  # From /: conmon inherits the service's working directory and writes its
  # `oom` marker there, which must not be the caller's folder.
  (cd / && exec nohup podman system service --time=0 "unix://$PODMAN_SOCK" \
    >>"$LOG_DIR/podman.log" 2>&1) &
  wait_until "$WAIT_SECONDS" podman_ok || {
    echo "podman service did not start; see $LOG_DIR/podman.log" >&2
    tail -20 "$LOG_DIR/podman.log" >&2
    return 1
  }
}

start_lxc_net() {
  # LXC bridge (lxcbr0), for containers on network "bridge".
  if ! ip link show lxcbr0 >/dev/null 2>&1; then
    log "starting lxc-net"
    /usr/libexec/lxc/lxc-net start >/dev/null 2>&1 ||
      log "lxc-net start failed (bridge networking on LXC unavailable)"
  fi
}

main() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-engines.sh must run as root" >&2
    exit 1
  fi
  install_packages
  configure_podman
  start_docker
  start_podman
  start_lxc_net
  log "engines ready"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
