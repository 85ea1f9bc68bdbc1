#!/usr/bin/env bash
# ansible-test sanity needs the collection at .../ansible_collections/<ns>/<name>, on a path
# with no hidden folder in it; the checkout is the collection root under any name, so test a
# copy of the files git knows. ansible-test builds one venv per test from the package index.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work_root="${LLMOPS_SANITY_DIR:-/var/tmp/llmops-sanity}"
work="$work_root/ansible_collections/llmops/inference"
rm -rf "$work"
mkdir -p "$work"
cd "$root"
git ls-files -z --cached --others --exclude-standard \
    | grep -zv '^collections/' \
    | xargs -0 -I{} cp --parents -P {} "$work/"

# ansible-test fetches pip's bootstrap script from a host outside the package registries;
# give it ours, under the name it looks for.
pip_version=$("$root/.venv/bin/python" - <<'PY'
import re, ansible_test, pathlib
source = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", source).group(1))
PY
)
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cp "$root/tests/harness/ansible-test-get-pip.py" "$cache/get_pip_${pip_version//./_}.py"

cd "$work"
exec "$root/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
