#!/usr/bin/env bash
# Build the sandbox's HAProxy image for multi-instance mode with no registry: the node base
# image plus Debian's haproxy package. A label carries a hash of the recipe: a second run
# reuses the image.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"

root=$LLMOPS_ROOT
image=$LLMOPS_BALANCER_IMAGE
recipe_hash=$(sed -n '/^builder=/,$p' "$0" | sha256sum | cut -c1-12)

if [[ "$(docker image inspect --format '{{ index .Config.Labels "org.llmops.recipe-hash" }}' "$image" 2>/dev/null)" == "$recipe_hash" ]]; then
    log "reusing image $image"
    exit 0
fi
base=$("$root/tools/build-node-image.sh" --print-name)
"$root/tools/build-node-image.sh"
builder="llmops-haproxy-build-$$"
trap 'docker rm -f "$builder" >/dev/null 2>&1 || true' EXIT
log "building $image"
docker run --name "$builder" --entrypoint /bin/bash "$base" -euo pipefail -c '
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
    rm -rf /var/lib/apt/lists/*'
docker commit -c 'ENTRYPOINT ["haproxy"]' -c 'CMD ["-v"]' -c "LABEL org.llmops.recipe-hash=$recipe_hash" \
    "$builder" "$image" >/dev/null
log "built $image"
