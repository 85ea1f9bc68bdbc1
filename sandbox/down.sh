#!/usr/bin/env bash
# `make sandbox-down`: remove every container, network and folder `make sandbox` created.
# Images are kept (rebuilding them takes minutes); `docker image rm` them to reclaim disk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=sandbox/common.sh
source "$root/sandbox/common.sh"

# Serving containers the nodes started (instances, balancer) and their Ray node carry the
# roles' deployment labels.
for node in "${SANDBOX_HOSTS[@]}"; do
    for container in $(docker ps -aq --filter "label=org.llmops.deployment=$node-vllm") \
            $(docker ps -aq --filter "label=org.llmops.deployment=$node-ray"); do
        docker rm -f "$container" >/dev/null && log "removed container $container of $node"
    done
    docker rm -f "$node" >/dev/null 2>&1 && log "removed $node" || true
done
docker rm -f "$SANDBOX_HUB" >/dev/null 2>&1 && log "removed $SANDBOX_HUB" || true
"$root/sandbox/images-node.sh" down
if docker network inspect "$SANDBOX_NETWORK" >/dev/null 2>&1; then
    docker network rm "$SANDBOX_NETWORK" >/dev/null && log "removed network $SANDBOX_NETWORK"
fi
rm -rf "$SANDBOX_ROOT" && log "removed $SANDBOX_ROOT"
leftovers=$(docker ps -aq --filter label=org.llmops.sandbox=1)
if [[ -n "$leftovers" ]]; then
    echo "ERROR: sandbox containers remain: $leftovers" >&2
    exit 1
fi
