#!/usr/bin/env bash
# `make bench-image` (with `make sandbox` up): placing the serving image on a node that has its
# own Docker engine (sandbox/images-node.sh), side by side with one plain
#   docker save IMAGE | DOCKER_HOST=<second engine> docker load
# of the same image between the same two engines (goal: ratio <= 1.3). The placement time is
# the image phase's run that copies it minus its changed=0 rerun (both run the same preflight).
# Then the registry pulls per cluster (goal: 1): Debian's docker-registry on 127.0.0.1 holds
# the engine image, the head and the second-engine node deploy the image phase from it, and
# the registry's log counts the manifest requests. Figures go to stdout; docs/measurements.md
# keeps them with the machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=sandbox/common.sh
source sandbox/common.sh
export PATH="$root/.venv/bin:$PATH" ANSIBLE_NOCOLOR=1

image=$(docker inspect --format '{{.Config.Image}}' "$SANDBOX_HEAD-ray" 2>/dev/null) \
    || { echo "ERROR: the sandbox is not up: run make sandbox first" >&2; exit 1; }
engine2=unix://$SANDBOX_ROOT/engine2/docker.sock
registry_port=5055
work=$(mktemp -d /var/tmp/llmops-bench-image.XXXXXX)
cleanup() {
    [[ -n "${registry_pid:-}" ]] && kill "$registry_pid" 2>/dev/null
    docker image rm "127.0.0.1:$registry_port/$SANDBOX_SERVING_IMAGE" >/dev/null 2>&1 || true
    sandbox/images-node.sh down >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

sandbox/images-node.sh up
cat >"$work/hosts.yml" <<YAML
inference_cluster:
  children:
    inference_head: {hosts: {$SANDBOX_HEAD: {sandbox_cpu_bind: '0'}}}
    inference_workers: {hosts: {$SANDBOX_IMAGES_NODE: {sandbox_cpu_bind: '1'}}}
  vars: {ansible_connection: community.docker.docker, ansible_python_interpreter: /usr/bin/python3}
YAML
ln -s "$root/inventories/sandbox/group_vars" "$work/group_vars"

seconds() { python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }
since() { python3 -c "print(f'{$(seconds) - $1:.1f}')"; }
forget() { DOCKER_HOST=$engine2 docker image rm -f "$1" >/dev/null 2>&1 || true; }
image_phase() {  # LOG EXTRA...: the image phase on the head and the second-engine node
    local log=$1
    shift
    ansible-playbook playbooks/image.yml -i "$work/hosts.yml" "$@" >"$log" \
        || { grep -E -B2 -A14 "fatal:|ERROR" "$log" >&2; exit 1; }
}

size=$(docker image inspect --format '{{.Size}}' "$image")
log "plain docker save | docker load of $image ($((size / 1000000)) MB) into the second engine"
forget "$image"
start=$(seconds)
docker save "$image" | DOCKER_HOST=$engine2 docker load >/dev/null
plain=$(since "$start")
forget "$image"

log "the image phase placing it there (then its changed=0 rerun)"
start=$(seconds)
image_phase "$work/place.log"
placing_run=$(since "$start")
[[ "$(DOCKER_HOST=$engine2 docker image inspect --format '{{.Id}}' "$image")" == "$(docker image inspect --format '{{.Id}}' "$image")" ]] \
    || { echo "ERROR: the second engine does not hold $image by the head's image ID" >&2; exit 1; }
start=$(seconds)
image_phase "$work/rerun.log"
rerun=$(since "$start")
placed=$(python3 -c "print(f'{$placing_run - $rerun:.1f}')")

pulls="not measured (no docker-registry: apt-get install docker-registry)"
if command -v docker-registry >/dev/null 2>&1 || { apt-get install -y -qq docker-registry >/dev/null 2>&1; }; then
    log "registry pulls per cluster: the engine image from a local docker-registry"
    cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: info, formatter: text}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$registry_port}
YAML
    docker-registry serve "$work/registry.yml" >>"$work/registry.log" 2>&1 &
    registry_pid=$!
    until curl -fs "http://127.0.0.1:$registry_port/v2/" >/dev/null; do sleep 0.5; done
    remote=127.0.0.1:$registry_port/$SANDBOX_SERVING_IMAGE
    docker tag "$SANDBOX_SERVING_IMAGE" "$remote"
    docker push "$remote" >/dev/null
    docker image rm "$remote" >/dev/null
    pushed_lines=$(wc -l <"$work/registry.log")
    # A new engine reference: a new derived image, built on the head, copied to the other engine.
    image_phase "$work/registry-run.log" -e "vllm_serve_image=$remote"
    # A pull asks for the manifest by tag once (HEAD, or GET), then by digest only where the
    # engine lacks it: the requests by tag count the pulls.
    pulls=$(tail -n +"$((pushed_lines + 1))" "$work/registry.log" | grep -a 'msg="response completed"' \
        | grep -a "uri=/v2/${SANDBOX_SERVING_IMAGE%%:*}/manifests/${SANDBOX_SERVING_IMAGE##*:} " | grep -acE 'method=(GET|HEAD)' || true)
    pull_tasks=$(grep -a -A3 'Pull the engine image' "$work/registry-run.log" | grep -cE '^(changed|ok):' || true)
    pulls="$pulls (the pull task ran on $pull_tasks node(s))"
    for derived in $(docker image ls -q --filter "label=org.llmops.engine-image=$remote"); do
        docker image rm -f "$derived" >/dev/null 2>&1 || true
    done
fi

cat <<TEXT
machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(. /etc/os-release; echo "$PRETTY_NAME"), no GPU
serving image $image, $((size / 1000000)) MB, onto a node with its own Docker engine:
  plain docker save | docker load:                      $plain s
  the image phase (run $placing_run s - changed=0 rerun $rerun s): $placed s
  ratio image phase / plain:                            $(python3 -c "print(f'{$placed / $plain:.2f}')") (goal <= 1.3)
registry pulls per cluster of 2 nodes (manifest requests by tag):  $pulls (goal 1)
TEXT
