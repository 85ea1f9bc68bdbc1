#!/usr/bin/env bash
# `make bench-weights`: the weights phase against the physical limit, on the sandbox.
#  (a) fetch throughput: the weights playbook placing a generated model (BENCH_WEIGHTS_MIB,
#      default 1024 MiB) on the head from a local hub, with the ModelScope client and with the
#      huggingface source's fetcher, against a raw copy of the same bytes over the same path
#      (curl of every file from the same hub onto the same disk);
#  (b) bytes the hub serves to place the model on the whole cluster, against the model size.
# Prints figures and both ratios. Needs the sandbox (it runs `make sandbox` first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=sandbox/common.sh
source sandbox/common.sh
export PATH="$root/.venv/bin:$PATH" ANSIBLE_NOCOLOR=1

mib=${BENCH_WEIGHTS_MIB:-1024}
sandbox/up.sh >/dev/null
node_image=$(tools/build-node-image.sh --print-name)
hub=llmops-bench-hub
hub_dir="$SANDBOX_ROOT/bench-hub"
head_data="$SANDBOX_ROOT/$SANDBOX_HEAD"

seconds() { python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
served_bytes() { docker exec "$hub" sh -c 'cat /srv/hub/served.log 2>/dev/null' | python3 -c '
import json, sys; print(sum(json.loads(line)["bytes"] for line in sys.stdin))'; }

log "generating a ${mib} MiB model for the bench hub"
rm -rf "$hub_dir" "$head_data"/models/bench-* "$SANDBOX_ROOT/$SANDBOX_HOSTS"/models/bench-* \
    "$SANDBOX_ROOT"/llmops-sandbox-worker/models/bench-*
mkdir -p "$hub_dir/model"
printf '{"architectures": ["Qwen2ForCausalLM"]}\n' >"$hub_dir/model/config.json"
half=$((mib / 2))
head -c $((half * 1048576)) /dev/urandom >"$hub_dir/model/model-00001-of-00002.safetensors"
head -c $(((mib - half) * 1048576)) /dev/urandom >"$hub_dir/model/model-00002-of-00002.safetensors"
size=$(find "$hub_dir/model" -type f -printf '%s\n' | awk '{total += $1} END {print total}')
docker rm -f "$hub" >/dev/null 2>&1 || true
docker run -d --name "$hub" --network "$SANDBOX_NETWORK" --label org.llmops.sandbox=1 -v "$hub_dir:/srv/hub" \
    -v "$root:/opt/llmops-src:ro" --entrypoint python3 "$node_image" \
    /opt/llmops-src/sandbox/model_hub.py --host 0.0.0.0 --port 8089 --log /srv/hub/served.log \
    --repo bench/model v1 /srv/hub/model >/dev/null
until docker exec "$SANDBOX_HEAD" curl -sf -o /dev/null "http://$hub:8089/api/v1/models/bench/model/repo/files?Revision=v1"; do
    sleep 0.5
done
trap 'docker rm -f "$hub" >/dev/null 2>&1; rm -rf "$hub_dir" "$run_log"' EXIT
run_log=$(mktemp)
weights() {
    ansible-playbook playbooks/weights.yml -i inventories/sandbox -e weights_model=bench/model -e weights_revision=v1 \
        -e "weights_modelscope_endpoint=http://$hub:8089" "$@" >"$run_log"
}
# The slowest tasks of the last run (profile_tasks recap), to see where the time went.
slowest() { grep -A8 '^=====' "$run_log" | grep -- '---' | head -6 | sed 's/^/        /'; }
# Seconds the last run spent in the download step alone (polled every weights_progress_interval).
download_step() { grep 'Wait for the download' "$run_log" | grep -o '[0-9.]*s$' | tail -1 | tr -d s; }

# (a) the physical limit: the same bytes, same hub, same network, same disk, plain curl, then
# sync (the role syncs what it verified before its marker vouches for it). Best of two runs.
raw_dir="$head_data/models/bench-raw"
files="config.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors"
raw=""
for _attempt in 1 2; do
    start=$(seconds)
    docker exec "$SANDBOX_HEAD" sh -c "mkdir -p $raw_dir && cd $raw_dir && for f in $files; do
        curl -sf -o \$f \"http://$hub:8089/api/v1/models/bench/model/repo?Revision=v1&FilePath=\$f\"; done && sync $files"
    took=$(elapsed "$start" "$(seconds)")
    raw=$(python3 -c "print(min(x for x in [$took, ${raw:-1e9}]))")
    rm -rf "$raw_dir"
done

start=$(seconds)
weights --limit "$SANDBOX_HEAD" -e "weights_dir=$head_data/models/bench-head"
fetch=$(elapsed "$start" "$(seconds)")
slowest_modelscope=$(slowest)
step_modelscope=$(download_step)
start=$(seconds)
weights --limit "$SANDBOX_HEAD" -e "weights_dir=$head_data/models/bench-head"
rerun=$(elapsed "$start" "$(seconds)")

start=$(seconds)
weights --limit "$SANDBOX_HEAD" -e "weights_dir=$head_data/models/bench-head-hf" -e weights_source=huggingface \
    -e "weights_huggingface_endpoint=http://$hub:8089"
fetch_hf=$(elapsed "$start" "$(seconds)")
slowest_huggingface=$(slowest)
step_huggingface=$(download_step)

# (b) the whole cluster from scratch: the hub should serve the model once, whatever the node count.
before=$(served_bytes)
weights -e '{"weights_dir": "{{ llmops_data_root }}/models/bench-cluster"}'
cluster_bytes=$(($(served_bytes) - before))

for node in "${SANDBOX_HOSTS[@]}"; do
    rm -rf "${SANDBOX_ROOT:?}/$node"/models/bench-*
done
cat <<TEXT
machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(. /etc/os-release; echo "$PRETTY_NAME")
model: $size bytes in 3 files; nodes in the cluster: ${#SANDBOX_HOSTS[@]}
(a) weights playbook, head only (list, disk check, fetch, verify, publish)
      modelscope source (the ModelScope client): ${fetch} s  ($(python3 -c "print(f'{$size / $fetch / 1048576:.0f}')") MiB/s)
      huggingface source (weights_fetch.py):     ${fetch_hf} s  ($(python3 -c "print(f'{$size / $fetch_hf / 1048576:.0f}')") MiB/s)
    raw curl + sync of the same files from the same hub to the same disk (best of 2): ${raw} s  ($(python3 -c "print(f'{$size / $raw / 1048576:.0f}')") MiB/s)
    ratio playbook / raw: modelscope $(python3 -c "print(f'{$fetch / $raw:.2f}')"), huggingface $(python3 -c "print(f'{$fetch_hf / $raw:.2f}')")
    download step alone / raw: modelscope ${step_modelscope} s = $(python3 -c "print(f'{$step_modelscope / $raw:.2f}')"), huggingface ${step_huggingface} s = $(python3 -c "print(f'{$step_huggingface / $raw:.2f}')")
    the same playbook again, nothing to fetch (the fixed cost of a run): ${rerun} s
    slowest tasks, modelscope run:
$slowest_modelscope
    slowest tasks, huggingface run:
$slowest_huggingface
(b) bytes the hub served to place the model on all ${#SANDBOX_HOSTS[@]} nodes: $cluster_bytes
    ratio served / model size:                                                              $(python3 -c "print(f'{$cluster_bytes / $size:.2f}')")
TEXT
