#!/usr/bin/env bash
# End to end: `make sandbox` from nothing, the e2e checks with the openai client, then
# `make sandbox-down` and proof that nothing it created is left.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=sandbox/common.sh
source sandbox/common.sh

sandbox/down.sh >/dev/null
volumes_before=$(docker volume ls -q | sort)
started=$SECONDS
sandbox/up.sh || { sandbox/down.sh; exit 1; }
echo "==> make sandbox took $((SECONDS - started)) s"
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 tests/e2e
status=$?
sandbox/down.sh || status=1
left=$(docker ps -aq --filter label=org.llmops.sandbox=1; docker ps -aq --filter label=org.llmops.role=vllm_serve
    docker ps -aq --filter label=org.llmops.role=ray_cluster; docker ps -aq --filter label=org.llmops.role=vllm_benchmark)
volumes_after=$(docker volume ls -q | sort)
if [[ -n "$left" || "$volumes_after" != "$volumes_before" ]] \
    || docker network inspect "$SANDBOX_NETWORK" >/dev/null 2>&1 || [[ -e "$SANDBOX_ROOT" ]]; then
    echo "ERROR: make sandbox-down left something behind: containers [$left]," \
        "volumes [$(comm -13 <(echo "$volumes_before") <(echo "$volumes_after") | xargs)]" >&2
    status=1
fi
exit $status
