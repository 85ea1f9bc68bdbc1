#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_probe
short_description: Read what a serving image carries (Python, vLLM, Ray, torch's CUDA, the erdma verbs provider)
version_added: 0.1.0
description:
  - When the node holds the image, runs a standard-library Python script in it
    (C(docker run --rm --network none --entrypoint python3)) that reads the versions of
    vLLM, Ray and torch from their package metadata (nothing heavy is imported), torch's
    CUDA version, and whether the erdma verbs provider of rdma-core is installed.
  - The answer is kept per image ID (and version of the probe) under O(cache_dir), so a rerun
    on the same image starts no container; an unreadable cache file is probed again. A node without the image reports RV(present) false and runs nothing.
  - Changes nothing the operator has (the cache file is the module's own).
author:
  - llmops.inference maintainers (@llmops)
options:
  image:
    description: The image, by name.
    type: str
    required: true
  cache_dir:
    description: Where each image's answer is kept by image ID; empty keeps nothing.
    type: path
    default: ""
  timeout:
    description: Seconds the probe container may take.
    type: int
    default: 120
extends_documentation_fragment:
  - llmops.inference.read_only
notes:
  - Uses the docker CLI; a node without it (Docker not installed yet) reports RV(present) false.
"""

EXAMPLES = r"""
- name: Read what the serving image carries
  llmops.inference.image_probe:
    image: vllm/vllm-openai:v0.32.0
    cache_dir: /var/lib/llmops-inference/images
  register: probe
"""

RETURN = r"""
present:
  description: Whether the node holds the image.
  returned: always
  type: bool
image_id:
  description: The image's ID; empty when not present.
  returned: always
  type: str
probe:
  description: C(python), C(vllm), C(ray), C(torch), C(torch_cuda) (null when absent) and C(erdma_provider).
  returned: when the image is present and the probe ran
  type: dict
  sample: {python: "3.12.3", vllm: "0.32.0", ray: null, torch: "2.10.0", torch_cuda: "13.0", erdma_provider: false}
size:
  description: The image's size in bytes (0 when absent).
  returned: always
  type: int
error:
  description: Why the probe failed (its exit code and the end of its output); empty when it ran.
  returned: always
  type: str
cached:
  description: Whether the answer came from O(cache_dir).
  returned: always
  type: bool
"""

import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._images import PROBE_SCRIPT


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            cache_dir=dict(type="path", default=""),
            timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    params = module.params
    docker = module.get_bin_path("docker")
    result = dict(changed=False, present=False, image_id="", size=0, error="", cached=False)
    # No Docker yet (the host phase installs it) or no such image: nothing to read yet.
    rc, out, _err = module.run_command([docker, "image", "inspect", "--format", "{{.Id}} {{.Size}}", params["image"]]) if docker else (1, "", "")
    if rc != 0:
        module.exit_json(**result)
    image_id, size = out.split()
    result.update(present=True, image_id=image_id, size=int(size))
    # Keyed by image and by the probe script: a changed script reads every image again.
    key = "%s-%s.json" % (result["image_id"].replace(":", "-"), hashlib.sha256(PROBE_SCRIPT.encode()).hexdigest()[:12])
    cache = os.path.join(params["cache_dir"], key) if params["cache_dir"] else ""
    try:
        with open(cache) as handle:
            result.update(probe=json.load(handle), cached=True)
        module.exit_json(**result)
    except (OSError, ValueError):
        pass  # no cache, or an unreadable one: probe again
    argv = [docker, "run", "--rm", "--network", "none", "--entrypoint", "python3", params["image"], "-c", PROBE_SCRIPT]
    timeout = module.get_bin_path("timeout")
    rc, out, err = module.run_command(([timeout, "--kill-after=5", str(params["timeout"])] if timeout else []) + argv)
    lines = out.strip().splitlines()
    try:
        if rc != 0 or not lines:
            raise ValueError("exit %d" % rc)
        result["probe"] = json.loads(lines[-1])
    except ValueError as error:
        result["error"] = "%s: %s" % (error, " / ".join((out + err).strip().splitlines()[-3:]) or "no output")
        module.exit_json(**result)
    if cache and not module.check_mode:
        os.makedirs(params["cache_dir"], mode=0o755, exist_ok=True)
        with open(cache + ".tmp", "w") as handle:
            json.dump(result["probe"], handle)
        os.replace(cache + ".tmp", cache)  # whole or absent, never half written
    module.exit_json(**result)


if __name__ == "__main__":
    main()
