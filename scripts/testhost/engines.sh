#!/bin/sh
# Runs INSIDE the test host (as root, through lxc-attach; installed there as
# /usr/local/sbin/enginekit-testhost-engines by scripts/testhost.sh).
# Mounts what the engines need and starts every engine that does not answer:
#   dockerd (classic image store)      unix:///run/docker.sock
#   dockerd (containerd image store)   unix:///run/docker-containerd.sock
#   podman system service              unix:///run/podman/podman.sock
#   lxc-net (lxcbr0, 10.0.4.0/24)
# Idempotent: an engine that answers is left alone. Logs: /var/log/enginekit/.
set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LOG=/var/log/enginekit
mkdir -p "$LOG"
cd /

say() { printf '[testhost/inner] %s\n' "$*" >&2; }

# -- mounts -------------------------------------------------------------------
# cgroups: LXC's cgroup:rw mounts nothing here; mount a tmpfs and each v1
# hierarchy by hand (and cgroup2 at unified), as the host has them.
if ! mountpoint -q /sys/fs/cgroup; then
  mount -t tmpfs -o mode=755,nosuid,nodev,noexec cgroup_root /sys/fs/cgroup
fi
# The hierarchies the kernel has (enabled v1 controllers, by hierarchy id).
awk 'NR > 1 && $4 == 1 && $2 != 0 { print $2, $1 }' /proc/cgroups | sort -n | awk '
  { h[$1] = (h[$1] == "" ? $2 : h[$1] "," $2) } END { for (k in h) print h[k] }' |
while read -r ctrls; do
  dir=/sys/fs/cgroup/$ctrls
  mkdir -p "$dir"
  mountpoint -q "$dir" || mount -t cgroup -o "$ctrls" cgroup "$dir"
  # cpu,cpuacct style co-mounts: the usual per-controller names as symlinks.
  case "$ctrls" in *,*)
    for c in $(echo "$ctrls" | tr , ' '); do [ -e "/sys/fs/cgroup/$c" ] || ln -s "$ctrls" "/sys/fs/cgroup/$c"; done ;;
  esac
done
if grep -q 'name=systemd' /proc/self/cgroup; then
  mkdir -p /sys/fs/cgroup/systemd
  mountpoint -q /sys/fs/cgroup/systemd || mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
fi
mkdir -p /sys/fs/cgroup/unified
mountpoint -q /sys/fs/cgroup/unified || mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup/unified 2>/dev/null ||
  mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified || say "cgroup2 not mounted at unified"
# Podman's shm lock manager needs a real /dev/shm.
mkdir -p /dev/shm
mountpoint -q /dev/shm || mount -t tmpfs -o mode=1777,nosuid,nodev,size=1g shm /dev/shm
mkdir -p /dev/net
[ -e /dev/net/tun ] || mknod -m 666 /dev/net/tun c 10 200
[ -e /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229
[ -e /dev/loop-control ] || mknod -m 660 /dev/loop-control c 10 237
# LXC gives the container a boot_id of its own by mounting a file over
# /proc/sys/kernel/random/boot_id. Any mount over /proc makes the kernel refuse
# a new proc mount inside an unprivileged user namespace (rootless Podman's
# containers: "mount `proc` to `proc`: Operation not permitted"). Done before
# any engine starts: Podman records the boot id in /run (a tmpfs, empty at
# each start of the container) and refuses to run if it changes under it.
if grep -q ' /proc/sys/kernel/random/boot_id ' /proc/mounts; then
  umount /proc/sys/kernel/random/boot_id
fi

# A default route that leads nowhere: into `ekthnull`, a bridge with no ports
# (this kernel has no dummy device). Tools and tests that look for the host's
# default-route interface find one; nothing sent to it leaves the container.
if ! ip link show ekthnull >/dev/null 2>&1; then ip link add ekthnull type bridge; fi
ip link set ekthnull up
ip route show default | grep -q . || ip route add default dev ekthnull

# -- helpers ------------------------------------------------------------------
alive() { # alive PID [COMM]: a live process (not a zombie), named COMM if given
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)
  [ "$st" != Z ] && [ "$st" != X ] || return 1
  [ -z "${2:-}" ] || [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

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

docker_ok() { timeout 20 docker -H "unix://$1" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_dockerd() { # start_dockerd NAME CONFIG SOCKET PIDFILE EXECROOT
  name=$1; conf=$2; sock=$3; pidf=$4; execroot=$5
  if docker_ok "$sock"; then return 0; fi
  if [ -f "$pidf" ]; then
    pid=$(cat "$pidf" 2>/dev/null || true)
    if alive "$pid" dockerd; then
      # Alive but not answering (starting, busy, or wedged): give it time before
      # anything is stopped (suites may be running against it).
      if wait_for "$name" 90 docker_ok "$sock"; then return 0; fi
      say "$name (pid $pid) does not answer: stopping it"
      kill -TERM "$pid" 2>/dev/null || true
      i=0; while alive "$pid" dockerd && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
      if alive "$pid" dockerd; then kill -KILL "$pid" 2>/dev/null || true; fi
      # PID 1 here (catatonit) reaps it; the pid file goes below.
      i=0; while alive "$pid" dockerd && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
    fi
    rm -f "$pidf"
  fi
  # A managed containerd left from a dockerd that died.
  cpid=$(cat "$execroot/containerd/containerd.pid" 2>/dev/null || true)
  if alive "$cpid" containerd; then
    kill -TERM "$cpid" 2>/dev/null || true
    i=0; while alive "$cpid" containerd && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
    if alive "$cpid" containerd; then kill -KILL "$cpid" 2>/dev/null || true; fi
  fi
  rm -f "$sock"
  say "starting $name"
  # Docker 29's API floor, on Docker 28.
  (cd / && DOCKER_MIN_API_VERSION=1.44 setsid nohup dockerd --config-file "$conf" \
     </dev/null >>"$LOG/$name.log" 2>&1 &)
  wait_for "$name" 60 docker_ok "$sock" || { tail -n 30 "$LOG/$name.log" >&2; return 1; }
}

# -- docker (two daemons) -----------------------------------------------------
# The second daemon's bridge, ekcd0, dockerd never makes. And a dockerd
# configured with another bridge than docker0 deletes docker0 when it starts
# (Docker's clean-up for `"bridge"` set), under the first daemon's feet: every
# container of the classic daemon then fails with "adding interface ... to
# bridge docker0 failed: Device does not exist". So the containerd-store
# daemon starts first, and docker0 is made again (with the first daemon's
# "bip") whenever it is missing after the starts.
bridge() { # bridge NAME ADDR/PREFIX
  if ! ip link show "$1" >/dev/null 2>&1; then
    say "making bridge $1 ($2)"
    ip link add "$1" type bridge
    ip addr add "$2" dev "$1"
  fi
  ip link set "$1" up
}
bridge ekcd0 172.21.0.1/16
# The containerd-store daemon also listens on the container's own address with
# TLS (tcp ADDR:2376): its certificates must exist before it starts.
addr=$(ip -4 -o addr show eth0 | awk '{ print $4 }' | cut -d/ -f1 | head -n 1)
/usr/local/sbin/enginekit-testhost-remote certs "$addr"
status=0
start_dockerd dockerd-containerd /etc/docker/daemon-containerd.json /run/docker-containerd.sock \
  /run/docker-containerd.pid /run/docker-containerd || status=1
start_dockerd dockerd /etc/docker/daemon.json /run/docker.sock /run/docker.pid /run/docker || status=1
bridge docker0 172.18.0.1/16   # "bip" in /etc/docker/daemon.json

# -- podman -------------------------------------------------------------------
podman_ok() { curl -fsS --max-time 20 --unix-socket /run/podman/podman.sock http://d/_ping; }
# The rootful service only: a rootless user's service (its own socket) is not ours.
ROOTFUL_SERVICE='^podman system service --time=0 unix:///run/podman/podman.sock$'
if ! podman_ok >/dev/null 2>&1 && { [ -z "$(pgrep -f "$ROOTFUL_SERVICE" || true)" ] ||
                                    ! wait_for podman 90 podman_ok; }; then
  for p in $(pgrep -f "$ROOTFUL_SERVICE" || true); do
    say "podman service (pid $p) does not answer: stopping it"
    kill -TERM "$p" 2>/dev/null || true
  done
  sleep 2
  mkdir -p /run/podman
  rm -f /run/podman/podman.sock
  say "starting podman system service"
  # From /: conmon writes its oom marker into the service's working directory.
  (cd / && setsid nohup podman system service --time=0 unix:///run/podman/podman.sock \
     </dev/null >>"$LOG/podman.log" 2>&1 &)
  wait_for podman 60 podman_ok || { tail -n 30 "$LOG/podman.log" >&2; status=1; }
fi

# -- lxc-net --------------------------------------------------------------------
dpid=$(cat /run/lxc/dnsmasq.pid 2>/dev/null || true)
if ip link show lxcbr0 >/dev/null 2>&1 && ! alive "$dpid" dnsmasq; then
  say "lxc-net's dnsmasq is gone: stopping lxc-net"
  /usr/libexec/lxc/lxc-net stop </dev/null >>"$LOG/lxc-net.log" 2>&1 || true
fi
if ! ip link show lxcbr0 >/dev/null 2>&1; then
  rm -f /run/lxc/network_up
  say "starting lxc-net"
  (cd / && /usr/libexec/lxc/lxc-net start </dev/null >>"$LOG/lxc-net.log" 2>&1) ||
    { say "lxc-net start failed"; tail -n 20 "$LOG/lxc-net.log" >&2; status=1; }
fi
exit $status
