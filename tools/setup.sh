#!/usr/bin/env bash
# Everything the tests, the sandbox and the benchmarks need on this machine, in order; each
# step is a no-op when its result is already there. `make setup` runs it; so do `make test`
# and `make sandbox`.
set -euo pipefail
tools=$(cd "$(dirname "$0")" && pwd)

"$tools/ensure-engine.sh"
"$tools/ensure-venv.sh"
"$tools/build-node-image.sh"
"$tools/build-node-image.sh" trixie
# Ray for the molecule/modules cluster, installed on the test hosts from this wheelhouse.
"$tools/ensure-wheelhouse.sh" ray ray
# The ModelScope client the weights role installs on molecule/weights and sandbox nodes.
"$tools/ensure-wheelhouse.sh" modelscope modelscope
# The serving image (the real vLLM, CPU build) and the balancer image for multi-instance mode.
"$tools/build-serving-image.sh"
"$tools/build-balancer-image.sh"
