# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a serving image carries, and whether that is what the plan needs.

PROBE_SCRIPT runs inside the image (the image_probe module starts it with `docker run`); it
uses the standard library only and imports nothing heavy (vLLM and torch are read from their
package metadata, not imported), so it answers in about a second. image_problems decides.

An engine image that lacks Ray (upstream's vllm/vllm-openai since vLLM 0.18) gets Ray added at
the cluster's pin: derived_image_name names that image by what goes into it, BUILD_SCRIPT is
what runs inside the engine image to add it (the serving_image module commits the result).
"""

from __future__ import annotations

import hashlib
import json
import re

PROBE_SCRIPT = r"""
import glob, importlib.metadata as metadata, importlib.util, json, os, re, sys
def version(name):
    try:
        return metadata.version(name)
    except Exception:
        return None
torch_cuda = None
try:
    spec = importlib.util.find_spec("torch")
    if spec and spec.origin:
        with open(os.path.join(os.path.dirname(spec.origin), "version.py")) as handle:
            found = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", handle.read(), re.M)
        torch_cuda = found.group(1) if found else None
except Exception:
    pass
print(json.dumps({
    "python": "%d.%d.%d" % sys.version_info[:3],
    "vllm": version("vllm"), "ray": version("ray"), "torch": version("torch"), "torch_cuda": torch_cuda,
    "erdma_provider": bool(glob.glob("/etc/libibverbs.d/erdma.driver") or glob.glob("/usr/lib*/*/libibverbs/liberdma*")
                           or glob.glob("/usr/lib*/libibverbs/liberdma*")),
}))
"""

# The newest CUDA major version each NVIDIA driver branch runs (CUDA's minor version
# compatibility: any 12.x on 525+, 13.x only on 580+).
CUDA_MAJOR_BY_DRIVER_BRANCH = ((580, 13), (525, 12), (450, 11))


def driver_branch(driver_version):
    """The branch of a driver version ("570.133.20" or "570": 570); None when unknown."""
    match = re.match(r"^\s*(\d+)", str(driver_version or ""))
    return int(match.group(1)) if match else None


def cuda_major_for_driver(driver_version):
    """The newest CUDA major version a driver (e.g. "570.133.20", or a branch "570") runs;
    None when the version is unknown."""
    branch = driver_branch(driver_version)
    if branch is None:
        return None
    return next((major for oldest, major in CUDA_MAJOR_BY_DRIVER_BRANCH if branch >= oldest), 0)


def image_problems(probe, host, image, needs):
    """Why the image cannot serve the plan on this node, one message each with the fix.

    probe: the image_probe result (present, probe {python, vllm, ray, torch_cuda,
    erdma_provider}, error); needs: {ray (bool: the plan forms a Ray cluster with this image),
    driver (the node's NVIDIA driver version or branch, '' when not NVIDIA), erdma (bool: the
    node has eRDMA NICs and serves on NVIDIA)}. An image the node does not hold yet is checked
    after it is pulled, before any container starts.
    """
    if not probe.get("present"):
        return []
    where = "On %s: the serving image %s" % (host, image)
    if probe.get("error"):
        return ["%s could not be probed: %s. Fix: check the image runs python3 (docker run --rm --entrypoint "
                "python3 %s -V)." % (where, probe["error"], image)]
    found = probe.get("probe") or {}
    problems = []
    if not found.get("vllm"):
        problems.append("%s has no vLLM. Fix: name a vLLM image in vllm_serve_images (or vllm_serve_image)." % where)
    if needs.get("ray") and not found.get("ray"):
        problems.append("%s has no Ray (vLLM dropped it from its dependencies in 0.18), and the cluster phase forms "
                        "the Ray cluster with it. Fix: set serving_image_derive: true (the collection then builds the "
                        "image once with Ray at serving_image_ray_requirement and copies it to every node), or name an "
                        "image with Ray at your cluster's version in vllm_serve_images." % where)
    driver_major = cuda_major_for_driver(needs.get("driver"))
    cuda = found.get("torch_cuda")
    cuda_major = int(cuda.split(".")[0]) if cuda and cuda.split(".")[0].isdigit() else None
    if driver_major is not None and cuda_major is not None and cuda_major > driver_major:
        oldest = {major: branch for branch, major in CUDA_MAJOR_BY_DRIVER_BRANCH}.get(cuda_major)
        needed = "NVIDIA driver branch %d or later" % oldest if oldest else "a newer NVIDIA driver than this collection knows"
        other = "an image built for CUDA %d" % driver_major if driver_major else "an image for this driver"
        problems.append("%s is built for CUDA %s, which needs %s; the node's driver is %s. Fix: %s, or name %s."
                        % (where, cuda, needed, needs["driver"],
                           "set nvidia_driver_branch to %d or later" % oldest if oldest else "upgrade the driver", needed and other))
    if needs.get("erdma") and not found.get("erdma_provider"):
        problems.append("%s has no erdma verbs provider (rdma-core 42 or later), so NCCL in it would fall back to "
                        "sockets over the eRDMA NICs. Fix: set serving_image_erdma_packages to the eRDMA user-space packages for "
                        "the image's OS (the collection adds them when it derives the image), or name an image with "
                        "rdma-core 42+ (ibv_devices lists "
                        "erdma_0 in it)." % where)
    return problems


# Bumped whenever BUILD_SCRIPT changes what a derived image holds: the name changes with it.
RECIPE_VERSION = 2

# Runs in a container of the engine image as root. First the eRDMA user space, where the
# collection copied packages into /tmp/llmops-erdma (nodes with eRDMA NICs, an engine image
# without the erdma verbs provider): installed with dpkg or rpm, offline, then the provider
# must be there. Then the Ray requirement ($1) with the interpreter that has vLLM (python3 on
# PATH) through pip, or uv where the image has no pip (uv-built virtual environments carry
# none). $2... are the installer's source arguments. Nothing is installed that is there
# already; what the collection copied in is removed before the container is committed.
BUILD_SCRIPT = r"""
set -eu
requirement=$1; shift
erdma_provider() {
    ls /etc/libibverbs.d/erdma.driver /usr/lib*/*/libibverbs/liberdma* /usr/lib*/libibverbs/liberdma* 2>/dev/null | head -n 1
}
if [ -d /tmp/llmops-erdma ]; then
    if [ -n "$(erdma_provider)" ]; then
        echo "the erdma verbs provider is in the engine image already: $(erdma_provider)"
    elif ls /tmp/llmops-erdma/*.deb >/dev/null 2>&1; then
        dpkg -i /tmp/llmops-erdma/*.deb
    else
        rpm -Uvh --replacepkgs /tmp/llmops-erdma/*.rpm
    fi
    rm -rf /tmp/llmops-erdma
    [ -n "$(erdma_provider)" ] || { echo "the eRDMA packages installed no erdma verbs provider (liberdma)" >&2; exit 4; }
    echo "erdma verbs provider: $(erdma_provider)"
fi
wanted=${requirement##*==}
have=$(python3 -c 'import importlib.metadata as m; print(m.version("ray"))' 2>/dev/null || true)
if [ "$have" = "$wanted" ]; then
    echo "Ray $have is in the engine image already"
elif python3 -m pip --version >/dev/null 2>&1; then
    python3 -m pip install --no-cache-dir --disable-pip-version-check "$@" "$requirement"
elif command -v uv >/dev/null 2>&1; then
    uv pip install --no-cache --python "$(command -v python3)" "$@" "$requirement"
else
    echo "the engine image has neither pip nor uv for python3: name an image with Ray instead" >&2
    exit 3
fi
rm -rf /tmp/llmops-wheels
python3 -c 'import ray; print("Ray", ray.__version__, "imports")'
"""


def split_reference(reference):
    """(repository, tag, digest) of an image reference: "vllm/vllm-openai:v0.32.0" gives
    ("vllm/vllm-openai", "v0.32.0", ""); a reference with neither tag nor digest has tag latest."""
    name, _at, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:], digest
    return name, "" if digest else "latest", digest


def requirement_version(requirement):
    """The exact version a pinned requirement names ("ray[default]==2.60.0": "2.60.0"), else None."""
    match = re.match(r"^\s*ray(\[[A-Za-z0-9_,\s-]*\])?\s*==\s*([0-9][A-Za-z0-9.+!-]*)\s*$", requirement or "")
    return match.group(2) if match else None


def derived_image_name(engine_image, ray_requirement, erdma_packages=()):
    """The name of the image derived from engine_image with ray_requirement (and the eRDMA
    packages, by file name), by what goes into it: llmops/<engine name>:<engine tag or
    digest>-ray<version>-<hash of engine, requirement, packages, recipe>."""
    repository, tag, digest = split_reference(engine_image)
    origin = tag or digest.replace(":", "-")[:19]
    content = json.dumps([engine_image, ray_requirement, RECIPE_VERSION, BUILD_SCRIPT]
                         + ([sorted(erdma_packages)] if erdma_packages else []))
    suffix = "-ray%s-%s" % (requirement_version(ray_requirement) or "x", hashlib.sha256(content.encode()).hexdigest()[:10])
    # A tag holds at most 128 characters of [A-Za-z0-9_.-].
    tag_text = re.sub(r"[^A-Za-z0-9_.-]", "-", origin)[:128 - len(suffix)] + suffix
    return "llmops/%s:%s" % (repository.rsplit("/", 1)[-1].lower(), tag_text)
