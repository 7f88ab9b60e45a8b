#!/usr/bin/env bash
# The contract suite's fault injector: scripts/test.sh sets
# ENGINEKIT_TEST_FAULTS to this file, and the suite's fault scenarios
# (enginekit/testing/suite/test_reliability_faults.py) call it with an argument
# list:
#
#   faults.sh kill  ENGINE ADDRESS   kill -9 the engine's daemon, as a crash would:
#                                    Docker, Podman: the process listening on
#                                    ADDRESS (unix://PATH); LXC: every enginekit
#                                    container monitor on this machine (ADDRESS
#                                    is the lxcpath, checked to be local)
#   faults.sh start ENGINE ADDRESS   start the daemon again and wait until it
#                                    answers (LXC: nothing to start; a user's
#                                    rootless Podman, /run/user/<uid>/podman/podman.sock:
#                                    scripts/rootless-podman.sh start as that user)
#
# ENGINE is the suite's name of the engine (docker, podman, lxc, or a URL such
# as docker+unix:///run/docker-containerd.sock). It acts on the engines that
# scripts/setup-engines.sh (this machine) or the test host's own start script
# (inside scripts/testhost.sh's container) started, on this machine only: an
# address that is not a local unix socket or directory is refused.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TESTHOST_ENGINES=/usr/local/sbin/enginekit-testhost-engines

die() { printf 'faults.sh: %s\n' "$*" >&2; exit 2; }

[ $# -eq 3 ] || die "usage: faults.sh kill|start ENGINE ADDRESS"
action=$1; engine=$2; address=$3
kind=${engine%%+*}; kind=${kind%%:*}

# socket_path ADDRESS: the path of a unix:// address.
socket_path() {
  case "$1" in
    unix://*) printf '%s\n' "${1#unix://}" ;;
    *) die "not a local unix socket: $1" ;;
  esac
}

# listener PATH: the pid of the process listening on the unix socket PATH (by
# its real path: /var/run/docker.sock is /run/docker.sock where /var/run is a link).
listener() {
  local want path rest
  want=$(realpath -m -- "$1")
  ss -xlpH 2>/dev/null | awk '{ print $5, $0 }' | while read -r path rest; do
    if [ "$(realpath -m -- "$path")" = "$want" ]; then
      printf '%s\n' "$rest" | sed -n 's/.*pid=\([0-9]*\).*/\1/p'
      break
    fi
  done | head -n 1
}

# lxc_monitors: pids of the enginekit LXC monitors of this mount namespace (each
# holds its container's <storage root>/containers/<id>/monitor.lock open); a
# test host's monitors, seen in /proc from outside it, are not of this one.
lxc_monitors() {
  local proc fd target ns
  ns=$(readlink /proc/self/ns/mnt)
  for proc in /proc/[0-9]*; do
    [ "$(readlink "$proc/ns/mnt" 2>/dev/null)" = "$ns" ] || continue
    for fd in "$proc"/fd/*; do
      target=$(readlink "$fd" 2>/dev/null) || continue
      case "$target" in
        */containers/*/monitor.lock) echo "${proc#/proc/}"; break ;;
      esac
    done
  done
}

wait_gone() { # wait_gone PID: until PID is dead or a zombie (10 s at most)
  local i=0 st
  while [ $i -lt 40 ]; do
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 0
    case "$st" in ''|Z|X) return 0 ;; esac
    sleep 0.25; i=$((i + 1))
  done
  die "pid $1 still alive after SIGKILL"
}

# rootless_owner PATH: the user whose rootless Podman socket PATH is
# (/run/user/<uid>/podman/podman.sock), or nothing.
rootless_owner() {
  local uid
  case "$1" in
    /run/user/*/podman/podman.sock) uid=${1#/run/user/}; uid=${uid%%/*} ;;
    *) return 0 ;;
  esac
  [[ $uid =~ ^[1-9][0-9]*$ ]] && getent passwd "$uid" | cut -d: -f1
  return 0
}

start_daemons() {
  local owner
  if [ "$kind" = podman ]; then
    # A user's rootless service (scripts/rootless-podman.sh) is started as that user.
    owner=$(rootless_owner "$(socket_path "$address")")
    if [ -n "$owner" ]; then
      ENGINEKIT_ROOTLESS_USER=$owner bash "$ROOT/scripts/rootless-podman.sh" start >/dev/null
      return
    fi
  fi
  if [ -x "$TESTHOST_ENGINES" ]; then
    "$TESTHOST_ENGINES" >&2
    return
  fi
  # shellcheck source=setup-engines.sh
  . "$ROOT/scripts/setup-engines.sh"
  case "$kind" in
    docker) DOCKER_SOCK=$(socket_path "$address"); start_docker ;;
    podman) PODMAN_SOCK=$(socket_path "$address"); start_podman ;;
  esac
}

case "$action:$kind" in
  kill:docker|kill:podman)
    path=$(socket_path "$address")
    pid=$(listener "$path")
    [ -n "$pid" ] || die "nothing listens on $path"
    kill -KILL "$pid"
    wait_gone "$pid"
    echo "killed $kind (pid $pid)" >&2
    ;;
  kill:lxc)
    [ -d "$address" ] || die "not a local lxcpath: $address"
    pids=$(lxc_monitors | tr '\n' ' ')
    [ -n "${pids// /}" ] || die "no enginekit LXC monitor runs here"
    # shellcheck disable=SC2086
    kill -KILL $pids
    for p in $pids; do wait_gone "$p"; done
    echo "killed lxc monitors (pids ${pids% })" >&2
    ;;
  start:docker|start:podman)
    start_daemons
    ;;
  start:lxc)
    ;;
  *)
    die "unknown action or engine: $action $engine"
    ;;
esac
