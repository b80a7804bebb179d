#!/usr/bin/env bash
# Makes a Docker daemon available on a fresh Debian machine: installs docker.io when dockerd is missing,
# starts dockerd without iptables or a bridge (tests use --network none), and waits until it answers.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  nohup dockerd --iptables=false --ip6tables=false --bridge=none >/tmp/ldfix-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "dockerd did not come up; see /tmp/ldfix-dockerd.log" >&2
exit 1
