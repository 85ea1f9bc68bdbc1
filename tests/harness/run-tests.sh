#!/usr/bin/env bash
# `make test`: set up what a fresh machine lacks, run every check, print one count line.
# Each check's full output goes to .cache/test-logs/<check>.log; a failure shows its tail.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
logs="$root/.cache/test-logs"
mkdir -p "$logs"
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_FORCE_COLOR=0 NO_COLOR=1 PY_COLORS=0

passed=0
failed=0
failed_names=()

run_check() {
    local name=$1
    shift
    local log="$logs/$name.log" started=$SECONDS
    printf '==> %-28s ' "$name"
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        printf 'PASS  (%ds)\n' $((SECONDS - started))
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        printf 'FAIL  (%ds) — log: %s\n' $((SECONDS - started)) "${log#"$root"/}"
        tail -n 40 "$log" | sed 's/^/    | /'
    fi
}

setup_started=$SECONDS
echo "==> setup (tools/setup.sh): Docker engine, controller venv, node image, wheelhouses, images"
tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
echo "==> setup done in $((SECONDS - setup_started))s"

run_check ansible-lint ansible-lint
run_check sanity tests/harness/sanity.sh
run_check unit python -m pytest -q tests/unit
run_check entry-point tests/harness/check-entry-point.sh
run_check collection-build tests/harness/check-collection-build.sh
run_check controllers tests/harness/check-controllers.sh
for scenario_file in molecule/*/molecule.yml; do
    scenario=$(basename "$(dirname "$scenario_file")")
    run_check "molecule-$scenario" molecule test -s "$scenario"
done

run_check e2e-sandbox tests/harness/e2e-sandbox.sh

echo
if ((failed)); then
    echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
