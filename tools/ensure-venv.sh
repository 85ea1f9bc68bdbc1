#!/usr/bin/env bash
# Build the controller venv from pinned requirements, and add the collections this one
# depends on offline: Galaxy is unreachable here, so they come out of PyPI's `ansible`
# wheel, which bundles them. A stamp of the inputs makes a second run a no-op.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"
root=$LLMOPS_ROOT
venv="$root/.venv"
cache="$root/.cache"
requirements="$root/tools/controller-requirements.txt"
# The ansible bundle for ansible-core 2.19 carries the collections below.
bundle_version=$(pin_version ansible)
bundled_collections=(community/docker community/library_inventory_filtering_v1 ansible/posix)

stamp_inputs=$( { cat "$requirements" "$LLMOPS_PINS"; printf '%s\n' "${bundled_collections[@]}"; } | sha256sum | cut -c1-16)
stamp="$venv/.llmops-stamp"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_inputs" ]]; then
    exit 0
fi

log "creating venv $venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" 2> >(grep -v "is ignored: it is neither" >&2)

mkdir -p "$cache/wheels"
wheel=$(ls "$cache"/wheels/ansible-"$bundle_version"-*.whl 2>/dev/null | head -1 || true)
if [[ -z "$wheel" ]]; then
    log "fetching the ansible $bundle_version wheel for its bundled collections"
    "$venv/bin/pip" download -q --no-deps -d "$cache/wheels" "ansible==$bundle_version" 2> >(grep -v "is ignored: it is neither" >&2)
    wheel=$(ls "$cache"/wheels/ansible-"$bundle_version"-*.whl | head -1)
fi
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
patterns=()
for collection in "${bundled_collections[@]}"; do
    patterns+=("ansible_collections/$collection/*")
done
log "extracting ${bundled_collections[*]} into the venv"
"$venv/bin/python" - "$wheel" "$site" "${patterns[@]}" <<'PY'
import fnmatch, sys, zipfile
wheel, site, *patterns = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if any(fnmatch.fnmatch(m, p) for p in patterns)]
    archive.extractall(site, members)
PY
printf '%s\n' "$stamp_inputs" >"$stamp"
