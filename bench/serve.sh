#!/usr/bin/env bash
# `make bench`: how much the collection adds on top of what it drives, on the sandbox.
#  (a) deploy.yml from no serving container to ready, against a bare `vllm serve` of the same
#      model with the same flags started by hand (rank 0 on the head, the headless rank 1 on
#      the worker): start to /health 200 and the model listed (the floor);
#  (b) a no-op rerun of deploy.yml against a facts-only play on the same hosts (median of 3,
#      interleaved);
#  (c) with BENCH_BASELINE=<git revision>: the same no-op rerun of that revision's deploy.yml
#      (from a temporary worktree, same sandbox), interleaved with this one, so a change's
#      effect on the rerun is measured side by side in one run.
# Prints the figures and the ratios. Needs the sandbox (it runs `make sandbox` first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=sandbox/common.sh
source sandbox/common.sh
export PATH="$root/.venv/bin:$PATH" ANSIBLE_NOCOLOR=1

sandbox/up.sh >/dev/null
serving="$SANDBOX_HEAD-vllm"
address=$(docker inspect --format "{{ (index .NetworkSettings.Networks \"$SANDBOX_NETWORK\").IPAddress }}" "$SANDBOX_HEAD")
key=$(cat "$SANDBOX_ROOT/$SANDBOX_HEAD/secrets/vllm-api-key")

seconds() { python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }
elapsed() { python3 -c "print(f'{$2 - $1:.1f}')"; }

wait_ready() {
    until curl -sf "http://$address:8000/health" >/dev/null \
        && curl -sf -H "Authorization: Bearer $key" "http://$address:8000/v1/models" | grep -q "\"$SANDBOX_MODEL\""; do
        sleep 0.2
    done
}

# (a) floor: the same container specs the role made (rank 0 on the head, the headless rank 1
# on the worker), started by hand.
bare_start() {  # NODE NAME CORE ARGV-JSON: a bare copy of NODE's serving container
    local node=$1 name=$2
    docker run -d --name "$name" --network "container:$node" --shm-size 1g -e VLLM_API_KEY="$key" \
        -e VLLM_HOST_IP="$(docker inspect --format "{{ (index .NetworkSettings.Networks \"$SANDBOX_NETWORK\").IPAddress }}" "$node")" \
        -e VLLM_CPU_OMP_THREADS_BIND="$3" -e TORCHDYNAMO_DISABLE=1 -e GLOO_SOCKET_IFNAME=eth0 \
        -v "$SANDBOX_ROOT/$node/models/$SANDBOX_MODEL:/model:ro" \
        --entrypoint vllm "$SANDBOX_SERVING_IMAGE" serve $(python3 -c "import json,sys; print(' '.join(json.loads(sys.argv[1])))" "$4") >/dev/null
}
worker=${SANDBOX_HOSTS[1]}
head_args=$(docker inspect --format '{{ json .Config.Cmd }}' "$serving")
worker_args=$(docker inspect --format '{{ json .Config.Cmd }}' "$worker-vllm")
docker rm -f "$serving" "$worker-vllm" >/dev/null
start=$(seconds)
bare_start "$SANDBOX_HEAD" llmops-bench-bare 0 "$head_args"
bare_start "$worker" llmops-bench-bare-rank1 1 "$worker_args"
wait_ready
bare=$(elapsed "$start" "$(seconds)")
docker rm -f llmops-bench-bare llmops-bench-bare-rank1 >/dev/null

start=$(seconds)
ansible-playbook deploy.yml -i inventories/sandbox >/dev/null
deploy=$(elapsed "$start" "$(seconds)")

# vLLM keeps a worker busy for a while after it starts; on 2 cores that would slow every run
# below. Measure once the serving container is quiet (under 10 % CPU twice in a row, 3 min at most).
settle() {
    local quiet=0
    for _sample in $(seq 1 90); do
        cpu=$(docker stats --no-stream --format '{{.CPUPerc}}' "$serving" | tr -d '%')
        if python3 -c "import sys; sys.exit(0 if float('$cpu') < 10 else 1)"; then
            quiet=$((quiet + 1))
            ((quiet >= 2)) && return 0
        else
            quiet=0
        fi
    done
}
settle

# (b) no-op rerun against facts only, and (c) against the baseline revision, interleaved.
timed() { local start; start=$(seconds); "$@" >/dev/null; elapsed "$start" "$(seconds)"; }
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
baseline_dir=""
if [[ -n "${BENCH_BASELINE:-}" ]]; then
    baseline_dir=$(mktemp -d /var/tmp/llmops-bench-baseline.XXXXXX)
    trap 'git -C "$root" worktree remove --force "$baseline_dir" >/dev/null 2>&1 || rm -rf "$baseline_dir"' EXIT
    git -C "$root" worktree add --detach "$baseline_dir" "$BENCH_BASELINE" >/dev/null 2>&1
    # Its first run may settle what the change moved (a file's format); not timed.
    (cd "$baseline_dir" && ansible-playbook deploy.yml -i inventories/sandbox >/dev/null)
    ansible-playbook deploy.yml -i inventories/sandbox >/dev/null
fi
reruns=() facts_runs=() baseline_runs=()
for _round in 1 2 3; do
    reruns+=("$(timed ansible-playbook deploy.yml -i inventories/sandbox)")
    facts_runs+=("$(timed ansible-playbook bench/facts-only.yml -i inventories/sandbox)")
    if [[ -n "$baseline_dir" ]]; then
        baseline_runs+=("$(cd "$baseline_dir" && timed ansible-playbook deploy.yml -i inventories/sandbox)")
    fi
done
rerun=$(median "${reruns[@]}")
facts=$(median "${facts_runs[@]}")

cat <<TEXT
machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(. /etc/os-release; echo "$PRETTY_NAME"), no GPU
(a) deploy.yml, no serving container -> ready:  ${deploy} s
    bare vllm serve, start -> /health + model:    ${bare} s
    ratio deploy / bare:                          $(python3 -c "print(f'{$deploy / $bare:.2f}')")
(b) deploy.yml no-op rerun (median of 3):        ${rerun} s   (${reruns[*]})
    facts-only play on the same hosts:            ${facts} s   (${facts_runs[*]})
    ratio rerun / facts-only:                     $(python3 -c "print(f'{$rerun / $facts:.2f}')")
TEXT
if [[ -n "$baseline_dir" ]]; then
    baseline=$(median "${baseline_runs[@]}")
    cat <<TEXT
(c) no-op rerun of $BENCH_BASELINE, interleaved:  ${baseline} s   (${baseline_runs[*]})
    its ratio rerun / facts-only:                 $(python3 -c "print(f'{$baseline / $facts:.2f}')")
    this revision / $BENCH_BASELINE:              $(python3 -c "print(f'{$rerun / $baseline:.2f}')")
TEXT
fi
