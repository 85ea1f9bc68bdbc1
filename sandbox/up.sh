#!/usr/bin/env bash
# `make sandbox`: a real vLLM deployed by deploy.yml to local systemd-container nodes.
# Sets up what the machine lacks, creates the nodes, generates the tiny model, runs
#   ansible-playbook deploy.yml -i inventories/sandbox
# and ends with a real answer from /v1/chat/completions. `make sandbox-down` undoes it all.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=sandbox/common.sh
source sandbox/common.sh

tests/harness/ensure-engine.sh
tests/harness/ensure-venv.sh
tests/harness/build-node-image.sh
node_image=$(tests/harness/build-node-image.sh --print-name)
sandbox/build-serving-image.sh
sandbox/build-balancer-image.sh

if ! docker network inspect "$SANDBOX_NETWORK" >/dev/null 2>&1; then
    log "creating network $SANDBOX_NETWORK ($SANDBOX_SUBNET)"
    docker network create --subnet "$SANDBOX_SUBNET" --label org.llmops.sandbox=1 "$SANDBOX_NETWORK" >/dev/null
fi
for node in "${SANDBOX_HOSTS[@]}"; do
    data="$SANDBOX_ROOT/$node"
    mkdir -p "$data"
    if [[ "$(docker inspect --format '{{.State.Running}}' "$node" 2>/dev/null)" != "true" ]]; then
        docker rm -f "$node" >/dev/null 2>&1 || true
        log "creating node $node"
        # systemd as PID 1 (no --privileged here); the engine's socket lets the node start its
        # serving container on this machine's engine; its data folder keeps the same path.
        docker run -d --name "$node" --hostname "$node" --network "$SANDBOX_NETWORK" \
            --label org.llmops.sandbox=1 \
            --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
            -v /var/run/docker.sock:/var/run/docker.sock -v "$data:$data" \
            "$node_image" /lib/systemd/systemd >/dev/null
    fi
done

model_dir="$SANDBOX_ROOT/$SANDBOX_HEAD/models/$SANDBOX_MODEL"
if [[ ! -f "$model_dir/config.json" ]]; then
    log "generating the tiny model in $model_dir"
    docker run --rm --entrypoint python -v "$SANDBOX_ROOT/$SANDBOX_HEAD/models:/out" \
        "$SANDBOX_SERVING_IMAGE" /opt/llmops/make_tiny_model.py "/out/$SANDBOX_MODEL"
fi

log "ansible-playbook deploy.yml -i inventories/sandbox"
PATH="$root/.venv/bin:$PATH" ansible-playbook deploy.yml -i inventories/sandbox "$@"

sandbox/ask.sh
