#!/usr/bin/env bash
# `ansible-galaxy collection build` must make a tarball holding the collection and none of
# the development files (tests, molecule, tools, sandbox, bench, CI, the venv, the link back to
# the checkout).
set -euo pipefail
cd "$(dirname "$0")/../.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ansible-galaxy collection build --force --output-path "$out" .
tarball=$(ls "$out"/llmops-inference-*.tar.gz)
listing=$(tar -tzf "$tarball")
for required in MANIFEST.json deploy.yml meta/runtime.yml roles/host_prep/tasks/main.yml roles/llmops/tasks/facts.yml \
    playbooks/preflight.yml playbooks/host.yml playbooks/phases/host.yml plugins/action/cluster_plan.py \
    plugins/filter/spec_hash.yml roles/weights/files/weights_mirror.py plugins/module_utils/_weights.py; do
    grep -qx "$required" <<<"$listing" || { echo "ERROR: $required missing from $tarball" >&2; exit 1; }
done
if grep -E '^(tests|molecule|tools|sandbox|bench|\.config|\.ci|\.venv|\.cache|collections|prod)(/|$)' <<<"$listing"; then
    echo "ERROR: development files above leaked into $tarball" >&2
    exit 1
fi
echo "OK: $(wc -l <<<"$listing") entries, $(du -h "$tarball" | cut -f1)"
