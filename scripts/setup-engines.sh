#!/usr/bin/env bash
# Installs and starts the engines enginekit drives (Docker, Podman, LXC) and the
# OCI tools, on a Debian machine without systemd. Idempotent: run it as often as
# you like. Must run as root.
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-engines.sh must run as root" >&2
  exit 1
fi

PACKAGES=(docker.io podman uidmap catatonit lxc lxc-dev skopeo umoci jq
          busybox-static docker-registry iptables iproute2 curl)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Podman: the machine's hard open-files limit is below podman's default.
conf=/etc/containers/containers.conf
mkdir -p /etc/containers
if ! grep -q '^default_ulimits' "$conf" 2>/dev/null; then
  log "writing podman default_ulimits"
  if grep -q '^\[containers\]' "$conf" 2>/dev/null; then
    sed -i '/^\[containers\]/a default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]' "$conf"
  else
    printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n' >>"$conf"
  fi
fi

# Docker daemon.
if ! timeout 5 /usr/bin/docker -H unix:///var/run/docker.sock version >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log/enginekit
  # From /: a daemon's working directory is inherited by what it starts.
  (cd / && exec nohup /usr/sbin/dockerd >/var/log/enginekit/dockerd.log 2>&1) &
  for _ in $(seq 1 60); do
    timeout 5 /usr/bin/docker -H unix:///var/run/docker.sock version >/dev/null 2>&1 && break
    sleep 0.5
  done
  timeout 5 /usr/bin/docker -H unix:///var/run/docker.sock version >/dev/null 2>&1 || {
    echo "dockerd did not start; see /var/log/enginekit/dockerd.log" >&2; tail -20 /var/log/enginekit/dockerd.log >&2; exit 1; }
fi

# Podman REST service.
if ! curl -fsS --unix-socket /run/podman/podman.sock http://d/_ping >/dev/null 2>&1; then
  log "starting podman system service"
  mkdir -p /run/podman /var/log/enginekit
  rm -f /run/podman/podman.sock
  # From /: conmon inherits the service's working directory and writes its
  # `oom` marker there, which must not be the caller's folder.
  (cd / && exec nohup podman system service --time=0 unix:///run/podman/podman.sock \
    >/var/log/enginekit/podman.log 2>&1) &
  for _ in $(seq 1 60); do
    curl -fsS --unix-socket /run/podman/podman.sock http://d/_ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS --unix-socket /run/podman/podman.sock http://d/_ping >/dev/null 2>&1 || {
    echo "podman service did not start; see /var/log/enginekit/podman.log" >&2; exit 1; }
fi

# LXC bridge (lxcbr0), for containers on network "bridge".
if ! ip link show lxcbr0 >/dev/null 2>&1; then
  log "starting lxc-net"
  /usr/libexec/lxc/lxc-net start >/dev/null 2>&1 || log "lxc-net start failed (bridge networking on LXC unavailable)"
fi

log "engines ready"
