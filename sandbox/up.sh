#!/usr/bin/env bash
# `make sandbox`: a real vLLM deployed by deploy.yml to local systemd-container nodes.
# Sets up what the machine lacks, creates the nodes, generates the tiny model onto a local
# ModelScope hub (the weights phase fetches it from there, once, and fans it out), runs
#   ansible-playbook deploy.yml -i inventories/sandbox
# and ends with a real answer from /v1/chat/completions. `make sandbox-down` undoes it all.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=sandbox/common.sh
source sandbox/common.sh

tools/setup.sh
node_image=$(tools/build-node-image.sh --print-name)

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
            -v "$root/.cache/wheelhouse/modelscope:/opt/wheelhouse/modelscope:ro" \
            -v "$root/.cache/wheelhouse/ray:/opt/wheelhouse/ray:ro" \
            "$node_image" /lib/systemd/systemd >/dev/null
    fi
done

# The model lives on the hub (sandbox/model_hub.py), not on the nodes: deploy.yml's weights phase fetches it from there.
hub_models="$SANDBOX_ROOT/hub"
if [[ ! -f "$hub_models/$SANDBOX_MODEL/config.json" ]]; then
    log "generating the tiny model in $hub_models/$SANDBOX_MODEL"
    mkdir -p "$hub_models"
    docker run --rm --entrypoint python -v "$hub_models:/out" \
        "$SANDBOX_SERVING_IMAGE" /opt/llmops/make_tiny_model.py "/out/$SANDBOX_MODEL"
fi
if [[ "$(docker inspect --format '{{.State.Running}}' "$SANDBOX_HUB" 2>/dev/null)" != "true" ]]; then
    docker rm -f "$SANDBOX_HUB" >/dev/null 2>&1 || true
    log "starting the local ModelScope hub $SANDBOX_HUB (serves $SANDBOX_HUB_MODEL_ID@$SANDBOX_HUB_REVISION)"
    docker run -d --name "$SANDBOX_HUB" --hostname "$SANDBOX_HUB" --network "$SANDBOX_NETWORK" \
        --label org.llmops.sandbox=1 -v "$hub_models:/srv/hub" \
        -v "$root:/opt/llmops-src:ro" --entrypoint python3 "$node_image" \
        /opt/llmops-src/sandbox/model_hub.py --host 0.0.0.0 --port "$SANDBOX_HUB_PORT" --log /srv/hub/served.log \
        --repo "$SANDBOX_HUB_MODEL_ID" "$SANDBOX_HUB_REVISION" "/srv/hub/$SANDBOX_MODEL" >/dev/null
fi

log "ansible-playbook deploy.yml -i inventories/sandbox"
PATH="$root/.venv/bin:$PATH" ansible-playbook deploy.yml -i inventories/sandbox "$@"

sandbox/ask.sh
