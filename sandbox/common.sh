# Names shared by the sandbox scripts (sourced, not run).
# shellcheck shell=bash
SANDBOX_NETWORK=llmops-sandbox
SANDBOX_SUBNET=172.30.20.0/24
SANDBOX_ROOT=/var/tmp/llmops-sandbox
SANDBOX_HOSTS=(llmops-sandbox-head llmops-sandbox-worker)
SANDBOX_HEAD=llmops-sandbox-head
SANDBOX_MODEL=tiny-qwen
# The local ModelScope hub the weights role fetches the model from (the role's mirror script).
SANDBOX_HUB=llmops-sandbox-hub
SANDBOX_HUB_PORT=8089
SANDBOX_HUB_MODEL_ID=llmops/tiny-qwen
SANDBOX_HUB_REVISION=v1
SANDBOX_SERVING_IMAGE=llmops-vllm-cpu:0.32.0
log() { printf '==> %s\n' "$*"; }
