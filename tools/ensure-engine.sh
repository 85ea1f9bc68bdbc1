#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine: install Debian's docker.io and
# debootstrap when missing, and start dockerd when none runs (these machines have no init).
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
    log "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi

log "starting dockerd (log: /var/log/llmops-dockerd.log)"
nohup dockerd --host unix:///var/run/docker.sock >/var/log/llmops-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        log "docker engine $(docker version --format '{{.Server.Version}}') answers"
        exit 0
    fi
    sleep 1
done
echo "ERROR: dockerd did not answer within 60 s; see /var/log/llmops-dockerd.log" >&2
exit 1
