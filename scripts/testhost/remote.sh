#!/bin/sh
# Runs INSIDE the test host (as root; installed there as
# /usr/local/sbin/enginekit-testhost-remote by scripts/testhost.sh).
# The test host's engines as remote engines, reached at its own address:
#   sshd                              ADDR:22 (keys only; root and ekrootless)
#   dockerd (containerd image store)  tcp://ADDR:2376 with TLS, client certificates verified
#
#   enginekit-testhost-remote prepare DIR ADDR   make a client key and TLS certificates for one
#                                                run in DIR (a new CA each time), authorise the
#                                                key, start sshd, restart the TLS dockerd with the
#                                                new certificates; print the environment for clients
#   enginekit-testhost-remote cleanup DIR        remove DIR and the key's authorisation
#   enginekit-testhost-remote certs ADDR         make the dockerd's certificates if missing
#                                                (before its first start; no client's)
#
# DIR holds ssh/config (for ENGINEKIT_SSH_CONFIG: the key and a known_hosts with
# the host key), tls/{ca,cert,key}.pem (for DOCKER_CERT_PATH). The CA's own key
# is removed once the certificates are signed. Nothing here listens beyond the
# container: ADDR is its own address on its private bridge.
set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ETC=/etc/enginekit-testhost
SSHD_CONFIG=$ETC/sshd_config
SSHD_PID=/run/enginekit-sshd.pid
TLS=$ETC/tls
LOG=/var/log/enginekit
ROOTLESS_USER=ekrootless

say() { printf '[testhost/remote] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }

wait_for() { # wait_for WHAT SECONDS CMD...
  what=$1; secs=$2; shift 2
  i=0
  while [ "$i" -lt $((secs * 4)) ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25; i=$((i + 1))
  done
  say "$what did not answer within ${secs}s"
  return 1
}

# -- sshd ---------------------------------------------------------------------
sshd_config() {
  mkdir -p "$ETC/ssh" /run/sshd
  chmod 755 "$ETC" "$ETC/ssh"
  [ -f "$ETC/ssh/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C enginekit-testhost -f "$ETC/ssh/host_ed25519"
  touch "$ETC/ssh/authorized_keys"
  chmod 644 "$ETC/ssh/authorized_keys"
  cat >"$SSHD_CONFIG.new" <<EOF
# enginekit's test host: keys only, for the remote-engine tests.
ListenAddress $1:22
HostKey $ETC/ssh/host_ed25519
AuthorizedKeysFile $ETC/ssh/authorized_keys
PidFile $SSHD_PID
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowStreamLocalForwarding yes
AllowTcpForwarding local
X11Forwarding no
MaxSessions 32
MaxStartups 64:30:128
LogLevel ERROR
EOF
  mv "$SSHD_CONFIG.new" "$SSHD_CONFIG"
}

sshd_ok() { ssh-keyscan -T 5 -t ed25519 "$1" 2>/dev/null | grep -q ssh-ed25519; }

start_sshd() {
  sshd_config "$1"
  /usr/sbin/sshd -t -f "$SSHD_CONFIG" || die "sshd refuses $SSHD_CONFIG"
  pid=$(cat "$SSHD_PID" 2>/dev/null || true)
  if alive "$pid"; then
    kill -HUP "$pid" # re-read the configuration (new connections only)
    wait_for sshd 30 sshd_ok "$1" && return 0
  fi
  say "starting sshd on $1:22"
  /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$LOG/sshd.log"
  wait_for sshd 30 sshd_ok "$1" || { tail -n 20 "$LOG/sshd.log" >&2; die "sshd did not start"; }
}

# A user whose password is locked ("!") may not log in by key either when
# sshd runs without PAM: "*" (no password, not locked) lets keys in.
unlock_for_keys() {
  id "$1" >/dev/null 2>&1 || return 0
  case "$(getent shadow "$1" | cut -d: -f2)" in
    '!'*) usermod -p '*' "$1" ;;
  esac
}

# -- TLS ------------------------------------------------------------------------
make_certs() { # make_certs DIR ADDR (DIR empty: the engine's side only)
  dir=$1; addr=$2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=enginekit test host CA" -keyout "$work/ca-key.pem" -out "$work/ca.pem" 2>/dev/null
  # The engine: its own address (and name) in subjectAltName.
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$addr" \
    -keyout "$work/server-key.pem" -out "$work/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s,DNS:enginekit-testhost\nextendedKeyUsage=serverAuth\n' "$addr" >"$work/server.ext"
  openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
    -CAcreateserial -days 2 -extfile "$work/server.ext" -out "$work/server-cert.pem" 2>/dev/null
  # The client.
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=enginekit-ci" \
    -keyout "$work/key.pem" -out "$work/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$work/client.ext"
  openssl x509 -req -in "$work/client.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
    -CAcreateserial -days 2 -extfile "$work/client.ext" -out "$work/cert.pem" 2>/dev/null
  mkdir -p "$TLS"
  chmod 700 "$TLS"
  install -m 644 "$work/ca.pem" "$TLS/ca.pem.new"
  install -m 644 "$work/server-cert.pem" "$TLS/server-cert.pem.new"
  install -m 600 "$work/server-key.pem" "$TLS/server-key.pem.new"
  for f in ca.pem server-cert.pem server-key.pem; do mv "$TLS/$f.new" "$TLS/$f"; done
  if [ -n "$dir" ]; then
    mkdir -p "$dir/tls"
    install -m 644 "$work/ca.pem" "$dir/tls/ca.pem"
    install -m 644 "$work/cert.pem" "$dir/tls/cert.pem"
    install -m 600 "$work/key.pem" "$dir/tls/key.pem"
  fi
  rm -rf "$work"
  trap - EXIT
}

# The containerd-store dockerd reads its certificates when it starts: stop it;
# the engines' start script starts it again (and repairs docker0).
restart_tls_dockerd() {
  pid=$(cat /run/docker-containerd.pid 2>/dev/null || true)
  if alive "$pid"; then
    kill -TERM "$pid"
    i=0; while alive "$pid" && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
    if alive "$pid"; then kill -KILL "$pid"; fi
  fi
  /usr/local/sbin/enginekit-testhost-engines
}

prepare() { # prepare DIR ADDR
  dir=$1; addr=$2
  case "$dir" in /*) ;; *) die "DIR must be absolute" ;; esac
  rm -rf "$dir"
  mkdir -p "$dir/ssh"
  chmod 700 "$dir"
  ssh-keygen -q -t ed25519 -N '' -C enginekit-ci -f "$dir/ssh/id_ed25519"
  sshd_config "$addr"
  install -m 644 "$dir/ssh/id_ed25519.pub" "$ETC/ssh/authorized_keys"
  unlock_for_keys "$ROOTLESS_USER"
  printf '%s %s\n' "$addr" "$(cut -d' ' -f1-2 "$ETC/ssh/host_ed25519.pub")" >"$dir/ssh/known_hosts"
  cat >"$dir/ssh/config" <<EOF
Host $addr
  IdentityFile $dir/ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $dir/ssh/known_hosts
  StrictHostKeyChecking yes
  PasswordAuthentication no
EOF
  start_sshd "$addr"
  make_certs "$dir" "$addr"
  restart_tls_dockerd
  printf 'ENGINEKIT_SSH_CONFIG=%s\nDOCKER_CERT_PATH=%s\n' "$dir/ssh/config" "$dir/tls"
}

cleanup() { # cleanup DIR
  case "$1" in /*) ;; *) die "DIR must be absolute" ;; esac
  rm -rf "$1"
  : >"$ETC/ssh/authorized_keys"
}

case "${1:-}" in
  prepare) [ $# -eq 3 ] || die "usage: $0 prepare DIR ADDR"; prepare "$2" "$3" ;;
  cleanup) [ $# -eq 2 ] || die "usage: $0 cleanup DIR"; cleanup "$2" ;;
  certs) [ $# -eq 2 ] || die "usage: $0 certs ADDR"; [ -s "$TLS/server-cert.pem" ] || make_certs "" "$2" ;;
  *) die "usage: $0 prepare DIR ADDR | cleanup DIR | certs ADDR" ;;
esac
