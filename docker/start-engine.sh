#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io (and debootstrap, for the
# grader's base image) when missing, and starts dockerd when none runs. Idempotent.
#
#   docker/start-engine.sh [PIDFILE]    writes the pid of a dockerd it started to PIDFILE
#
# The engine runs without a bridge or iptables rules: grading containers never get a network.
set -euo pipefail
pidfile=${1:-}
log=${DOCKERD_LOG:-/tmp/gofer-dockerd.log}

if docker info >/dev/null 2>&1; then
  echo "a Docker engine is running"
  exit 0
fi
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "installing ${missing[*]} needs root (apt-get)" >&2; exit 1; }
  echo "installing ${missing[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "starting dockerd (log: $log)"
setsid dockerd --bridge=none --iptables=false --ip-masq=false --ip-forward=false >"$log" 2>&1 </dev/null &
pid=$!
[ -n "$pidfile" ] && echo "$pid" >"$pidfile"
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && { echo "the Docker engine is up"; exit 0; }
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
echo "dockerd did not come up; its log:" >&2
tail -20 "$log" >&2
exit 1
