#!/usr/bin/env bash
# `make sandbox-down`: remove every container, network and folder `make sandbox` created.
# Images are kept (rebuilding them takes minutes); `docker image rm` them to reclaim disk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=sandbox/common.sh
source "$root/sandbox/common.sh"

# Serving containers the nodes started (instances, balancer) carry the role's deployment label.
for node in "${SANDBOX_HOSTS[@]}"; do
    for container in $(docker ps -aq --filter "label=org.llmops.deployment=$node-vllm"); do
        docker rm -f "$container" >/dev/null && log "removed serving container $container"
    done
    docker rm -f "$node" >/dev/null 2>&1 && log "removed $node" || true
done
docker rm -f "$SANDBOX_HUB" >/dev/null 2>&1 && log "removed $SANDBOX_HUB" || true
if docker network inspect "$SANDBOX_NETWORK" >/dev/null 2>&1; then
    docker network rm "$SANDBOX_NETWORK" >/dev/null && log "removed network $SANDBOX_NETWORK"
fi
rm -rf "$SANDBOX_ROOT" && log "removed $SANDBOX_ROOT"
leftovers=$(docker ps -aq --filter label=org.llmops.sandbox=1)
if [[ -n "$leftovers" ]]; then
    echo "ERROR: sandbox containers remain: $leftovers" >&2
    exit 1
fi
