#!/usr/bin/env bash
# Build the local image every simulated node runs: Debian with systemd as PID 1, made with
# debootstrap because no container registry is reachable from these machines.
# Usage: build-node-image.sh [--print-name] [SUITE]   (SUITE: bookworm, the default, or trixie)
# The tag carries a hash of the package list, so a second run reuses the image and a
# changed list builds a new one.
set -euo pipefail

repository="llmops-node"
print_name=false
if [[ "${1:-}" == "--print-name" ]]; then
    print_name=true
    shift
fi
# Debian 12 runs every node; Debian 13 runs one node of molecule/default and the newest
# controller of tests/harness/check-controllers.sh.
suite="${1:-bookworm}"
# Packages a managed inference node needs before Ansible touches it, plus what the
# collection's own roles install (docker.io, chrony; the eRDMA role's rdma-core and verbs tools)
# so converge never needs the network.
packages=(
    systemd systemd-sysv dbus ca-certificates sudo iproute2 iputils-ping procps kmod pciutils
    python3 python3-apt python3-requests python3-venv python3-pip
    docker.io chrony curl
    rdma-core ibverbs-providers ibverbs-utils
)

# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"

debian_mirror() {
    # The machine's own apt sources name the mirror it may reach; never hard-code one.
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [[ -z "$uri" ]]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    fi
    [[ -n "$uri" ]] || { echo "ERROR: no Debian mirror found in /etc/apt/sources*" >&2; exit 1; }
    printf '%s\n' "$uri"
}

content_hash=$( { printf '%s\n' "$suite" "${packages[@]}"; } | sha256sum | cut -c1-12)
image="${repository}:${suite}-${content_hash}"

if $print_name; then
    printf '%s\n' "$image"
    exit 0
fi

if docker image inspect "$image" >/dev/null 2>&1; then
    # The molecule scenarios name the image by its short tag.
    docker tag "$image" "${repository}:${suite}"
    log "reusing image $image"
    exit 0
fi

rootfs=$(mktemp -d /var/tmp/llmops-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
mirror=$(debian_mirror)
log "debootstrap $suite into $rootfs (a minute or two)"
include=$(IFS=,; printf '%s' "${packages[*]}")
debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" >/var/tmp/llmops-debootstrap.log 2>&1 \
    || { tail -20 /var/tmp/llmops-debootstrap.log >&2; exit 1; }

# Trim what a test host never uses, and keep systemd from starting units that need a
# real machine (getty on a console nobody has, the engine that cannot run unprivileged).
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
chroot "$rootfs" systemctl mask getty@tty1.service console-getty.service systemd-logind.service \
    docker.service docker.socket containerd.service >/dev/null 2>&1 || true
chroot "$rootfs" systemctl set-default multi-user.target >/dev/null 2>&1

log "importing $image"
tar -C "$rootfs" -c . | docker import \
    -c 'ENV container=docker' \
    -c 'CMD ["/lib/systemd/systemd"]' \
    -c "LABEL org.llmops.packages-hash=${content_hash}" \
    - "$image" >/dev/null
docker tag "$image" "${repository}:${suite}"
log "built $image ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
