#!/usr/bin/env bash
# `make bench-cluster`: how the preflight + cluster phases scale with the node count. For 2, 4
# and 8 systemd-container nodes (Ray only, no model), the wall time of
#   ansible-playbook deploy.yml --tags cluster     (preflight runs too: it is tagged always)
# from no Ray container to a verified cluster (every node alive, versions checked, the Gloo
# all-reduce across all of them), then the ratio 8 / 2. With 8 nodes it also measures the
# workers joining all at once (ray_cluster_join_throttle=0) against one after another (the
# default), side by side. Figures go to stdout; docs/measurements.md keeps them with the machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh
export PATH="$root/.venv/bin:$PATH" ANSIBLE_NOCOLOR=1

network=llmops-bench-cluster
subnet=172.30.30.0/24
data=/var/tmp/llmops-bench-cluster
image=$LLMOPS_SERVING_IMAGE
nodes_max=${BENCH_CLUSTER_NODES:-8}

tools/setup.sh >/dev/null
node_image=$(tools/build-node-image.sh --print-name)
work=$(mktemp -d /var/tmp/llmops-bench-cluster-inventory.XXXXXX)
cleanup() {
    for container in $(docker ps -aq --filter label=org.llmops.bench-cluster=1) \
            $(docker ps -aq --filter label=org.llmops.role=ray_cluster --filter "name=llmops-bench-node"); do
        docker rm -f "$container" >/dev/null 2>&1 || true
    done
    docker network rm "$network" >/dev/null 2>&1 || true
    rm -rf "$data" "$work"
}
trap cleanup EXIT
cleanup
mkdir -p "$work" "$data"
docker network create --subnet "$subnet" --label org.llmops.bench-cluster=1 "$network" >/dev/null

start_nodes() {  # N: make sure nodes 0 .. N-1 run
    local index name
    for ((index = 0; index < $1; index++)); do
        name=llmops-bench-node-$index
        [[ "$(docker inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" == "true" ]] && continue
        mkdir -p "$data/$name"
        docker run -d --name "$name" --hostname "$name" --network "$network" --label org.llmops.bench-cluster=1 \
            --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
            -v /var/run/docker.sock:/var/run/docker.sock -v "$data/$name:$data/$name" \
            -v "$root/.cache/wheelhouse/ray:/opt/wheelhouse/ray:ro" \
            "$node_image" /lib/systemd/systemd >/dev/null
    done
    for ((index = 0; index < $1; index++)); do
        until docker exec "llmops-bench-node-$index" python3 -c 1 >/dev/null 2>&1; do sleep 0.5; done
    done
}

inventory() {  # N: an inventory of nodes 0 .. N-1 (node 0 the head), Ray only
    local index
    {
        echo "inference_cluster:"
        echo "  children:"
        echo "    inference_head: {hosts: {llmops-bench-node-0: {}}}"
        echo "    inference_workers:"
        echo "      hosts:"
        for ((index = 1; index < $1; index++)); do echo "        llmops-bench-node-$index: {}"; done
        cat <<YAML
  vars:
    ansible_connection: community.docker.docker
    ansible_python_interpreter: /usr/bin/python3
    llmops_data_root: $data/{{ inventory_hostname }}
    host_prep_sysctl_apply: false
    host_prep_docker_service_manage: false
    host_prep_time_service_manage: false
    weights_model: llmops/none
    weights_revision: v1
    weights_dir: "{{ llmops_data_root }}/models/none"
    vllm_serve_profile: cpu
    vllm_serve_image: $image
    serving_image_pip_find_links: /opt/wheelhouse/ray
    vllm_serve_served_model_name: none
    vllm_serve_model_dir: "{{ weights_dir }}"
    llmops_ray_container_name: "{{ inventory_hostname }}-ray"
    ray_cluster_network_mode: container:{{ inventory_hostname }}
    ray_cluster_model_dir: ""
    ray_cluster_shm_size: 256m
    ray_cluster_object_store_bytes: 80000000
    ray_cluster_fabric_bytes: 1048576
    ray_cluster_ready_timeout: 300
YAML
    } > "$work/hosts-$1.yml"
}

remove_ray() {
    for container in $(docker ps -aq --filter label=org.llmops.role=ray_cluster --filter "name=llmops-bench-node"); do
        docker rm -f "$container" >/dev/null
    done
}

seconds() { python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }
timed_cluster() {  # N EXTRA...: seconds from no Ray container to a verified cluster of N nodes
    local nodes=$1 start
    shift
    remove_ray
    start=$(seconds)
    ansible-playbook deploy.yml -i "$work/hosts-$nodes.yml" --tags cluster "$@" > "$work/run-$nodes.log" \
        || { grep -E -B2 -A14 "fatal:|ERROR" "$work/run-$nodes.log" >&2; exit 1; }
    python3 -c "print(f'{$(seconds) - $start:.1f}')"
}

declare -A took
# The serving image (the engine image + Ray) is built once before anything is timed: the
# nodes share this machine's engine, so every later run finds it.
start_nodes 2
inventory 2
ansible-playbook deploy.yml -i "$work/hosts-2.yml" --tags image > "$work/image.log" \
    || { grep -E -B2 -A14 "fatal:|ERROR" "$work/image.log" >&2; exit 1; }
for nodes in 2 4 8; do
    ((nodes > nodes_max)) && continue
    start_nodes "$nodes"
    inventory "$nodes"
    took[$nodes]=$(timed_cluster "$nodes")
    # A rerun on the formed cluster: what an operator's no-op run of the phase costs.
    start=$(seconds)
    ansible-playbook deploy.yml -i "$work/hosts-$nodes.yml" --tags cluster > "$work/rerun-$nodes.log"
    took[rerun-$nodes]=$(python3 -c "print(f'{$(seconds) - $start:.1f}')")
done
largest=$nodes_max
((largest > 8)) && largest=8
took[all-at-once]=$(timed_cluster "$largest" -e ray_cluster_join_throttle=0)
took[one-by-one]=$(timed_cluster "$largest")

cat <<TEXT
machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(. /etc/os-release; echo "$PRETTY_NAME"), no GPU; forks $(sed -n 's/^forks = //p' ansible.cfg)
preflight + cluster phases, no Ray container -> every node alive, versions checked, Gloo all-reduce:
TEXT
for nodes in 2 4 8; do
    [[ -n "${took[$nodes]:-}" ]] && printf '  %d nodes: %6s s   (no-op rerun %s s)\n' "$nodes" "${took[$nodes]}" "${took[rerun-$nodes]}"
done
if [[ -n "${took[8]:-}" ]]; then
    echo "  ratio 8 / 2 nodes: $(python3 -c "print(f'{${took[8]} / ${took[2]}:.2f}')") (linear would be 4.00)"
fi
echo "  $largest nodes, workers joining one after another: ${took[one-by-one]} s; all at once: ${took[all-at-once]} s" \
    "(ratio $(python3 -c "print(f'{${took[one-by-one]} / ${took[all-at-once]}:.2f}')"))"
