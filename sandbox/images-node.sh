#!/usr/bin/env bash
# A third sandbox node with its own Docker engine, for proving that the image phase copies
# the serving image between two engines (the head and worker share this machine's engine, so
# between them there is nothing to copy). `sandbox/images-node.sh up` starts a second dockerd
# (own data root, own network namespace: no bridge or iptables of this machine touched; it
# only holds images) and the node llmops-sandbox-images whose /var/run/docker.sock is that
# engine's; `down` removes both. Used by the end-to-end tests and bench/image_fanout.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=sandbox/common.sh
source "$root/sandbox/common.sh"

node=$SANDBOX_IMAGES_NODE
state=$SANDBOX_ROOT/engine2
socket=$state/docker.sock

case ${1:-} in
up)
    if ! DOCKER_HOST=unix://$socket docker info >/dev/null 2>&1; then
        mkdir -p "$state"
        log "starting a second Docker engine ($socket, data in $state/data)"
        # dockerd with --bridge none deletes a docker0 it can see: its own network namespace
        # keeps this machine's bridge out of its reach.
        nohup unshare --net dockerd --data-root "$state/data" --exec-root "$state/exec" --pidfile "$state/docker.pid" \
            --host "unix://$socket" --bridge none --iptables=false --ip6tables=false \
            --containerd-namespace llmops-engine2 --containerd-plugins-namespace llmops-engine2-plugins \
            >"$state/dockerd.log" 2>&1 &
        for _ in $(seq 1 60); do
            DOCKER_HOST=unix://$socket docker info >/dev/null 2>&1 && break
            sleep 1
        done
        DOCKER_HOST=unix://$socket docker info >/dev/null 2>&1 || { tail -20 "$state/dockerd.log" >&2; exit 1; }
    fi
    if [[ "$(docker inspect --format '{{.State.Running}}' "$node" 2>/dev/null)" != "true" ]]; then
        docker rm -f "$node" >/dev/null 2>&1 || true
        data="$SANDBOX_ROOT/$node"
        mkdir -p "$data"
        log "creating node $node (its engine: the second one)"
        docker run -d --name "$node" --hostname "$node" --network "$SANDBOX_NETWORK" --label org.llmops.sandbox=1 \
            --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
            -v "$socket:/var/run/docker.sock" -v "$data:$data" \
            "$("$root/tools/build-node-image.sh" --print-name)" /lib/systemd/systemd >/dev/null
    fi
    ;;
down)
    docker rm -f "$node" >/dev/null 2>&1 && log "removed $node" || true
    if [[ -f "$state/docker.pid" ]] && kill "$(cat "$state/docker.pid")" 2>/dev/null; then
        for _ in $(seq 1 30); do
            [[ -S "$socket" ]] || break
            sleep 1
        done
        log "stopped the second Docker engine"
    fi
    # Once the engine stopped (it unmounts its layers), its data and the node's folder go.
    rm -rf "$state" "${SANDBOX_ROOT:?}/$node"
    ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
