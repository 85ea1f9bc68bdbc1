# Names shared by the sandbox scripts (sourced, not run).
# shellcheck shell=bash
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
SANDBOX_NETWORK=llmops-sandbox
SANDBOX_SUBNET=172.30.20.0/24
SANDBOX_ROOT=/var/tmp/llmops-sandbox
SANDBOX_HOSTS=(llmops-sandbox-head llmops-sandbox-worker)
SANDBOX_HEAD=llmops-sandbox-head
# A node with its own Docker engine (sandbox/images-node.sh), for the image copy between engines.
SANDBOX_IMAGES_NODE=llmops-sandbox-images
SANDBOX_MODEL=tiny-qwen
# The local ModelScope hub the weights role fetches the model from (sandbox/model_hub.py).
SANDBOX_HUB=llmops-sandbox-hub
SANDBOX_HUB_PORT=8089
SANDBOX_HUB_MODEL_ID=llmops/tiny-qwen
SANDBOX_HUB_REVISION=v1
SANDBOX_SERVING_IMAGE=$LLMOPS_SERVING_IMAGE
