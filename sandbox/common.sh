# Names shared by the sandbox scripts (sourced, not run).
# shellcheck shell=bash
SANDBOX_NETWORK=llmops-sandbox
SANDBOX_SUBNET=172.30.20.0/24
SANDBOX_ROOT=/var/tmp/llmops-sandbox
SANDBOX_HOSTS=(llmops-sandbox-head llmops-sandbox-worker)
SANDBOX_HEAD=llmops-sandbox-head
SANDBOX_MODEL=tiny-qwen
SANDBOX_SERVING_IMAGE=llmops-vllm-cpu:0.32.0
log() { printf '==> %s\n' "$*"; }
