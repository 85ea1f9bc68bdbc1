# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a serving image carries, and whether that is what the plan needs.

PROBE_SCRIPT runs inside the image (the image_probe module starts it with `docker run`); it
uses the standard library only and imports nothing heavy (vLLM and torch are read from their
package metadata, not imported), so it answers in about a second. image_problems decides.
"""

from __future__ import annotations

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
                        "the Ray cluster with it. Fix: name an image with Ray at your cluster's version in "
                        "vllm_serve_images, e.g. one built FROM %s with 'pip install ray[default]==<version>'."
                        % (where, image))
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
                        "sockets over the eRDMA NICs. Fix: name an image with rdma-core 42+ (ibv_devices lists "
                        "erdma_0 in it)." % where)
    return problems
