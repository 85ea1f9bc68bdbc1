#!/usr/bin/env bash
# Download wheels once on the host, so test hosts install Python packages with
# `pip install --no-index --find-links` and never reach a package index themselves.
# Usage: ensure-wheelhouse.sh NAME PACKAGE...   (wheels land in .cache/wheelhouse/NAME; each
# PACKAGE at its version in tools/pins.txt)
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"

root=$LLMOPS_ROOT
name=$1
shift
requirements=()
for package in "$@"; do
    requirements+=("$(pin "$package")")
done
target="$root/.cache/wheelhouse/$name"
stamp="$target/.requirements"
wanted=$(printf '%s\n' "${requirements[@]}")
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    exit 0
fi
log "downloading wheels for ${requirements[*]} into ${target#"$root"/}"
mkdir -p "$target"
# The controller is this Debian 12 machine's CPython 3.11 on x86_64, as on the test hosts
# (bookworm, CPython 3.11, glibc 2.36), so the wheels pip picks here install there.
"$root/.venv/bin/pip" download -q --disable-pip-version-check -d "$target" --only-binary=:all: \
    "${requirements[@]}" 2> >(grep -v "is ignored: it is neither" >&2)
printf '%s\n' "$wanted" >"$stamp"
