#!/usr/bin/env bash
# ansible-test sanity needs the collection at .../ansible_collections/<ns>/<name>; the
# checkout is the collection root under any name, so test a copy of the files git knows.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work="$root/.cache/sanity/ansible_collections/llmops/inference"
rm -rf "$work"
mkdir -p "$work"
cd "$root"
git ls-files -z --cached --others --exclude-standard \
    | grep -zv '^collections/' \
    | xargs -0 -I{} cp --parents -P {} "$work/"
cd "$work"
# --venv: ansible-test builds its own pinned environment per test from the package index.
exec "$root/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
