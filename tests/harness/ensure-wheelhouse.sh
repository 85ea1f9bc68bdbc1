#!/usr/bin/env bash
# Download wheels once on the host, so test hosts install Python packages with
# `pip install --no-index --find-links` and never reach a package index themselves.
# Usage: ensure-wheelhouse.sh NAME REQUIREMENT...   (wheels land in .cache/wheelhouse/NAME)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
name=$1
shift
target="$root/.cache/wheelhouse/$name"
stamp="$target/.requirements"
wanted=$(printf '%s\n' "$@")
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    exit 0
fi
printf '==> downloading wheels for %s into %s\n' "$*" "${target#"$root"/}"
mkdir -p "$target"
# The controller is this Debian 12 machine's CPython 3.11 on x86_64, as on the test hosts
# (bookworm, CPython 3.11, glibc 2.36), so the wheels pip picks here install there.
"$root/.venv/bin/pip" download -q --disable-pip-version-check -d "$target" --only-binary=:all: \
    "$@" 2> >(grep -v "is ignored: it is neither" >&2)
printf '%s\n' "$wanted" >"$stamp"
